"""Deployment: ONNX export, mobile variants (ORT format, int8, fp16) and the onnxruntime-backed generator."""

from __future__ import annotations

from .exporter import FP32_TOLERANCE, FP16_TOLERANCE, ExportReport, OnnxExportError, export_onnx, read_metadata
from .onnx_generator import OnnxGenerator

__all__ = ["export_onnx", "ExportReport", "OnnxExportError", "OnnxGenerator", "read_metadata", "FP32_TOLERANCE",
           "FP16_TOLERANCE"]
