"""Run exported files in a second runtime: onnxruntime-web's WASM backend under Node.

Browsers and most edge deployments run onnxruntime-web, not the Python wheel; its kernels are
independent of the exporting machine's CPU, so running a file there checks what users of an exported
model will actually see. Needs ``node`` on ``PATH`` and a folder whose ``node_modules`` holds
``onnxruntime-web`` (``npm install onnxruntime-web``), given directly or by ``GANZOO_ORT_WEB``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from importlib.resources import files
from pathlib import Path
from typing import Mapping

import numpy as np

from zoo.errors import ZooError

ENV = "GANZOO_ORT_WEB"
_DTYPES = {"float32": np.float32, "float64": np.float64, "int64": np.int64, "int32": np.int32}


class OrtWebUnavailable(ZooError, RuntimeError):
    """Node or onnxruntime-web is not installed where ganzoo looks."""


def find_ort_web(folder: str | os.PathLike[str] | None = None) -> Path | None:
    """The folder holding ``node_modules/onnxruntime-web`` (``folder``, else ``$GANZOO_ORT_WEB``), or None."""
    spec = folder if folder is not None else os.environ.get(ENV)
    if not spec or shutil.which("node") is None:
        return None
    root = Path(spec).expanduser().resolve()
    return root if (root / "node_modules" / "onnxruntime-web" / "package.json").is_file() else None


def web_version(folder: str | os.PathLike[str] | None = None) -> str | None:
    root = find_ort_web(folder)
    if root is None:
        return None
    return str(json.loads((root / "node_modules" / "onnxruntime-web" / "package.json").read_text())["version"])


def run_web(model: str | os.PathLike[str], feed: Mapping[str, np.ndarray], *,
            folder: str | os.PathLike[str] | None = None, threads: int = 1, timeout: float = 900) -> dict[str, np.ndarray]:
    """Outputs of ``model`` (.onnx or .ort) for ``feed`` as computed by onnxruntime-web's WASM backend."""
    root = find_ort_web(folder)
    if root is None:
        raise OrtWebUnavailable("onnxruntime-web not found: install Node.js and run `npm install onnxruntime-web` in a "
                                f"folder, then pass it or set {ENV}=that folder")
    script = files("sdk.export") / "ort_web_run.cjs"
    with tempfile.TemporaryDirectory(prefix="ganzoo-ortweb-") as tmp:
        inputs = {}
        for name, value in feed.items():
            arr = np.ascontiguousarray(value)
            dtype = next((k for k, v in _DTYPES.items() if arr.dtype == v), None)
            if dtype is None:
                raise OrtWebUnavailable(f"input {name}: dtype {arr.dtype} is not supported by the web runner")
            f = Path(tmp) / f"in-{len(inputs)}.bin"
            f.write_bytes(arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes())
            inputs[name] = {"dtype": dtype, "dims": list(arr.shape), "file": str(f)}
        req, resp = Path(tmp) / "request.json", Path(tmp) / "response.json"
        req.write_text(json.dumps({"model": str(Path(model).resolve()), "threads": threads, "inputs": inputs}))
        p = subprocess.run(["node", str(script), str(root), str(req), str(resp)], capture_output=True, text=True,
                           timeout=timeout)
        if p.returncode != 0:
            last = (p.stderr.strip().splitlines() or ["no message"])[-1]
            raise OrtWebUnavailable(f"onnxruntime-web could not run {Path(model).name}: {last}")
        out = {}
        for name, spec in json.loads(resp.read_text())["outputs"].items():
            data = np.frombuffer(Path(spec["file"]).read_bytes(), dtype=np.dtype(_DTYPES[spec["dtype"]]).newbyteorder("<"))
            out[name] = data.reshape(spec["dims"]).astype(_DTYPES[spec["dtype"]])
        return out
