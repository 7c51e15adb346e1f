"""Run exported generators with onnxruntime behind the same sampling surface as a torch generator.

Provider choice is an ordered list with fallback. onnxruntime itself only logs a warning when a requested
provider is missing, so :class:`OnnxGenerator` resolves the list against ``get_available_providers()``
first and then reads back the provider the session really uses, and says so on stderr.

The CPU-only ``onnxruntime`` wheel from PyPI has just ``CPUExecutionProvider`` (plus Azure); CUDA needs
``onnxruntime-gpu``, NNAPI / CoreML / XNNPACK need the mobile or platform builds. The options below are the
documented ones for those providers; on a machine without them the request falls back to CPU with a notice.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from zoo.base import GanGenerator
from zoo.errors import ZooError

CPU = "CPUExecutionProvider"

#: Provider options used when a provider is requested (keys as the onnxruntime docs give them).
PROVIDER_OPTIONS: dict[str, dict[str, str]] = {
    # A dynamic batch re-plans convolutions per shape: heuristic search avoids an exhaustive benchmark each time.
    "CUDAExecutionProvider": {"device_id": "0", "cudnn_conv_algo_search": "HEURISTIC",
                              "arena_extend_strategy": "kSameAsRequested"},
    # CoreML: ML Program format (needed for fp16 and newer ops), all compute units, dynamic shapes allowed.
    "CoreMLExecutionProvider": {"ModelFormat": "MLProgram", "MLComputeUnits": "ALL",
                                "RequireStaticInputShapes": "0"},
    # NNAPI: leave ops NNAPI would run on its slow reference CPU path to onnxruntime's own CPU kernels.
    "NnapiExecutionProvider": {"NNAPI_FLAG_CPU_DISABLED": "1"},
    "XnnpackExecutionProvider": {"intra_op_num_threads": str(max(1, min(4, os.cpu_count() or 1)))},
    CPU: {},
}

#: ``provider=`` names -> ordered provider lists (CPU always last, as the fallback).
PROVIDER_CHOICES: dict[str, list[str]] = {
    "auto": ["CUDAExecutionProvider", "CoreMLExecutionProvider", CPU],
    "cpu": [CPU],
    "cuda": ["CUDAExecutionProvider", CPU],
    "mobile": ["NnapiExecutionProvider", "CoreMLExecutionProvider", "XnnpackExecutionProvider", CPU],
}


class OnnxRuntimeError(ZooError, ValueError):
    """A bad request to an exported generator (wrong file, input, or option)."""


def resolve_providers(provider: str | Sequence[str]) -> tuple[list[tuple[str, dict[str, str]]], list[str]]:
    """(providers with options that this onnxruntime build has, requested ones it lacks)."""
    import onnxruntime as ort

    if isinstance(provider, str):
        if provider not in PROVIDER_CHOICES:
            raise OnnxRuntimeError(f"unknown provider {provider!r}: use one of {', '.join(PROVIDER_CHOICES)}")
        wanted = PROVIDER_CHOICES[provider]
    else:
        wanted = list(provider) + ([CPU] if CPU not in provider else [])
    available = set(ort.get_available_providers())
    chosen = [(p, dict(PROVIDER_OPTIONS.get(p, {}))) for p in wanted if p in available]
    missing = [p for p in wanted if p not in available]
    if not chosen:
        raise OnnxRuntimeError(f"none of {wanted} is available in this onnxruntime build ({sorted(available)})")
    return chosen, missing


# onnxruntime's input type strings -> numpy dtypes (graph inputs other than these are fed as float32)
_ORT_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
               "tensor(int64)": np.int64}


def input_dtypes(session: Any) -> dict[str, type]:
    """numpy dtype of each graph input of an onnxruntime session (float32 where the type is not listed)."""
    return {i.name: _ORT_DTYPES.get(i.type, np.float32) for i in session.get_inputs()}


class OnnxGenerator:
    """An exported ``full`` generator as a callable: ``G(z, c, truncation_psi=...) -> torch.Tensor``.

    Has ``z_dim``, ``c_dim``, ``img_resolution``, ``img_channels``, ``make_c`` and ``class_names`` like a
    zoo generator, so ``sdk.sample`` / ``sdk.generate`` work on it unchanged. ``provider_in_use`` names the
    execution provider that actually runs.
    """

    def __init__(self, path: str | os.PathLike[str], provider: str | Sequence[str] = "auto", *,
                 threads: int | None = None, quiet: bool = False) -> None:
        import onnxruntime as ort

        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"no such ONNX file: {p}")
        chosen, missing = resolve_providers(provider)
        so = ort.SessionOptions()
        so.log_severity_level = 3
        if threads:
            so.intra_op_num_threads = int(threads)
        try:
            self.session = ort.InferenceSession(os.fspath(p), so, providers=[n for n, _ in chosen],
                                                provider_options=[o for _, o in chosen])
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise OnnxRuntimeError(f"{p} is not a loadable ONNX/ORT model: {str(e).splitlines()[0]}") from None
        self.path = p
        self.providers_requested = [n for n, _ in chosen] + missing
        self.providers_missing = missing
        self.provider_in_use = self.session.get_providers()[0]
        meta = {k[len("ganzoo."):]: v for k, v in self.session.get_modelmeta().custom_metadata_map.items()
                if k.startswith("ganzoo.")}
        if not meta:
            raise OnnxRuntimeError(f"{p} has no ganzoo metadata: export it with sdk.export_onnx / ganzoo export")
        self.metadata = meta
        self.parts = meta.get("parts", "full")
        self.architecture = meta.get("architecture", "")
        self.z_dim = int(meta["z_dim"])
        self.c_dim = int(meta["c_dim"])
        self.w_dim = int(meta.get("w_dim", 0))
        self.num_ws = int(meta.get("num_ws", 0))
        self.img_resolution = int(meta["img_resolution"])
        self.img_channels = int(meta["img_channels"])
        self.class_names = json.loads(meta.get("class_names", "null"))
        self.z_convention = meta.get("z_convention", "nvidia")
        self.style_based = json.loads(meta.get("style_based", "false"))
        self.noise_mode = meta.get("noise_mode", "const")
        self.truncation_cutoff = json.loads(meta.get("truncation_cutoff", "null"))
        self.extra_defaults = {k: np.asarray(v, dtype=np.float32)
                               for k, v in json.loads(meta.get("extra_inputs", "{}")).items()}
        self.model_info = {"model_name": meta.get("source_model", ""), "weights_sha256": meta.get("weights_sha256", ""),
                           "onnx_path": str(p)}
        self.input_names = [i.name for i in self.session.get_inputs()]
        self._input_dtypes = input_dtypes(self.session)
        self.psi_range = json.loads(meta.get("truncation_psi_range", "null"))
        if not quiet:
            note = f"ganzoo: onnxruntime runs {p.name} on {self.provider_in_use}"
            if missing:
                note += f" ({', '.join(missing)} not in this onnxruntime build)"
            print(note, file=sys.stderr)

    def __repr__(self) -> str:
        return f"OnnxGenerator({str(self.path)!r}, provider={self.provider_in_use})"

    make_c = GanGenerator.make_c
    check_inputs = GanGenerator.check_inputs

    def eval(self) -> "OnnxGenerator":
        return self

    def run(self, **inputs: Any) -> np.ndarray:
        """Run the graph on named numpy/torch inputs (extras default to the exported values)."""
        feed = {}
        for name in self.input_names:
            if name in inputs and inputs[name] is not None:
                v = inputs[name]
                v = v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
                feed[name] = v.astype(self._input_dtypes[name])
            elif name in self.extra_defaults:
                feed[name] = self.extra_defaults[name]
            else:
                raise OnnxRuntimeError(f"missing input {name!r} for {self.path.name}")
        return self.session.run(None, feed)[0]

    def __call__(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                 truncation_cutoff: int | None = None, noise_mode: str = "const", **extras: Any) -> torch.Tensor:
        if self.parts != "full":
            raise OnnxRuntimeError(f"{self.path.name} holds the {self.parts} part only: use .run(**inputs), "
                                   "or export parts='full' to sample from it")
        if truncation_cutoff != self.truncation_cutoff:
            raise OnnxRuntimeError(f"this file was exported with truncation_cutoff={self.truncation_cutoff}; "
                                   "re-export with the cutoff you need")
        if noise_mode != self.noise_mode:
            raise OnnxRuntimeError(f"this file was exported with noise_mode={self.noise_mode!r}; re-export with "
                                   f"noise={noise_mode!r} (random noise cannot be exported)")
        if z.ndim == 4:
            z = z.flatten(1)
        self.check_inputs(z, c)
        unknown = set(extras) - set(self.extra_defaults)
        if unknown:
            raise OnnxRuntimeError(f"unknown extra input(s) {sorted(unknown)}; this file takes "
                                   f"{sorted(self.extra_defaults) or 'none'}")
        psi = float(truncation_psi)
        if "truncation_psi" not in self.input_names:
            if psi != 1:
                raise OnnxRuntimeError(f"{self.architecture or 'this model'} has no truncation: use truncation_psi=1")
        elif self.psi_range is not None and not self.psi_range[0] < psi <= self.psi_range[1]:
            raise OnnxRuntimeError(f"truncation_psi must be in ({self.psi_range[0]:g}, {self.psi_range[1]:g}] "
                                   f"for {self.architecture}, got {truncation_psi}")
        # psi goes in as a Python float so a float64 input (BigGAN) gets the exact value
        out = self.run(z=z, c=c, truncation_psi=np.asarray(psi, dtype=np.float64), **extras)
        return torch.from_numpy(out.astype(np.float32))
