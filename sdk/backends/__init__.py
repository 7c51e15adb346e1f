"""Backends for sampling: eager torch, cached compiled (AOTInductor) packages and cached ONNX files, and the
per-machine choice between them (:func:`resolve`, :func:`tune`)."""

from __future__ import annotations

from .allocator import configure_allocator, release_memory
from .machine import cpu_flags, cpu_model, fingerprint
from .runners import BACKENDS, PRECISIONS, BackendError, build_compiled, build_onnx, make_runner
from .tune import BackendChoice, BatchPlan, cached_choice, kernel_layouts, precision_quality, resolve, tune

__all__ = ["BACKENDS", "PRECISIONS", "BackendChoice", "BackendError", "BatchPlan", "build_compiled", "build_onnx",
           "cached_choice", "configure_allocator", "cpu_flags", "cpu_model", "fingerprint", "kernel_layouts",
           "make_runner", "precision_quality", "release_memory", "resolve", "tune"]
