"""ONNX export of zoo generators, verified against PyTorch before the file appears.

``export_onnx`` traces a generator with the ``torch.export``-based exporter (``torch.onnx.export(dynamo=True)``;
the legacy TorchScript exporter cannot give the resampling convolutions a static kernel once the batch is
symbolic), checks the model with ``onnx.checker``, runs onnxruntime against torch on fresh random inputs at
batch 1, 2 and 8, and only then renames the temporary file to its final name. A result outside the stated
tolerance is refused with :class:`OnnxExportError` and nothing is left behind.

Graph interface (names are part of the contract):

- ``parts="full"``: inputs ``z [B, z_dim]``, ``c [B, c_dim]`` (conditional models only), ``truncation_psi``
  (scalar of the family's ``psi_dtype``: float32, float64 for BigGAN, whose statistics-row choice needs
  upstream's float64 arithmetic; absent for families with no truncation, ProGAN); output
  ``img [B, C, H, W]`` in [-1, 1]. The metadata keys ``truncation_psi`` and ``truncation_psi_range`` say which.
- ``parts="mapping"`` (style-based only): same inputs; output ``ws [B, num_ws, w_dim]``.
- ``parts="synthesis"`` (style-based only): input ``ws``; output ``img``.

Family hooks (all optional, looked up on the generator) keep the exporter generic:

- ``onnx_extra_inputs(parts) -> dict[str, Tensor]``: extra graph inputs and their default values, without a
  batch dimension (e.g. StyleGAN3's input transform ``[3, 3]``). They are passed as keyword arguments to
  ``synthesis`` (style-based) or ``forward`` and their defaults are stored in the file's metadata so
  :class:`sdk.OnnxGenerator` can feed them. A family that wants such a value baked simply does not list it:
  the exporter then traces whatever the module holds.
- ``onnx_forward(parts, inputs, noise_mode) -> Tensor``: replaces the default graph body below when a family
  needs something else; ``inputs`` maps the graph input names to tensors. A hook with a ``truncation_cutoff``
  keyword also receives the requested cutoff.

Default body: style-based ``full`` is ``synthesis(lerp(w_avg, mapping(z, c), psi))`` with the truncation
(and an optional baked ``truncation_cutoff``) done on tensors so ``truncation_psi`` stays an input; other
generators are called as ``G(z, c, truncation_psi=<tensor>, noise_mode=...)``.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import logging
import math
import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from zoo.errors import ZooError
from zoo.fileio import atomic_write, chmod_like_new_file
from zoo.models.ops import cpu_winograd

#: Max-abs tolerance of onnxruntime vs torch (fp32 weights, images in [-1, 1]). Measured errors of the
#: test generators are ~1e-5; reordered float sums in a 1024 px generator stay well below 1e-3.
FP32_TOLERANCE = 1e-3
#: fp16 weights and activations: ~3 significant digits through 10-20 layers (measured 3e-3 .. 2e-2).
FP16_TOLERANCE = 1e-1
VERIFY_BATCHES = (1, 2, 8)
PARTS = ("full", "mapping", "synthesis")
PRECISIONS = ("fp32", "fp16")
METADATA_PREFIX = "ganzoo."


class OnnxExportError(ZooError, ValueError):
    """Export refused: unsupported request, or onnxruntime disagrees with torch beyond the tolerance."""


@dataclass
class ExportReport:
    """What was written and how well it matches torch."""

    path: str
    parts: str
    precision: str
    opset: int
    dynamic_batch: bool
    inputs: dict[str, list[Any]]
    outputs: dict[str, list[Any]]
    max_abs_error: dict[str, float]
    tolerance: float
    size_bytes: int
    metadata: dict[str, str]
    exporter: str = "torch.onnx.export(dynamo=True)"
    verify_seed: int = 0
    extras: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- the traced module -------------------------------------------------------------------------------------

def _w_avg(G: nn.Module) -> torch.Tensor:
    w_avg = getattr(G, "w_avg", None)
    if w_avg is None:
        w_avg = getattr(getattr(G, "mapping", None), "w_avg", None)
    if w_avg is None:
        raise OnnxExportError(f"{type(G).__name__} has no w_avg: truncation cannot be exported")
    return w_avg


def _extra_defaults(G: nn.Module, parts: str) -> dict[str, torch.Tensor]:
    hook = getattr(G, "onnx_extra_inputs", None)
    extras = dict(hook(parts)) if callable(hook) else {}
    reserved = {"z", "c", "truncation_psi", "ws", "img"}
    for name in extras:
        if name in reserved:
            raise OnnxExportError(f"extra input name {name!r} clashes with a standard input")
    return {k: torch.as_tensor(v, dtype=torch.float32) for k, v in extras.items()}


def _psi_dtype(G: nn.Module) -> torch.dtype | None:
    """The ``truncation_psi`` input's dtype (float32 unless the family says otherwise); None: no input."""
    return getattr(G, "psi_dtype", torch.float32)


def input_names(G: nn.Module, parts: str) -> list[str]:
    """Graph input names for ``parts`` (standard inputs first, then family extras)."""
    if parts == "synthesis":
        names = ["ws"]
    else:
        names = ["z"] + (["c"] if G.c_dim > 0 else []) + (["truncation_psi"] if _psi_dtype(G) else [])
    return names + list(_extra_defaults(G, parts))


class _ExportModule(nn.Module):
    """Positional-tensor wrapper around a generator so the exporter sees plain named tensors."""

    def __init__(self, G: nn.Module, parts: str, noise_mode: str, truncation_cutoff: int | None) -> None:
        super().__init__()
        self.G, self.parts, self.noise_mode, self.cutoff = G, parts, noise_mode, truncation_cutoff
        self.names = input_names(G, parts)
        self.extra_names = list(_extra_defaults(G, parts))

    def _truncate(self, ws: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        w_avg = _w_avg(self.G).to(ws.dtype)
        if ws.ndim == 2:
            return w_avg + psi * (ws - w_avg)
        if self.cutoff is None:
            return w_avg + psi * (ws - w_avg)
        head = w_avg + psi * (ws[:, :self.cutoff] - w_avg)
        return torch.cat([head, ws[:, self.cutoff:]], dim=1)

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        inputs = dict(zip(self.names, args))
        hook = getattr(self.G, "onnx_forward", None)
        if callable(hook):
            if "truncation_cutoff" in inspect.signature(hook).parameters:
                return hook(self.parts, inputs, self.noise_mode, truncation_cutoff=self.cutoff)
            return hook(self.parts, inputs, self.noise_mode)
        extras = {k: inputs[k] for k in self.extra_names}
        G = self.G
        if not getattr(G, "style_based", False):
            return G(inputs["z"], inputs.get("c"), truncation_psi=inputs.get("truncation_psi", 1.0),
                     noise_mode=self.noise_mode, **extras)
        if self.parts == "synthesis":
            return G.synthesis(inputs["ws"], noise_mode=self.noise_mode, **extras)
        ws = G.mapping(inputs["z"], inputs.get("c"), truncation_psi=1.0)
        ws = self._truncate(ws, inputs["truncation_psi"])
        if self.parts == "mapping":
            return ws
        return G.synthesis(ws, noise_mode=self.noise_mode, **extras)


# --- inputs ------------------------------------------------------------------------------------------------

def _random_inputs(G: nn.Module, parts: str, batch: int, gen: torch.Generator, psi: float) -> dict[str, torch.Tensor]:
    """Fresh random inputs for one verification run (realistic ws from the mapping for ``synthesis``)."""
    z = torch.randn(batch, G.z_dim, generator=gen)
    c = None
    if G.c_dim > 0:
        idx = torch.randint(0, G.c_dim, (batch,), generator=gen)
        c = torch.nn.functional.one_hot(idx, G.c_dim).to(torch.float32)
    out: dict[str, torch.Tensor] = {}
    if parts == "synthesis":
        with torch.no_grad():
            out["ws"] = G.mapping(z, c, truncation_psi=psi).to(torch.float32)
    else:
        out["z"] = z
        if c is not None:
            out["c"] = c
        dtype = _psi_dtype(G)
        if dtype is not None:
            out["truncation_psi"] = torch.tensor(psi, dtype=dtype)
    for name, default in _extra_defaults(G, parts).items():
        out[name] = default.clone()
    return out


def _example_inputs(G: nn.Module, parts: str, batch: int) -> dict[str, torch.Tensor]:
    return _random_inputs(G, parts, batch, torch.Generator().manual_seed(0), 0.7)


# --- metadata ----------------------------------------------------------------------------------------------

def ganzoo_version() -> str:
    try:
        from importlib.metadata import version

        return version("ganzoo")
    except Exception:  # noqa: BLE001 - running from a source tree
        return "0+unknown"


_UNKNOWN_LICENSES = ("", "unknown", "other")


def _card_license(card: Path) -> tuple[str, str]:
    """Licence id (``license``, or ``license_name`` for "other") and ``## Licence`` text of a model card."""
    import re

    from huggingface_hub.repocard import metadata_load

    try:
        data = metadata_load(card) or {}
        text = card.read_text(encoding="utf-8")
    except Exception:  # noqa: BLE001 - a hand-edited card with broken YAML: no licence from it
        return "", ""
    license_id = str(data.get("license") or "")
    if license_id == "other":
        license_id = str(data.get("license_name") or "")
    m = re.search(r"^##\s+Licen[cs]e\s*$(.*?)(?=^#{1,2}\s|\Z)", text, re.M | re.S)
    return license_id, (m.group(1).strip() if m else "")


def model_license(G: nn.Module) -> tuple[str, str]:
    """The licence ``G`` carries and its plain-language note, ``("", "")`` when none is known.

    First stated wins: the folder's ``config.json`` (``license`` / ``license_note``), the registry entry and
    card data of its model name, then the ``README.md`` model card of the folder it was loaded from.
    """
    info = dict(getattr(G, "model_info", {}) or {})
    prov = info.get("provenance") or {}
    folder = Path(info["folder"]) if info.get("folder") else None
    config: dict[str, Any] = {}
    if folder is not None and (folder / "config.json").is_file():
        try:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            config = {}
    license_id = str(info.get("license") or config.get("license") or "")
    note = str(config.get("license_note") or "")
    name = info.get("model_name") or prov.get("model_name") or config.get("model_name")
    if name:
        from zoo.cards import card_data
        from zoo.registry import get_entry, is_registered

        entry = get_entry(name) if is_registered(name) else None
        extra = card_data(name) if entry is not None else {}
        if license_id in _UNKNOWN_LICENSES:
            license_id = entry.license if entry is not None else license_id
        if not note:
            note = str(extra.get("license_note") or "") or (entry.license_text if entry is not None else "")
    if folder is not None and (license_id in _UNKNOWN_LICENSES or not note) and (folder / "README.md").is_file():
        card_id, card_note = _card_license(folder / "README.md")
        license_id = card_id if license_id in _UNKNOWN_LICENSES else license_id
        note = note or card_note
    return ("" if license_id in _UNKNOWN_LICENSES else license_id), note


def build_metadata(G: nn.Module, parts: str, precision: str, noise_mode: str,
                   truncation_cutoff: int | None) -> dict[str, str]:
    info = dict(getattr(G, "model_info", {}) or {})
    prov = info.get("provenance") or {}
    source = info.get("model_name") or prov.get("model_name") or prov.get("source_file") or ""
    license_id, license_note = model_license(G)
    extras = {k: v.tolist() for k, v in _extra_defaults(G, parts).items()}
    meta = {
        "architecture": str(getattr(G, "architecture", type(G).__name__)),
        "resolution": str(int(G.img_resolution)),
        "img_resolution": str(int(G.img_resolution)),
        "img_channels": str(int(G.img_channels)),
        "z_dim": str(int(G.z_dim)),
        "c_dim": str(int(G.c_dim)),
        "w_dim": str(int(getattr(G, "w_dim", 0) or 0)),
        "num_ws": str(int(getattr(G, "num_ws", 0) or 0)),
        "class_names": json.dumps(getattr(G, "class_names", None)),
        "style_based": json.dumps(bool(getattr(G, "style_based", False))),
        "z_convention": str(getattr(G, "z_convention", "nvidia")),
        "source_model": str(source),
        "weights_sha256": str(info.get("weights_sha256", "")),
        "license": license_id,
        "license_note": license_note,
        "ganzoo_version": ganzoo_version(),
        "parts": parts,
        "precision": precision,
        "noise_mode": noise_mode,
        "truncation_cutoff": json.dumps(truncation_cutoff),
        # "float32" / "float64": the dtype of the truncation_psi input; "none": the family has no truncation
        "truncation_psi": str(_psi_dtype(G) or "none").replace("torch.", ""),
        "truncation_psi_range": json.dumps(getattr(G, "psi_range", None)),
        "extra_inputs": json.dumps(extras),
        "output_range": "[-1, 1]",
    }
    return {METADATA_PREFIX + k: v for k, v in meta.items()}


def read_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The ``ganzoo.*`` metadata of an exported file, without the prefix (works for .onnx and .ort)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    props = sess.get_modelmeta().custom_metadata_map
    return {k[len(METADATA_PREFIX):]: v for k, v in props.items() if k.startswith(METADATA_PREFIX)}


# --- onnxruntime helpers -----------------------------------------------------------------------------------

def _cpu_session(model: str | bytes) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def _run(sess: Any, inputs: dict[str, torch.Tensor]) -> np.ndarray:
    feed = {i.name: inputs[i.name].numpy() for i in sess.get_inputs()}
    return sess.run(None, feed)[0]


def verify(G: nn.Module, model: str | bytes, parts: str = "full", *, noise_mode: str = "const",
           truncation_cutoff: int | None = None, batches: Sequence[int] = VERIFY_BATCHES,
           seed: int | None = None) -> tuple[dict[str, float], int]:
    """Max-abs error of onnxruntime vs torch per batch size on fresh random inputs, and the seed used.

    Each batch uses a different ``truncation_psi`` (1.0, 0.7, 0.5, ...) so a graph that baked psi fails.
    """
    if seed is None:
        seed = int.from_bytes(os.urandom(4), "little")
    gen = torch.Generator().manual_seed(seed)
    sess = _cpu_session(model)
    module = _ExportModule(G, parts, noise_mode, truncation_cutoff).eval()
    psis = [1.0, 0.7, 0.5, 0.85]
    errors = {}
    for i, b in enumerate(batches):
        inputs = _random_inputs(G, parts, b, gen, psis[i % len(psis)])
        with torch.no_grad():
            ref = module(*[inputs[n] for n in module.names]).to(torch.float32).numpy()
        out = _run(sess, inputs)
        if out.shape != ref.shape:
            errors[str(b)] = math.inf
            continue
        errors[str(b)] = float(np.abs(out.astype(np.float32) - ref).max())
    return errors, seed


# --- export ------------------------------------------------------------------------------------------------

@contextlib.contextmanager
def _quiet_export() -> Any:
    """The exporter prints progress lines and warnings; keep them out of the user's terminal."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "onnxscript", "torch._dynamo")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, lv in zip(loggers, levels):
            lg.setLevel(lv)


def _check_request(G: nn.Module, parts: str, precision: str, noise: str, opset: int) -> None:
    if parts not in PARTS:
        raise OnnxExportError(f"parts must be one of {', '.join(PARTS)}, got {parts!r}")
    if precision not in PRECISIONS:
        raise OnnxExportError(f"precision must be fp32 or fp16, got {precision!r}")
    if parts != "full" and not getattr(G, "style_based", False):
        raise OnnxExportError(f"{type(G).__name__} has no mapping/synthesis split: export parts='full'")
    if noise not in ("const", "none"):
        raise OnnxExportError(f"noise must be 'const' or 'none' (random noise cannot be verified), got {noise!r}")
    if opset < 18:
        raise OnnxExportError(f"opset {opset} is too old for the exporter: use opset 18 or newer")


def to_fp16(model: Any) -> Any:
    """fp16 weights and activations with float32 graph inputs/outputs (onnxruntime's float16 converter)."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    from onnxruntime.transformers.onnx_model import OnnxModel

    converted = convert_float_to_float16(model, keep_io_types=True, force_fp16_initializers=True)
    wrapped = OnnxModel(converted)
    wrapped.topological_sort()  # the converter appends its input casts after their consumers
    return wrapped.model


def _shapes(values: Any) -> dict[str, list[Any]]:
    out = {}
    for v in values:
        dims = v.type.tensor_type.shape.dim
        out[v.name] = [d.dim_param if d.dim_param else d.dim_value for d in dims]
    return out


def export_onnx(G: nn.Module, path: str | os.PathLike[str], *, parts: str = "full", opset: int = 18,
                dynamic_batch: bool = True, precision: str = "fp32", noise: str = "const",
                truncation_cutoff: int | None = None, tolerance: float | None = None,
                verify_seed: int | None = None, verify_batches: Sequence[int] = VERIFY_BATCHES,
                progress: Callable[[str], None] | None = None) -> ExportReport:
    """Export ``G`` (or its mapping / synthesis part) to ONNX at ``path``, verified against torch.

    The file is written under a temporary name, checked (``onnx.checker``), compared with torch at batch
    1, 2 and 8 (``verify_batches``; batch 1 only when ``dynamic_batch=False``), and renamed only when every
    max-abs error is within ``tolerance`` (default :data:`FP32_TOLERANCE` / :data:`FP16_TOLERANCE`).
    """
    import onnx

    say = progress or (lambda msg: None)
    _check_request(G, parts, precision, noise, opset)
    tol = float(tolerance if tolerance is not None else (FP32_TOLERANCE if precision == "fp32" else FP16_TOLERANCE))
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    G = G.eval()
    try:
        device = next(G.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    if device.type != "cpu":
        raise OnnxExportError("export runs on CPU: load the model with device='cpu'")

    module = _ExportModule(G, parts, noise, truncation_cutoff).eval()
    batch = 2 if dynamic_batch else 1
    example = _example_inputs(G, parts, batch)
    args = tuple(example[n] for n in module.names)
    extra_names = set(module.extra_names)
    dynamic_shapes = None
    if dynamic_batch:
        b = torch.export.Dim("batch", min=1, max=65536)
        # forward(*args): the spec for the varargs is one tuple under the parameter's name
        dynamic_shapes = {"args": tuple({0: b} if (n not in extra_names and n != "truncation_psi") else None
                                        for n in module.names)}
    out_name = "ws" if parts == "mapping" else "img"
    say(f"tracing {type(G).__name__} ({parts}) with torch.onnx.export(dynamo=True), opset {opset}")
    try:
        # direct convolutions in the file: onnxruntime runs its own conv kernels, and the Winograd form would
        # only add transforms to the graph
        with _quiet_export(), torch.no_grad(), cpu_winograd(0):
            program = torch.onnx.export(module, args, input_names=module.names, output_names=[out_name],
                                        opset_version=opset, dynamo=True, dynamic_shapes=dynamic_shapes,
                                        external_data=False, verbose=False, optimize=True)
    except OnnxExportError:
        raise
    except Exception as e:  # noqa: BLE001 - exporter failures come in many types
        raise OnnxExportError(f"torch.onnx.export failed for {type(G).__name__}: {str(e).splitlines()[0]}") from e
    proto = program.model_proto
    if precision == "fp16":
        say("converting weights and activations to float16")
        proto = to_fp16(proto)
    meta = build_metadata(G, parts, precision, noise, truncation_cutoff)
    del proto.metadata_props[:]
    for k, v in meta.items():
        proto.metadata_props.add(key=k, value=v)
    proto.producer_name = "ganzoo"
    proto.producer_version = meta[METADATA_PREFIX + "ganzoo_version"]

    names_in_graph = [i.name for i in proto.graph.input]
    if names_in_graph != module.names:
        raise OnnxExportError(f"exported graph inputs {names_in_graph} differ from {module.names}: an input was "
                              "folded into a constant (e.g. truncation_psi used in Python control flow)")

    with atomic_write(out) as tmp:
        onnx.save_model(proto, tmp)
        onnx.checker.check_model(os.fspath(tmp), full_check=True)
        batches = tuple(verify_batches) if dynamic_batch else (1,)
        if not batches:
            raise OnnxExportError("verify_batches is empty: an export is always verified")
        say(f"verifying onnxruntime against torch at batch {', '.join(map(str, batches))}")
        errors, seed = verify(G, os.fspath(tmp), parts, noise_mode=noise, truncation_cutoff=truncation_cutoff,
                              batches=batches, seed=verify_seed)
        worst = max(errors.values())
        if not worst <= tol:
            raise OnnxExportError(f"onnxruntime output differs from torch by {worst:.3g} (max-abs, per batch "
                                  f"{errors}) > tolerance {tol:g}; nothing written")
    return ExportReport(path=str(out), parts=parts, precision=precision, opset=opset, dynamic_batch=dynamic_batch,
                        inputs=_shapes(proto.graph.input), outputs=_shapes(proto.graph.output),
                        max_abs_error=errors, tolerance=tol, size_bytes=out.stat().st_size,
                        metadata={k[len(METADATA_PREFIX):]: v for k, v in meta.items()}, verify_seed=seed)


_chmod_like_new_file = chmod_like_new_file  # older name, kept for importers
