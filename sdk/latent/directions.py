"""Latent directions: find them (SeFa, GANSpace, CLIP text), import published ones, save and load them.

A :class:`Direction` holds ``K`` unit vectors in one latent space (``z``, ``w`` or ``w+``) of one
generator, identified by the sha256 of its weights so that applying it to another model is an error
rather than a silent mess. Imported files (InterFaceGAN, e4e, GANSpace) carry no hash.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from torch import nn
from tqdm.auto import tqdm

from zoo.errors import ConversionError, UnsafePickleError

from .direction import FORMAT, SPACES, Direction, DirectionError, _model_name, weights_sha  # noqa: F401

def _device(G: Any) -> torch.device:
    try:
        return next(G.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def _sign_fix(vectors: torch.Tensor) -> torch.Tensor:
    """Eigen/singular vectors have arbitrary sign: make each one's largest-magnitude entry positive."""
    idx = vectors.abs().argmax(dim=1, keepdim=True)
    signs = torch.sign(torch.gather(vectors, 1, idx))
    signs[signs == 0] = 1
    return vectors * signs



# --- SeFa ----------------------------------------------------------------------------------------------


def style_affines(G: Any) -> list[tuple[str, nn.Module, int, bool]]:
    """Every style affine under ``G.synthesis`` as ``(name, module, ws_index, is_torgb)``.

    The W+ index each affine reads is found by running the synthesis once on distinct per-layer
    latents and matching what each affine receives, so this works for any style-based family.
    """
    synth = getattr(G, "synthesis", None)
    if synth is None:
        raise DirectionError(f"{_model_name(G)} is not style-based (no synthesis network)")
    modules = dict(synth.named_modules())
    # families that keep upstream module names say what their affines are called (default: NVIDIA's "affine")
    suffixes = tuple(getattr(G, "style_affine_names", ("affine",)))
    affines = [(name, m) for name, m in modules.items()
               if name.rsplit(".", 1)[-1] in suffixes and isinstance(getattr(m, "weight", None), torch.Tensor)]
    if not affines:
        raise DirectionError(f"{_model_name(G)}'s synthesis network has no style affine layers")
    dev = _device(G)
    gen = torch.Generator().manual_seed(0)
    ws = torch.randn(1, int(G.num_ws), int(G.w_dim), generator=gen).to(dev)
    seen: dict[str, torch.Tensor] = {}
    hooks = [m.register_forward_pre_hook(lambda _m, args, _n=name: seen.setdefault(_n, args[0].detach().clone()))
             for name, m in affines]
    try:
        with torch.no_grad():
            synth(ws, noise_mode="const")
    finally:
        for h in hooks:
            h.remove()
    out = []
    for name, m in affines:
        if name not in seen:
            raise DirectionError(f"style affine {name} was not used by the synthesis network")
        x = seen[name].reshape(-1, ws.shape[-1])[0].to(ws.dtype)
        dist = (ws[0] - x).abs().amax(dim=-1)
        idx = int(dist.argmin())
        if float(dist[idx]) > 1e-4:
            raise DirectionError(f"cannot tell which W+ layer feeds style affine {name}")
        parent_name = name.rsplit(".", 1)[0] if "." in name else ""
        parent = modules.get(parent_name)
        rgb = ("rgb" in parent_name.lower() or "torgb" in type(parent).__name__.lower()
               or bool(getattr(parent, "is_torgb", False)))
        out.append((name, m, idx, rgb))
    return out


def _first_projection(G: Any) -> tuple[str, torch.Tensor]:
    """The first layer that reads z, as ``(name, weight [features, z_dim])``.

    A family whose first layer reads z beside something else (e.g. a class embedding) names it through a
    ``z_projection()`` method returning the same pair.
    """
    hook = getattr(G, "z_projection", None)
    if callable(hook):
        return hook()
    z_dim, c_dim = int(G.z_dim), int(getattr(G, "c_dim", 0) or 0)
    for name, m in G.named_modules():
        if isinstance(m, nn.Linear) and m.in_features in (z_dim, z_dim + c_dim):
            w = m.weight.detach() * float(getattr(m, "weight_gain", 1.0))
            return name, w[:, :z_dim]
        if isinstance(m, nn.ConvTranspose2d) and m.in_channels in (z_dim, z_dim + c_dim):
            # weight [in, out, kh, kw]: on a 1x1 input every output position is a linear map of z.
            return name, m.weight.detach().flatten(1).t()[:, :z_dim]
        if hasattr(m, "weight") and not isinstance(m, (nn.Linear, nn.ConvTranspose2d)) \
                and isinstance(getattr(m, "weight", None), torch.Tensor) and m.weight.ndim == 2 \
                and m.weight.shape[1] in (z_dim, z_dim + c_dim):
            w = m.weight.detach() * float(getattr(m, "weight_gain", 1.0))
            return name, w[:, :z_dim]
    raise DirectionError(f"cannot find the first layer that reads z in {_model_name(G)}")


def sefa(G: Any, layers: Sequence[int] | None = None, k: int | None = None, *, normalize: bool = True,
         include_torgb: bool = False) -> Direction:
    """Closed-form factorisation (Shen & Zhou, CVPR 2021): top eigenvectors of ``A^T A``.

    Style-based models: ``A`` stacks the style affine weights (times their weight gain) of the
    synthesis layers reading W+ indices ``layers`` (default all; ToRGB affines excluded unless
    ``include_torgb``); the directions live in W and edit ``layers``. Other models: ``A`` is the
    weight of the first layer reading z, directions live in z. ``normalize`` scales every row of
    ``A`` to unit norm before the decomposition, as the official SeFa code does.
    """
    if getattr(G, "style_based", False):
        affines = style_affines(G)
        if layers is not None:
            layers = sorted({int(i) for i in layers})
            bad = [i for i in layers if not 0 <= i < int(G.num_ws)]
            if bad:
                raise DirectionError(f"layers {bad} out of range: {_model_name(G)} has W+ layers 0..{G.num_ws - 1}")
        chosen = [(n, m) for n, m, i, rgb in affines
                  if (layers is None or i in layers) and (include_torgb or not rgb)]
        if not chosen:
            raise DirectionError(f"no style layers selected by layers={layers}; pick W+ indices with a convolution")
        A = torch.cat([m.weight.detach().to(torch.float64).cpu() * float(getattr(m, "weight_gain", 1.0))
                       for _, m in chosen], dim=0)
        space, source = "w", [n for n, _ in chosen]
    else:
        if layers is not None:
            raise DirectionError(f"{_model_name(G)} has no W+ layers: sefa on it takes no layers")
        name, A = _first_projection(G)
        A = A.to(torch.float64).cpu()
        space, source = "z", [name]
    if normalize:
        A = A / A.norm(dim=1, keepdim=True).clamp_min(1e-12)
    evals, evecs = torch.linalg.eigh(A.t() @ A)
    order = torch.argsort(evals, descending=True)
    k = A.shape[1] if k is None else int(k)
    if not 1 <= k <= A.shape[1]:
        raise DirectionError(f"k must be in 1..{A.shape[1]}, got {k}")
    vectors = _sign_fix(evecs[:, order[:k]].t().contiguous())
    return Direction(vectors=vectors.to(torch.float32), space=space, method="sefa",
                     layers=list(layers) if layers is not None else None,
                     params={"normalize": normalize, "include_torgb": include_torgb, "source_layers": source},
                     weights_sha256=weights_sha(G), extra={"eigenvalues": evals[order[:k]].to(torch.float32)})


# --- GANSpace ------------------------------------------------------------------------------------------


def _random_c(G: Any, n: int, gen: torch.Generator) -> torch.Tensor | None:
    if not int(getattr(G, "c_dim", 0) or 0):
        return None
    idx = torch.randint(0, int(G.c_dim), (n,), generator=gen)
    return nn.functional.one_hot(idx, int(G.c_dim)).to(torch.float32)


def _pca(X: torch.Tensor, k: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(components [k, F], std [k], mean [F])`` of the rows of ``X``.

    Exact (eigendecomposition of the covariance) for up to 2048 features; for wider activations a
    randomised truncated SVD (Halko et al.) of the centred data, which is accurate for the leading
    components and avoids a full SVD of an ``N x F`` matrix.
    """
    X = X.to(torch.float64)
    n, F = X.shape
    mean = X.mean(dim=0)
    Xc = X - mean
    k = min(k, n - 1 if n > 1 else 1, F)
    if F <= 2048:
        evals, evecs = torch.linalg.eigh(Xc.t() @ Xc / max(n - 1, 1))
        order = torch.argsort(evals, descending=True)[:k]
        comp, var = evecs[:, order].t(), evals[order].clamp_min(0)
    else:
        torch.manual_seed(seed)
        _, S, V = torch.svd_lowrank(Xc, q=min(k + 20, n, F), niter=6)
        comp, var = V[:, :k].t(), S[:k] ** 2 / max(n - 1, 1)
    return _sign_fix(comp.contiguous()), var.sqrt(), mean


class _StopForward(Exception):
    pass


def _default_activation_layer(G: Any) -> str:
    """GANSpace on z-only models: the first nonlinearity after the first projection of z."""
    first, _ = _first_projection(G)
    names = [n for n, _ in G.named_modules()]
    acts = (nn.ReLU, nn.LeakyReLU, nn.SiLU, nn.GELU, nn.ELU, nn.Tanh)
    start = names.index(first)
    for name, m in list(G.named_modules())[start + 1:]:
        if isinstance(m, acts):
            return name
    return first


def ganspace(G: Any, n_samples: int = 20000, components: int = 16, seed: int = 0, layer: str | None = None,
             batch_size: int = 500, quiet: bool = True) -> Direction:
    """GANSpace (Härkönen et al., NeurIPS 2020): PCA of sampled latents or activations.

    Style-based models: PCA of W samples; the components are W directions with ``std`` (the
    per-component standard deviation: one unit of strength) and ``mean``. Other models: PCA of the
    activations of ``layer`` (default: the first nonlinearity after the first layer), then, as
    GANSpace does, a least-squares regression from the standardised PCA coordinates back to the
    sampled z gives z-space directions (normalised), with the std of z along each.
    """
    if n_samples < 2 or components < 1:
        raise DirectionError("ganspace needs n_samples >= 2 and components >= 1")
    if layer is not None and getattr(G, "style_based", False):
        raise DirectionError("on style-based models ganspace decomposes W itself: drop layer")
    dev = _device(G)
    gen = torch.Generator().manual_seed(int(seed))
    z = torch.randn(n_samples, int(G.z_dim), generator=gen)
    c = _random_c(G, n_samples, gen)
    feats: list[torch.Tensor] = []
    style = bool(getattr(G, "style_based", False))
    hook = None
    if not style:
        layer = layer or _default_activation_layer(G)
        modules = dict(G.named_modules())
        if layer not in modules:
            raise DirectionError(f"no layer named {layer!r} in {_model_name(G)}")
        box: list[torch.Tensor] = []

        def grab(_m: nn.Module, _a: Any, out: torch.Tensor) -> None:
            box.append(out.detach().flatten(1).cpu())
            raise _StopForward  # partial forward: nothing after this layer is needed

        hook = modules[layer].register_forward_hook(grab)
    try:
        with torch.no_grad(), tqdm(total=n_samples, desc="ganspace", unit="sample", disable=quiet) as bar:
            for i in range(0, n_samples, batch_size):
                zb = z[i:i + batch_size].to(dev)
                cb = None if c is None else c[i:i + batch_size].to(dev)
                if style:
                    feats.append(G.mapping(zb, cb)[:, 0].to(torch.float32).cpu())
                else:
                    box.clear()
                    try:
                        G(zb, cb)
                    except _StopForward:
                        pass
                    if not box:
                        raise DirectionError(f"layer {layer!r} is not used by {_model_name(G)}'s forward pass")
                    feats.append(box[0].to(torch.float32))
                bar.update(len(zb))
    finally:
        if hook is not None:
            hook.remove()
    X = torch.cat(feats)
    comp, std, mean = _pca(X, components, seed)
    params: dict[str, Any] = {"n_samples": n_samples, "seed": seed, "layer": "w" if style else layer}
    if style:
        return Direction(vectors=comp.to(torch.float32), space="w", method="ganspace", params=params,
                         weights_sha256=weights_sha(G), extra={"std": std, "mean": mean})
    coords = (X.to(torch.float64) - mean) @ comp.t() / std.clamp_min(1e-12)
    M = torch.linalg.lstsq(coords, z.to(torch.float64)).solution  # [k, z_dim]: z ~ coords @ M
    zcomp = M / M.norm(dim=1, keepdim=True).clamp_min(1e-12)
    zstd = (z.to(torch.float64) @ zcomp.t()).std(dim=0)
    params["activation_std"] = std.tolist()
    return Direction(vectors=zcomp.to(torch.float32), space="z", method="ganspace", params=params,
                     weights_sha256=weights_sha(G), extra={"std": zstd})


# --- text (CLIP) ---------------------------------------------------------------------------------------


def text(G: Any, prompt: str, latent: torch.Tensor | None = None, **kwargs: Any) -> Direction:
    """CLIP-guided edit towards ``prompt`` (StyleCLIP latent optimisation); see :func:`sdk.latent.textedit.text_edit`."""
    from .textedit import text_edit

    return text_edit(G, prompt, latent, **kwargs)


# --- importing published directions --------------------------------------------------------------------


def _np_dtype_no_objects(*args: Any) -> np.dtype:
    dt = np.dtype(*args)
    if dt.hasobject:
        raise UnsafePickleError("refusing numpy object arrays in a direction pickle (only numeric arrays allowed)")
    return dt


def _numpy_globals() -> dict[tuple[str, str], Callable[..., Any]]:
    from converters.safe_pickle import NUMPY_GLOBALS

    allowed = dict(NUMPY_GLOBALS)
    allowed[("numpy", "dtype")] = _np_dtype_no_objects
    return allowed


def read_numpy_pickle(path: str | os.PathLike[str]) -> Any:
    """Unpickle a file that may hold only numpy arrays/scalars inside plain dicts, lists and strings."""
    from converters.safe_pickle import restricted_load

    return restricted_load(Path(path), _numpy_globals(), source=Path(path).name)


_IFG = re.compile(r"^(?P<head>.+?)(?:_c_(?P<cond>.+?))?(?P<w>_w)?_boundary$")


def _load_interfacegan(path: Path, space: str | None) -> Direction:
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise DirectionError(f"{path} is not a readable .npy array ({e})") from None
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[0] != 1 or not np.issubdtype(arr.dtype, np.floating):
        raise DirectionError(f"{path}: an InterFaceGAN boundary is a float array of shape (1, width), "
                             f"got {arr.dtype} {arr.shape}")
    stem = path.stem
    params: dict[str, Any] = {"source": path.name, "dtype": str(arr.dtype)}
    m = _IFG.match(stem)
    if m:  # genforce/interfacegan: <model>_<attribute>[_c_<conditions>][_w]_boundary.npy
        model, _, attr = m["head"].rpartition("_")
        guessed = "w" if m["w"] else "z"
        params.update(model=model, conditional=bool(m["cond"]), conditions=m["cond"].split("_") if m["cond"] else [])
    elif stem.startswith("boundary_"):  # later layout: <model>_<z|w>/boundary_<CelebA attribute>.npy
        attr = stem[len("boundary_"):]
        folder = path.parent.name
        guessed = "w" if folder.endswith("_w") else "z"
        params.update(model=re.sub(r"_[zw]$", "", folder), conditional=False, conditions=[])
    else:
        attr, guessed = stem, "z"
    vec = torch.from_numpy(arr.astype(np.float64)).to(torch.float32)
    return Direction(vectors=vec, space=space or guessed, method="interfacegan", names=[attr], params=params)


def _load_torch(path: Path, space: str | None) -> Direction:
    from converters.safe_pickle import torch_safe_load

    obj = torch_safe_load(path)
    if isinstance(obj, torch.Tensor):  # e4e editings/interfacegan_directions: [1, 512] (W) or [1, 18, 512] (W+)
        t = obj.detach().to(torch.float32)
        if t.ndim == 3 and t.shape[0] == 1:
            return Direction(vectors=t, space="w+", method="interfacegan", names=[path.stem],
                             params={"source": path.name})
        if t.ndim in (1, 2):
            t = t.reshape(1, -1) if t.ndim == 1 else t
            return Direction(vectors=t, space=space or "w", method="interfacegan",
                             names=[path.stem] if t.shape[0] == 1 else None, params={"source": path.name})
        raise DirectionError(f"{path}: tensor of shape {list(t.shape)} is not a direction")
    if isinstance(obj, dict) and {"comp", "std", "mean"} <= set(obj):  # e4e editings/ganspace_pca
        comp, std, mean = (torch.as_tensor(obj[k]).to(torch.float32) for k in ("comp", "std", "mean"))
        comp = comp.reshape(comp.shape[0], -1)
        return Direction(vectors=comp, space=space or "w", method="ganspace",
                         params={"source": path.name}, extra={"std": std.reshape(-1), "mean": mean.reshape(-1)})
    raise DirectionError(f"{path}: expected a direction tensor or a {{mean, comp, std}} dict, "
                         f"got {type(obj).__name__}")


def _ganspace_space(value: Any) -> str:
    return "z" if str(value).upper() == "Z" else "w"


def _load_ganspace_pickle(path: Path, space: str | None) -> Direction:
    obj = read_numpy_pickle(path)
    if not isinstance(obj, dict) or "lat_comp" not in obj:
        raise DirectionError(f"{path}: not a GANSpace direction pickle (no 'lat_comp')")
    comp = torch.from_numpy(np.asarray(obj["lat_comp"], dtype=np.float32)).reshape(1, -1)
    layers = None
    if obj.get("edit_start") is not None and obj.get("edit_end") is not None:
        layers = list(range(int(obj["edit_start"]), int(obj["edit_end"])))  # GANSpace ranges are end-exclusive
    extra = {"std": torch.tensor([float(obj.get("lat_stdev", 1.0))])}
    params = {k: v for k, v in obj.items() if k not in ("lat_comp", "act_comp")}
    params["source"] = path.name
    return Direction(vectors=comp, space=space or _ganspace_space(obj.get("latent_space", "W")), method="ganspace",
                     layers=layers, names=[str(obj.get("name", path.stem))], params=params, extra=extra)


def _load_ganspace_npz(path: Path, space: str | None) -> Direction:
    try:
        data = np.load(path, allow_pickle=False)
        comp = np.asarray(data["lat_comp"], dtype=np.float32)
        std = np.asarray(data["lat_stdev"], dtype=np.float32) if "lat_stdev" in data else None
        mean = np.asarray(data["lat_mean"], dtype=np.float32) if "lat_mean" in data else None
    except (KeyError, ValueError, OSError) as e:
        raise DirectionError(f"{path}: not a GANSpace components file ({e})") from None
    extra = {}
    if std is not None:
        extra["std"] = torch.from_numpy(std).reshape(-1)
    if mean is not None:
        extra["mean"] = torch.from_numpy(mean).reshape(-1)
    return Direction(vectors=torch.from_numpy(comp).reshape(comp.shape[0], -1), space=space or "w",
                     method="ganspace", params={"source": path.name}, extra=extra)


def _load_own(path: Path) -> Direction:
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError) as e:
        raise DirectionError(f"{path} is not a readable direction file ({e})") from None
    if meta.get("format") != FORMAT or "vectors" not in tensors:
        raise DirectionError(f"{path} is not a ganzoo direction file (save one with Direction.save)")
    try:
        return Direction(vectors=tensors["vectors"], space=meta.get("space", ""), method=meta.get("method", "custom"),
                         layers=json.loads(meta.get("layers", "null")), params=json.loads(meta.get("params", "{}")),
                         weights_sha256=meta.get("weights_sha256") or None, names=json.loads(meta.get("names", "null")),
                         extra={k[len("extra."):]: v for k, v in tensors.items() if k.startswith("extra.")})
    except json.JSONDecodeError as e:
        raise DirectionError(f"{path}: corrupt direction metadata ({e})") from None


def load(path: str | os.PathLike[str], *, space: str | None = None) -> Direction:
    """Read a direction file: ganzoo ``.safetensors``; InterFaceGAN ``.npy`` boundaries (``_w`` in the name
    or a ``*_w`` folder: W, else Z); e4e ``.pt`` (``[1, 512]`` -> W, ``[1, 18, 512]`` -> W+, ``{mean, comp,
    std}`` GANSpace PCA -> W); GANSpace ``.pkl`` (numpy-only pickle) or ``.npz`` components.
    ``space`` overrides the guessed space of foreign files.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such direction file: {path}")
    if space is not None and space not in SPACES:
        raise DirectionError(f"unknown latent space {space!r}: use one of {', '.join(SPACES)}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".safetensors":
            return _load_own(path)
        if suffix == ".npy":
            return _load_interfacegan(path, space)
        if suffix in (".pt", ".pth"):
            return _load_torch(path, space)
        if suffix == ".pkl":
            return _load_ganspace_pickle(path, space)
        if suffix == ".npz":
            return _load_ganspace_npz(path, space)
    except ConversionError as e:
        if isinstance(e, UnsafePickleError):
            raise
        raise DirectionError(f"{path}: {e}") from None
    raise DirectionError(f"unknown direction file type {suffix!r}: use .safetensors, .npy (InterFaceGAN), "
                         ".pt (e4e), .pkl or .npz (GANSpace)")


def project_boundary(primal: torch.Tensor | np.ndarray, *conditions: torch.Tensor | np.ndarray) -> torch.Tensor:
    """InterFaceGAN conditional manipulation: ``primal`` with its component in the span of the
    ``conditions`` removed (least-squares projection), renormalised to unit length.

    Moving along the result leaves the condition attributes' signed distances unchanged. Returns a
    float32 tensor shaped like ``primal``.
    """
    p = torch.as_tensor(np.asarray(primal) if isinstance(primal, np.ndarray) else primal).to(torch.float64)
    shape = p.shape
    p = p.reshape(-1)
    if not conditions:
        return (p / p.norm()).reshape(shape).to(torch.float32)
    C = torch.stack([torch.as_tensor(np.asarray(c) if isinstance(c, np.ndarray) else c).to(torch.float64).reshape(-1)
                     for c in conditions])
    if C.shape[1] != p.numel():
        raise DirectionError(f"condition boundaries have width {C.shape[1]}, the primal one {p.numel()}")
    coef = torch.linalg.lstsq(C.t(), p.unsqueeze(1)).solution  # p ~ C^T coef
    out = p - (C.t() @ coef).squeeze(1)
    n = out.norm()
    if n < 1e-8:
        raise DirectionError("the primal boundary lies in the span of the conditions: nothing is left to edit")
    return (out / n).reshape(shape).to(torch.float32)
