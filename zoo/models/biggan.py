"""BigGAN-deep (Brock et al., ICLR 2019) in the layout of Hugging Face's pytorch-pretrained-BigGAN.

Facts (huggingface/pytorch-pretrained-BigGAN ``pytorch_pretrained_biggan/model.py``, commit 1e18aed):

- ``embeddings``: ``Linear(num_classes, z_dim, bias=False)``; the condition vector is ``cat(z, embed)``
  (``2 * z_dim`` wide) and feeds ``gen_z`` and every conditional batch norm.
- Spectrally normalised layers store ``weight_orig``, ``weight_u``, ``weight_v``. In ``eval()`` mode torch's
  ``spectral_norm`` uses ``sigma = u . (W v)`` with the *stored* vectors (no power iteration), so we do the
  same; :meth:`BigGANDeep.spectral_norm_step_` reproduces the one power iteration that upstream runs on every
  call in train mode.
- ``gen_z`` output is viewed as NHWC ``[N, 4, 4, 16 * ch]`` (TensorFlow order) and permuted to NCHW.
- ``BigGANBatchNorm`` holds ``n_stats`` rows of precomputed statistics, one per truncation
  ``0, 1/(n_stats-1), ..., 1``. The row is picked by ``coef, idx = math.modf(t / step)`` and, when
  ``coef != 0``, mixed as ``row[idx] * coef + row[idx + 1] * (1 - coef)`` -- the reverse of a linear
  interpolation. We reproduce it literally because the published outputs depend on it.
- Generator blocks are bottleneck residual blocks (1x1 -> 3x3 -> 3x3 -> 1x1, nearest 2x upsampling
  before the first 3x3); the skip drops the upper half of the channels when the width shrinks.
- One self-attention layer sits before ``layers[attention_layer_position]`` (it takes that list slot,
  so the block indices after it shift by one, as in the upstream state dict).
- The final ``conv_to_rgb`` has ``ch`` output channels of which the first 3 are kept, then ``tanh``.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..base import GanGenerator
from ..registry import ModelEntry, register_architecture, register_models
from .ops import on_host


@on_host
def _random_unit(n: int) -> torch.Tensor:
    """A random unit vector: the initial power-iteration state (the checkpoint's values replace it)."""
    return F.normalize(torch.randn(n), dim=0)


class _SpectralNormLayer(nn.Module):
    """A conv/linear layer whose weight is ``weight_orig / sigma`` with stored power-iteration vectors."""

    def __init__(self, weight_shape: Sequence[int], bias: bool, eps: float) -> None:
        super().__init__()
        out_features = int(weight_shape[0])
        in_features = int(math.prod(weight_shape[1:]))
        self.weight_orig = nn.Parameter(torch.randn(*weight_shape))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.register_buffer("weight_u", _random_unit(out_features))
        self.register_buffer("weight_v", _random_unit(in_features))
        self.eps = eps

    def weight(self) -> torch.Tensor:
        w = self.weight_orig
        w_mat = w.reshape(w.shape[0], -1)
        sigma = torch.dot(self.weight_u, torch.mv(w_mat, self.weight_v))
        return w / sigma

    @torch.no_grad()
    def power_iteration_(self) -> None:
        """One power-iteration step on ``weight_u``/``weight_v``, as torch's ``spectral_norm`` in train mode."""
        w_mat = self.weight_orig.reshape(self.weight_orig.shape[0], -1)
        self.weight_v.copy_(F.normalize(torch.mv(w_mat.t(), self.weight_u), dim=0, eps=self.eps))
        self.weight_u.copy_(F.normalize(torch.mv(w_mat, self.weight_v), dim=0, eps=self.eps))


class SNConv2d(_SpectralNormLayer):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, padding: int = 0, bias: bool = True,
                 eps: float = 1e-12) -> None:
        super().__init__((out_channels, in_channels, kernel_size, kernel_size), bias, eps)
        self.padding = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight(), self.bias, padding=self.padding)


class SNLinear(_SpectralNormLayer):
    def __init__(self, in_features: int, out_features: int, bias: bool = True, eps: float = 1e-12) -> None:
        super().__init__((out_features, in_features), bias, eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight(), self.bias)


class SelfAttn(nn.Module):
    """SAGAN self-attention with 2x max-pooled keys/values and a learned residual gain ``gamma``."""

    def __init__(self, in_channels: int, eps: float) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.snconv1x1_theta = SNConv2d(in_channels, in_channels // 8, 1, bias=False, eps=eps)
        self.snconv1x1_phi = SNConv2d(in_channels, in_channels // 8, 1, bias=False, eps=eps)
        self.snconv1x1_g = SNConv2d(in_channels, in_channels // 2, 1, bias=False, eps=eps)
        self.snconv1x1_o_conv = SNConv2d(in_channels // 2, in_channels, 1, bias=False, eps=eps)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, ch, h, w = x.shape
        theta = self.snconv1x1_theta(x).reshape(n, ch // 8, h * w)
        phi = F.max_pool2d(self.snconv1x1_phi(x), 2).reshape(n, ch // 8, h * w // 4)
        attn = torch.softmax(torch.bmm(theta.permute(0, 2, 1), phi), dim=-1)
        g = F.max_pool2d(self.snconv1x1_g(x), 2).reshape(n, ch // 2, h * w // 4)
        attn_g = torch.bmm(g, attn.permute(0, 2, 1)).reshape(n, ch // 2, h, w)
        return x + self.gamma * self.snconv1x1_o_conv(attn_g)


class BigGANBatchNorm(nn.Module):
    """Batch norm with per-truncation precomputed statistics; conditional gain/bias from the class vector."""

    def __init__(self, num_features: int, condition_vector_dim: int | None = None, n_stats: int = 51,
                 eps: float = 1e-4, conditional: bool = True) -> None:
        super().__init__()
        self.eps = eps
        self.conditional = conditional
        self.step_size = 1.0 / (n_stats - 1)
        self.register_buffer("running_means", torch.zeros(n_stats, num_features))
        self.register_buffer("running_vars", torch.ones(n_stats, num_features))
        if conditional:
            if condition_vector_dim is None:
                raise ValueError("a conditional BigGANBatchNorm needs condition_vector_dim")
            self.scale = SNLinear(condition_vector_dim, num_features, bias=False, eps=eps)
            self.offset = SNLinear(condition_vector_dim, num_features, bias=False, eps=eps)
        else:
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))

    def stats(self, truncation: float | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(truncation, torch.Tensor):
            return self._stats_graph(truncation)
        coef, start = math.modf(truncation / self.step_size)
        i = int(start)
        if coef != 0.0:  # upstream's (reversed) weights, kept on purpose
            mean = self.running_means[i] * coef + self.running_means[i + 1] * (1 - coef)
            var = self.running_vars[i] * coef + self.running_vars[i + 1] * (1 - coef)
        else:
            mean, var = self.running_means[i], self.running_vars[i]
        return mean, var

    def _stats_graph(self, truncation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`stats` for a scalar tensor, as gathers instead of Python branching (ONNX export).

        The same float64 arithmetic (``x - floor(x)`` is exactly ``math.modf``'s fraction for x >= 0) and
        the same float32 blend, so a float64 psi gives bit-identical statistics.
        """
        # an explicit float64 divisor: the exporter would store the Python float step through float32
        step = torch.tensor(self.step_size, dtype=torch.float64, device=truncation.device)
        pos = truncation.to(torch.float64).reshape(1) / step
        start = torch.floor(pos)
        coef = pos - start
        last = self.running_means.shape[0] - 1
        i = start.to(torch.int64).clamp(0, last)
        j = (i + 1).clamp(max=last)
        w_i, w_j = coef.to(torch.float32), (1 - coef).to(torch.float32)

        def pick(rows: torch.Tensor) -> torch.Tensor:
            a, b = rows.index_select(0, i)[0], rows.index_select(0, j)[0]
            return torch.where(coef != 0, a * w_i + b * w_j, a)

        return pick(self.running_means), pick(self.running_vars)

    def forward(self, x: torch.Tensor, truncation: float | torch.Tensor,
                condition_vector: torch.Tensor | None = None) -> torch.Tensor:
        mean, var = self.stats(truncation)
        if not self.conditional:
            return F.batch_norm(x, mean, var, self.weight, self.bias, training=False, momentum=0.0, eps=self.eps)
        mean = mean[None, :, None, None]
        var = var[None, :, None, None]
        weight = 1 + self.scale(condition_vector)[:, :, None, None]
        bias = self.offset(condition_vector)[:, :, None, None]
        return (x - mean) / torch.sqrt(var + self.eps) * weight + bias


class GenBlock(nn.Module):
    """BigGAN-deep residual block (channel reduction 4)."""

    def __init__(self, in_size: int, out_size: int, condition_vector_dim: int, up_sample: bool, n_stats: int,
                 eps: float, reduction_factor: int = 4) -> None:
        super().__init__()
        self.up_sample = up_sample
        self.drop_channels = in_size != out_size
        mid = in_size // reduction_factor
        self.bn_0 = BigGANBatchNorm(in_size, condition_vector_dim, n_stats, eps)
        self.conv_0 = SNConv2d(in_size, mid, 1, eps=eps)
        self.bn_1 = BigGANBatchNorm(mid, condition_vector_dim, n_stats, eps)
        self.conv_1 = SNConv2d(mid, mid, 3, padding=1, eps=eps)
        self.bn_2 = BigGANBatchNorm(mid, condition_vector_dim, n_stats, eps)
        self.conv_2 = SNConv2d(mid, mid, 3, padding=1, eps=eps)
        self.bn_3 = BigGANBatchNorm(mid, condition_vector_dim, n_stats, eps)
        self.conv_3 = SNConv2d(mid, out_size, 1, eps=eps)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, truncation: float | torch.Tensor) -> torch.Tensor:
        skip = x
        x = self.conv_0(F.relu(self.bn_0(x, truncation, cond)))
        x = F.relu(self.bn_1(x, truncation, cond))
        if self.up_sample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self.conv_1(x)
        x = self.conv_2(F.relu(self.bn_2(x, truncation, cond)))
        x = self.conv_3(F.relu(self.bn_3(x, truncation, cond)))
        if self.drop_channels:
            skip = skip[:, :skip.shape[1] // 2]
        if self.up_sample:
            skip = F.interpolate(skip, scale_factor=2, mode="nearest")
        return x + skip


class Generator(nn.Module):
    """Condition vector -> image; submodule names follow upstream's ``BigGAN.generator``."""

    def __init__(self, z_dim: int, channel_width: int, layers: Sequence[Sequence[Any]], attention_layer_position: int,
                 eps: float, n_stats: int) -> None:
        super().__init__()
        ch = channel_width
        self.channel_width = ch
        cond_dim = 2 * z_dim
        self.gen_z = SNLinear(cond_dim, 4 * 4 * 16 * ch, eps=eps)
        mods: list[nn.Module] = []
        for i, (up, in_mult, out_mult) in enumerate(layers):
            if i == attention_layer_position:
                mods.append(SelfAttn(ch * int(in_mult), eps=eps))
            mods.append(GenBlock(ch * int(in_mult), ch * int(out_mult), cond_dim, bool(up), n_stats, eps))
        self.layers = nn.ModuleList(mods)
        self.bn = BigGANBatchNorm(ch, n_stats=n_stats, eps=eps, conditional=False)
        self.conv_to_rgb = SNConv2d(ch, ch, 3, padding=1, eps=eps)

    def forward(self, cond: torch.Tensor, truncation: float | torch.Tensor) -> torch.Tensor:
        x = self.gen_z(cond)
        x = x.reshape(-1, 4, 4, 16 * self.channel_width).permute(0, 3, 1, 2).contiguous()
        for layer in self.layers:
            x = layer(x, cond, truncation) if isinstance(layer, GenBlock) else layer(x)
        x = self.conv_to_rgb(F.relu(self.bn(x, truncation)))
        return torch.tanh(x[:, :3])


BIGGAN_DEEP_128_LAYERS = [[False, 16, 16], [True, 16, 16], [False, 16, 16], [True, 16, 8], [False, 8, 8],
                          [True, 8, 4], [False, 4, 4], [True, 4, 2], [False, 2, 2], [True, 2, 1]]


@register_architecture
class BigGANDeep(GanGenerator):
    """``G(z, c, truncation_psi=t)``: z ``[N, z_dim]`` (already truncated-normal * t), c ``[N, num_classes]``.

    ``truncation_psi`` is BigGAN's truncation ``t`` in (0, 1]: it selects the batch-norm statistics; it
    does not rescale z (draw z with :func:`sdk.sampling.truncated_noise`, as ``sdk.sample`` does).
    """

    architecture = "biggan-deep"
    style_based = False
    z_convention = "biggan"
    # psi picks the statistics row as psi / (1 / (n_stats - 1)) in float64, like upstream's Python floats; a
    # float32 psi would land on the neighbouring row at grid values such as 0.02 (see BigGANBatchNorm.stats).
    psi_dtype = torch.float64
    psi_range = (0.0, 1.0)

    def __init__(self, output_dim: int = 128, z_dim: int = 128, class_embed_dim: int = 128, channel_width: int = 128,
                 num_classes: int = 1000, layers: Sequence[Sequence[Any]] | None = None,
                 attention_layer_position: int = 8, eps: float = 1e-4, n_stats: int = 51) -> None:
        super().__init__()
        layers = [[bool(u), int(a), int(b)] for u, a, b in (layers or BIGGAN_DEEP_128_LAYERS)]
        if n_stats < 2:
            raise ValueError("n_stats must be >= 2")
        n_up = sum(1 for u, _, _ in layers if u)
        if 4 * 2 ** n_up != output_dim:
            raise ValueError(f"layers upsample 4 -> {4 * 2 ** n_up}, but output_dim is {output_dim}")
        if int(layers[-1][2]) != 1:
            raise ValueError("the last layer must end at 1 x channel_width (the width of conv_to_rgb)")
        # class_embed_dim is kept for fidelity with upstream configs; upstream embeds to z_dim regardless.
        self._kwargs = dict(output_dim=output_dim, z_dim=z_dim, class_embed_dim=class_embed_dim,
                            channel_width=channel_width, num_classes=num_classes, layers=layers,
                            attention_layer_position=attention_layer_position, eps=eps, n_stats=n_stats)
        self.z_dim, self.c_dim = z_dim, num_classes
        self.w_dim, self.num_ws = 0, 0
        self.img_resolution, self.img_channels = output_dim, 3
        self.embeddings = nn.Linear(num_classes, z_dim, bias=False)
        self.generator = Generator(z_dim, channel_width, layers, attention_layer_position, eps, n_stats)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, noise_mode: str = "const") -> torch.Tensor:
        self.check_inputs(z, c)
        if isinstance(truncation_psi, torch.Tensor):  # ONNX export: psi stays a graph input
            t: float | torch.Tensor = truncation_psi
        else:
            t = float(truncation_psi)
            if not 0 < t <= 1:
                raise ValueError(f"BigGAN truncation must be in (0, 1], got {truncation_psi}")
        if truncation_cutoff is not None:
            raise ValueError("BigGAN has no per-layer truncation: drop truncation_cutoff")
        cond = torch.cat([z, self.embeddings(c.to(z.dtype))], dim=1)
        return self.generator(cond, t)

    def spectral_norm_step_(self, steps: int = 1) -> None:
        """Run ``steps`` power iterations on every spectral-norm layer, updating ``weight_u``/``weight_v``.

        Upstream's README example calls the model without ``eval()``; torch's ``spectral_norm`` then runs one
        such step before every forward, so outputs drift from call to call. ``steps=1`` on a freshly loaded
        model followed by a normal call reproduces upstream's first train-mode call. Not needed otherwise:
        the published weights are meant to be used with the stored vectors (``eval()``).
        """
        for _ in range(steps):
            for m in self.modules():
                if isinstance(m, _SpectralNormLayer):
                    m.power_iteration_()


_BIGGAN_S3 = "https://s3.amazonaws.com/models.huggingface.co/biggan"
_BIGGAN_PAPER = "Large Scale GAN Training for High Fidelity Natural Image Synthesis (Brock et al., ICLR 2019)"


def _biggan(res: int) -> ModelEntry:
    return ModelEntry(
        name=f"biggan-deep-{res}", family="biggan", architecture="biggan-deep", source_format="biggan-hf",
        url=f"{_BIGGAN_S3}/biggan-deep-{res}-pytorch_model.bin", dataset="ImageNet (ILSVRC-2012, 1000 classes)",
        resolution=res, license="apache-2.0", conditional=True, num_classes=1000, paper=_BIGGAN_PAPER,
        source_file=f"biggan-deep-{res}-pytorch_model.bin",
        license_note=("Weights: DeepMind's BigGAN-deep TF Hub release (Apache-2.0), converted to PyTorch by "
                      "Hugging Face's pytorch-pretrained-BigGAN (code MIT). Trained on ImageNet; check the "
                      "dataset terms for your use."),
        companion_urls=(f"{_BIGGAN_S3}/biggan-deep-{res}-config.json",),
        notes=(f"Two upstream files: the weights at `url` and the config at "
               f"{_BIGGAN_S3}/biggan-deep-{res}-config.json (downloaded alongside automatically). "
               "Sampling draws z from a truncated normal on [-2, 2] times the truncation; "
               "classes by index or ImageNet name (`--class \"golden retriever\"`)."),
        tags=("imagenet", "class-conditional"),
    )


register_models(_biggan(128), _biggan(256), _biggan(512))
