"""Exported files in a second runtime: onnxruntime-web's WASM backend under Node, against onnxruntime in Python.

The int8 files must compute the same integers in both (7-bit per-channel weights cannot saturate the x86
u8 x s8 kernels, and VNNI / WASM accumulate exactly), so the quality in the export report is what a browser
or phone reproduces; fp32, ORT-format and fp16 files agree to float rounding.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import zoo
from sdk.export.exporter import to_fp16
from sdk.export.mobile import compare_quality, export_bundle
from sdk.export.web import OrtWebUnavailable, run_web

JS = Path(__file__).parent / "js"
PKL = "network-snapshot-000000.pkl"


@pytest.fixture(scope="module")
def ort_web(tmp_path_factory) -> Path:
    """onnxruntime-web installed from tests/js's lock file into a temporary folder."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        if os.environ.get("GANZOO_EXPECT_INSTALLED") == "1":
            pytest.fail("CI must provide node and npm for the edge-runtime tests")
        pytest.skip("node / npm not installed")
    d = tmp_path_factory.mktemp("ortweb")
    for f in ("package.json", "package-lock.json"):
        shutil.copy(JS / f, d / f)
    p = subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=d, capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    return d


@pytest.fixture(scope="module")
def bundle(ort_web, tmp_path_factory, converted_fixture) -> dict:
    G = zoo.load(converted_fixture("sg2ada_uncond_64", PKL), quiet=True)
    out = tmp_path_factory.mktemp("bundle") / "g.onnx"
    return export_bundle(G, out, fmt="ort", int8=True, mobile_check=False, web=ort_web)


def test_every_variant_runs_in_onnxruntime_web_like_in_python(bundle):
    variants = {v["kind"]: v for v in bundle["variants"]}
    assert set(variants) == {"main", "int8", "ort", "int8-ort"}
    assert bundle["edge_runtime"].startswith("onnxruntime-web 1.30.0")
    for kind in ("main", "ort"):  # fp32 graphs: float rounding only
        assert variants[kind]["web"]["max_abs_vs_python"] < 1e-4, (kind, variants[kind]["web"])
    for kind in ("int8", "int8-ort"):
        web, py = variants[kind]["web"], variants[kind]
        assert web["max_abs_vs_python"] < 1e-5, (kind, web)  # the same integers in both runtimes
        assert abs(web["psnr_db"] - py["psnr_db"]) < 0.01 and 15 < py["psnr_db"] < 60


def test_int8_weights_are_per_channel_7_bit(bundle):
    variants = {v["kind"]: v for v in bundle["variants"]}
    assert variants["int8"]["quantization"]["reduce_range"] is True
    model = onnx.load(variants["int8"]["path"])
    weights = [numpy_helper.to_array(t) for t in model.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert weights, "no int8 weights in the int8 file"
    assert max(int(np.abs(w.astype(np.int32)).max()) for w in weights) <= 64  # 2 * 255 * 64 < 2**15
    scales = [numpy_helper.to_array(t) for t in model.graph.initializer
              if t.name.endswith("_scale") and t.data_type == onnx.TensorProto.FLOAT]
    assert any(s.ndim == 1 and s.size > 1 for s in scales), "weight scales are not per channel"


def test_fp16_file_in_onnxruntime_web(bundle, ort_web, tmp_path):
    fp32 = Path(bundle["model"]["path"])
    fp16 = tmp_path / "g.fp16.onnx"
    onnx.save_model(to_fp16(onnx.load(fp32)), fp16)
    q = compare_quality(fp32, fp16, web=ort_web)
    assert q["psnr_db"] > 40 and q["web"]["psnr_db"] > 40
    assert q["web"]["max_abs_vs_python"] < 0.05  # fp16 arithmetic: kernels differ in rounding order


def test_web_runner_reports_a_broken_model_in_one_line(ort_web, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx file")
    with pytest.raises(OrtWebUnavailable, match="could not run bad.onnx"):
        run_web(bad, {"z": np.zeros((1, 4), np.float32)}, folder=ort_web)
    with pytest.raises(OrtWebUnavailable, match="npm install onnxruntime-web"):
        run_web(bad, {}, folder=tmp_path)
