"""Deployment variants of an exported generator: ORT format, int8, fp16, and a mobile-usability check.

Each variant is compared with the fp32 ONNX file on fixed seeds (PSNR over images mapped to [0, 1], and
max-abs on the [-1, 1] output), and :func:`export_bundle` writes everything plus ``<stem>.export.json``
beside the model.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from zoo.fileio import atomic_write, chmod_like_new_file, write_text_atomic

from .exporter import OnnxExportError, export_onnx, _cpu_session
from .onnx_generator import input_dtypes

QUALITY_SEEDS = tuple(range(8))
#: How int8 weights are stored (see :func:`quantize_int8` for why), recorded in the export report.
INT8_WEIGHTS = {"weights": "int8 per-channel, 7-bit range (|w| <= 64)", "per_channel": True, "reduce_range": True}

#: Ops with kernels in onnxruntime's XNNPACK execution provider (onnxruntime
#: core/providers/xnnpack/xnnpack_execution_provider.cc kernel registrations, 1.17-1.20); Clip/Relu-style
#: activations after a Conv are fused into it. There is no usability checker for XNNPACK in onnxruntime.
XNNPACK_OPS = frozenset({"Conv", "ConvTranspose", "QLinearConv", "QLinearConvTranspose", "MaxPool", "AveragePool",
                         "QLinearAveragePool", "Softmax", "QLinearSoftmax", "Resize", "Gemm", "MatMul"})


# --- conversions -------------------------------------------------------------------------------------------

def convert_to_ort(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> Path:
    """ONNX -> ORT format (what the mobile packages load), with basic (platform-neutral) graph optimizations.

    Same mechanism as ``python -m onnxruntime.tools.convert_onnx_models_to_ort``: a session saves its
    optimized graph with ``session.save_model_format=ORT``. Basic level keeps the file usable with NNAPI /
    CoreML / XNNPACK, whose kernels the CPU-specific "all" level fusions would hide.
    """
    import onnxruntime as ort

    dst = Path(dst)
    with atomic_write(dst, suffix=".tmp.ort") as tmp:
        so = ort.SessionOptions()
        so.log_severity_level = 3
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        so.optimized_model_filepath = os.fspath(tmp)
        so.add_session_config_entry("session.save_model_format", "ORT")
        ort.InferenceSession(os.fspath(src), so, providers=["CPUExecutionProvider"])
    return dst


def quantize_int8(src: str | os.PathLike[str], dst: str | os.PathLike[str],
                  calibration_seeds: Sequence[int] = tuple(range(100, 116))) -> tuple[Path, dict[str, Any]]:
    """int8 weights via onnxruntime.quantization, after constant folding and shape inference.

    Dynamic quantization first (int8 weights, activations quantized at run time). It covers Conv / MatMul /
    Gemm but not ConvTranspose, so when it quantizes nothing (e.g. DCGAN) the model is quantized statically
    instead: QDQ format, per-channel int8 weights, uint8 activations calibrated (min-max) on
    ``calibration_seeds`` (disjoint from the quality-score seeds). Returns the path and what was done.

    Weights are per-channel and 7-bit (``reduce_range``: |w| <= 64) so that the file computes the same
    integers on every runtime. onnxruntime's x86 u8 x s8 kernels without VNNI (AVX2, AVX-512F/BW) add pairs of
    products in int16 with saturation; 8-bit weights overflow it (2 * 255 * 127 > 32767), 7-bit ones cannot
    (2 * 255 * 64 = 32640), while VNNI, ARM and WASM kernels accumulate in int32 exactly. With 8-bit weights
    the same file scored 32.3 dB on an AVX2 CPU against 35.6 dB in onnxruntime-web; 7-bit per-channel
    weights cost some quality but the score in the report is then the one every device reproduces.
    """
    dst = Path(dst)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer logs advice through the root logger
    try:
        return _quantize(src, dst, calibration_seeds)
    finally:
        root.setLevel(level)


def _quantize(src: str | os.PathLike[str], dst: Path, calibration_seeds: Sequence[int]) -> tuple[Path, dict[str, Any]]:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from .exporter import read_metadata

    with tempfile.TemporaryDirectory(dir=dst.parent, prefix=f".{dst.name}.work-") as tmpdir:
        pre = Path(tmpdir).resolve() / "pre.onnx"
        cwd = os.getcwd()
        # When its symbolic shape inference gives up (BigGAN's gathers), onnxruntime dumps the model into the
        # current directory before raising: run it from the work folder so nothing lands in the user's.
        os.chdir(tmpdir)
        try:  # folds constants so weights are plain initializers
            quant_pre_process(os.fspath(Path(src).resolve()), os.fspath(pre))
        except Exception:  # noqa: BLE001 - retry without the symbolic pass
            quant_pre_process(os.fspath(Path(src).resolve()), os.fspath(pre), skip_symbolic_shape=True)
        finally:
            os.chdir(cwd)
        out = Path(tmpdir) / "int8.onnx"
        quantize_dynamic(os.fspath(pre), os.fspath(out), weight_type=QuantType.QInt8, per_channel=True,
                         reduce_range=True)
        info: dict[str, Any] = {"method": "dynamic", "quantized_nodes": _count_quantized(out), **INT8_WEIGHTS}
        if info["quantized_nodes"] == 0:
            meta = read_metadata(src)
            sess = _cpu_session(os.fspath(src))
            seeds = list(calibration_seeds)
            batches = [_seed_inputs(sess, meta, seeds[i:i + 4]) for i in range(0, len(seeds), 4)]

            class Reader(CalibrationDataReader):
                def __init__(self) -> None:
                    self.it = iter(batches)

                def get_next(self) -> dict[str, np.ndarray] | None:
                    return next(self.it, None)

            quantize_static(os.fspath(pre), os.fspath(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, reduce_range=True,
                            op_types_to_quantize=["Conv", "ConvTranspose", "MatMul", "Gemm"])
            info = {"method": "static-qdq", "quantized_nodes": _count_quantized(out),
                    "calibration_seeds": seeds, **INT8_WEIGHTS}
        if info["quantized_nodes"] == 0:
            raise OnnxExportError("int8 quantization found no Conv / ConvTranspose / MatMul / Gemm to quantize")
        _copy_metadata(src, out, precision="int8")
        chmod_like_new_file(out)
        os.replace(out, dst)
    return dst, info


def _count_quantized(path: Path) -> int:
    import onnx

    model = onnx.load(os.fspath(path))
    return sum(1 for n in model.graph.node if n.op_type in ("ConvInteger", "MatMulInteger", "DynamicQuantizeMatMul",
                                                             "QuantizeLinear", "QLinearConv", "QLinearMatMul"))


def _copy_metadata(src: str | os.PathLike[str], dst: Path, **updates: str) -> None:
    import onnx

    meta = {p.key: p.value for p in onnx.load(os.fspath(src), load_external_data=False).metadata_props}
    for k, v in updates.items():
        meta[f"ganzoo.{k}"] = v
    model = onnx.load(os.fspath(dst))
    del model.metadata_props[:]
    for k, v in meta.items():
        model.metadata_props.add(key=k, value=v)
    onnx.save_model(model, os.fspath(dst))


# --- quality -----------------------------------------------------------------------------------------------

def _seed_inputs(sess: Any, meta: dict[str, str], seeds: Sequence[int]) -> dict[str, np.ndarray]:
    from ..sampling import Z_CONVENTIONS

    z_dim, c_dim = int(meta["z_dim"]), int(meta["c_dim"])
    fn = Z_CONVENTIONS[meta.get("z_convention", "nvidia")]
    names = {i.name for i in sess.get_inputs()}
    feed: dict[str, np.ndarray] = {"z": torch.cat([fn(s, z_dim, 1.0) for s in seeds]).numpy()}
    if "c" in names:
        feed["c"] = np.eye(c_dim, dtype=np.float32)[[s % c_dim for s in seeds]]
    feed["truncation_psi"] = np.asarray(1.0)
    for k, v in json.loads(meta.get("extra_inputs", "{}")).items():
        feed[k] = np.asarray(v)
    dtypes = input_dtypes(sess)  # e.g. BigGAN's float64 psi
    return {k: v.astype(dtypes[k]) for k, v in feed.items() if k in names}


def _psnr_max_abs(a: np.ndarray, b: np.ndarray) -> dict[str, float | None]:
    a01, b01 = (np.clip(a, -1, 1) + 1) / 2, (np.clip(b, -1, 1) + 1) / 2
    mse = float(np.mean((a01 - b01) ** 2))
    psnr = None if mse == 0 else round(10 * math.log10(1.0 / mse), 3)  # None: bit-identical images
    return {"psnr_db": psnr, "max_abs": float(np.abs(a - b).max())}


def compare_quality(reference: str | os.PathLike[str], candidate: str | os.PathLike[str],
                    seeds: Sequence[int] = QUALITY_SEEDS, *,
                    web: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """PSNR (dB, images mapped to [0, 1]) and max-abs ([-1, 1] scale) of ``candidate`` vs ``reference``.

    With ``web`` (a folder holding onnxruntime-web, see :mod:`sdk.export.web`) the candidate also runs in
    onnxruntime-web's WASM backend: ``web`` in the result is its quality there, against the same Python fp32
    reference, and how far the two runtimes' outputs are apart (``max_abs_vs_python``).
    """
    from .exporter import read_metadata

    ref_sess, cand_sess = _cpu_session(os.fspath(reference)), _cpu_session(os.fspath(candidate))
    meta = read_metadata(reference)
    if meta.get("parts", "full") != "full":
        raise OnnxExportError("quality comparison needs a parts='full' export")
    feed = _seed_inputs(ref_sess, meta, seeds)
    a = ref_sess.run(None, feed)[0].astype(np.float64)
    cand_feed = {i.name: feed[i.name] for i in cand_sess.get_inputs()}
    b = cand_sess.run(None, cand_feed)[0].astype(np.float64)
    result: dict[str, Any] = {**_psnr_max_abs(a, b), "seeds": list(seeds)}
    if web is not None:
        from .web import run_web, web_version

        out_name = cand_sess.get_outputs()[0].name
        w = run_web(candidate, cand_feed, folder=web)[out_name].astype(np.float64)
        result["web"] = {**_psnr_max_abs(a, w), "max_abs_vs_python": float(np.abs(w - b).max()),
                         "runtime": f"onnxruntime-web {web_version(web)} (wasm)"}
    return result


# --- mobile usability --------------------------------------------------------------------------------------

def mobile_usability(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Which nodes NNAPI / CoreML (onnxruntime's usability checker) and XNNPACK (its kernel list) would take.

    Analysed after basic optimization, as an ORT-format conversion would run it. ``fixed_shapes`` is the
    analysis with the dynamic batch treated as fixed (NNAPI and CoreML need static shapes).
    """
    import onnx
    from onnxruntime.tools.mobile_helpers import usability_checker as uc
    from onnxruntime.tools.onnx_model_utils import optimize_model

    with tempfile.TemporaryDirectory() as tmp:
        opt = Path(tmp) / "opt.onnx"
        optimize_model(Path(path), opt)
        model = onnx.shape_inference.infer_shapes(onnx.load(os.fspath(opt)))
    total = Counter(n.op_type for n in model.graph.node)
    report: dict[str, Any] = {"num_nodes": sum(total.values()), "op_types": dict(sorted(total.items()))}

    def summarize(info: Any) -> dict[str, Any]:
        taken = Counter(n.op_type for group in info.supported_groups for n in group)
        return {"supported_nodes": info.num_supported_nodes, "num_nodes": info.num_nodes,
                "partitions": info.num_partitions, "suitability": info.suitability().name,
                "ops_taken": dict(sorted(taken.items())), "unsupported_ops": sorted(info.unsupported_ops)}

    checks = {
        "NNAPI": lambda fixed: uc.check_nnapi_partitions(model, require_fixed_input_sizes=not fixed),
        "CoreML_MLProgram": lambda fixed: uc.check_coreml_partitions(model, not fixed,
                                                                     "coreml_supported_mlprogram_ops.md"),
        "CoreML_NeuralNetwork": lambda fixed: uc.check_coreml_partitions(model, not fixed,
                                                                         "coreml_supported_neuralnetwork_ops.md"),
    }
    for name, fn in checks.items():
        report[name] = {"as_exported": summarize(fn(False)), "fixed_shapes": summarize(fn(True))}
    x_taken = {op: n for op, n in total.items() if op in XNNPACK_OPS}
    report["XNNPACK"] = {"supported_nodes": sum(x_taken.values()), "num_nodes": sum(total.values()),
                         "ops_taken": dict(sorted(x_taken.items())),
                         "unsupported_ops": sorted(set(total) - XNNPACK_OPS),
                         "source": "kernel registrations of onnxruntime's XNNPACK EP (no checker exists)"}
    return report


# --- the CLI's one-stop export -----------------------------------------------------------------------------

def report_path(model_path: str | os.PathLike[str]) -> Path:
    p = Path(model_path)
    return p.with_name(p.stem + ".export.json")


def export_bundle(G: nn.Module, out: str | os.PathLike[str], *, parts: str = "full", precision: str = "fp32",
                  fmt: str = "onnx", int8: bool = False, opset: int = 18, dynamic_batch: bool = True,
                  noise: str = "const", mobile_check: bool = True, seeds: Sequence[int] = QUALITY_SEEDS,
                  web: str | os.PathLike[str] | None = None,
                  progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Export ``G`` to ``out`` plus the requested variants; write and return the export report.

    Variants: ``<stem>.int8.onnx`` (``int8``), ``<stem>.ort`` / ``<stem>.int8.ort`` (``fmt="ort"``); with
    ``precision="fp16"`` the main file is fp16. Every variant is scored against an fp32 export on ``seeds``,
    in onnxruntime and, when onnxruntime-web is found (``web``, else ``$GANZOO_ORT_WEB``), in its WASM backend.
    """
    from .web import find_ort_web

    say = progress or (lambda msg: None)
    web_dir = find_ort_web(web)
    if web is not None and web_dir is None:
        raise OnnxExportError(f"no onnxruntime-web under {web} (or no node on PATH): run `npm install "
                              "onnxruntime-web` there, or drop the option")
    if fmt not in ("onnx", "ort"):
        raise OnnxExportError(f"format must be onnx or ort, got {fmt!r}")
    out = Path(out)
    if out.suffix != ".onnx":
        raise OnnxExportError(f"--out must end in .onnx (ORT and int8 files are written beside it), got {out.name}")
    wants_variants = int8 or fmt == "ort" or precision != "fp32"
    if wants_variants and parts != "full":
        raise OnnxExportError("int8 / ORT / fp16 variants are scored on sampled images: use parts='full'")
    main = export_onnx(G, out, parts=parts, opset=opset, dynamic_batch=dynamic_batch, precision=precision,
                       noise=noise, progress=say)
    report: dict[str, Any] = {"model": main.to_dict(), "variants": []}
    if wants_variants:
        from .web import web_version

        report["edge_runtime"] = (f"onnxruntime-web {web_version(web_dir)} (wasm)" if web_dir else
                                  "not checked: onnxruntime-web not found (set GANZOO_ORT_WEB)")
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.stem}.work-") as work:
        ref = out
        if precision != "fp32" and wants_variants:
            ref = Path(work) / "fp32.onnx"
            say("exporting an fp32 reference for the quality scores")
            export_onnx(G, ref, parts=parts, opset=opset, dynamic_batch=dynamic_batch, noise=noise)
        fp32_size = ref.stat().st_size

        def add(kind: str, path: Path, prec: str, file_format: str) -> None:
            q = compare_quality(ref, path, seeds, web=web_dir) if wants_variants else {}
            report["variants"].append({"kind": kind, "path": str(path), "precision": prec, "format": file_format,
                                       "size_bytes": path.stat().st_size,
                                       "size_vs_fp32": round(path.stat().st_size / fp32_size, 4), **q})

        if wants_variants:
            add("main", out, precision, "onnx")
        if int8:
            say("quantizing to int8")
            q8, q_info = quantize_int8(ref, out.with_name(out.stem + ".int8.onnx"))
            add("int8", q8, "int8", "onnx")
            report["variants"][-1]["quantization"] = q_info
        if fmt == "ort":
            say("converting to ORT format")
            add("ort", convert_to_ort(out, out.with_suffix(".ort")), precision, "ort")
            if int8:
                add("int8-ort", convert_to_ort(q8, out.with_name(out.stem + ".int8.ort")), "int8", "ort")
    if mobile_check:
        say("checking mobile usability (NNAPI / CoreML / XNNPACK)")
        report["mobile_usability"] = mobile_usability(out)
    rp = report_path(out)
    write_text_atomic(rp, json.dumps(report, indent=2, default=str) + "\n")
    report["report_path"] = str(rp)
    return report

