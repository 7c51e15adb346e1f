"""``ops.upfirdn2d`` against a plain reference: zero insertion, zero padding / cropping by slice assignment, the FIR
as a sum of shifted slices, striding. Symmetric padding runs as the convolution's own padding (no padded copy),
other padding through ``F.pad``; both must give the reference's values."""

from __future__ import annotations

import pytest
import torch

from zoo.models import ops


def reference(x: torch.Tensor, f: torch.Tensor, up: int, down: int, padding: tuple[int, int, int, int],
              gain: float) -> torch.Tensor:
    n, c, h, w = x.shape
    px0, px1, py0, py1 = padding
    xu = torch.zeros(n, c, h * up, w * up, dtype=x.dtype)
    xu[:, :, ::up, ::up] = x
    hp, wp = h * up + py0 + py1, w * up + px0 + px1
    xp = torch.zeros(n, c, hp, wp, dtype=x.dtype)
    # place xu at offset (py0, px0); negative offsets crop it
    ys, xs = max(py0, 0), max(px0, 0)
    src = xu[:, :, max(-py0, 0): h * up - max(-py1, 0), max(-px0, 0): w * up - max(-px1, 0)]
    xp[:, :, ys: ys + src.shape[2], xs: xs + src.shape[3]] = src
    f2 = f if f.ndim == 2 else torch.outer(f, f)
    kh, kw = f2.shape
    k = f2.flip([0, 1]) * gain  # upfirdn2d convolves (flip_filter=False)
    out = torch.zeros(n, c, hp - kh + 1, wp - kw + 1, dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            out += k[i, j] * xp[:, :, i: i + out.shape[2], j: j + out.shape[3]]
    return out[:, :, ::down, ::down]


@pytest.mark.parametrize("channels", [3, 20])  # 20: the channels-last FIR path
@pytest.mark.parametrize("separable", [False, True])
@pytest.mark.parametrize("up,down,padding", [
    (1, 1, (1, 1, 1, 1)),     # StyleGAN2's FIR after a stride-2 transposed conv: symmetric
    (1, 1, (2, 2, 1, 1)),     # symmetric per axis, different between axes
    (1, 1, (2, 1, 2, 1)),     # asymmetric
    (1, 1, (-1, -1, 0, 0)),   # cropping
    (2, 1, (2, 1, 2, 1)),     # upsample2d
    (1, 2, (1, 1, 1, 1)),     # downsampling FIR
])
def test_upfirdn2d_matches_the_reference(channels, separable, up, down, padding):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, channels, 7, 9, generator=gen, dtype=torch.float64)
    f = ops.make_filter([1, 3, 3, 1]).to(torch.float64)
    got = ops.upfirdn2d(x, f, up=up, down=down, padding=padding, gain=up * up, separable=separable)
    want = reference(x, f, up, down, padding, gain=up * up)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


def test_an_asymmetric_filter_is_convolved_not_correlated():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(1, 4, 6, 5, generator=gen, dtype=torch.float64)
    f = torch.tensor([[1.0, 2.0, 0.0], [0.0, 0.5, 3.0]], dtype=torch.float64)
    got = ops.upfirdn2d(x, f, padding=(1, 1, 1, 1))
    torch.testing.assert_close(got, reference(x, f, 1, 1, (1, 1, 1, 1), 1.0), rtol=0, atol=1e-12)


@pytest.mark.parametrize("channels", [3, 20])
@pytest.mark.parametrize("taps", [[1, 3, 3, 1], [1, 2, 1], [1, 5, 10, 10, 5, 1]])  # odd taps: the F.pad form
@pytest.mark.parametrize("one_d", [False, True])  # a 1-D factor, as stylegan2's separable-FIR switch passes it
def test_upsample2d_matches_the_reference(channels, taps, one_d):
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(2, channels, 5, 6, generator=gen, dtype=torch.float64)
    f2 = ops.make_filter(taps).to(torch.float64)
    f = f2.sum(dim=0) / f2.sum().sqrt() if one_d else f2
    fw = len(taps)
    p0, p1 = (fw + 1) // 2, (fw - 2) // 2
    got = ops.upsample2d(x, f)
    want = reference(x, f2, 2, 1, (p0, p1, p0, p1), gain=4)
    assert got.shape == want.shape == (2, channels, 10, 12)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
