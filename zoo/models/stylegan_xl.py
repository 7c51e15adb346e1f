"""StyleGAN-XL generator (Sauer, Schwarz and Geiger, SIGGRAPH 2022), in plain PyTorch.

Follows ``training/networks_stylegan3_resetting.py`` of autonomousvision/stylegan-xl:

- Mapping: ``z_dim`` is small (64); conditional models embed the class with an ``nn.Embedding(1000, 320)``
  (ImageNet class embeddings, indexed by ``c.argmax(1)``, even when ``c_dim`` is smaller) followed by
  ``embed_proj`` (dense 320 -> z_dim, leaky ReLU); the normalised z and projected embedding are concatenated
  (``2 * z_dim`` features). ``w_avg`` is per class (``[c_dim, w_dim]``) for conditional models, ``[w_dim]``
  otherwise; truncation lerps towards the sample's own class centre. Unconditional models keep the (unused)
  embedding table.
- Synthesis: StyleGAN3 config T/R layers. Released models above 16 px are ``SuperresGenerator`` chains: the
  critically sampled layers of each stem are removed and new "head" layers appended, so layer names keep index
  gaps and each layer has its own sampling rates, filters and padding. The architecture therefore takes the
  layer list explicitly (``layers``: one spec per layer, as stored in the checkpoint) instead of deriving it.

The layers themselves are :mod:`zoo.models.stylegan3`'s (same parameter names: ``synthesis.L<i>_<size>_<ch>.*``),
run in float32 (upstream uses float16 only on CUDA). SG3 layers take no noise.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import torch
from torch import nn

from ..base import StyleGenerator
from ..registry import ModelEntry, register_architecture, register_models
from .ops import embedding, normalize_2nd_moment
from .stylegan2 import FullyConnectedLayer, truncate_ws
from .stylegan3 import NOISE_MODES, LayerSpec, SynthesisInput, SynthesisLayer

#: LayerSpec fields a layer entry must give (plus optional conv_clamp / magnitude_ema_beta).
LAYER_FIELDS = tuple(f.name for f in dataclasses.fields(LayerSpec))


def layer_spec(entry: dict[str, Any]) -> LayerSpec:
    missing = [f for f in LAYER_FIELDS if f not in entry]
    if missing:
        raise ValueError(f"layer spec {entry.get('name', '?')} lacks {missing}")
    kw = {f: entry[f] for f in LAYER_FIELDS}
    kw["padding"] = tuple(int(p) for p in kw["padding"])
    return LayerSpec(**kw)


class MappingNetwork(nn.Module):
    """z (+ class embedding) -> ws ``[N, num_ws, w_dim]``, with per-class truncation centres."""

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int, num_layers: int = 2,
                 lr_multiplier: float = 0.01, embed_num: int = 1000, embed_dim: int = 320) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws, self.num_layers = z_dim, c_dim, w_dim, num_ws, num_layers
        self.embed = embedding(embed_num, embed_dim)
        if c_dim > 0:
            self.embed_proj = FullyConnectedLayer(embed_dim, z_dim, activation="lrelu")
        features = [z_dim * (2 if c_dim > 0 else 1)] + [w_dim] * num_layers
        for i in range(num_layers):
            setattr(self, f"fc{i}", FullyConnectedLayer(features[i], features[i + 1], activation="lrelu",
                                                        lr_multiplier=lr_multiplier))
        self.register_buffer("w_avg", torch.zeros([c_dim, w_dim] if c_dim > 0 else [w_dim]))

    def class_centres(self, c: torch.Tensor | None, n: int) -> torch.Tensor:
        """``[N, 1, w_dim]``: each sample's truncation centre (its class's ``w_avg`` row when conditional)."""
        if self.c_dim == 0:
            return self.w_avg.reshape(1, 1, -1).expand(n, 1, -1)
        return self.w_avg.index_select(0, c.argmax(1)).unsqueeze(1)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float | torch.Tensor = 1.0,
                truncation_cutoff: int | None = None,
                truncation_latent: torch.Tensor | None = None) -> torch.Tensor:
        """``truncation_latent`` ([1, w_dim] or [N, w_dim]) replaces the class centre as truncation target."""
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape [N, {self.z_dim}], got {list(z.shape)}")
        x = normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim > 0:
            if c is None or c.ndim != 2 or c.shape[1] != self.c_dim:
                raise ValueError(f"c must be one-hot [N, {self.c_dim}], got {None if c is None else list(c.shape)}")
            y = normalize_2nd_moment(self.embed_proj(self.embed(c.argmax(1))))
            x = torch.cat([x, y], dim=1)
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        ws = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if not isinstance(truncation_psi, torch.Tensor) and truncation_psi == 1:
            return ws
        if truncation_latent is not None:
            centre = _as_centre(truncation_latent, ws.shape[0], self.w_dim)
        else:
            centre = self.class_centres(c, ws.shape[0])
        return truncate_ws(ws, centre.to(ws.dtype), truncation_psi, truncation_cutoff)


def _as_centre(latent: torch.Tensor, n: int, w_dim: int) -> torch.Tensor:
    if latent.ndim == 3 and latent.shape[1] == 1:
        latent = latent[:, 0]
    if latent.ndim != 2 or latent.shape[1] != w_dim or latent.shape[0] not in (1, n):
        raise ValueError(f"truncation_latent must have shape [1, {w_dim}] or [{n}, {w_dim}], got {list(latent.shape)}")
    return latent.to(torch.float32).unsqueeze(1)


class SynthesisNetwork(nn.Module):
    """Fourier-feature input, then the listed SG3 layers in order (``ws[:, i + 1]`` feeds ``layer_names[i]``)."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, input: dict[str, Any],
                 layers: Sequence[dict[str, Any]], output_scale: float = 0.25) -> None:
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.output_scale = output_scale
        self.input = SynthesisInput(w_dim, int(input["channels"]), int(input["size"]), float(input["sampling_rate"]),
                                    float(input["bandwidth"]))
        self.layer_names: list[str] = []
        prev_size, prev_ch = int(input["size"]), int(input["channels"])
        for entry in layers:
            spec = layer_spec(entry)
            if (spec.in_size, spec.in_channels) != (prev_size, prev_ch):
                raise ValueError(f"layer {spec.name} expects {spec.in_channels} x {spec.in_size}^2 input but the "
                                 f"previous layer gives {prev_ch} x {prev_size}^2")
            prev_size, prev_ch = spec.out_size, spec.out_channels
            setattr(self, spec.name, SynthesisLayer(spec, w_dim, conv_clamp=entry.get("conv_clamp", 256),
                                                    magnitude_ema_beta=entry.get("magnitude_ema_beta", 0.999)))
            self.layer_names.append(spec.name)
        if (prev_size, prev_ch) != (img_resolution, img_channels):
            raise ValueError(f"the last layer outputs {prev_ch} x {prev_size}^2, not {img_channels} x {img_resolution}^2")
        self.num_ws = len(self.layer_names) + 1

    def forward(self, ws: torch.Tensor, noise_mode: str = "const", transform: torch.Tensor | None = None,
                noise: Sequence[torch.Tensor | None] | None = None, **_: Any) -> torch.Tensor:
        """``ws [N, num_ws, w_dim]`` -> image; ``noise_mode`` is accepted for API symmetry.

        ``noise``: StyleGAN-XL layers take no noise, so only ``None`` entries are accepted.
        ``transform``: an inverse image transform ``[3, 3]`` for this call instead of ``input.transform``.
        """
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"ws must have shape [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be const, random or none, got {noise_mode!r}")
        if noise is not None and any(n is not None for n in noise):
            raise ValueError("StyleGAN-XL synthesis layers have no noise inputs: pass noise=None")
        ws_list = ws.to(torch.float32).unbind(dim=1)
        x = self.input(ws_list[0], transform)
        for name, w in zip(self.layer_names, ws_list[1:]):
            x = getattr(self, name)(x, w)
        if self.output_scale != 1:
            x = x * self.output_scale
        return x.to(torch.float32)


@register_architecture
class StyleGANXLGenerator(StyleGenerator):
    """StyleGAN-XL ``G(z, c) = synthesis(mapping(z, c))``; stems and superresolution chains alike.

    Conditional truncation uses each sample's class centre (``mapping.w_avg[class]``), as upstream's
    ``MappingNetwork`` and ``gen_images.py`` do; :attr:`w_avg` is then the mean of the class centres.
    """

    architecture = "stylegan_xl"

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, img_resolution: int, img_channels: int,
                 input: dict[str, Any], layers: Sequence[dict[str, Any]], mapping_kwargs: dict[str, Any] | None = None,
                 output_scale: float = 0.25) -> None:
        super().__init__()
        mapping = dict(mapping_kwargs or {})
        bad = set(mapping) - {"num_layers", "lr_multiplier", "embed_num", "embed_dim"}
        if bad:
            raise ValueError(f"unknown StyleGAN-XL mapping option(s) {sorted(bad)}")
        self._kwargs = dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution,
                            img_channels=img_channels, input=dict(input), layers=[dict(e) for e in layers],
                            mapping_kwargs=mapping, output_scale=output_scale)
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = SynthesisNetwork(w_dim, img_resolution, img_channels, input, layers, output_scale)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim, self.num_ws, **mapping)

    @property
    def w_avg(self) -> torch.Tensor:
        """``[w_dim]``: the truncation centre (conditional models: the mean of the per-class centres)."""
        w = self.mapping.w_avg
        return w if w.ndim == 1 else w.mean(dim=0)

    def class_w_avg(self, class_idx: int | Sequence[int]) -> torch.Tensor:
        """``[K, w_dim]``: the truncation centres of the given classes (for ``truncation_latent=``)."""
        if self.c_dim == 0:
            raise ValueError("this model is unconditional: it has one truncation centre, G.w_avg")
        idx = torch.as_tensor([class_idx] if isinstance(class_idx, int) else list(class_idx), dtype=torch.long)
        if idx.numel() == 0 or int(idx.min()) < 0 or int(idx.max()) >= self.c_dim:
            raise ValueError(f"class index out of range: this model has classes 0..{self.c_dim - 1}")
        return self.mapping.w_avg.index_select(0, idx.to(self.mapping.w_avg.device))

    @property
    def onnx_forward(self) -> Any:
        """Conditional models export per-class truncation (``sdk.export_onnx``'s hook); unconditional ones use
        the exporter's default body (one ``w_avg``)."""
        return self._onnx_forward if self.c_dim > 0 else None

    def _onnx_forward(self, parts: str, inputs: dict[str, torch.Tensor], noise_mode: str,
                      truncation_cutoff: int | None = None) -> torch.Tensor:
        if parts == "synthesis":
            return self.synthesis(inputs["ws"], noise_mode=noise_mode)
        z, c, psi = inputs["z"], inputs["c"], inputs["truncation_psi"]
        ws = self.mapping(z, c, truncation_psi=1.0)
        ws = truncate_ws(ws, self.mapping.class_centres(c, z.shape[0]), psi, truncation_cutoff)
        return ws if parts == "mapping" else self.synthesis(ws, noise_mode=noise_mode)


# --- Published checkpoints ---------------------------------------------------------------------------------
# autonomousvision/stylegan-xl README, "Pretrained Models" (URLs and FIDs as listed there); code and models
# under the repository's MIT licence.
_S3 = "https://s3.eu-central-1.amazonaws.com/avg-projects/stylegan_xl/models"
_PAPER = "StyleGAN-XL: Scaling StyleGAN to Large Diverse Datasets (Sauer et al., SIGGRAPH 2022)"
_LICENSE_NOTE = ("autonomousvision/stylegan-xl: MIT licence (code and released models); it builds on NVIDIA's "
                 "StyleGAN3 code. Check the training dataset's terms for your use.")
_IMAGENET_NOTE = " ImageNet's terms of access allow non-commercial research and educational use only."


def _xl(key: str, dataset: str, res: int, fid: float, classes: int = 0, tags: tuple[str, ...] = (),
        file: str | None = None) -> ModelEntry:
    file = file or f"{key}{res}.pkl"
    notes = ("Sampling as upstream gen_images.py: z = RandomState(seed).randn(1, 64); truncation towards the "
             "sample's class centre (mapping.w_avg[class]); gen_images.py draws the class from "
             "RandomState(seed).randint(c_dim) when none is given.") if classes else \
        "Sampling as upstream gen_images.py: z = RandomState(seed).randn(1, 64), truncation towards w_avg."
    return ModelEntry(name=f"stylegan-xl-{key}-{res}", family="stylegan_xl", architecture="stylegan_xl",
                      source_format="stylegan-xl-pickle", url=f"{_S3}/{file}", dataset=dataset, resolution=res,
                      license="mit", conditional=classes > 0, num_classes=classes, paper=_PAPER, fid=fid,
                      source_file=file, notes=notes, tags=tags,
                      license_note=_LICENSE_NOTE + (_IMAGENET_NOTE if dataset == "ImageNet" else ""))


register_models(
    *(_xl("imagenet", "ImageNet", r, f, classes=1000) for r, f in
      [(16, 0.73), (32, 1.11), (64, 1.52), (128, 1.77), (256, 2.26), (512, 2.42), (1024, 2.51)]),
    _xl("cifar10", "CIFAR-10", 32, 1.85, classes=10, file="cifar10.pkl"),
    *(_xl("ffhq", "FFHQ", r, f, tags=("faces",)) for r, f in [(256, 2.19), (512, 2.23), (1024, 2.02)]),
    *(_xl("pokemon", "Pokémon", r, f) for r, f in [(256, 23.97), (512, 23.82), (1024, 25.47)]),
)
