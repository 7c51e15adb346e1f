"""FastGAN-pytorch training checkpoints -> common format (architecture ``fastgan``).

Format facts (odegeasslbc/FastGAN-pytorch ``train.py``, every release since 2021-01): at each save step
``train.py`` writes two ``torch.save`` files,

- ``all_<iter>.pth`` = ``{'g', 'd', 'g_ema', 'opt_g', 'opt_d'}``: ``g`` is the training copy's state dict,
  ``g_ema`` a *list* of tensors, the EMA of ``netG.parameters()`` in parameter order (no buffers);
- ``<iter>.pth`` = ``{'g', 'd'}``: the generator with the EMA parameters loaded (and the training copy's
  buffers), which is what ``eval.py`` reads.

``all_*.pth`` is converted the way its EMA is meant to be used: the ``g_ema`` list is laid over ``g``'s
parameters (state-dict order without the buffers), buffers stay, so both files give the same model.
Since 2021-07 ``train.py`` wraps the nets in ``nn.DataParallel`` (keys start with ``module.``); the first
release did not. A bare generator state dict is accepted too (then it is used as stored).

No config is stored: ``nz`` and ``ngf`` come from ``init.init.0.weight_orig`` (``[nz, 32 * ngf, 4, 4]``),
``im_size`` from which of ``feat_512`` / ``feat_1024`` exist, ``nc`` from ``to_big``. Every convolution is
``torch.nn.utils.spectral_norm`` (``weight_orig`` + ``weight_u`` / ``weight_v``); the effective eval-mode
weight ``weight_orig / (u . W v)`` is stored (``W`` = ``weight_orig`` flattened with dim 1 first for the
transposed convolution). A checkpoint whose layers differ from the released ``Generator`` (the authors
ship per-dataset ``models.py`` variants) is refused with the tensors that differ.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

import torch

from zoo.errors import ConversionError

from .base import Converted, SourceFormat, register_format, strict_map
from .safe_pickle import torch_safe_load
from .statedict import pickle_strings

BUFFER_SUFFIXES = (".weight_u", ".weight_v", ".running_mean", ".running_var", ".num_batches_tracked")
TRAINING_KEYS = ("d", "opt_g", "opt_d")
INIT_KEY = "init.init.0.weight_orig"
NOISE_NOTE = ("FastGAN stores no noise: upstream draws fresh noise at every call. Sampling defaults to "
              "noise_mode='none' (zero noise, one image per seed); noise_mode='random' draws torch.randn in "
              "upstream's order, so torch.manual_seed(s) right before the call reproduces upstream. Images are the "
              "raw to_big output (tanh only at 1024 px).")


def strip_module(sd: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Drop DataParallel's ``module.`` prefix (all keys or none, as ``train.py`` writes them)."""
    keys = list(sd)
    prefixed = [k for k in keys if k.startswith("module.")]
    if prefixed and len(prefixed) != len(keys):
        raise ConversionError(f"{where}: only some keys carry the DataParallel 'module.' prefix "
                              f"(e.g. {prefixed[0]} but {next(k for k in keys if not k.startswith('module.'))})")
    return {k[len("module."):] if prefixed else k: v for k, v in sd.items()}


def parameter_names(sd: Mapping[str, Any]) -> list[str]:
    """Generator.named_parameters() order: the state-dict order without the buffers."""
    return [k for k in sd if not k.endswith(BUFFER_SUFFIXES)]


def apply_ema(sd: dict[str, torch.Tensor], ema: list[Any], where: str) -> dict[str, torch.Tensor]:
    """Lay ``train.py``'s ``g_ema`` list (parameters in order) over the training copy ``sd``."""
    names = parameter_names(sd)
    if not isinstance(ema, (list, tuple)) or not all(isinstance(t, torch.Tensor) for t in ema):
        raise ConversionError(f"{where}: 'g_ema' must be train.py's list of parameter tensors")
    if len(ema) != len(names):
        raise ConversionError(f"{where}: 'g_ema' holds {len(ema)} tensors but the generator has {len(names)} "
                              "parameters; the checkpoint is from another models.py")
    out = dict(sd)
    for name, t in zip(names, ema):
        if tuple(t.shape) != tuple(sd[name].shape):
            raise ConversionError(f"{where}: g_ema entry for {name} has shape {list(t.shape)}, "
                                  f"the generator's is {list(sd[name].shape)}")
        out[name] = t
    return out


def read_generator(obj: Any, where: str) -> tuple[dict[str, torch.Tensor], str]:
    """``(generator state dict with the EMA applied, layout description)`` from a loaded checkpoint."""
    if not isinstance(obj, dict):
        raise ConversionError(f"{where}: expected a dict from FastGAN's train.py, got {type(obj).__name__}")
    if "g" in obj:
        unknown = sorted(set(obj) - {"g", "g_ema", *TRAINING_KEYS})
        if unknown:
            raise ConversionError(f"{where}: unexpected top-level key(s) {unknown} for a FastGAN checkpoint "
                                  "(train.py writes g, d, g_ema, opt_g, opt_d)")
        g = obj["g"]
        if not isinstance(g, dict) or not all(isinstance(v, torch.Tensor) for v in g.values()):
            raise ConversionError(f"{where}: 'g' is not a generator state dict")
        prefixed = any(k.startswith("module.") for k in g)
        sd = strip_module(g, where)
        if "g_ema" in obj:
            sd = apply_ema(sd, obj["g_ema"], where)
            layout = "all_<iter>.pth (training copy + g_ema list; EMA applied)"
        else:
            layout = "<iter>.pth (EMA parameters already loaded)"
        return sd, layout + (", DataParallel 'module.' keys" if prefixed else "")
    if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return strip_module(obj, where), "bare generator state dict (used as stored; no EMA information)"
    raise ConversionError(f"{where}: no generator 'g' in the checkpoint (keys: {', '.join(map(str, obj))})")


def fold_spectral_norm(sd: Mapping[str, torch.Tensor], where: str,
                       transposed: tuple[str, ...] = ("init.init.0",)) -> dict[str, torch.Tensor]:
    """Replace every ``weight_orig`` / ``weight_u`` / ``weight_v`` triple by the eval-mode ``weight``.

    ``transposed`` names the layers normalised along dim 1 (``ConvTranspose2d``); the others use dim 0.
    """
    out: dict[str, torch.Tensor] = {}
    prefixes = [k[: -len(".weight_orig")] for k in sd if k.endswith(".weight_orig")]
    for p in prefixes:
        missing = [s for s in ("weight_u", "weight_v") if f"{p}.{s}" not in sd]
        if missing:
            raise ConversionError(f"{where}: spectral-norm layer {p} lacks {', '.join(missing)}")
    consumed = set()
    for p in prefixes:
        w, u, v = (sd[f"{p}.{s}"].to(torch.float32) for s in ("weight_orig", "weight_u", "weight_v"))
        mat = w.transpose(0, 1) if p in transposed else w
        mat = mat.reshape(mat.shape[0], -1)
        if u.shape != (mat.shape[0],) or v.shape != (mat.shape[1],):
            raise ConversionError(f"{where}: {p}: weight_u/weight_v shapes {list(u.shape)}/{list(v.shape)} do not fit "
                                  f"weight_orig {list(w.shape)}")
        sigma = torch.dot(u, torch.mv(mat, v))  # torch.nn.utils.spectral_norm in eval mode (no power iteration)
        out[f"{p}.weight"] = w / sigma
        consumed.update(f"{p}.{s}" for s in ("weight_orig", "weight_u", "weight_v"))
    for k, t in sd.items():
        if k not in consumed:
            if k in out:
                raise ConversionError(f"{where}: {k} is stored both plain and spectral-normalised")
            out[k] = t
    return out


def infer_kwargs(sd: Mapping[str, torch.Tensor], where: str) -> dict[str, Any]:
    if INIT_KEY not in sd:
        raise ConversionError(f"{where}: no {INIT_KEY}: not a FastGAN generator")
    w = sd[INIT_KEY]
    if w.ndim != 4 or tuple(w.shape[2:]) != (4, 4) or w.shape[1] % 32:
        raise ConversionError(f"{where}: {INIT_KEY} has shape {list(w.shape)}; FastGAN's is [nz, 32*ngf, 4, 4]")
    im_size = 1024 if any(k.startswith("feat_1024.") for k in sd) else \
        512 if any(k.startswith("feat_512.") for k in sd) else 256
    big = sd.get("to_big.weight_orig")
    if big is None:
        raise ConversionError(f"{where}: no to_big.weight_orig: not a FastGAN generator")
    return dict(ngf=int(w.shape[1]) // 32, nz=int(w.shape[0]), nc=int(big.shape[0]), im_size=im_size)


def expected_shapes(kwargs: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    from zoo.models.fastgan import FastGANGenerator

    with torch.device("meta"):
        G = FastGANGenerator(**kwargs)
    return {k: tuple(v.shape) for k, v in G.state_dict().items()}


def check_layout(tensors: Mapping[str, torch.Tensor], expected: Mapping[str, tuple[int, ...]], where: str,
                 what: str) -> None:
    """Refuse a variant, naming the tensors that are missing, extra or shaped differently."""
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    wrong = [f"{k} {list(tensors[k].shape)} (expected {list(expected[k])})" for k in expected
             if k in tensors and tuple(tensors[k].shape) != expected[k]]
    if missing or extra or wrong:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
        if extra:
            parts.append(f"unexpected {', '.join(extra[:5])}{' ...' if len(extra) > 5 else ''}")
        if wrong:
            parts.append(f"shapes differ: {'; '.join(wrong[:4])}{' ...' if len(wrong) > 4 else ''}")
        raise ConversionError(f"{where}: not the released {what} layout ({' | '.join(parts)}); a modified "
                              "models.py variant is not supported")


def convert_state_dict(sd: dict[str, torch.Tensor], where: str = "checkpoint") -> Converted:
    """Pure conversion of a FastGAN generator state dict (EMA already applied, no ``module.`` prefix)."""
    kwargs = infer_kwargs(sd, where)
    folded = fold_spectral_norm(sd, where)
    expected = expected_shapes(kwargs)
    check_layout(folded, expected, where, f"FastGAN {kwargs['im_size']}px Generator")
    tensors = strict_map(folded, [(re.escape(k), k) for k in expected], where=where)
    return Converted("fastgan", kwargs, tensors, extra_config={"card_notes": NOISE_NOTE})


def convert_file(path: Path) -> Converted:
    sd, layout = read_generator(torch_safe_load(path), path.name)
    converted = convert_state_dict(sd, where=path.name)
    converted.extra_config["upstream_layout"] = layout
    converted.notes.append(f"read {layout}")
    return converted


def _sniff(path: Path, head: bytes) -> bool:
    names = set(pickle_strings(path, head))
    return any(n.endswith(INIT_KEY) for n in names) and any(n.endswith("to_big.weight_orig") for n in names) \
        and not any(n.startswith(("synthesis.", "module.synthesis.")) for n in names)


register_format(SourceFormat(
    name="fastgan",
    description="FastGAN-pytorch train.py checkpoint (all_<iter>.pth with g_ema, or <iter>.pth) .pth",
    sniff=_sniff,
    convert=convert_file,
    priority=40,
))
