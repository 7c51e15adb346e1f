"""What a speed measurement depends on: the CPU model and ISA, thread count, library versions, device, allocator."""

from __future__ import annotations

import hashlib
import json
import platform
from functools import lru_cache
from typing import Any

import torch

#: ISA features that change which kernels oneDNN / MLAS pick (x86 ``flags`` and ARM ``Features`` names).
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "avx512_fp16",
             "avx_vnni", "amx_tile", "amx_bf16", "amx_int8", "asimd", "asimddp", "sve", "sve2", "bf16", "i8mm")


@lru_cache(maxsize=1)
def _cpuinfo() -> dict[str, str]:
    info: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if ":" in line:
                    k, v = line.split(":", 1)
                    info.setdefault(k.strip(), v.strip())
    except OSError:
        pass
    return info


def cpu_model() -> str:
    """The CPU's marketing name (``model name``), else the best description the platform gives."""
    info = _cpuinfo()
    for key in ("model name", "Model", "Hardware", "cpu model"):
        if info.get(key):
            return info[key]
    return platform.processor() or platform.machine() or "unknown"


def cpu_flags() -> list[str]:
    """The :data:`ISA_FLAGS` this CPU has."""
    info = _cpuinfo()
    have = set((info.get("flags") or info.get("Features") or "").split())
    return [f for f in ISA_FLAGS if f in have]


def fingerprint(device: torch.device | str = "cpu") -> dict[str, Any]:
    """Everything a measured speed depends on besides the model itself."""
    device = torch.device(device)
    try:
        import onnxruntime as ort

        ort_version: str | None = ort.__version__
    except ImportError:
        ort_version = None
    fp: dict[str, Any] = {"cpu": cpu_model(), "machine": platform.machine(), "isa": cpu_flags(),
                          "threads": torch.get_num_threads(), "torch": torch.__version__, "onnxruntime": ort_version,
                          "device": device.type}
    if device.type == "cpu":
        from .allocator import allocator_mode

        fp["allocator"] = allocator_mode()
        from zoo.models import native

        fp["native"] = native.status()  # the compiled kernels change what the probes measure
    if device.type == "cuda":
        idx = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(idx)
        fp["gpu"] = f"{props.name} (sm_{props.major}{props.minor}, {props.total_memory >> 20} MiB)"
    return fp


def fingerprint_key(fp: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:16]
