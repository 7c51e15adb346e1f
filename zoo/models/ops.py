"""Reference ops shared by the style-based generators, in plain PyTorch (no custom kernels).

Semantics follow the NVlabs ``torch_utils/ops`` reference paths (``upfirdn2d``, ``bias_act``,
``conv2d_resample``) so that converted weights reproduce upstream outputs; the code is our own.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import weakref
from typing import Any, Callable, Iterator, NamedTuple, Sequence

import torch
import torch.nn.functional as F

LRELU_GAIN = math.sqrt(2.0)


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def on_host(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """Decorator for small constructor-time tensors: compute on the CPU, return on the default device.

    ``zoo.format``'s size check builds each architecture under ``torch.device("meta")``, where out-of-place
    arithmetic runs torch's Python reference ops; their first use imports ``torch._dynamo``, about a second in
    a fresh process. In a plain CPU build this changes nothing (same ops, same random stream).
    """
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> torch.Tensor:
        with torch.device("cpu"):
            t = fn(*args, **kwargs)
        return t.to(torch.get_default_device())

    return wrapper


def embedding(num_embeddings: int, embedding_dim: int) -> torch.nn.Embedding:
    """``nn.Embedding`` with its default N(0, 1) init drawn by ``randn`` (the same values): its own ``normal_``
    init is one of the meta-device ops that import ``torch._dynamo`` (see :func:`on_host`)."""
    return torch.nn.Embedding(num_embeddings, embedding_dim, _weight=torch.randn(num_embeddings, embedding_dim))


@on_host
def make_filter(taps: Sequence[float]) -> torch.Tensor:
    """Normalised 2-D FIR filter from 1-D taps (outer product), as stored in ``resample_filter`` buffers."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    if f.ndim == 1:
        f = torch.outer(f, f)
    return f / f.sum()


def bias_act(
    x: torch.Tensor,
    b: torch.Tensor | None = None,
    act: str = "linear",
    gain: float | None = None,
    clamp: float | None = None,
    alpha: float = 0.2,
) -> torch.Tensor:
    """Add a per-channel bias (dim 1), apply an activation, scale by ``gain``, clamp to +-``clamp``."""
    if b is not None:
        x = x + b.reshape([1, -1] + [1] * (x.ndim - 2))
    if act == "lrelu":
        x = F.leaky_relu(x, alpha)
        gain = LRELU_GAIN if gain is None else gain
    elif act == "relu":
        x = F.relu(x)
        gain = LRELU_GAIN if gain is None else gain
    elif act != "linear":
        raise ValueError(f"unknown activation {act!r}")
    if gain is not None and gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


class Epilogue(NamedTuple):
    """What a modulated layer does after its bias, in the reference's order: add ``noise`` (broadcastable to
    [N, 1, H, W], already times the layer's gain), the activation ("linear", "lrelu" with slope 0.2, or "relu"),
    then clamp to +-``clamp``. The compiled kernels apply it as they write their result, :func:`apply_epilogue`
    elsewhere."""

    noise: torch.Tensor | None = None
    activation: str = "linear"
    clamp: float | None = None


_ACT_SLOPE = {"linear": 1.0, "lrelu": 0.2, "relu": 0.0}


def apply_epilogue(x: torch.Tensor, ep: Epilogue | None) -> torch.Tensor:
    """:class:`Epilogue` ``ep`` as PyTorch passes: the noise and activation in place on ``x`` (a tensor the caller
    made, that no backward needs), the clamp out of place (autograd keeps the activation's output)."""
    if ep is None:
        return x
    if ep.noise is not None:
        x = x.add_(ep.noise.to(x.dtype))
    if ep.activation == "lrelu":
        x = F.leaky_relu(x, 0.2, inplace=True)
    elif ep.activation == "relu":
        x = F.relu(x, inplace=True)
    elif ep.activation != "linear":
        raise ValueError(f"unknown activation {ep.activation!r}")
    if ep.clamp is not None and ep.clamp >= 0:
        x = x.clamp(-ep.clamp, ep.clamp)
    return x


def _epilogue_args(ep: Epilogue | None, n: int, h: int, w: int) -> tuple | None:
    """:class:`Epilogue` ``ep`` as the compiled kernels take it: (noise plane address, elements between samples'
    planes, leaky slope, clamp or -1, the plane to keep alive); None when its noise is not one [H, W] plane, shared
    or per sample (then :func:`apply_epilogue` does it)."""
    if ep is None:
        return None, 0, 1.0, -1.0, None
    if ep.activation not in _ACT_SLOPE:
        raise ValueError(f"unknown activation {ep.activation!r}")
    plane, step = None, 0
    if ep.noise is not None:
        if ep.noise.dtype != torch.float32 or ep.noise.device.type != "cpu":
            return None
        try:
            if tuple(torch.broadcast_shapes(ep.noise.shape, (n, 1, h, w))) != (n, 1, h, w):
                return None
        except RuntimeError:
            return None
        full = ep.noise.expand(n, 1, h, w)
        shared = n == 1 or full.stride(0) == 0
        plane, step = (full[0, 0].contiguous(), 0) if shared else (full[:, 0].contiguous(), h * w)
    clamp = -1.0 if ep.clamp is None or ep.clamp < 0 else float(ep.clamp)
    return None if plane is None else plane.data_ptr(), step, _ACT_SLOPE[ep.activation], clamp, plane


def _separable(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Split a rank-1 2-D filter into (column, row) taps; ``None`` when it is not separable."""
    if f.ndim != 2:
        return None
    row = f.sum(dim=0)
    col = f.sum(dim=1)
    total = f.sum()
    if total == 0 or not torch.allclose(torch.outer(col, row) / total, f, atol=1e-7, rtol=1e-5):
        return None
    return col / total.sqrt(), row / total.sqrt()


#: Per-op memory-layout choice on CPU: feed oneDNN channels-last input (True) or keep NCHW (False). Values are
#: identical either way; speed is not: on an Intel Xeon (AVX-512, AMX) channels-last made transposed convs 1.3-1.7x
#: and the FIR 2.5x faster, on an AMD EPYC (Zen 3, AVX2) transposed convs were slower channels-last at 256 px. The
#: defaults are the Intel measurements; ``sdk.backends`` measures this machine once and calls
#: :func:`set_cpu_layouts` with its own answer.
CPU_CHANNELS_LAST = {"conv_transpose": True, "fir": True}


def set_cpu_layouts(choices: dict[str, bool]) -> None:
    """Set :data:`CPU_CHANNELS_LAST` entries (unknown op names are an error)."""
    unknown = set(choices) - set(CPU_CHANNELS_LAST)
    if unknown:
        raise ValueError(f"unknown layout op(s) {sorted(unknown)}; known: {sorted(CPU_CHANNELS_LAST)}")
    CPU_CHANNELS_LAST.update({k: bool(v) for k, v in choices.items()})


def _channels_last_on_cpu(x: torch.Tensor, op: str) -> torch.Tensor:
    """``x`` in channels-last memory order on CPU (values unchanged) when :data:`CPU_CHANNELS_LAST` says so."""
    if x.device.type != "cpu" or x.ndim != 4 or not CPU_CHANNELS_LAST[op]:
        return x
    try:
        return x.contiguous(memory_format=torch.channels_last)
    except RuntimeError:  # functorch transforms (vmap, jacrev) refuse layout changes: keep NCHW there
        return x


#: Winograd minimal filtering for the stride-1, 3x3, pad-1 convolutions on CPU: 0 (off, the default: one oneDNN
#: convolution), 2 for F(2x2, 3x3), 4 for F(4x4, 3x3) or 6 for F(6x6, 3x3). It trades multiplications for additions
#: (2.25x / 4x / 5.06x fewer in the GEMM) at slightly different fp32 rounding, so it is a per-machine speed choice
#: like the layouts above: ``sdk.backends.tune.kernel_winograd`` times 0, 2 and 4 here and calls
#: :func:`set_cpu_winograd` only where one wins; 6 is opt-in (``GANZOO_WINOGRAD=6``, see there why). With 6, a layer
#: whose size F(6x6) tiles with more products than F(4x4) (32 px and below, where the 6-pixel tiles overhang) runs
#: F(4x4): see :func:`winograd_tile`.
CPU_WINOGRAD = 0
#: ... and only for convolutions with at least this many input channels (narrow, high-resolution layers spend
#: more on the transforms than the GEMM saves).
CPU_WINOGRAD_MIN_CHANNELS = 0


#: Which eager form each Winograd layer runs, per ``(tile, in, out, H, W)``: ``False`` (the default) one GEMM per
#: transform point, tiles stacked by point; ``True`` tiles as rows (see :func:`_winograd_grouped`), the per-point
#: GEMMs as one grouped 1x1 convolution and, in a modulated convolution, the styles, demodulation and bias inside
#: the transform's own passes. Same products, summed in another order. Which is faster depends on the layer and the
#: CPU (AMD Zen 5, batch 1, by point vs rows: 512 ch at 32 px 6.7 vs 8.2 ms, 256 ch at 128 px 25.5 vs 22.0), so a
#: shape not in the table is decided by :data:`CPU_WINOGRAD_ROWS_PROBE` when one is set (``sdk.backends.tune`` times
#: both forms), else runs by point. Batch size is not in the key, so a model gives the same values at every batch
#: size.
CPU_WINOGRAD_ROWS: dict[tuple[int, int, int, int, int], bool] = {}
CPU_WINOGRAD_ROWS_PROBE: Callable[[tuple[int, int, int, int, int]], bool] | None = None

#: The compiled tile transforms (``zoo.models.native.winograd()``) for eager CPU inference, or None for the PyTorch
#: forms. Set per machine by ``sdk.backends.tune.apply_kernel_layouts``; both GEMM forms (by point, tiles as rows)
#: then take their input from, and give their products to, these loops, with the styles, demodulation and bias
#: inside them. Its ``tiles`` say which F(m x m) it transforms; another tile keeps the PyTorch form.
CPU_WINOGRAD_NATIVE: Any = None

#: With :data:`CPU_WINOGRAD_NATIVE`, stride-2 3x3 transposed convolutions can run as a nested Winograd F(2, 2)
#: (:func:`conv_transpose3x3_winograd`: 25 GEMMs per 2x2 input tile, against 36 products per tile directly), chosen
#: per layer shape ``(in, out, H, W) -> on`` against the form :data:`CPU_POLYPHASE` gives it; a shape not in the
#: table is decided by :data:`CPU_WINOGRAD_UP_PROBE` (``sdk.backends.tune`` times both) when one is set, else off.
CPU_WINOGRAD_UP: dict[tuple[int, int, int, int], bool] = {}
CPU_WINOGRAD_UP_PROBE: Callable[[tuple[int, int, int, int]], bool] | None = None


#: Batch-1 CPU inference folds the styles and demodulation into the weight (upstream's fused modconv) instead of
#: scaling the activations, for layers whose activations outnumber their weights (H*W > out_channels*k*k) and that
#: do not run as Winograd. Off by default; ``sdk.backends.tune.kernel_forms`` times both forms on this machine.
CPU_FUSED_MODCONV = False


#: Stride-2 3x3 transposed convolutions on CPU as four stride-1 convolutions, one per output phase (2x2, 2x1, 1x2
#: and 1x1 taps of the kernel), interleaved into the output: the same products, summed in another order. Which is
#: faster depends on the layer and the CPU (AMD Zen 5, batch 1: 256 -> 128 ch at 128 px 22 vs 27 ms, 64 -> 32 ch at
#: 512 px 34 vs 28 ms), so it is decided per layer shape: ``(in, out, H, W, channels_last) -> on``. A shape not in
#: the table is decided by :data:`CPU_POLYPHASE_PROBE` when one is set (``sdk.backends.tune`` times both forms on
#: this machine and keeps the answers), else runs as one transposed convolution. Batch size is not in the key, so a
#: model gives the same values at every batch size.
CPU_POLYPHASE: dict[tuple[int, int, int, int, bool], bool] = {}
CPU_POLYPHASE_PROBE: Callable[[tuple[int, int, int, int, bool]], bool] | None = None


def set_cpu_winograd(tile: int, min_channels: int = 0) -> None:
    """Set :data:`CPU_WINOGRAD` (0 off, 2, 4 or 6: output tile size) and :data:`CPU_WINOGRAD_MIN_CHANNELS`."""
    global CPU_WINOGRAD, CPU_WINOGRAD_MIN_CHANNELS
    if tile not in (0, 2, 4, 6):
        raise ValueError(f"winograd tile must be 0 (off), 2, 4 or 6, not {tile!r}")
    CPU_WINOGRAD, CPU_WINOGRAD_MIN_CHANNELS = int(tile), int(min_channels)


@contextlib.contextmanager
def cpu_winograd(tile: int, min_channels: int = 0) -> Iterator[None]:
    """:data:`CPU_WINOGRAD` / :data:`CPU_WINOGRAD_MIN_CHANNELS` set inside the block, restored after it."""
    saved = (CPU_WINOGRAD, CPU_WINOGRAD_MIN_CHANNELS)
    set_cpu_winograd(tile, min_channels)
    try:
        yield
    finally:
        set_cpu_winograd(*saved)


# Transform matrices (B^T, G, A^T) of F(m, 3) (Lavin & Gray 2015, "Fast Algorithms for Convolutional Neural
# Networks"): interpolation points 0, +-1 for m=2, 0, +-1, +-2 for m=4 and 0, +-1, +-2, +-1/2 for m=6, plus the point
# at infinity. A^T is the points' powers, G their Lagrange weights, B^T solved from them (Toom-Cook); F(6x6) rounds
# about as F(4x4) in fp32 with these points (tests/test_winograd.py).
_WINO_MATS = {
    2: ([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
        [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]],
        [[1, 1, 1, 0], [0, 1, -1, -1]]),
    4: ([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
         [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
        [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
         [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]],
        [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]),
    6: ([[1, 0, -21 / 4, 0, 21 / 4, 0, -1, 0], [0, 1, 1, -17 / 4, -17 / 4, 1, 1, 0],
         [0, -1, 1, 17 / 4, -17 / 4, -1, 1, 0], [0, 1 / 2, 1 / 4, -5 / 2, -5 / 4, 2, 1, 0],
         [0, -1 / 2, 1 / 4, 5 / 2, -5 / 4, -2, 1, 0], [0, 2, 4, -5 / 2, -5, 1 / 2, 1, 0],
         [0, -2, 4, 5 / 2, -5, -1 / 2, 1, 0], [0, -1, 0, 21 / 4, 0, -21 / 4, 0, 1]],
        [[1, 0, 0], [-2 / 9, -2 / 9, -2 / 9], [-2 / 9, 2 / 9, -2 / 9], [1 / 90, 1 / 45, 2 / 45],
         [1 / 90, -1 / 45, 2 / 45], [32 / 45, 16 / 45, 8 / 45], [32 / 45, -16 / 45, 8 / 45], [0, 0, 1]],
        [[1, 1, 1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 1 / 2, -1 / 2, 0], [0, 1, 1, 4, 4, 1 / 4, 1 / 4, 0],
         [0, 1, -1, 8, -8, 1 / 8, -1 / 8, 0], [0, 1, 1, 16, 16, 1 / 16, 1 / 16, 0],
         [0, 1, -1, 32, -32, 1 / 32, -1 / 32, 1]]),
}

# tensors derived from frozen weights: (id of the weight, what) -> (weakref to the weight, its version, tensor)
_FROZEN: dict[tuple, tuple[weakref.ref, int, torch.Tensor]] = {}


def _tracing() -> bool:
    return torch.compiler.is_compiling() or torch.compiler.is_exporting()


def _inline(w: torch.Tensor) -> bool:
    """Whether a weight-derived tensor must be computed in the graph: while tracing (so it stays foldable by
    inductor's weight freezing and visible to export), when it needs a gradient, or on the meta device."""
    return _tracing() or (w.requires_grad and torch.is_grad_enabled()) or w.device.type == "meta"


def from_frozen(w: torch.Tensor, what: tuple, compute: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """``compute(w)``, kept per weight tensor for eager inference: recomputed when ``w`` changes in place (its
    version counter) and dropped when ``w`` is freed. Inline (see :func:`_inline`) otherwise."""
    if _inline(w) or w.is_inference():  # an inference tensor keeps no version counter to invalidate by
        return compute(w)
    slot = (id(w), *what)
    hit = _FROZEN.get(slot)
    if hit is not None and hit[0]() is w and hit[1] == w._version:
        return hit[2]
    out = compute(w)
    _FROZEN[slot] = (weakref.ref(w, lambda _r: _FROZEN.pop(slot, None)), w._version, out)
    return out


def winograd_weight(w: torch.Tensor, m: int) -> torch.Tensor:
    """``G w G^T`` of a [O, I, 3, 3] weight as [(m+2)^2, O, I]; cached per frozen weight tensor in eager mode.

    Computed in float64 and rounded once when cached; inline (differentiable, foldable by inductor's
    weight freezing) when the weight needs a gradient or the call is being traced.
    """
    inline = _inline(w)

    def transform(w: torch.Tensor) -> torch.Tensor:
        g = torch.tensor(_WINO_MATS[m][1], dtype=w.dtype if inline else torch.float64, device=w.device)
        a, (o, i) = m + 2, w.shape[:2]
        u = (torch.kron(g, g) @ w.to(g.dtype).reshape(o * i, 9).t()).reshape(a * a, o, i)  # [a*a, O, I]
        return u.to(w.dtype).contiguous()

    return from_frozen(w, ("winograd", m, w.dtype), transform)


def _combine(mat: Sequence[Sequence[float]], parts: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """``[sum_i mat[p][i] * parts[i] for p]`` as adds of the nonzero terms (pointwise: inductor fuses them)."""
    out = []
    for row in mat:
        acc = None
        for coef, t in zip(row, parts):
            if coef == 0:
                continue
            term = t if coef == 1 else (-t if coef == -1 else t * coef)
            acc = term if acc is None else acc + term
        out.append(acc)
    return out


def _forward_ad_or_functorch() -> bool:
    """Inside a torch.func transform (jacfwd, vmap, ...) or a forward-mode AD dual level: ops without forward
    derivatives or batching rules would drop tangents silently there (the oneDNN linear op does)."""
    if torch._C._functorch.peek_interpreter_stack() is not None:
        return True
    import torch.autograd.forward_ad as fwad

    return getattr(fwad, "_current_level", -1) >= 0


def _onednn_eager(*ts: torch.Tensor) -> bool:
    """Whether eager oneDNN linear ops may stand in for the matmuls on these tensors (CPU, no autograd)."""
    return (not _tracing() and ts[0].device.type == "cpu" and torch.backends.mkldnn.is_available()
            and all(t.dtype in (torch.float32, torch.bfloat16) for t in ts)
            and not (torch.is_grad_enabled() and any(t.requires_grad for t in ts))
            and not _forward_ad_or_functorch())


def _transform(k: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``k @ x`` for a small [P, Q] transform matrix and a wide [Q, N] matrix of tiles or point products.

    Eager on CPU this runs as oneDNN's linear with ``x`` as the (transposed) weight, which gave bit-identical
    results at about twice the speed of ``torch.mm`` on an AMD Zen 5 (36 x 36 by 36 x 262144: 4.1 vs 7.6 ms,
    two threads; benchmarks/bench_generate.py times whole layers).
    """
    if _onednn_eager(k, x):
        return torch.ops.mkldnn._linear_pointwise(k, x.t(), None, "none", [], "")
    return k @ x


def _point_gemms(v: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """``v[p] @ u[p]^T`` for every transform point p: [P, T, C] x [P, O, C] -> [P, T, O].

    One fp32 GEMM per point as a linear layer: oneDNN's (``mkldnn._linear_pointwise`` in eager, inductor's
    packed linear when compiled with frozen weights), which on AVX-512 CPUs ran at about twice the rate of
    the MKL ``bmm`` (AMD Zen 5, one thread: 220 vs 100 GFLOP/s at 512 channels).
    """
    if _onednn_eager(v, u):
        lin = torch.ops.mkldnn._linear_pointwise
        return torch.stack([lin(v[p], u[p], None, "none", [], "") for p in range(v.shape[0])])
    if _tracing():
        return torch.stack([F.linear(v[p], u[p]) for p in range(v.shape[0])])
    return torch.bmm(v, u.transpose(1, 2))


def conv3x3_winograd(x: torch.Tensor, w: torch.Tensor, m: int = 4, pointwise: bool = False,
                     in_scale: torch.Tensor | None = None, out_scale: torch.Tensor | None = None,
                     bias: torch.Tensor | None = None, form: str = "points",
                     epilogue: Epilogue | None = None) -> torch.Tensor:
    """``F.conv2d(x, w, padding=1)`` for a [O, I, 3, 3] weight by Winograd F(m x m, 3x3), m = 2, 4 or 6.

    Tiles of (m+2)^2 input pixels (stride m) are transformed with ``B^T d B``, multiplied with the transformed
    weight in one GEMM per transform point (channels as the reduction), and mapped back with ``A^T M A``.
    ``in_scale`` ([N, I]), ``out_scale`` ([N, O]) and ``bias`` ([O]) give ``conv(x * in_scale) * out_scale + bias``
    (a modulated convolution), applied inside the passes the transform makes anyway when that is possible, and
    then ``epilogue`` (:class:`Epilogue`; inside the compiled output transform when that runs).

    ``form="rows"`` runs eager CPU inference as :func:`_winograd_grouped` (:data:`CPU_WINOGRAD_ROWS` says which
    layers). Otherwise (the default "points" form, autograd, tracing for compile or export, functorch) each
    transform is one GEMM with the Kronecker-product matrix, or with ``pointwise=True`` sums of strided slices,
    for inductor to fuse into one kernel each around the GEMMs. Measured (AMD Zen 5, one thread,
    512 ch at 32 px, frozen weights): the pointwise form compiled ran at about half the speed of the GEMM form,
    which compiled only matched direct convolution.
    The result is in channels-last memory order. Exact in real arithmetic; in fp32 its rounding differs from
    direct convolution (F(4x4) more than F(2x2), see tests/test_winograd.py).
    """
    if m not in _WINO_MATS:
        raise ValueError(f"winograd tile must be 2, 4 or 6, not {m!r}")
    if form not in ("points", "rows"):
        raise ValueError(f"winograd form must be 'points' or 'rows', not {form!r}")
    n, c, h, wd = x.shape
    o = w.shape[0]
    a = m + 2
    th, tw = -(-h // m), -(-wd // m)
    t = n * th * tw
    bt, _, at = _WINO_MATS[m]
    u = winograd_weight(w, m)  # [a*a, O, C]
    if not pointwise and _native_ok(x, w, in_scale, out_scale, bias) and m in CPU_WINOGRAD_NATIVE.tiles:
        return _winograd_native(x, u, m, in_scale, out_scale, bias, rows=form == "rows", epilogue=epilogue)
    if form == "rows" and not pointwise and _onednn_eager(x, w, *(s for s in (in_scale, out_scale, bias)
                                                                   if s is not None)):
        return apply_epilogue(_winograd_grouped(x, u, m, in_scale, out_scale, bias), epilogue)
    if in_scale is not None:
        x = x * in_scale.to(x.dtype).reshape(n, c, 1, 1)
    xp = F.pad(x, [1, tw * m + 1 - wd, 1, th * m + 1 - h])
    tiles = xp.unfold(2, a, m).unfold(3, a, m).permute(4, 5, 0, 2, 3, 1)  # [a, a, N, th, tw, C], a view
    if pointwise:
        rows = _combine(bt, [tiles[i] for i in range(a)])  # a of [a, N, th, tw, C]
        v = torch.stack([s for r in rows for s in _combine(bt, [r[j] for j in range(a)])]).reshape(a * a, t, c)
    else:
        btm = torch.tensor(bt, dtype=x.dtype, device=x.device)
        v = _transform(torch.kron(btm, btm), tiles.reshape(a * a, t * c)).reshape(a * a, t, c)
    prod = _point_gemms(v, u)  # [a*a, T, O]
    if pointwise:
        pts = prod.reshape(a, a, n, th, tw, o)
        rows = _combine(at, [pts[i] for i in range(a)])  # m of [a, N, th, tw, O]
        y = torch.stack([torch.stack(_combine(at, [r[j] for j in range(a)])) for r in rows])
    else:
        atm = torch.tensor(at, dtype=x.dtype, device=x.device)
        y = _transform(torch.kron(atm, atm), prod.reshape(a * a, t * o)).reshape(m, m, n, th, tw, o)
    # y: [m (row), m (col), N, th, tw, O] -> [N, th*m, tw*m, O], viewed as NCHW
    y = y.permute(2, 3, 0, 4, 1, 5).reshape(n, th * m, tw * m, o)
    y = y[:, :h, :wd].permute(0, 3, 1, 2)
    if out_scale is not None:
        y = y * out_scale.to(y.dtype).reshape(n, o, 1, 1)
    if bias is not None:
        y = y + bias.to(y.dtype).reshape(1, o, 1, 1)
    return apply_epilogue(y, epilogue)


def _winograd_grouped(x: torch.Tensor, u: torch.Tensor, m: int, in_scale: torch.Tensor | None,
                      out_scale: torch.Tensor | None, bias: torch.Tensor | None) -> torch.Tensor:
    """Eager CPU inference form of :func:`conv3x3_winograd`, with tiles as rows: [T, point, channel].

    The tiles are gathered (and scaled by ``in_scale``) in one copy, both transforms are batched matmuls by the
    Kronecker-product matrix over that layout, and the per-point GEMMs are one grouped 1x1 convolution (a group
    per point) on the channels-last view, which writes its result in the layout the output transform reads; the
    last pass puts the tiles in place with ``out_scale`` and ``bias``. Against one GEMM per point and a stack,
    AMD Zen 5, two threads, batch 1: 128 ch at 256 px 33.9 against 38.4 ms (direct convolution 37.5), 256 ch at
    128 px 22.5 against 25.3.
    """
    n, c, h, wd = x.shape
    o = u.shape[1]
    a = m + 2
    p = a * a
    th, tw = -(-h // m), -(-wd // m)
    t = n * th * tw
    bt, _, at = _WINO_MATS[m]
    btm = torch.tensor(bt, dtype=x.dtype)
    atm = torch.tensor(at, dtype=x.dtype)
    xp = F.pad(x, [1, tw * m + 1 - wd, 1, th * m + 1 - h])
    view = xp.unfold(2, a, m).unfold(3, a, m).permute(0, 2, 3, 4, 5, 1)  # [N, th, tw, a, a, C]
    tiles = torch.empty(n, th, tw, a, a, c, dtype=x.dtype)
    if in_scale is None:
        tiles.copy_(view)
    else:
        torch.mul(view, in_scale.to(x.dtype).reshape(n, 1, 1, 1, 1, c), out=tiles)
    v = torch.matmul(torch.kron(btm, btm), tiles.view(t, p, c))  # [T, P, C]
    prod = F.conv2d(v.view(1, t, 1, p * c).permute(0, 3, 1, 2), u.reshape(p * o, c, 1, 1), groups=p)  # [1, P*O, T, 1]
    prod = prod.permute(0, 2, 3, 1).reshape(t, p, o)  # a view when oneDNN kept channels-last
    y = torch.matmul(torch.kron(atm, atm), prod).view(n, th, tw, m, m, o).permute(0, 1, 3, 2, 4, 5)
    out = torch.empty(n, th, m, tw, m, o, dtype=x.dtype)
    s = None if out_scale is None else out_scale.to(x.dtype).reshape(n, 1, 1, 1, 1, o)
    b = None if bias is None else bias.to(x.dtype).reshape(1, 1, 1, 1, 1, o)
    if s is not None and b is not None:
        torch.addcmul(b, y, s, out=out)
    elif s is not None:
        torch.mul(y, s, out=out)
    elif b is not None:
        torch.add(y, b, out=out)
    else:
        out.copy_(y)
    return out.view(n, th * m, tw * m, o)[:, :h, :wd].permute(0, 3, 1, 2)


def _shape_choice(table: dict, probe: Callable[[Any], bool] | None, key: tuple) -> bool:
    """A per-layer-shape form choice: the table's answer, else the probe's (kept in the table), else off."""
    on = table.get(key)
    if on is None:
        if probe is None:
            return False
        on = table[key] = bool(probe(key))
    return on


def _native_ok(x: torch.Tensor, w: torch.Tensor, *more: torch.Tensor | None) -> bool:
    """Whether :data:`CPU_WINOGRAD_NATIVE` can run this call: eager CPU fp32 inference, channels a multiple of 16."""
    if CPU_WINOGRAD_NATIVE is None or x.dtype != torch.float32 or w.dtype != torch.float32:
        return False
    if x.shape[1] % 16 or w.shape[0] % 16 or any(t is not None and t.dtype != torch.float32 for t in more):
        return False
    return _onednn_eager(x, w, *(t for t in more if t is not None))


def _point_ptrs(t: torch.Tensor, p: int, step: int) -> ctypes.Array:
    """Addresses of ``p`` transform points in ``t``, ``step`` elements apart, for the compiled transforms."""
    base, item = t.data_ptr(), t.element_size()
    return (ctypes.c_void_p * p)(*(base + q * item * step for q in range(p)))


def _grouped_point_gemms(v: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """``v[t, q] @ u[q]^T`` for [T, P, C] tiles and [P, O, C] weights as one grouped 1x1 convolution: [T, P*O]."""
    t, p, c = v.shape
    o = u.shape[1]
    prod = F.conv2d(v.view(1, t, 1, p * c).permute(0, 3, 1, 2), u.reshape(p * o, c, 1, 1), groups=p)
    return prod.permute(0, 2, 3, 1).reshape(t, p * o).contiguous()  # a view when oneDNN kept NHWC


def _winograd_native(x: torch.Tensor, u: torch.Tensor, m: int, in_scale: torch.Tensor | None,
                     out_scale: torch.Tensor | None, bias: torch.Tensor | None, rows: bool,
                     epilogue: Epilogue | None = None) -> torch.Tensor:
    """:func:`conv3x3_winograd` with the compiled transforms (``zoo/models/native/winograd.c``) around oneDNN GEMMs.

    The input transform reads the channels-last input with the zero border, scales by ``in_scale`` and writes
    the transformed tiles once; the output transform writes the NHWC result with ``out_scale``, ``bias`` and the
    ``epilogue`` (its noise when that is one plane, else as PyTorch passes after). With
    ``rows`` the tiles are [T, point, C] and the GEMMs one grouped 1x1 convolution, else [point, T, C] and one
    oneDNN linear per point. AMD Zen 5, two threads, batch 1, modulated layer: 128 ch at 256 px 18 ms (direct
    convolution 38, tiles as rows in PyTorch 37), 256 ch at 128 px 15 (24).
    """
    lib = CPU_WINOGRAD_NATIVE
    n, c, h, wd = x.shape
    o = u.shape[1]
    p = (m + 2) ** 2
    t = n * -(-h // m) * -(-wd // m)
    nthreads = torch.get_num_threads()
    xc = x.contiguous(memory_format=torch.channels_last)
    s_in = None if in_scale is None else in_scale.reshape(n, c).contiguous()
    s_out = None if out_scale is None else out_scale.reshape(n, o).contiguous()
    b = None if bias is None else bias.reshape(o).contiguous()
    v = torch.empty(t, p, c) if rows else torch.empty(p, t, c)
    rc = lib.ganzoo_wino_input(xc.data_ptr(), None if s_in is None else s_in.data_ptr(),
                               _point_ptrs(v, p, c if rows else t * c),
                               p * c if rows else c, n, h, wd, c, m, nthreads)
    if rc != 0:
        raise RuntimeError(f"native Winograd input transform refused {tuple(x.shape)} (F({m}x{m}))")
    if rows:
        keep = [_grouped_point_gemms(v, u)]
        p_ptrs, st = _point_ptrs(keep[0], p, o), p * o
    else:
        lin = torch.ops.mkldnn._linear_pointwise
        keep = [lin(v[q], u[q], None, "none", [], "") for q in range(p)]
        p_ptrs, st = (ctypes.c_void_p * p)(*(k.data_ptr() for k in keep)), o
    out = torch.empty(n, h, wd, o)
    ep = _epilogue_args(epilogue, n, h, wd)
    rest = None if ep is not None else epilogue
    noise, step, slope, clamp, _plane = ep if ep is not None else _epilogue_args(None, n, h, wd)
    rc = lib.ganzoo_wino_output(p_ptrs, st, None if s_out is None else s_out.data_ptr(),
                                None if b is None else b.data_ptr(), noise, step, slope, clamp, out.data_ptr(),
                                n, h, wd, o, m, nthreads)
    del keep
    if rc != 0:
        raise RuntimeError(f"native Winograd output transform refused {tuple(x.shape)} (F({m}x{m}))")
    return apply_epilogue(out.permute(0, 3, 1, 2), rest)


# G of the nested F(2, 2) of a stride-2 3x3 transposed convolution, per dimension, on the correlation taps
# (k0, k1, k2): the even outputs' F(2, 2) points k0, k0 + k2, k2, then k1 for each of the two odd outputs. The data
# and output sides are written out in zoo/models/native/winograd.c (bu, au).
_UPWINO_G = ((1, 0, 0), (1, 0, 1), (0, 0, 1), (0, 1, 0), (0, 1, 0))


def upconv_winograd_weight(wt: torch.Tensor) -> torch.Tensor:
    """``G k G^T`` of a stride-2 transposed convolution's [I, O, 3, 3] operand as [25, O, I] (``k``: the kernel as a
    correlation, see :func:`phase_kernels`); computed in float64, cached per frozen weight tensor."""
    def transform(wt: torch.Tensor) -> torch.Tensor:
        g = torch.tensor(_UPWINO_G, dtype=torch.float64, device=wt.device)
        k = wt.to(torch.float64).flip([2, 3]).transpose(0, 1)  # [O, I, 3, 3]
        return torch.einsum("pa,qb,oiab->pqoi", g, g, k).reshape(25, wt.shape[1], wt.shape[0]).to(wt.dtype).contiguous()

    return from_frozen(wt, ("upwinograd",), transform)


def _upwino(x: torch.Tensor, wt: torch.Tensor, up: int) -> bool:
    """Whether this transposed convolution runs as :func:`conv_transpose3x3_winograd` (see :data:`CPU_WINOGRAD_UP`)."""
    if up != 2 or tuple(wt.shape[2:]) != (3, 3) or x.ndim != 4 or wt.shape[1] % 16:
        return False
    if not _native_ok(x, wt):
        return False
    key = (int(wt.shape[0]), int(wt.shape[1]), int(x.shape[2]), int(x.shape[3]))
    return _shape_choice(CPU_WINOGRAD_UP, CPU_WINOGRAD_UP_PROBE, key)


def conv_transpose3x3_winograd(x: torch.Tensor, wt: torch.Tensor, in_scale: torch.Tensor | None = None,
                               out_scale: torch.Tensor | None = None) -> torch.Tensor:
    """``F.conv_transpose2d(x * in_scale, wt, stride=2) * out_scale`` for an [I, O, 3, 3] operand: [N, O, 2H+1, 2W+1].

    Eager CPU fp32 inference with :data:`CPU_WINOGRAD_NATIVE` (channels in multiples of 16): the compiled
    transforms make 25 points per 2x2 input tile, one grouped 1x1 convolution does the 25 GEMMs, and the output
    transform writes all four output phases of the tile (channels-last). Same products as the polyphase form up
    to fp32 rounding. AMD Zen 5, two threads, batch 4, ms per image: 256 -> 128 ch at 128 px 21.6 (polyphase
    26.9), 512 -> 256 ch at 64 px 18.5 (direct 21.6).
    """
    lib = CPU_WINOGRAD_NATIVE
    if lib is None or not _native_ok(x, wt) or wt.shape[1] % 16 or tuple(wt.shape[2:]) != (3, 3):
        raise ValueError("conv_transpose3x3_winograd needs the compiled transforms, eager fp32 CPU inference and "
                         "channel counts in multiples of 16")
    n, c, h, wd = x.shape
    o = wt.shape[1]
    t = n * ((h + 2) // 2) * ((wd + 2) // 2)
    u = upconv_winograd_weight(wt)
    xc = x.contiguous(memory_format=torch.channels_last)
    s_in = None if in_scale is None else in_scale.reshape(n, c).to(x.dtype).contiguous()
    s_out = None if out_scale is None else out_scale.reshape(n, o).to(x.dtype).contiguous()
    v = torch.empty(t, 25, c)
    rc = lib.ganzoo_upwino_input(xc.data_ptr(), None if s_in is None else s_in.data_ptr(), _point_ptrs(v, 25, c),
                                 25 * c, n, h, wd, c, torch.get_num_threads())
    if rc != 0:
        raise RuntimeError(f"native transposed-conv Winograd input transform refused {tuple(x.shape)}")
    prod = _grouped_point_gemms(v, u)
    out = torch.empty(n, 2 * h + 1, 2 * wd + 1, o)
    rc = lib.ganzoo_upwino_output(_point_ptrs(prod, 25, o), 25 * o,
                                  None if s_out is None else s_out.data_ptr(), out.data_ptr(), n, h, wd, o,
                                  torch.get_num_threads())
    if rc != 0:
        raise RuntimeError(f"native transposed-conv Winograd output transform refused {tuple(x.shape)}")
    return out.permute(0, 3, 1, 2)


def winograd_tile(h: int, w: int, tile: int | None = None) -> int:
    """The Winograd tile an [H, W] layer runs under setting ``tile`` (default :data:`CPU_WINOGRAD`): 6 only where
    F(6x6) tiles it with fewer products than F(4x4) (64 per 6x6 tile against 36 per 4x4), else 4."""
    tile = CPU_WINOGRAD if tile is None else tile
    if tile == 6 and -(-h // 6) * -(-w // 6) * 64 >= -(-h // 4) * -(-w // 4) * 36:
        return 4
    return tile


def _winograd_form(x: torch.Tensor, w: torch.Tensor, *more: torch.Tensor) -> str:
    """Which eager form of :func:`conv3x3_winograd` this layer runs (see :data:`CPU_WINOGRAD_ROWS`)."""
    if not _onednn_eager(x, w, *more):
        return "points"
    key = (winograd_tile(int(x.shape[2]), int(x.shape[3])), int(w.shape[1]), int(w.shape[0]), int(x.shape[2]),
           int(x.shape[3]))
    return "rows" if _shape_choice(CPU_WINOGRAD_ROWS, CPU_WINOGRAD_ROWS_PROBE, key) else "points"


def _winograd_eligible(x: torch.Tensor, w: torch.Tensor, padding: int) -> bool:
    return (CPU_WINOGRAD in (2, 4, 6) and x.device.type == "cpu" and x.dtype == torch.float32
            and x.ndim == 4 and x.shape[1] >= CPU_WINOGRAD_MIN_CHANNELS
            and w.dtype == torch.float32 and x.ndim == 4 and tuple(w.shape[2:]) == (3, 3) and padding == 1)


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor,
    up: int = 1,
    down: int = 1,
    padding: Sequence[int] = (0, 0, 0, 0),
    gain: float = 1.0,
    flip_filter: bool = False,
    separable: bool = False,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """Upsample by zero insertion, pad/crop (x0, x1, y0, y1), FIR-filter, downsample by striding.

    ``bias`` ([C]) is added to the result, inside the (last) filter convolution rather than as a pass of its own.

    ``separable=True`` filters with two 1-D passes when ``f`` is an outer product (fewer FLOPs at
    high resolution; equal to the 2-D pass up to float rounding).
    """
    n, c, h, w = x.shape
    px0, px1, py0, py1 = padding
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    if min(padding) >= 0 and px0 == px1 and py0 == py1:
        # symmetric zero padding is the convolution's own: no padded copy (the same sums; AMD Zen 5, 4x4 FIR on
        # 128 ch at 257 px: 2.2 against 4.6 ms with F.pad)
        pad_hw = (py0, px0)
    else:
        pad_hw = (0, 0)
        x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
        x = x[:, :, max(-py0, 0): x.shape[2] - max(-py1, 0), max(-px0, 0): x.shape[3] - max(-px1, 0)]
    f = f.to(x.dtype)
    if c >= 16:
        # oneDNN's depthwise conv is ~2.5x faster channels-last on CPU (benchmarks/bench_generate.py: 4x4 FIR
        # at 259 px, 128 ch: 179 vs 495 ms at batch 8); later convs keep the layout. Same values either way.
        x = _channels_last_on_cpu(x, "fir")
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    parts = _separable(f) if (separable and f.ndim == 2) else None
    if f.ndim == 1:
        parts = (f, f)
    if parts is not None:
        col, row = parts
        g = gain ** 0.5
        x = F.conv2d(x, (row * g).reshape(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c, padding=(0, pad_hw[1]))
        x = F.conv2d(x, (col * g).reshape(1, 1, -1, 1).repeat(c, 1, 1, 1), bias, groups=c, padding=(pad_hw[0], 0))
    else:
        x = F.conv2d(x, (f * gain)[None, None].repeat(c, 1, 1, 1), bias, groups=c, padding=pad_hw)
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


def upsample2d(x: torch.Tensor, f: torch.Tensor, up: int = 2, separable: bool = False) -> torch.Tensor:
    """``up``x upsampling by zero insertion and the FIR ``f`` (upstream ``upfirdn2d.upsample2d``)."""
    fw = f.shape[-1]
    p0, p1 = (fw + up - 1) // 2, (fw - up) // 2
    crop0, crop1 = fw - 1 - p0, fw - up - p1  # what the full transposed convolution has beyond each side
    if crop0 == crop1 >= 0 and (f.ndim == 1 or f.shape[0] == fw) and not _tracing():
        # Zero insertion then the FIR is one depthwise transposed convolution by the same (unflipped) filter,
        # which skips the inserted zeros: AMD Zen 5, 3 channels 512 -> 1024 px, 1.3 against 12.4 ms.
        # Exported graphs keep the reference form.
        c = x.shape[1]
        f2 = torch.outer(f, f) if f.ndim == 1 else f
        k = (f2 * (up * up)).to(x.dtype)[None, None].expand(c, 1, fw, fw)
        return F.conv_transpose2d(_channels_last_on_cpu(x, "fir"), k, stride=up, padding=crop0, groups=c)
    return upfirdn2d(x, f, up=up, padding=(p0, p1, p0, p1), gain=up * up, separable=separable)


def downsample2d(x: torch.Tensor, f: torch.Tensor, down: int = 2) -> torch.Tensor:
    fw = f.shape[-1]
    p0, p1 = (fw - down + 1) // 2, (fw - down) // 2
    return upfirdn2d(x, f, down=down, padding=(p0, p1, p0, p1))


def conv2d_resample(
    x: torch.Tensor,
    w: torch.Tensor,
    f: torch.Tensor | None = None,
    up: int = 1,
    padding: int = 0,
    flip_weight: bool = True,
    separable: bool = False,
) -> torch.Tensor:
    """2-D convolution with optional 2x FIR upsampling (no downsampling needed by generators).

    Upsampling with a k>1 kernel is a stride-2 transposed convolution followed by the FIR filter,
    the order NVIDIA's reference uses, so results match to float rounding.
    """
    kh, kw = w.shape[2], w.shape[3]
    if up == 1:
        if _winograd_eligible(x, w, padding):  # see CPU_WINOGRAD
            return conv3x3_winograd(x, w if flip_weight else w.flip([2, 3]), winograd_tile(x.shape[2], x.shape[3]),
                                    form=_winograd_form(x, w))
        if not flip_weight:
            w = w.flip([2, 3])
        return F.conv2d(x, w, padding=padding)
    assert f is not None
    fw = f.shape[-1]
    p0 = padding + (fw + up - 1) // 2
    p1 = padding + (fw - up) // 2
    if kh == 1 and kw == 1:
        x = F.conv2d(x, w)
        return upfirdn2d(x, f, up=up, padding=(p0, p1, p0, p1), gain=up * up, separable=separable)
    x = _channels_last_on_cpu(x, "conv_transpose")  # see CPU_CHANNELS_LAST
    return _conv_transpose_fir(x, _transposed_operand(w, flip_weight, x), f, up, padding, separable)


def _transposed_operand(w: torch.Tensor, flip_weight: bool, x: torch.Tensor) -> torch.Tensor:
    """:func:`_transposed_weight` of ``w`` laid out for ``x``, kept per frozen weight (:func:`from_frozen`)."""
    layout = _weight_layout(x)
    return from_frozen(w, ("transposed", flip_weight, layout), lambda w: _transposed_weight(w, flip_weight, layout))


def _weight_layout(x: torch.Tensor) -> torch.memory_format:
    """Channels-last when ``x`` is (and is not also plain contiguous), for the weights and outputs made beside it:
    a weight in the activations' order is not reordered by oneDNN on every call (AMD Zen 5, 512 ch at 16 px: 3.2 vs
    4.7 ms as a transposed view)."""
    if x.device.type == "cpu" and x.ndim == 4 and x.is_contiguous(memory_format=torch.channels_last) \
            and not x.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


def _transposed_weight(w: torch.Tensor, flip_weight: bool, layout: torch.memory_format) -> torch.Tensor:
    """A [O, I, k, k] convolution weight as conv_transpose2d's [I, O, k, k] operand, laid out for oneDNN.

    conv_transpose2d computes a true convolution; the reference flips the weight unless told not to.
    """
    if flip_weight:
        w = w.flip([2, 3])
    if _tracing():
        return w.transpose(0, 1)
    return w.transpose(0, 1).contiguous(memory_format=layout)


def _conv_transpose_fir(x: torch.Tensor, wt: torch.Tensor, f: torch.Tensor, up: int, padding: int,
                        separable: bool, phases: Sequence[torch.Tensor] | None = None,
                        bias: torch.Tensor | None = None,
                        scales: tuple[torch.Tensor, torch.Tensor | None] | None = None,
                        fir_scale: torch.Tensor | None = None, epilogue: Epilogue | None = None) -> torch.Tensor:
    """The stride-``up`` transposed convolution by an [I, O, k, k] weight followed by the FIR, as the reference.

    ``phases``: :func:`phase_kernels` of ``wt`` when the caller made them (else derived, cached, on demand).
    ``scales``: run it as :func:`conv_transpose3x3_winograd` with these (input, output) channel scales; for a
    caller that checked :func:`_upwino` (modulated layers). ``fir_scale`` ([N, O]) scales the FIR's result before
    the ``bias``; ``epilogue`` (:class:`Epilogue`) comes last. With :data:`CPU_WINOGRAD_NATIVE` the FIR, both and
    the bias are one compiled pass (:func:`fir4_native`).
    """
    kw = wt.shape[3]
    fw = f.shape[-1]
    p0 = padding + (fw + up - 1) // 2 - (kw - 1)
    p1 = padding + (fw - up) // 2 - (kw - up)
    pt = max(min(-p0, -p1), 0)
    if scales is not None:  # only for a frozen operand: its Winograd weights are cached, not remade per call
        x = conv_transpose3x3_winograd(x, wt, *scales)
        if pt:
            x = x[:, :, pt:-pt, pt:-pt]
    elif phases is not None or _polyphase(x, wt, up):
        if phases is None:
            phases = from_frozen(wt, ("phases",), phase_kernels)
        x = conv_transpose3x3_polyphase(x, phases)
        if pt:
            x = x[:, :, pt:-pt, pt:-pt]
    else:
        x = F.conv_transpose2d(x, wt, stride=up, padding=pt)
    pad = (p0 + pt, p1 + pt, p0 + pt, p1 + pt)
    if p0 == p1 and p0 + pt >= 0 and _fir4_ok(x, f, bias, fir_scale):
        y = fir4_native(x, f, p0 + pt, up * up, scale=fir_scale, bias=bias, epilogue=epilogue)
        if y is not None:
            return y
    if fir_scale is None:
        return apply_epilogue(upfirdn2d(x, f, padding=pad, gain=up * up, separable=separable, bias=bias), epilogue)
    x = upfirdn2d(x, f, padding=pad, gain=up * up, separable=separable)
    s = fir_scale.to(x.dtype).reshape(x.shape[0], -1, 1, 1)
    x = x * s if bias is None else torch.addcmul(bias.to(x.dtype).reshape(1, -1, 1, 1), x, s)
    return apply_epilogue(x, epilogue)


def _fir4_ok(x: torch.Tensor, f: torch.Tensor, *more: torch.Tensor | None) -> bool:
    """Whether :func:`fir4_native` can filter ``x`` by ``f``: eager fp32 CPU inference, channels in sixteens, a
    4-tap filter."""
    return (CPU_WINOGRAD_NATIVE is not None and x.ndim == 4 and x.shape[1] % 16 == 0 and x.dtype == torch.float32
            and f.shape[-1] == 4 and f.ndim in (1, 2) and _onednn_eager(x, *(t for t in more if t is not None))
            and all(t is None or t.dtype == torch.float32 for t in more))


def _fir4_taps(f: torch.Tensor, gain: float) -> torch.Tensor:
    """The 1-D taps (as a correlation, ``gain`` split over both passes) of a 4-tap FIR that is the same along both
    axes, as :func:`upfirdn2d` applies it; an empty tensor when ``f`` is not such a filter. Cached per filter."""
    def taps(f: torch.Tensor) -> torch.Tensor:
        g = f.double().flip(list(range(f.ndim)))
        if g.ndim == 1:
            return (g * math.sqrt(gain)).float()
        parts = _separable(g) if g.shape == (4, 4) else None
        if parts is None or not torch.allclose(parts[0], parts[1], rtol=1e-6, atol=1e-9):
            return torch.empty(0)
        return (parts[0] * math.sqrt(gain)).float()

    return from_frozen(f, ("fir4", float(gain)), taps)


def fir4_native(x: torch.Tensor, f: torch.Tensor, pad: int, gain: float = 1.0, scale: torch.Tensor | None = None,
                bias: torch.Tensor | None = None, epilogue: Epilogue | None = None) -> torch.Tensor | None:
    """``upfirdn2d(x, f, padding=pad, gain=gain) * scale + bias``, then ``epilogue``, as one compiled pass
    (``ganzoo_fir4`` of ``zoo/models/native/winograd.c``) writing channels-last: the separable filter's 8 products
    per output against 16, and no passes of their own for the scale, bias, noise and activation. None when ``f``
    is not a 4-tap filter alike on both axes (the caller then runs :func:`upfirdn2d`).
    """
    t = _fir4_taps(f, gain)
    if t.numel() != 4:
        return None
    n, c, h, w = x.shape
    ho, wo = h + 2 * pad - 3, w + 2 * pad - 3
    ep = _epilogue_args(epilogue, n, ho, wo)
    rest = None if ep is not None else epilogue
    noise, step, slope, clamp, _plane = ep if ep is not None else _epilogue_args(None, n, ho, wo)
    xc = x.contiguous(memory_format=torch.channels_last)
    s = None if scale is None else scale.reshape(n, c).contiguous()
    b = None if bias is None else bias.reshape(c).contiguous()
    out = torch.empty(n, ho, wo, c)
    rc = CPU_WINOGRAD_NATIVE.ganzoo_fir4(xc.data_ptr(), n, h, w, c, t.data_ptr(), pad, ho, wo,
                                         None if s is None else s.data_ptr(), None if b is None else b.data_ptr(),
                                         noise, step, slope, clamp, out.data_ptr(), torch.get_num_threads())
    if rc != 0:
        raise RuntimeError(f"native FIR refused {tuple(x.shape)} (pad {pad})")
    return apply_epilogue(out.permute(0, 3, 1, 2), rest)


def _polyphase(x: torch.Tensor, wt: torch.Tensor, up: int) -> bool:
    """Whether this transposed convolution runs as :func:`conv_transpose3x3_polyphase` (see CPU_POLYPHASE)."""
    if up != 2 or tuple(wt.shape[2:]) != (3, 3) or x.device.type != "cpu" or x.dtype != torch.float32 \
            or wt.dtype != torch.float32 or _tracing() or (torch.is_grad_enabled() and (x.requires_grad
                                                                                     or wt.requires_grad)) \
            or _forward_ad_or_functorch():  # the probe's timing runs would be transformed too
        return False
    cl = _weight_layout(x) == torch.channels_last
    key = (int(wt.shape[0]), int(wt.shape[1]), int(x.shape[2]), int(x.shape[3]), cl)
    return _shape_choice(CPU_POLYPHASE, CPU_POLYPHASE_PROBE, key)


def phase_kernels(wt: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The four stride-1 kernels of a stride-2 3x3 transposed convolution's [I, O, 3, 3] operand, for the (even,
    even), (even, odd), (odd, even) and (odd, odd) output rows/columns: [O, I, 2|1, 2|1] correlation kernels."""
    k = wt.flip([2, 3]).transpose(0, 1)  # [O, I, 3, 3]: the transposed convolution as a correlation
    layout = _weight_layout(wt)
    return tuple(k[:, :, r, c].contiguous(memory_format=layout)
                 for r, c in ((slice(0, 3, 2), slice(0, 3, 2)), (slice(0, 3, 2), slice(1, 2)),
                              (slice(1, 2), slice(0, 3, 2)), (slice(1, 2), slice(1, 2))))


def conv_transpose3x3_polyphase(x: torch.Tensor, phases: Sequence[torch.Tensor]) -> torch.Tensor:
    """``F.conv_transpose2d(x, wt, stride=2)`` for a 3x3 kernel from its :func:`phase_kernels`: [N, O, 2H+1, 2W+1].

    Output row 2p gathers kernel rows 0 and 2 (input rows p and p-1), row 2p+1 kernel row 1 (input row p); the
    same for columns. Each phase is one stride-1 convolution written into its strided slice of the output.
    """
    kee, keo, koe, koo = phases
    n, _, h, w = x.shape
    y = torch.empty(n, kee.shape[0], 2 * h + 1, 2 * w + 1, dtype=x.dtype, device=x.device,
                    memory_format=_weight_layout(x))
    y[:, :, 0::2, 0::2] = F.conv2d(x, kee, padding=1)
    y[:, :, 0::2, 1::2] = F.conv2d(x, keo, padding=(1, 0))
    y[:, :, 1::2, 0::2] = F.conv2d(x, koe, padding=(0, 1))
    y[:, :, 1::2, 1::2] = F.conv2d(x, koo)
    return y


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    noise: torch.Tensor | None = None,
    up: int = 1,
    padding: int = 0,
    resample_filter: torch.Tensor | None = None,
    demodulate: bool = True,
    flip_weight: bool = True,
    separable: bool = False,
    bias: torch.Tensor | None = None,
    out_scale: float = 1.0,
    activation: str = "linear",
    clamp: float | None = None,
) -> torch.Tensor:
    """Modulated convolution in activation-scaling form: ``act((conv * dcoefs + noise + bias) * out_scale)``,
    clamped to +-``clamp``.

    Scales the input channels by the styles, runs one shared-weight convolution, then scales the
    output channels by the demodulation coefficients. Numerically equal to the grouped per-sample
    weight form, but the graph has no batch-size-dependent reshape, so it exports with a dynamic batch.
    The scaling and bias run as one ``addcmul`` pass over the activations, the noise and the activation
    (``"linear"``, ``"lrelu"`` with slope 0.2, ``"relu"``; they commute with a positive ``out_scale``) in
    place; with the compiled kernels (:data:`CPU_WINOGRAD_NATIVE`) all of it is inside their last pass.
    """
    n = x.shape[0]
    out_c, in_c, kh, kw = weight.shape
    if styles.shape != (n, in_c):
        raise ValueError(f"styles shape {tuple(styles.shape)} does not match input [{n}, {in_c}]")
    if activation not in _ACT_SLOPE:
        raise ValueError(f"unknown activation {activation!r}; use one of {sorted(_ACT_SLOPE)}")
    ep = None
    if noise is not None or activation != "linear" or (clamp is not None and clamp >= 0):
        ep = Epilogue(None if noise is None else noise.to(x.dtype) * out_scale, activation, clamp)
    if kh == 1 and kw == 1 and up == 1 and padding == 0 and x.ndim == 4 and not _tracing():
        return _modulated_1x1(x, weight, styles, demodulate, bias, out_scale, ep)
    if _fuse_batch1(x, weight, up, padding):
        return _fused_modconv_batch1(x, weight, styles, ep, up, padding, resample_filter, demodulate, flip_weight,
                                     separable, bias, out_scale)
    form = _winograd_form(x, weight, styles) if up == 1 and _winograd_eligible(x, weight, padding) else None
    if form == "rows" or (form is not None and _native_ok(x, weight, styles)):
        # the styles scale the tiles as they are gathered, the demodulation, bias and epilogue come with the last pass
        return conv3x3_winograd(x, weight if flip_weight else weight.flip([2, 3]),
                                winograd_tile(x.shape[2], x.shape[3]), in_scale=styles,
                                out_scale=_out_scales(x, weight, styles, demodulate, out_scale),
                                bias=None if bias is None else bias * out_scale, form=form, epilogue=ep)
    if up > 1 and kh == 3 and kw == 3 and resample_filter is not None and _native_ok(x, weight, styles):
        xt = _channels_last_on_cpu(x, "conv_transpose")
        wt = _transposed_operand(weight, flip_weight, xt)
        b = None if bias is None else bias * out_scale
        if _upwino(xt, wt, up):  # the styles and demodulation inside the compiled transforms, the rest in the FIR
            scales = (styles, _out_scales(x, weight, styles, demodulate, out_scale))
            return _conv_transpose_fir(xt, wt, resample_filter, up, padding, separable, bias=b, scales=scales,
                                       epilogue=ep)
        # the styles as a pass of their own, the demodulation, bias and epilogue inside the compiled FIR
        return _conv_transpose_fir(xt * styles.to(x.dtype).reshape(n, -1, 1, 1), wt, resample_filter, up, padding,
                                   separable, bias=b, fir_scale=_out_scales(x, weight, styles, demodulate, out_scale),
                                   epilogue=ep)
    x = x * styles.to(x.dtype).reshape(n, -1, 1, 1)
    x = conv2d_resample(x, weight.to(x.dtype), f=resample_filter, up=up, padding=padding,
                        flip_weight=flip_weight, separable=separable)
    scale: torch.Tensor | float = out_scale
    if demodulate:
        scale = (_demod_coefs(weight, styles) * out_scale).to(x.dtype).reshape(n, -1, 1, 1)
    b = None if bias is None else (bias.to(x.dtype) * out_scale).reshape(1, -1, 1, 1)
    if isinstance(scale, torch.Tensor):
        x = x * scale if b is None else torch.addcmul(b, x, scale)
    elif scale != 1:
        x = x * scale if b is None else torch.add(b, x, alpha=scale)
    elif b is not None:
        x = x + b
    # the noise in place on a tensor made here (no backward needs it); kept apart from the bias because the
    # [H, W] noise plus a per-channel bias would be an NCHW tensor meeting channels-last activations
    return apply_epilogue(x, ep)


def _modulated_1x1(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool,
                   bias: torch.Tensor | None, out_scale: float, ep: Epilogue | None) -> torch.Tensor:
    """:func:`modulated_conv2d` of a 1x1 kernel (toRGB) in eager mode: one batched matmul by the per-sample weights
    ``w * s * d``, in whichever layout ``x`` has, so the activations are read once instead of scaled by a pass of
    their own first (AMD Zen 4, two threads, 4 x 128 ch at 256 px to RGB: 7.7 against 22.8 ms)."""
    n, c, h, w = x.shape
    wn = weight.reshape(1, -1, c).to(x.dtype) * styles.to(x.dtype).reshape(n, 1, c)  # [N, O, C]
    scale = _out_scales(x, weight, styles, demodulate, out_scale)
    if scale is not None:
        wn = wn * scale.to(x.dtype).reshape(n, -1, 1)
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        y = torch.bmm(x.permute(0, 2, 3, 1).reshape(n, h * w, c), wn.transpose(1, 2))  # [N, HW, O], a view of x
        y = y.view(n, h, w, -1).permute(0, 3, 1, 2)
    else:
        y = torch.bmm(wn, x.reshape(n, c, h * w)).view(n, -1, h, w)
    if bias is not None:
        y = y + (bias.to(x.dtype) * out_scale).reshape(1, -1, 1, 1)
    return apply_epilogue(y, ep)


def _out_scales(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool,
                out_scale: float) -> torch.Tensor | None:
    """Per (sample, output channel) scale of a modulated layer applied inside a fused pass: demodulation times
    ``out_scale``, or ``out_scale`` alone, or None when there is nothing to scale."""
    if demodulate:
        return _demod_coefs(weight, styles) * out_scale
    if out_scale == 1:
        return None
    return torch.full((x.shape[0], weight.shape[0]), out_scale, dtype=x.dtype, device=x.device)


def _demod_coefs(weight: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
    # sum_i,k (w[o,i,k] * s[n,i])^2 == (s^2) @ (sum_k w^2)^T
    wsq = from_frozen(weight, ("sumsq",), lambda w: w.square().sum(dim=[2, 3]))  # [out, in]
    return (styles.square() @ wsq.t() + 1e-8).rsqrt()  # [n, out]


def _fuse_batch1(x: torch.Tensor, weight: torch.Tensor, up: int, padding: int) -> bool:
    """Whether :data:`CPU_FUSED_MODCONV` applies to this call (see there)."""
    if not CPU_FUSED_MODCONV or x.shape[0] != 1 or x.device.type != "cpu" or torch.is_grad_enabled() or _tracing():
        return False
    out_c, _, kh, kw = weight.shape
    if x.shape[2] * x.shape[3] * up * up <= out_c * kh * kw:
        return False
    return not (up == 1 and _winograd_eligible(x, weight, padding))


def _fused_modconv_batch1(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, ep: Epilogue | None,
                          up: int, padding: int, resample_filter: torch.Tensor | None, demodulate: bool,
                          flip_weight: bool, separable: bool, bias: torch.Tensor | None,
                          out_scale: float) -> torch.Tensor:
    """:func:`modulated_conv2d` for one sample with the scalings in the weight: conv(x, w * s * d) + b, then ``ep``."""
    if demodulate:
        scale = _demod_coefs(weight, styles)[0] * out_scale
    else:
        scale = torch.full_like(weight[:, 0, 0, 0], out_scale)
    # the bias goes into the last convolution (oneDNN adds it there) instead of a pass over the activations
    b = None if bias is None else (bias.to(x.dtype) * out_scale)
    if up > 1 and weight.shape[2] > 1:
        # scale the cached transposed operand ([I, O, k, k], laid out for oneDNN) instead of the [O, I] weight,
        # so the modulated weight needs no per-call transposing copy
        x = _channels_last_on_cpu(x, "conv_transpose")
        wt = _transposed_operand(weight, flip_weight, x)
        if _polyphase(x, wt, up):  # scale the four cached phase kernels ([O, I, ...]) instead
            s_in, s_out = styles.reshape(1, -1, 1, 1), scale.reshape(-1, 1, 1, 1)
            phases = [k * s_in * s_out for k in from_frozen(wt, ("phases",), phase_kernels)]
            return _conv_transpose_fir(x, wt, resample_filter, up, padding, separable, phases, bias=b, epilogue=ep)
        wt = wt * styles.reshape(-1, 1, 1, 1) * scale.reshape(1, -1, 1, 1)
        return _conv_transpose_fir(x, wt.to(x.dtype), resample_filter, up, padding, separable, bias=b, epilogue=ep)
    w = (weight * styles.reshape(1, -1, 1, 1) * scale.reshape(-1, 1, 1, 1)).to(x.dtype)
    if up == 1:  # never Winograd here (see _fuse_batch1)
        x = F.conv2d(x, w if flip_weight else w.flip([2, 3]), b, padding=padding)
    else:  # a 1x1 kernel with upsampling
        x = conv2d_resample(x, w, f=resample_filter, up=up, padding=padding, flip_weight=flip_weight,
                            separable=separable)
        if b is not None:
            x = x.add_(b.reshape(1, -1, 1, 1))
    return apply_epilogue(x, ep)
