"""StyleGAN2 synthesis layer: the fused epilogue (demodulation, noise, bias, gain, activation, clamp) equals
the step-by-step reference ops, forward and backward."""

from __future__ import annotations

import math

import pytest
import torch

from zoo.models import ops
from zoo.models.stylegan2 import SynthesisLayer


def reference(layer: SynthesisLayer, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor | None,
              gain: float) -> torch.Tensor:
    """The unfused order: modulate, convolve, demodulate, add noise, then bias_act(bias, gain, clamp)."""
    styles = layer.affine(w)
    y = ops.conv2d_resample(x * styles[:, :, None, None], layer.weight, f=layer.resample_filter, up=layer.up,
                            padding=layer.padding, flip_weight=(layer.up == 1))
    wmod = layer.weight[None] * styles[:, None, :, None, None]  # per-sample weights [n, out, in, k, k]
    y = y * wmod.square().sum(dim=[2, 3, 4]).add(1e-8).rsqrt()[:, :, None, None]
    if noise is not None:
        y = y + noise
    clamp = layer.conv_clamp * gain if layer.conv_clamp is not None else None
    return ops.bias_act(y, layer.bias, act=layer.activation, gain=math.sqrt(2) * gain, clamp=clamp)


@pytest.mark.parametrize("up", [1, 2])
@pytest.mark.parametrize("activation", ["lrelu", "relu", "linear"])
@pytest.mark.parametrize("noise_mode", ["const", "random", "none"])
def test_fused_epilogue_matches_reference(up, activation, noise_mode):
    torch.manual_seed(0)
    layer = SynthesisLayer(8, 6, w_dim=5, resolution=8, up=up, activation=activation, conv_clamp=0.5).double()
    with torch.no_grad():
        layer.bias.normal_()
        layer.noise_strength.fill_(0.7)
    x = torch.randn(3, 8, 8 // up, 8 // up, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 5, dtype=torch.float64)
    gain = math.sqrt(0.5)  # the resnet architecture's second layer
    torch.manual_seed(1)
    out = layer(x, w, noise_mode=noise_mode, gain=gain)
    torch.manual_seed(1)
    noise = {"const": layer.noise_const * layer.noise_strength,
             "random": (torch.randn([3, 1, 8, 8]) * layer.noise_strength).double(), "none": None}[noise_mode]
    ref = reference(layer, x, w, noise, gain)
    assert out.shape == (3, 6, 8, 8)
    assert (ref.abs() >= 0.5 * gain - 1e-12).any(), "the clamp must bite for this test to cover it"
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)
    # autograd runs through the in-place activation and the clamp
    g_out, = torch.autograd.grad(out.square().sum(), x)
    g_ref, = torch.autograd.grad(ref.square().sum(), x)
    torch.testing.assert_close(g_out, g_ref, rtol=0, atol=1e-10)


@pytest.mark.parametrize("up", [1, 2])
@pytest.mark.parametrize("noise_mode", ["const", "none"])
def test_batch1_fused_form_matches_reference(up, noise_mode, monkeypatch):
    """Styles and demodulation folded into the weight, the bias added inside the last convolution."""
    monkeypatch.setattr(ops, "CPU_FUSED_MODCONV", True)
    calls = []
    real = ops._fused_modconv_batch1
    monkeypatch.setattr(ops, "_fused_modconv_batch1", lambda *a: calls.append(1) or real(*a))
    torch.manual_seed(0)
    layer = SynthesisLayer(8, 6, w_dim=5, resolution=8, up=up, conv_clamp=0.5).double()
    with torch.no_grad():
        layer.bias.normal_()
        layer.noise_strength.fill_(0.7)
        x = torch.randn(1, 8, 8 // up, 8 // up, dtype=torch.float64)
        w = torch.randn(1, 5, dtype=torch.float64)
        out = layer(x, w, noise_mode=noise_mode)
        noise = layer.noise_const * layer.noise_strength if noise_mode == "const" else None
        ref = reference(layer, x, w, noise, 1.0)
    assert calls, "the fused batch-1 form did not run"
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)


def test_unknown_activation_is_refused():
    with pytest.raises(ValueError, match="unknown activation 'tanh'"):
        SynthesisLayer(4, 4, w_dim=4, resolution=8, activation="tanh")


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("demodulate", [False, True])
@pytest.mark.parametrize("n", [1, 3])
def test_1x1_modulated_conv_matches_reference_forward_and_backward(channels_last, demodulate, n, monkeypatch):
    """toRGB's 1x1 modulated convolution as one batched matmul by per-sample weights, in either layout."""
    calls = []
    real = ops._modulated_1x1
    monkeypatch.setattr(ops, "_modulated_1x1", lambda *a: calls.append(1) or real(*a))
    gen = torch.Generator().manual_seed(n)
    x = torch.randn(n, 8, 5, 7, dtype=torch.float64, generator=gen)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    weight = torch.randn(3, 8, 1, 1, dtype=torch.float64, generator=gen, requires_grad=True)
    styles = torch.rand(n, 8, dtype=torch.float64, generator=gen) + 0.5
    bias = torch.randn(3, dtype=torch.float64, generator=gen)
    out = ops.modulated_conv2d(x, weight, styles, demodulate=demodulate, bias=bias, out_scale=0.7,
                               activation="lrelu", clamp=0.9)
    wmod = weight[None] * styles[:, None, :, None, None]  # [n, 3, 8, 1, 1]
    if demodulate:
        wmod = wmod * wmod.square().sum(dim=[2, 3, 4], keepdim=True).add(1e-8).rsqrt()
    ref = torch.cat([torch.nn.functional.conv2d(x[i:i + 1], wmod[i]) for i in range(n)])
    ref = ops.bias_act(ref, bias, act="lrelu", gain=0.7, clamp=0.9)
    assert calls and out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)
    g_out = torch.autograd.grad(out.square().sum(), [x, weight])
    g_ref = torch.autograd.grad(ref.square().sum(), [x, weight])
    for a, b in zip(g_out, g_ref):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)
