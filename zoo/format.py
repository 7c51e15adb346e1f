"""The common format: a folder (= a Hub repo) with ``model.safetensors``, ``config.json`` and ``README.md``.

Reading never unpickles: tensors come from safetensors, the architecture from the registry by name.
Loading is strict: a missing or unexpected tensor, or a shape mismatch, is an error naming it.
Writing is atomic: everything goes to a temporary sibling folder that is renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import ModelFormatError
from .registry import get_architecture

FORMAT_VERSION = 1
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
CARD_NAME = "README.md"
REQUIRED_CONFIG_KEYS = ("architecture", "init_kwargs", "z_dim", "c_dim", "w_dim", "num_ws", "img_resolution",
                        "img_channels")


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def build_config(architecture: str, init_kwargs: dict[str, Any], *, class_names: list[str] | None = None,
                 provenance: dict[str, Any] | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """config.json content for ``architecture(**init_kwargs)``; dimensions are read off a meta-device build."""
    cls = get_architecture(architecture)
    with torch.device("meta"):
        model = cls(**init_kwargs)
    config: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "architecture": architecture,
        "init_kwargs": init_kwargs,
        "z_dim": int(model.z_dim),
        "c_dim": int(model.c_dim),
        "w_dim": int(model.w_dim),
        "num_ws": int(model.num_ws),
        "img_resolution": int(model.img_resolution),
        "img_channels": int(model.img_channels),
        "class_names": class_names,
        "provenance": provenance or {},
    }
    if extra:
        config.update(extra)
    return config


def expected_tensors(config: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """Names and shapes of every tensor the architecture in ``config`` holds."""
    cls = get_architecture(config["architecture"])
    with torch.device("meta"):
        model = cls.from_config(dict(config))
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def check_tensors(config: Mapping[str, Any], tensors: Mapping[str, torch.Tensor], where: str = "weights") -> None:
    """Raise :class:`ModelFormatError` naming any missing/unexpected tensor or wrong shape."""
    expected = expected_tensors(config)
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensor(s): {', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} tensor(s): {', '.join(unexpected[:6])}"
                         f"{' ...' if len(unexpected) > 6 else ''}")
        raise ModelFormatError(f"{where} do not match architecture {config['architecture']!r}: " + "; ".join(parts))
    for k, shape in expected.items():
        if tuple(tensors[k].shape) != shape:
            raise ModelFormatError(f"{where}: tensor {k} has shape {list(tensors[k].shape)}, "
                                   f"architecture {config['architecture']!r} expects {list(shape)}")


def read_config(folder: Path) -> dict[str, Any]:
    path = folder / CONFIG_NAME
    if not path.is_file():
        raise ModelFormatError(f"{folder} is not a ganzoo model folder: {CONFIG_NAME} is missing "
                               "(convert the checkpoint with `ganzoo convert SRC OUT_DIR`)")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelFormatError(f"{path} is not valid JSON ({e}); re-convert the model") from None
    if not isinstance(config, dict):
        raise ModelFormatError(f"{path} must hold a JSON object")
    missing = [k for k in REQUIRED_CONFIG_KEYS if k not in config]
    if missing:
        raise ModelFormatError(f"{path} lacks required field(s) {', '.join(missing)}; re-convert the model")
    if not isinstance(config["init_kwargs"], dict):
        raise ModelFormatError(f"{path}: init_kwargs must be an object")
    return config


def load_folder(folder: str | os.PathLike[str], device: str | torch.device = "cpu") -> torch.nn.Module:
    """Build the generator described by ``folder/config.json`` and load its weights strictly."""
    folder = Path(folder)
    config = read_config(folder)
    cls = get_architecture(config["architecture"])
    try:
        model = cls.from_config(config)
    except (TypeError, ValueError, KeyError, RuntimeError, ZeroDivisionError, OverflowError) as e:
        raise ModelFormatError(f"{folder / CONFIG_NAME}: cannot build {config['architecture']!r} "
                               f"from init_kwargs ({e})") from None
    for key in ("z_dim", "c_dim", "w_dim", "num_ws", "img_resolution", "img_channels"):
        if int(getattr(model, key)) != config[key]:
            raise ModelFormatError(f"{folder / CONFIG_NAME}: {key}={config[key]} disagrees with the architecture "
                                   f"({getattr(model, key)})")
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        raise ModelFormatError(f"{folder} has no {WEIGHTS_NAME}")
    try:
        tensors = load_file(weights)
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise ModelFormatError(f"{weights} is corrupt or truncated ({e}); re-convert or re-download it") from None
    check_tensors(config, tensors, where=str(weights))
    own = model.state_dict()
    for k, v in tensors.items():
        if not (v.is_floating_point() or v.dtype in (torch.int64, torch.int32, torch.uint8, torch.bool)):
            raise ModelFormatError(f"{weights}: tensor {k} has unsupported dtype {v.dtype}")
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise ModelFormatError(f"{weights}: tensor {k} contains NaN or infinity")
        tensors[k] = v.to(own[k].dtype)
    model.load_state_dict(tensors, strict=True)
    model.class_names = config.get("class_names")
    model.model_info = {k: config[k] for k in ("provenance", "model_name", "license") if k in config}
    model.model_info["weights_sha256"] = sha256_file(weights)
    model.model_info["folder"] = str(folder)
    return model.eval().requires_grad_(False).to(device)


def _apply_umask(folder: Path) -> None:
    """mkdtemp makes a private folder; give the result the permissions a normal mkdir would."""
    mask = os.umask(0)
    os.umask(mask)
    folder.chmod(0o777 & ~mask)
    for f in folder.iterdir():
        f.chmod(0o666 & ~mask)


def write_model_folder(out_dir: str | os.PathLike[str], config: dict[str, Any], tensors: Mapping[str, torch.Tensor],
                       card: str | None = None, *, dtype: torch.dtype | None = None, overwrite: bool = False) -> Path:
    """Write the common format atomically and return the folder path."""
    out = Path(out_dir)
    if out.exists() and not overwrite:
        if any(out.iterdir()):
            raise FileExistsError(f"{out} already exists and is not empty; pass overwrite=True (--force) or pick "
                                  "another folder")
    check_tensors(config, tensors, where="converted tensors")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        data = {}
        for k, v in tensors.items():
            v = v.detach().to("cpu")
            if dtype is not None and v.is_floating_point():
                v = v.to(dtype)
            data[k] = v.contiguous()
        save_file(data, tmp / WEIGHTS_NAME, metadata={"format": "pt", "ganzoo_format_version": str(FORMAT_VERSION)})
        (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=False) + "\n", encoding="utf-8")
        if card is not None:
            (tmp / CARD_NAME).write_text(card, encoding="utf-8")
        _apply_umask(tmp)
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
