"""The three ways to run a zoo generator: eager torch, a compiled AOTInductor package, onnxruntime.

Compiled packages and ONNX files are built once per model and machine and kept in the ganzoo cache
(``<cache>/artifacts/<weights sha>-<machine key>/``), written under a temporary name and renamed, so a
second process loads them instead of compiling again. All three take the same inputs and give the same
images within the fp32 export tolerance.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Callable, Protocol

import torch

from zoo.errors import ZooError

from .machine import fingerprint, fingerprint_key

BACKENDS = ("torch", "compiled", "onnx")


class BackendError(ZooError, ValueError):
    """A backend cannot run this model or this call."""


class Runner(Protocol):
    name: str

    def __call__(self, z: torch.Tensor, c: torch.Tensor | None, truncation_psi: float) -> torch.Tensor: ...


def _device(G: Any) -> torch.device:
    try:
        return next(G.parameters()).device
    except (StopIteration, AttributeError):
        return torch.device("cpu")


def weights_key(G: Any) -> str:
    from ..latent.latents import generator_sha256

    return generator_sha256(G)[:16]


def artifact_dir(G: Any) -> Path:
    from zoo.loading import cache_dir

    return cache_dir() / "artifacts" / f"{weights_key(G)}-{fingerprint_key(fingerprint(_device(G)))}"


def _variant(noise_mode: str, truncation_cutoff: int | None) -> str:
    return f"{noise_mode}-cut{'all' if truncation_cutoff is None else truncation_cutoff}"


def supports_graph(G: Any, noise_mode: str) -> str | None:
    """Why ``G`` cannot run as an exported graph with ``noise_mode`` (None when it can)."""
    if not isinstance(G, torch.nn.Module):
        return "it is not a torch generator"
    if noise_mode == "random":
        return "noise_mode='random' draws fresh noise each call; graphs bake const or none"
    return None


PRECISIONS = ("fp32", "bf16", "fp16")


def check_precision(G: Any, precision: str) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``G``'s device (None for fp32); refuses what cannot run well."""
    from .machine import cpu_flags

    if precision not in PRECISIONS:
        raise BackendError(f"unknown precision {precision!r}: use {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return None
    device = _device(G).type
    if not isinstance(G, torch.nn.Module):
        raise BackendError(f"precision={precision} needs a torch generator (an ONNX file has its own precision)")
    if precision == "fp16" and device != "cuda":
        raise BackendError("fp16 runs on CUDA; on a CPU use precision='bf16' (AVX512-BF16 / AMX CPUs)")
    if precision == "bf16" and device == "cpu" and not {"avx512_bf16", "amx_bf16", "bf16"} & set(cpu_flags()):
        raise BackendError("this CPU has no bfloat16 arithmetic (AVX512-BF16, AMX or ARM BF16): bf16 would be "
                           "emulated and slower than fp32; keep precision='fp32'")
    return torch.bfloat16 if precision == "bf16" else torch.float16


class TorchRunner:
    """Eager PyTorch: the reference path, and the only one for random noise or extra forward arguments.

    ``precision="bf16"`` (CPU with AVX512-BF16 / AMX) or ``"fp16"`` (CUDA) runs convolutions and matmuls under
    autocast; fp32 stays the default and the parity contract.
    """

    name = "torch"

    def __init__(self, G: Any, noise_mode: str = "const", truncation_cutoff: int | None = None,
                 precision: str = "fp32", **forward_kwargs: Any) -> None:
        self.G, self.noise_mode, self.cutoff, self.kwargs = G, noise_mode, truncation_cutoff, forward_kwargs
        self.precision, self.dtype = precision, check_precision(G, precision)

    def __call__(self, z: torch.Tensor, c: torch.Tensor | None, truncation_psi: float) -> torch.Tensor:
        if self.dtype is None:
            return self.G(z, c, truncation_psi=truncation_psi, truncation_cutoff=self.cutoff,
                          noise_mode=self.noise_mode, **self.kwargs)
        with torch.autocast(_device(self.G).type, dtype=self.dtype):
            img = self.G(z, c, truncation_psi=truncation_psi, truncation_cutoff=self.cutoff,
                         noise_mode=self.noise_mode, **self.kwargs)
        return img.to(torch.float32)


def _graph_inputs(G: Any, z: torch.Tensor, c: torch.Tensor | None, truncation_psi: float) -> list[torch.Tensor]:
    from ..export.exporter import _extra_defaults, _psi_dtype, input_names

    extras = _extra_defaults(G, "full")
    out = []
    for name in input_names(G, "full"):
        if name == "z":
            out.append(z)
        elif name == "c":
            out.append(c)
        elif name == "truncation_psi":
            out.append(torch.tensor(truncation_psi, dtype=_psi_dtype(G)))
        else:
            out.append(extras[name].to(z.device))
    return out


def _atomic_build(path: Path, build: Callable[[Path], None]) -> Path:
    from zoo.fileio import atomic_write

    with atomic_write(path, suffix=path.suffix) as tmp:
        build(tmp)
    return path


def compiled_path(G: Any, noise_mode: str = "const", truncation_cutoff: int | None = None) -> Path:
    return artifact_dir(G) / f"compiled-{_variant(noise_mode, truncation_cutoff)}.pt2"


def onnx_path(G: Any, noise_mode: str = "const", truncation_cutoff: int | None = None) -> Path:
    return artifact_dir(G) / f"onnx-{_variant(noise_mode, truncation_cutoff)}.onnx"


def build_compiled(G: Any, noise_mode: str = "const", truncation_cutoff: int | None = None, *,
                   progress: Callable[[str], None] | None = None) -> Path:
    """An AOTInductor package of ``G`` (dynamic batch), compiled once and cached; returns its path."""
    from ..export.exporter import _example_inputs, _ExportModule

    path = compiled_path(G, noise_mode, truncation_cutoff)
    if path.is_file():
        return path
    why = supports_graph(G, noise_mode)
    if why:
        raise BackendError(f"cannot compile this model: {why}")
    (progress or (lambda m: None))(f"compiling {type(G).__name__} with AOTInductor (once per model and machine)")
    module = _ExportModule(G.eval(), "full", noise_mode, truncation_cutoff).eval()
    example = list(_example_inputs(G, "full", 2).values())
    batch = torch.export.Dim("batch", min=1, max=4096)
    dynamic = [{0: batch} if name in ("z", "c") else None for name in module.names]

    def build(tmp: Path) -> None:
        from zoo.models.ops import cpu_winograd

        # direct convolutions in the package: Winograd, a win in eager on some CPUs, lost under inductor
        # (benchmarks/bench_generate.py --winograd)
        with torch.no_grad(), warnings.catch_warnings(), cpu_winograd(0):
            warnings.simplefilter("ignore")
            ep = torch.export.export(module, tuple(t.to(_device(G)) for t in example), dynamic_shapes=(tuple(dynamic),))
            torch._inductor.aoti_compile_and_package(ep, package_path=os.fspath(tmp))

    return _atomic_build(path, build)


def build_onnx(G: Any, noise_mode: str = "const", truncation_cutoff: int | None = None, *,
               progress: Callable[[str], None] | None = None) -> Path:
    """A verified ONNX export of ``G`` (dynamic batch), made once and cached; returns its path."""
    from ..export.exporter import export_onnx

    path = onnx_path(G, noise_mode, truncation_cutoff)
    if path.is_file():
        return path
    why = supports_graph(G, noise_mode)
    if why:
        raise BackendError(f"cannot export this model: {why}")
    (progress or (lambda m: None))("exporting to ONNX for onnxruntime (once per model and machine)")
    return _atomic_build(path, lambda tmp: export_onnx(G, tmp, noise=noise_mode, truncation_cutoff=truncation_cutoff))


class CompiledRunner:
    """An AOTInductor package loaded from the cache (no compilation on load)."""

    name = "compiled"

    def __init__(self, G: Any, path: Path) -> None:
        self.G, self.path = G, path
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.fn = torch._inductor.aoti_load_package(os.fspath(path))

    def __call__(self, z: torch.Tensor, c: torch.Tensor | None, truncation_psi: float) -> torch.Tensor:
        out = self.fn(*_graph_inputs(self.G, z, c, truncation_psi))
        return out[0] if isinstance(out, (list, tuple)) else out


class OnnxRunner:
    """onnxruntime on a cached ONNX export (CPU, or CUDA when onnxruntime-gpu is installed)."""

    name = "onnx"

    def __init__(self, G: Any, path: Path, noise_mode: str = "const", truncation_cutoff: int | None = None) -> None:
        from ..export.onnx_generator import OnnxGenerator

        self.G, self.path, self.noise_mode, self.cutoff = G, path, noise_mode, truncation_cutoff
        self.onnx = OnnxGenerator(path, provider="auto" if _device(G).type == "cuda" else "cpu", quiet=True)

    def __call__(self, z: torch.Tensor, c: torch.Tensor | None, truncation_psi: float) -> torch.Tensor:
        img = self.onnx(z.cpu(), None if c is None else c.cpu(), truncation_psi=truncation_psi,
                        truncation_cutoff=self.cutoff, noise_mode=self.noise_mode)
        return img.to(z.device)


def make_runner(G: Any, backend: str, noise_mode: str = "const", truncation_cutoff: int | None = None, *,
                build: bool = True, progress: Callable[[str], None] | None = None, precision: str = "fp32",
                **forward_kwargs: Any) -> Runner:
    """A runner for ``backend``, building its artifact unless ``build=False`` (then a missing one is an error)."""
    if backend == "torch":
        return TorchRunner(G, noise_mode, truncation_cutoff, precision, **forward_kwargs)
    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}: use auto, {', '.join(BACKENDS)}")
    if precision != "fp32":
        raise BackendError(f"precision={precision} runs on the torch backend; the {backend} backend is fp32")
    if forward_kwargs:
        raise BackendError(f"the {backend} backend bakes its inputs; {', '.join(forward_kwargs)} need --backend torch")
    why = supports_graph(G, noise_mode)
    if why:
        raise BackendError(f"the {backend} backend cannot run this call: {why}; use the torch backend")
    path = (compiled_path if backend == "compiled" else onnx_path)(G, noise_mode, truncation_cutoff)
    if not path.is_file():
        if not build:
            raise BackendError(f"no {backend} artifact cached at {path}")
        path = (build_compiled if backend == "compiled" else build_onnx)(G, noise_mode, truncation_cutoff,
                                                                         progress=progress)
    if backend == "compiled":
        return CompiledRunner(G, path)
    return OnnxRunner(G, path, noise_mode, truncation_cutoff)
