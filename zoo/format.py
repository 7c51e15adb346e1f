"""The common format: a folder (= a Hub repo) with ``model.safetensors``, ``config.json`` and ``README.md``.

Reading never unpickles: tensors come from safetensors, the architecture from the registry by name.
Loading is strict: a missing or unexpected tensor, or a shape mismatch, is an error naming it.
Writing is atomic: everything goes to a temporary sibling folder that is renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import ModelFormatError, ZooError
from .fileio import chmod_like_new_dir
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


def check_tensors(config: Mapping[str, Any], tensors: Mapping[str, torch.Tensor], where: str = "weights",
                  expected: Mapping[str, tuple[int, ...]] | None = None) -> None:
    """Raise :class:`ModelFormatError` naming any missing/unexpected tensor or wrong shape.

    ``expected``: the architecture's names and shapes when already known (a built model's); else
    :func:`expected_tensors` builds it on the meta device.
    """
    if expected is None:
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


# Bounds on config values, checked before any module is built so a hostile or corrupt config.json cannot
# make us allocate absurd amounts of memory or loop for ever.
MAX_RESOLUTION = 4096
MAX_DIM = 8192
MAX_CLASSES = 100_000
MAX_NUM_WS = 256
MAX_LAYERS = 128
MAX_INT = 1 << 20
MAX_PARAMS = 2_000_000_000
MAX_DEPTH = 6
MAX_ITEMS = 4096
_DIM_WORDS = ("dim", "features", "channels", "fmaps", "width")
_DIM_NAMES = ("nz", "nc", "ngf", "ndf")
_LAYER_NAMES = ("num_layers", "n_layers", "n_mlp", "num_blocks", "n_blocks", "mapping_layers")


def _check_value(value: Any, key: str, where: str, depth: int = 0) -> None:
    """Types and ranges of one ``init_kwargs`` value (recursively), with the key path in the message."""
    if depth > MAX_DEPTH:
        raise ModelFormatError(f"{where}: init_kwargs.{key} is nested too deeply")
    if value is None or isinstance(value, (bool, str)):
        if isinstance(value, str) and len(value) > 256:
            raise ModelFormatError(f"{where}: init_kwargs.{key} is a string of {len(value)} characters (max 256)")
        return
    if isinstance(value, int):
        low = key.rsplit(".", 1)[-1].lower()
        if "[" in low:  # list items (channel tables...): only the generic bound; the size bound does the rest
            limit = MAX_INT
        elif "resolution" in low:
            limit = MAX_RESOLUTION
        elif low in ("c_dim", "num_classes", "n_classes"):
            limit = MAX_CLASSES
        elif low in _LAYER_NAMES:
            limit = MAX_LAYERS
        elif (any(w in low for w in _DIM_WORDS) and "base" not in low) or low in _DIM_NAMES:
            limit = MAX_DIM
        else:
            limit = MAX_INT
        if not -MAX_INT <= value <= limit:
            raise ModelFormatError(f"{where}: init_kwargs.{key}={value} is out of range (at most {limit}); "
                                   "the config is corrupt - re-convert the model")
        return
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")) or abs(value) > 1e12:
            raise ModelFormatError(f"{where}: init_kwargs.{key}={value} is not a sane finite number")
        return
    if isinstance(value, list):
        if len(value) > MAX_ITEMS:
            raise ModelFormatError(f"{where}: init_kwargs.{key} has {len(value)} items (max {MAX_ITEMS})")
        for i, v in enumerate(value):
            _check_value(v, f"{key}[{i}]", where, depth + 1)
        return
    if isinstance(value, dict):
        if len(value) > MAX_ITEMS:
            raise ModelFormatError(f"{where}: init_kwargs.{key} has {len(value)} entries (max {MAX_ITEMS})")
        for k, v in value.items():
            _check_value(v, f"{key}.{k}", where, depth + 1)
        return
    raise ModelFormatError(f"{where}: init_kwargs.{key} has unsupported type {type(value).__name__}")


def validate_config(config: Mapping[str, Any], where: str = CONFIG_NAME) -> None:
    """Check ``config``'s types and ranges (and that the architecture exists) before anything is built.

    Raises :class:`ModelFormatError` with the offending field; a valid config is left unchanged.
    """
    arch = config.get("architecture")
    if not isinstance(arch, str):
        raise ModelFormatError(f"{where}: architecture must be a string, got {type(arch).__name__}")
    try:
        get_architecture(arch)
    except ValueError as e:
        raise ModelFormatError(f"{where}: {e}; upgrade ganzoo or re-convert the model") from None
    limits = {"z_dim": MAX_DIM, "c_dim": MAX_CLASSES, "w_dim": MAX_DIM, "num_ws": MAX_NUM_WS,
              "img_resolution": MAX_RESOLUTION, "img_channels": 16}
    for key, limit in limits.items():
        v = config.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= limit:
            raise ModelFormatError(f"{where}: {key} must be an integer in [0, {limit}], got {v!r}; "
                                   "re-convert the model")
    if config["img_resolution"] < 1 or config["img_channels"] < 1:
        raise ModelFormatError(f"{where}: img_resolution and img_channels must be positive")
    kwargs = config.get("init_kwargs")
    if not isinstance(kwargs, dict):
        raise ModelFormatError(f"{where}: init_kwargs must be an object")
    for k, v in kwargs.items():
        if not isinstance(k, str) or not k.isidentifier():
            raise ModelFormatError(f"{where}: init_kwargs key {k!r} is not a valid argument name")
        _check_value(v, k, where)
    names = config.get("class_names")
    if names is not None and (not isinstance(names, list) or len(names) > MAX_CLASSES
                              or not all(isinstance(n, str) and len(n) <= 256 for n in names)):
        raise ModelFormatError(f"{where}: class_names must be a list of short strings")


def _build_checked(cls: type, config: Mapping[str, Any], where: str) -> dict[str, tuple[int, ...]]:
    """Build the architecture on the meta device (no memory) and bound its size; returns tensor shapes."""
    try:
        with torch.device("meta"):
            model = cls.from_config(dict(config))
    except ZooError:
        raise
    except Exception as e:  # noqa: BLE001 - any constructor failure on a bad config is a format error
        first = (str(e).splitlines() or [""])[0][:200]
        raise ModelFormatError(f"{where}: cannot build {config['architecture']!r} from init_kwargs "
                               f"({type(e).__name__}: {first}); re-convert the model") from None
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    total = sum(math.prod(s) for s in shapes.values())
    if total > MAX_PARAMS:
        raise ModelFormatError(f"{where}: init_kwargs describe a model with {total:,} values (limit "
                               f"{MAX_PARAMS:,}); the config is corrupt - re-convert the model")
    return shapes


def _size_check_marker(cls: type, config: Mapping[str, Any]) -> Path | None:
    """Where a passed size check of this exact config and architecture code is remembered (None: cannot tell)."""
    import inspect
    import sys

    from .loading import cache_dir

    try:
        src = os.stat(inspect.getfile(sys.modules[cls.__module__]))
        text = json.dumps(config, sort_keys=True, allow_nan=False)
    except (OSError, TypeError, ValueError, KeyError):
        return None
    key = hashlib.sha256(f"{cls.__module__}.{cls.__qualname__}|{src.st_size}|{src.st_mtime_ns}|{torch.__version__}|"
                         f"{text}".encode()).hexdigest()
    return cache_dir() / "checked" / f"{key[:32]}.json"


def check_buildable(cls: type, config: Mapping[str, Any], where: str) -> None:
    """:func:`_build_checked`, skipped when this config already passed it with the same architecture code.

    The meta-device build costs about a second in a fresh process (its arithmetic goes through torch's Python
    reference ops, whose first use imports ``torch._dynamo``), so its pass is remembered in the cache, keyed by
    the config, the architecture module's size and mtime, and the torch version.
    """
    marker = _size_check_marker(cls, config)
    if marker is not None and marker.is_file():
        return
    shapes = _build_checked(cls, config, where)
    if marker is not None:
        from .fileio import write_text_atomic

        try:
            write_text_atomic(marker, json.dumps({"architecture": config.get("architecture"),
                                                  "tensors": len(shapes)}) + "\n")
        except OSError:
            pass  # a read-only cache only costs the check next time


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
    validate_config(config, str(path))
    return config


@torch.inference_mode(False)  # weights made under a caller's inference_mode would be inference tensors, which
# keep no version counter: the per-weight caches of zoo.models.ops could then not tell an in-place edit
def load_folder(folder: str | os.PathLike[str], device: str | torch.device = "cpu") -> torch.nn.Module:
    """Build the generator described by ``folder/config.json`` and load its weights strictly."""
    folder = Path(folder)
    config = read_config(folder)
    cls = get_architecture(config["architecture"])
    check_buildable(cls, config, str(folder / CONFIG_NAME))
    try:
        model = cls.from_config(config)
    except Exception as e:  # noqa: BLE001 - the meta build succeeded, so this is rare (e.g. out of memory)
        first = (str(e).splitlines() or [""])[0][:200]
        raise ModelFormatError(f"{folder / CONFIG_NAME}: cannot build {config['architecture']!r} "
                               f"from init_kwargs ({type(e).__name__}: {first})") from None
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
    own = model.state_dict()
    check_tensors(config, tensors, where=str(weights), expected={k: tuple(v.shape) for k, v in own.items()})
    for k, v in tensors.items():
        if v.dtype not in _LOADABLE_DTYPES:
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


_LOADABLE_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int64, torch.int32,
                    torch.uint8, torch.bool)


def _apply_umask(folder: Path) -> None:
    """mkdtemp makes a private folder; give the result the permissions a normal mkdir would."""
    chmod_like_new_dir(folder)


def check_output_folder(out_dir: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """Refuse, before any work, a model folder path :func:`write_model_folder` could not write: an existing file, a
    non-empty folder without ``overwrite``, or a path under a file."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} is a file, not a folder; pick a folder path for the model")
    if out.is_dir() and not overwrite and any(out.iterdir()):
        raise FileExistsError(f"{out} already exists and is not empty; pass overwrite=True (--force) or pick "
                              "another folder")
    for parent in out.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise NotADirectoryError(f"cannot make {out}: {parent} is a file, not a folder; pick another path")
            break
    return out


def write_model_folder(out_dir: str | os.PathLike[str], config: dict[str, Any], tensors: Mapping[str, torch.Tensor],
                       card: str | None = None, *, dtype: torch.dtype | None = None, overwrite: bool = False) -> Path:
    """Write the common format atomically and return the folder path."""
    out = check_output_folder(out_dir, overwrite)
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
