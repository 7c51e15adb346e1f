"""Text-driven edits with CLIP (open-clip-torch): StyleCLIP-style latent optimisation.

The latent (W+ for style-based models, z otherwise) is optimised so that CLIP finds the image
closer to the prompt, with an L2 pull towards the source latent and an optional identity term
(1 - cosine similarity of the CLIP image embeddings of the edited and the source image; a
stand-in for StyleCLIP's face-recognition loss that works for any image domain).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from zoo.errors import OfflineError, ZooError

from .direction import Direction, weights_sha
from ..sampling import seeds_to_z
from .space import infer_space, to_ws

DEFAULT_CLIP = "ViT-B-32"
DEFAULT_PRETRAINED = "laion2b_s34b_b79k"
# open_clip's defaults when a checkpoint folder states no preprocessing (open_clip.constants).
_OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
_OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


class ClipUnavailableError(ZooError, ImportError):
    """open-clip-torch is missing or cannot be imported."""


def _hollow_torchvision() -> None:
    """Make ``import torchvision.<submodule>`` work when torchvision's package init cannot run.

    A torchvision wheel built for another torch variant fails in its ``__init__`` while registering
    its compiled operators (``operator torchvision::nms does not exist``). open_clip only needs the
    pure-Python parts (``transforms``, ``ops.misc``), so the package is registered without running
    its ``__init__``; the compiled operators stay unavailable, as they already were.
    """
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.submodule_search_locations is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["torchvision"] = module
    try:
        module.__version__ = importlib.import_module("torchvision.version").__version__  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - the version string is a nicety
        module.__version__ = "0+unknown"  # type: ignore[attr-defined]


def import_open_clip() -> ModuleType:
    """``open_clip``, importable even next to a torchvision build that does not match torch."""
    if "open_clip" in sys.modules:
        return sys.modules["open_clip"]
    if importlib.util.find_spec("open_clip") is None:
        raise ClipUnavailableError("text edits need open-clip-torch: pip install 'ganzoo[clip]'")
    if "torchvision" not in sys.modules and importlib.util.find_spec("torchvision") is not None:
        try:
            importlib.import_module("torchvision")
        except Exception:  # noqa: BLE001 - any failure of its init: fall back to the pure-Python parts
            _hollow_torchvision()
    try:
        return importlib.import_module("open_clip")
    except Exception as e:  # noqa: BLE001
        for name in [m for m in sys.modules if m == "open_clip" or m.startswith("open_clip.")]:
            del sys.modules[name]
        raise ClipUnavailableError(f"open_clip cannot be imported ({type(e).__name__}: {str(e)[:160]}); "
                                   "reinstall it with pip install 'ganzoo[clip]'") from None


def _weights_in(folder: Path) -> bool:
    return any(any(folder.glob(pat)) for pat in ("*.safetensors", "*.bin", "*.pth", "*.pt"))


def load_clip(clip_model: str = DEFAULT_CLIP, pretrained: str | os.PathLike[str] | None = DEFAULT_PRETRAINED,
              device: str | torch.device = "cpu") -> tuple[torch.nn.Module, Any]:
    """``(model, tokenizer)``. ``pretrained``: an open_clip tag (downloaded and cached by open_clip),
    a checkpoint file for ``clip_model``, or a folder with ``open_clip_config.json`` + weights
    (open_clip's ``local-dir`` layout, which also defines the architecture)."""
    open_clip = import_open_clip()
    if pretrained is None:
        raise ValueError("CLIP needs weights: pass pretrained=TAG (e.g. laion2b_s34b_b79k), a checkpoint file "
                         "or an open_clip folder")
    spec = os.fspath(pretrained)
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "open_clip_config.json").is_file():
            raise FileNotFoundError(f"{path} is not an open_clip folder: open_clip_config.json is missing")
        if not _weights_in(path):
            raise FileNotFoundError(f"{path} holds no CLIP weights (open_clip_model.safetensors or .bin)")
        name = f"local-dir:{path}"
        model = open_clip.create_model(name, device=device)
        tokenizer = open_clip.get_tokenizer(name)
    else:
        if clip_model not in open_clip.list_models():
            raise ValueError(f"unknown CLIP model {clip_model!r}; e.g. ViT-B-32, ViT-B-16, ViT-L-14 "
                             "(open_clip.list_models() lists all)")
        if path.suffix and not path.is_file() and (os.sep in spec or path.suffix in (".pt", ".bin", ".safetensors")):
            raise FileNotFoundError(f"no such CLIP checkpoint: {path}")
        try:
            model = open_clip.create_model(clip_model, pretrained=str(path) if path.is_file() else spec,
                                           device=device)
            tokenizer = open_clip.get_tokenizer(clip_model)
        except Exception as e:  # noqa: BLE001 - download failures surface as several exception types
            if path.is_file():
                raise ValueError(f"{path} is not a checkpoint for CLIP {clip_model} ({str(e)[:160]})") from None
            known = [t for m, t in open_clip.list_pretrained() if m == clip_model]
            if spec not in known:
                raise ValueError(f"unknown pretrained tag {spec!r} for {clip_model}; known: {', '.join(known)}") \
                    from None
            raise OfflineError(f"CLIP weights {clip_model}/{spec} are not cached and could not be downloaded "
                               f"({type(e).__name__}); go online once, or pass pretrained=DIR with an open_clip "
                               "folder (open_clip_config.json + open_clip_model.safetensors)") from None
    model.eval().requires_grad_(False)
    return model, tokenizer


def _preprocess_cfg(model: torch.nn.Module) -> tuple[int, tuple[float, ...], tuple[float, ...]]:
    visual = getattr(model, "visual", model)
    cfg = getattr(visual, "preprocess_cfg", None) or {}
    size = cfg.get("size", getattr(visual, "image_size", 224))
    size = size[0] if isinstance(size, (tuple, list)) else size
    mean = tuple(cfg.get("mean", getattr(visual, "image_mean", None) or _OPENAI_MEAN))
    std = tuple(cfg.get("std", getattr(visual, "image_std", None) or _OPENAI_STD))
    return int(size), mean, std


class ClipScorer:
    """CLIP image embeddings of generator outputs (differentiable) and text embeddings."""

    def __init__(self, model: torch.nn.Module, tokenizer: Any, device: torch.device) -> None:
        self.model, self.tokenizer, self.device = model.to(device), tokenizer, device
        self.size, mean, std = _preprocess_cfg(model)
        self.mean = torch.tensor(mean, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, device=device).view(1, -1, 1, 1)

    def image(self, img: torch.Tensor) -> torch.Tensor:
        """Unit CLIP embeddings of images in the generator convention (nominal [-1, 1])."""
        x = ((img.to(self.device, torch.float32) + 1) / 2).clamp(0, 1)
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        x = x[:, :3]
        x = F.interpolate(x, size=(self.size, self.size), mode="bicubic", align_corners=False, antialias=True)
        return F.normalize(self.model.encode_image((x - self.mean) / self.std).float(), dim=-1)

    def text(self, prompts: list[str]) -> torch.Tensor:
        with torch.no_grad():
            return F.normalize(self.model.encode_text(self.tokenizer(prompts).to(self.device)).float(), dim=-1)


def text_edit(G: Any, prompt: str, latent: torch.Tensor | None = None, *, seed: int = 0, space: str | None = None,
              neutral: str | None = None, clip_model: str = DEFAULT_CLIP,
              pretrained: str | os.PathLike[str] | None = DEFAULT_PRETRAINED, steps: int = 100, lr: float = 0.05,
              l2: float = 0.008, id_weight: float = 0.0, class_idx: int | None = None,
              truncation_psi: float = 1.0, clip: tuple[torch.nn.Module, Any] | None = None,
              quiet: bool = True) -> Direction:
    """Optimise a latent towards ``prompt``; return the move as a one-component :class:`Direction`.

    The source is ``latent`` (z, w or w+; see ``space``) or the latent of ``seed``. Style-based
    models are optimised in W+ (as StyleCLIP does), others in z. The loss is ``1 - cos(image,
    text)`` where ``text`` is the prompt embedding, or with ``neutral`` the normalised difference
    prompt - neutral (the StyleCLIP global-direction target), plus ``l2 * |latent - source|^2`` and
    ``id_weight * (1 - cos(image, source image))``. The direction's unit vector with ``std`` = the
    distance moved means strength 1 reproduces the optimised latent; its ``params`` record the
    losses before and after.
    """

    if not prompt or not prompt.strip():
        raise ValueError("the text prompt is empty")
    if steps < 0 or lr <= 0 or l2 < 0 or id_weight < 0:
        raise ValueError("steps must be >= 0, lr > 0, l2 >= 0 and id_weight >= 0")
    dev = next(G.parameters()).device
    model, tokenizer = clip if clip is not None else load_clip(clip_model, pretrained, dev)
    scorer = ClipScorer(model, tokenizer, dev)
    style = bool(getattr(G, "style_based", False))
    if latent is None:
        latent, space = seeds_to_z(G, [seed]).to(dev), "z"
    latent = latent.to(dev)
    if latent.shape[0] != 1:
        raise ValueError(f"text edits start from one latent, got a batch of {latent.shape[0]}")
    space = infer_space(G, latent, space)
    with torch.no_grad():
        if style:
            source = to_ws(G, latent, space, class_idx=class_idx, truncation_psi=truncation_psi).detach()
            opt_space = "w+"
        else:
            if space != "z":
                raise ValueError(f"{space} latents need a style-based model")
            source, opt_space = latent.detach(), "z"
    c = None if style else G.make_c(class_idx, source.shape[0], device=dev)

    def render(x: torch.Tensor) -> torch.Tensor:
        if style:
            return G.synthesis(x, noise_mode="const")
        return G(x, c, truncation_psi=truncation_psi)

    target = scorer.text([prompt])
    if neutral:
        target = F.normalize(target - scorer.text([neutral]), dim=-1)
    with torch.no_grad():
        source_emb = scorer.image(render(source))
        start_clip = float((1 - source_emb @ target.t()).mean())
    delta = torch.zeros_like(source, requires_grad=True)
    optim = torch.optim.Adam([delta], lr=lr)
    for _ in tqdm(range(steps), desc="clip edit", unit="step", disable=quiet):
        emb = scorer.image(render(source + delta))
        clip_loss = (1 - emb @ target.t()).mean()
        loss = clip_loss + l2 * delta.pow(2).sum()
        if id_weight:
            loss = loss + id_weight * (1 - (emb * source_emb).sum(-1)).mean()
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
    with torch.no_grad():
        end_clip = float((1 - scorer.image(render(source + delta)) @ target.t()).mean())
        move = delta.detach()[0].cpu()
        dist = float(move.norm())
    vec = move / dist if dist > 0 else move
    params = {"prompt": prompt, "neutral": neutral, "clip_model": clip_model,
              "pretrained": os.fspath(pretrained) if pretrained is not None else None, "steps": steps, "lr": lr,
              "l2": l2, "id_weight": id_weight, "clip_loss_start": start_clip, "clip_loss_end": end_clip,
              "distance": dist, "source_space": space}
    return Direction(vectors=vec.unsqueeze(0), space=opt_space, method="text", params=params,
                     weights_sha256=weights_sha(G), names=[prompt], extra={"std": torch.tensor([dist])})
