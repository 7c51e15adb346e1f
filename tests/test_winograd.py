"""Winograd F(2x2, 3x3) / F(4x4, 3x3) / F(6x6, 3x3) for the stride-1 3x3 convolutions (ops.CPU_WINOGRAD)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import zoo
from zoo.models import ops

from conftest import assert_close, golden, manifest, sg2_golden_calls, tolerance

PKL = "network-snapshot-000000.pkl"
# max-abs error against a float64 direct convolution, relative to the output's largest magnitude. Measured on
# these inputs: F(2x2) ~2e-7, F(4x4) ~4e-6, F(6x6) about as F(4x4) (fp32 direct convolution: ~5e-8)
REL_TOL = {2: 1e-6, 4: 1e-5, 6: 2e-5}
SHAPES = [(1, 3, 5, 7, 7), (3, 16, 8, 8, 8), (1, 32, 32, 9, 6), (3, 8, 4, 4, 13)]  # N, C_in, C_out, H, W


@pytest.fixture(autouse=True)
def _pytorch_forms(monkeypatch):
    """These tests cover the PyTorch forms; the compiled transforms have tests/test_native.py."""
    monkeypatch.setattr(ops, "CPU_WINOGRAD_NATIVE", None)


def _ref(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return F.conv2d(x.double(), w.double(), padding=1)


@pytest.mark.parametrize("pointwise", [False, True])
@pytest.mark.parametrize("m", [2, 4, 6])
def test_forward_equals_direct_convolution(m, pointwise):
    gen = torch.Generator().manual_seed(m)
    for n, c, o, h, wd in SHAPES:
        x, w = torch.randn(n, c, h, wd, generator=gen), torch.randn(o, c, 3, 3, generator=gen)
        ref = _ref(x, w)
        y = ops.conv3x3_winograd(x, w, m, pointwise=pointwise)
        assert y.shape == ref.shape
        err = (y.double() - ref).abs().max().item() / ref.abs().max().item()
        assert err <= REL_TOL[m], f"F({m}x{m},3x3) {list(x.shape)}: relative max-abs {err:.2g}"


@pytest.mark.parametrize("m", [2, 4, 6])
def test_gradients_equal_direct_convolution(m):
    gen = torch.Generator().manual_seed(10 + m)
    x = torch.randn(3, 8, 9, 10, generator=gen, requires_grad=True)
    w = torch.randn(6, 8, 3, 3, generator=gen, requires_grad=True)
    g = torch.randn(3, 6, 9, 10, generator=gen)
    gx, gw = torch.autograd.grad((ops.conv3x3_winograd(x, w, m) * g).sum(), [x, w])
    xd, wd = x.detach().double().requires_grad_(), w.detach().double().requires_grad_()
    rx, rw = torch.autograd.grad((_ref(xd, wd) * g.double()).sum(), [xd, wd])
    for got, ref, what in ((gx, rx, "input"), (gw, rw, "weight")):
        err = (got.double() - ref).abs().max().item() / ref.abs().max().item()
        assert err <= REL_TOL[m], f"F({m}x{m},3x3) {what} gradient: relative max-abs {err:.2g}"
    # inversion: frozen weight (cached transform), gradient to the input only
    w.requires_grad_(False)
    (gx2,) = torch.autograd.grad((ops.conv3x3_winograd(x, w, m) * g).sum(), [x])
    assert (gx2.double() - rx).abs().max().item() / rx.abs().max().item() <= REL_TOL[m]


def test_weight_transform_cache_follows_in_place_updates():
    w = torch.randn(4, 4, 3, 3)
    x = torch.randn(1, 4, 6, 6)
    ops.conv3x3_winograd(x, w, 4)
    with torch.no_grad():
        w.mul_(-2)  # bumps the version counter: the cached transform must not be reused
    err = (ops.conv3x3_winograd(x, w, 4).double() - _ref(x, w)).abs().max().item()
    assert err <= REL_TOL[4] * _ref(x, w).abs().max().item()


def test_switch_routes_only_eligible_convolutions():
    x, w = torch.randn(2, 8, 8, 8), torch.randn(8, 8, 3, 3)
    before = (ops.CPU_WINOGRAD, ops.CPU_WINOGRAD_MIN_CHANNELS)  # earlier sampling may have applied this CPU's probe
    with ops.cpu_winograd(0):  # off: direct convolution, bit-identical to F.conv2d
        assert torch.equal(ops.conv2d_resample(x, w, padding=1), F.conv2d(x, w, padding=1))
    with ops.cpu_winograd(4):
        y = ops.conv2d_resample(x, w, padding=1)
        assert not torch.equal(y, F.conv2d(x, w, padding=1))  # it did run the Winograd path ...
        assert (y.double() - _ref(x, w)).abs().max() <= REL_TOL[4] * _ref(x, w).abs().max()  # ... correctly
        flipped = ops.conv2d_resample(x, w, padding=1, flip_weight=False)
        assert (flipped.double() - _ref(x, w.flip([2, 3]))).abs().max() <= REL_TOL[4] * 100
        w1 = torch.randn(8, 8, 1, 1)
        assert torch.equal(ops.conv2d_resample(x, w1), F.conv2d(x, w1))  # 1x1: not eligible
        xd, wd = x.double(), w.double()
        assert torch.equal(ops.conv2d_resample(xd, wd, padding=1), F.conv2d(xd, wd, padding=1))  # fp64: direct
    assert (ops.CPU_WINOGRAD, ops.CPU_WINOGRAD_MIN_CHANNELS) == before  # the block restores the setting
    with pytest.raises(ValueError, match="winograd tile"):
        ops.set_cpu_winograd(3)


@pytest.mark.parametrize("m", [2, 4, 6])
def test_stylegan2_fixture_reproduces_its_goldens_with_winograd(m, converted_fixture):
    name = "sg2ada_uncond_64"
    G = zoo.load(converted_fixture(name, PKL), quiet=True)
    gold, man = golden(name), manifest(name)
    calls = sg2_golden_calls(G, gold["z"], None)
    with ops.cpu_winograd(m), torch.no_grad():
        for key in ("img_const_psi1", "img_const_psi0_5", "img_none_psi1"):
            assert_close(calls[key](), gold[key], tolerance(man, key), f"{key} with F({m}x{m},3x3)")
        # the switch really changes the computation of this model (it has 3x3 convs)
        on = calls["img_const_psi1"]()
    with torch.no_grad():
        assert not torch.equal(on, calls["img_const_psi1"]())


def test_onnx_export_turns_winograd_off_and_verifies(converted_fixture, tmp_path):
    import onnx

    from sdk.export.exporter import export_onnx

    G = zoo.load(converted_fixture("sg2ada_uncond_64", PKL), quiet=True)
    with ops.cpu_winograd(4):
        report = export_onnx(G, tmp_path / "g.onnx", verify_batches=(1,))
        assert ops.CPU_WINOGRAD == 4  # restored after the export
    assert max(report.max_abs_error.values()) <= report.tolerance
    nodes = [node.op_type for node in onnx.load(str(tmp_path / "g.onnx")).graph.node]
    # direct convolutions in the file: GEMMs only for the linear layers and each modulated layer's demodulation
    # (the Winograd form would add 16-36 per 3x3 conv)
    kinds = [type(mod).__name__ for mod in G.modules()]
    assert nodes.count("Conv") >= 5
    assert nodes.count("MatMul") + nodes.count("Gemm") <= kinds.count("FullyConnectedLayer") + kinds.count("SynthesisLayer")


def test_winograd_probe_is_measured_once_cached_and_applied(monkeypatch):
    import importlib
    import json

    tuning = importlib.import_module("sdk.backends.tune")  # the module (sdk.backends.tune is also a function)

    tile, min_c = tuning.kernel_winograd(refresh=True)
    files = list(tuning._autotune_dir().glob("winograd-*.json"))
    assert len(files) == 1
    record = json.loads(files[0].read_text())
    ms = {int(t): v for t, v in record["ms"].items()}
    chans = [c for c, _ in tuning.WINOGRAD_LAYERS]

    def total(t: int, m: int) -> float:  # the summed time of a choice, from the recorded timings
        return sum(ms[t][i] if (t and c >= m) else ms[0][i] for i, c in enumerate(chans))

    assert (record["tile"], record["min_channels"]) == (tile, min_c)
    best = min(total(t, m) for t in (0, 2, 4) for m in chans)
    if (tile, min_c) == (0, 0):  # direct: nothing was at least 5 % faster
        assert best > total(0, 0) * tuning.WINOGRAD_MIN_GAIN - 1e-9
    else:
        assert total(tile, min_c) <= best + 1e-9 and total(tile, min_c) <= total(0, 0) * tuning.WINOGRAD_MIN_GAIN
    files[0].write_text(json.dumps({**record, "tile": 2, "min_channels": 256}))  # cached: read back, not re-measured
    monkeypatch.setattr(tuning, "_WINOGRAD_MEMO", {})  # (later tests get this machine's real answer back)
    assert tuning.kernel_winograd() == (2, 256)
    saved = (ops.CPU_WINOGRAD, ops.CPU_WINOGRAD_MIN_CHANNELS)
    try:
        tuning.apply_kernel_layouts(torch.device("cpu"))
        assert (ops.CPU_WINOGRAD, ops.CPU_WINOGRAD_MIN_CHANNELS) == (2, 256)
        monkeypatch.setenv(tuning.WINOGRAD_ENV, "0")  # the override wins over the cache
        tuning.apply_kernel_layouts(torch.device("cpu"))
        assert ops.CPU_WINOGRAD == 0
        monkeypatch.setenv(tuning.WINOGRAD_ENV, "3")
        with pytest.raises(tuning.BackendError, match="GANZOO_WINOGRAD"):
            tuning.kernel_winograd()
    finally:
        ops.set_cpu_winograd(*saved)
        tuning._WINOGRAD_MEMO.clear()


def test_weight_derived_tensors_follow_in_place_updates_and_gradients():
    """The flipped transposed-conv weight and the demodulation sums are kept per frozen weight: an in-place
    update must recompute them, and a weight that needs a gradient must get one through them."""
    gen = torch.Generator().manual_seed(3)
    w = torch.randn(6, 5, 3, 3, generator=gen)
    x, s = torch.randn(2, 5, 7, 7, generator=gen), torch.rand(2, 5, generator=gen) + 0.5
    f = ops.make_filter([1, 3, 3, 1])

    def run(weight: torch.Tensor) -> torch.Tensor:
        return ops.modulated_conv2d(x, weight, s, up=2, padding=1, resample_filter=f)

    first = run(w)
    assert torch.equal(run(w), first)  # from the kept tensors
    with torch.no_grad():
        w[:, :, 0].mul_(-3)  # changes both the flip and the sums of squares
    torch.testing.assert_close(run(w), run(w.clone()), rtol=0, atol=0)  # a fresh tensor has nothing kept
    assert not torch.allclose(run(w), first)
    wg = w.clone().requires_grad_()
    (grad,) = torch.autograd.grad(run(wg).square().sum(), [wg])
    wd = w.double().requires_grad_()
    xd, sd = x.double(), s.double()
    ref = ops.modulated_conv2d(xd, wd, sd, up=2, padding=1, resample_filter=f.double())
    (gref,) = torch.autograd.grad(ref.square().sum(), [wd])
    torch.testing.assert_close(grad.double(), gref, rtol=1e-4, atol=1e-4)


def test_weights_made_under_inference_mode_are_not_cached_stale(converted_fixture):
    """Inference tensors keep no version counter, so the per-weight caches must not hold their derived tensors;
    zoo.load called inside inference_mode still makes ordinary (cacheable) weights."""
    f = ops.make_filter([1, 3, 3, 1])
    gen = torch.Generator().manual_seed(5)
    x, s = torch.randn(1, 5, 7, 7, generator=gen), torch.rand(1, 5, generator=gen) + 0.5
    with torch.inference_mode():
        w = torch.randn(6, 5, 3, 3, generator=gen)
        first = ops.modulated_conv2d(x, w, s, up=2, padding=1, resample_filter=f)
        w[:, :, 0].mul_(-3)
        again = ops.modulated_conv2d(x, w, s, up=2, padding=1, resample_filter=f)
        fresh = ops.modulated_conv2d(x, w.clone(), s, up=2, padding=1, resample_filter=f)
    assert not torch.allclose(again, first)
    torch.testing.assert_close(again, fresh, rtol=0, atol=0)

    import zoo

    with torch.inference_mode():
        G = zoo.load(converted_fixture("sg2ada_uncond_64", "network-snapshot-000000.pkl"), quiet=True)
        z = torch.randn(2, G.z_dim, generator=gen)
        imgs = [G(z, None, noise_mode="const") for _ in range(2)]
    assert not any(p.is_inference() for p in G.parameters())
    torch.testing.assert_close(imgs[0], imgs[1], rtol=0, atol=0)
    with torch.no_grad():
        torch.testing.assert_close(G(z, None, noise_mode="const"), imgs[0], rtol=0, atol=0)


def test_winograd_and_polyphase_keep_forward_mode_derivatives(monkeypatch):
    """torch.func.jacfwd and forward-mode dual tensors through the eager fast paths give the Jacobian of the
    plain convolutions (the oneDNN linear op has no forward derivative: it must not run there), and the
    polyphase probe does not run under them (its random timing inputs would fail inside vmap)."""
    import torch.autograd.forward_ad as fwad
    import torch.nn.functional as F

    gen = torch.Generator().manual_seed(7)
    x = torch.randn(1, 6, 5, 5, generator=gen)
    w3, wt = torch.randn(6, 6, 3, 3, generator=gen), torch.randn(4, 6, 3, 3, generator=gen)
    f = ops.make_filter([1, 3, 3, 1])

    def net(v: torch.Tensor) -> torch.Tensor:
        y = ops.conv2d_resample(v.view(1, 6, 5, 5), w3, padding=1)
        return ops.conv2d_resample(y, wt, f=f, up=2, padding=1).flatten()

    def ref(v: torch.Tensor) -> torch.Tensor:
        y = F.conv2d(v.view(1, 6, 5, 5), w3, padding=1)
        y = F.conv_transpose2d(y, wt.flip([2, 3]).transpose(0, 1), stride=2)
        return ops.upfirdn2d(y, f, padding=(1, 1, 1, 1), gain=4).flatten()

    monkeypatch.setattr(ops, "CPU_POLYPHASE", {})
    monkeypatch.setattr(ops, "CPU_POLYPHASE_PROBE", lambda _shape: pytest.fail("probed inside a transform"))
    monkeypatch.setattr(ops, "CPU_WINOGRAD_ROWS", {})
    monkeypatch.setattr(ops, "CPU_WINOGRAD_ROWS_PROBE", lambda _shape: pytest.fail("probed inside a transform"))
    jac_ref = torch.func.jacrev(ref)(x.flatten())
    with ops.cpu_winograd(4, 0):
        jac = torch.func.jacfwd(net)(x.flatten())
        tangent = torch.randn(x.numel(), generator=gen)
        with fwad.dual_level():
            jvp = fwad.unpack_dual(net(fwad.make_dual(x.flatten(), tangent))).tangent
    assert not ops.CPU_POLYPHASE and not ops.CPU_WINOGRAD_ROWS  # nothing decided (or timed) under the transforms
    torch.testing.assert_close(jac, jac_ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(jvp, jac_ref @ tangent, rtol=1e-4, atol=1e-4)


def test_winograd_probe_stops_timing_a_tile_far_behind(monkeypatch):
    import importlib
    import time as time_module

    tuning = importlib.import_module("sdk.backends.tune")
    calls = {2: 0, 4: 0}
    real = ops.conv3x3_winograd

    def counted(x, w, m=4, pointwise=False, **kw):
        calls[m] += 1
        if m == 2:
            time_module.sleep(0.05)  # far slower than either other choice on every layer
        return real(x, w, m, pointwise, **kw)

    monkeypatch.setattr(ops, "conv3x3_winograd", counted)
    monkeypatch.setattr(tuning, "_WINOGRAD_MEMO", {})
    tile, _ = tuning.kernel_winograd(refresh=True)
    n = len(tuning.WINOGRAD_LAYERS)
    assert calls[2] == 3 * n  # warm-up and two timed rounds, then dropped
    assert calls[4] >= 3 * n  # F(4x4) is kept unless it too fell far behind
    assert tile != 2


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("m", [2, 4, 6])
def test_rows_form_equals_the_modulated_direct_convolution(m, channels_last):
    gen = torch.Generator().manual_seed(20 + m)
    for n, c, o, h, wd in SHAPES:
        x, w = torch.randn(n, c, h, wd, generator=gen), torch.randn(o, c, 3, 3, generator=gen)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        s, d = torch.rand(n, c, generator=gen) + 0.5, torch.rand(n, o, generator=gen) + 0.5
        b = torch.randn(o, generator=gen)
        plain = _ref(x, w)
        scaled = _ref(x * s[:, :, None, None], w)
        for kw, ref in (({}, plain), ({"in_scale": s}, scaled),
                        ({"out_scale": d}, plain * d[:, :, None, None].double()),
                        ({"bias": b}, plain + b[None, :, None, None].double()),
                        ({"in_scale": s, "out_scale": d, "bias": b},
                         scaled * d[:, :, None, None].double() + b[None, :, None, None].double())):
            with torch.no_grad():
                y = ops.conv3x3_winograd(x, w, m, form="rows", **kw)
                by_point = ops.conv3x3_winograd(x, w, m, **kw)
            assert y.shape == ref.shape and y.is_contiguous(memory_format=torch.channels_last) or h % m or wd % m
            for got, form in ((y, "rows"), (by_point, "points")):
                err = (got.double() - ref).abs().max().item() / ref.abs().max().item()
                assert err <= REL_TOL[m], f"F({m}x{m}) {form} {list(x.shape)} {sorted(kw)}: relative max-abs {err:.2g}"
    with pytest.raises(ValueError, match="form must be 'points' or 'rows'"):
        ops.conv3x3_winograd(x, w, m, form="columns")


def test_rows_form_runs_where_the_table_says_and_only_in_eager_inference(shape_choice_state, monkeypatch):
    calls = []
    real = ops._winograd_grouped
    monkeypatch.setattr(ops, "_winograd_grouped", lambda *a: calls.append(a[0].shape) or real(*a))
    gen = torch.Generator().manual_seed(3)
    x, w = torch.randn(1, 8, 12, 12, generator=gen), torch.randn(8, 8, 3, 3, generator=gen)
    styles, bias, noise = torch.rand(1, 8, generator=gen) + 0.5, torch.randn(8, generator=gen), torch.randn(12, 12)
    monkeypatch.setattr(ops, "CPU_FUSED_MODCONV", False)  # the reference: activation scaling, as at batch > 1
    ops.CPU_WINOGRAD_ROWS.clear()
    probed = []
    ops.CPU_WINOGRAD_ROWS_PROBE = lambda shape: probed.append(shape) or True
    with ops.cpu_winograd(0), torch.no_grad():
        direct = [ops.modulated_conv2d(x, w, styles, noise, padding=1, bias=bias, demodulate=dm, out_scale=sc,
                                       flip_weight=fl) for dm, sc, fl in ((True, 1.0, True), (False, 0.5, False))]
    assert not calls and not probed  # Winograd off: no choice made
    with ops.cpu_winograd(4), torch.no_grad():
        rows = [ops.modulated_conv2d(x, w, styles, noise, padding=1, bias=bias, demodulate=dm, out_scale=sc,
                                     flip_weight=fl) for dm, sc, fl in ((True, 1.0, True), (False, 0.5, False))]
        assert ops.conv2d_resample(x, w, padding=1).shape == (1, 8, 12, 12)  # plain layers use the table too
    assert probed == [(4, 8, 8, 12, 12)] and len(calls) == 3  # probed once, kept
    for got, ref in zip(rows, direct):
        assert (got - ref).abs().max() <= REL_TOL[4] * ref.abs().max()
    calls.clear()
    with ops.cpu_winograd(4):
        xg = x.clone().requires_grad_()
        y = ops.modulated_conv2d(xg, w, styles, noise, padding=1, bias=bias)  # autograd: the GEMM-per-point form
        (g,) = torch.autograd.grad(y.sum(), [xg])
        assert not calls and torch.isfinite(g).all()
        assert (y.detach() - rows[0]).abs().max() <= REL_TOL[4] * rows[0].abs().max()
        ops.CPU_WINOGRAD_ROWS[(4, 8, 8, 12, 12)] = False
        with torch.no_grad():
            ops.modulated_conv2d(x, w, styles, noise, padding=1, bias=bias)
        assert not calls  # the table said by point


def test_stylegan2_fixture_reproduces_its_goldens_with_rows_form(converted_fixture, shape_choice_state, monkeypatch):
    name = "sg2ada_uncond_64"
    G = zoo.load(converted_fixture(name, PKL), quiet=True)
    gold, man = golden(name), manifest(name)
    calls = sg2_golden_calls(G, gold["z"], None)
    ran = []
    real = ops._winograd_grouped
    monkeypatch.setattr(ops, "_winograd_grouped", lambda *a: ran.append(a[0].shape) or real(*a))
    ops.CPU_WINOGRAD_ROWS.clear()
    ops.CPU_WINOGRAD_ROWS_PROBE = lambda _shape: True
    with ops.cpu_winograd(4), torch.no_grad():
        for key in ("img_const_psi1", "img_const_psi0_5", "img_none_psi1"):
            assert_close(calls[key](), gold[key], tolerance(man, key), f"{key} with Winograd tiles as rows")
    n3 = sum(1 for mod in G.modules() if getattr(mod, "up", None) == 1 and getattr(mod, "weight", None) is not None
             and mod.weight.ndim == 4 and mod.weight.shape[2] == 3)
    assert n3 > 0 and len(ran) >= 3 * n3  # every stride-1 3x3 layer of each call ran as rows


def test_rows_choice_is_timed_once_per_shape_kept_forced_by_env(shape_choice_state, monkeypatch):
    import importlib
    import json

    from sdk.backends import BackendError

    tuning = importlib.import_module("sdk.backends.tune")
    tuning.apply_kernel_layouts(torch.device("cpu"))
    shape = (4, 16, 16, 24, 24)
    on = tuning.probe_winograd_rows(shape)
    files = list(tuning._autotune_dir().glob("winograd-rows-*.json"))
    assert len(files) == 1
    rec = json.loads(files[0].read_text())["shapes"]["4,16,16,24,24"]
    assert rec["on"] == on == (rec["rows_ms"] <= rec["points_ms"] * tuning.FORM_MIN_GAIN)
    rec["on"] = not on  # flipped: a second process must read it, not measure again
    files[0].write_text(json.dumps({**json.loads(files[0].read_text()), "shapes": {"4,16,16,24,24": rec}}))
    tuning._SHAPE_MEMO.clear()
    monkeypatch.setattr(tuning, "_once", lambda _fn: pytest.fail("a kept shape was timed again"))
    tuning.apply_kernel_layouts(torch.device("cpu"))
    assert ops.CPU_WINOGRAD_ROWS[shape] is (not on) and ops.CPU_WINOGRAD_ROWS_PROBE is tuning.probe_winograd_rows
    assert ("F(4x4) 16->16 ch @ 24x24" in tuning.kernel_settings(torch.device("cpu"))["winograd_rows"]) == (not on)
    monkeypatch.setenv(tuning.WINOGRAD_ROWS_ENV, "1")
    tuning.apply_kernel_layouts(torch.device("cpu"))
    assert ops.CPU_WINOGRAD_ROWS == {} and ops.CPU_WINOGRAD_ROWS_PROBE(shape) is True
    monkeypatch.setenv(tuning.WINOGRAD_ROWS_ENV, "rows")
    with pytest.raises(BackendError, match=r"GANZOO_WINOGRAD_ROWS='rows': use 0 .* 1 .* auto"):
        tuning.apply_kernel_layouts(torch.device("cpu"))


def test_info_names_the_layers_that_run_tiles_as_rows():
    from sdk.cli.models import _kernels_text

    text = _kernels_text({"kernels": {"winograd": {"tile": 4, "min_channels": 256},
                                      "winograd_rows": ["F(4x4) 256->256 ch @ 128x128"]}})
    assert "Winograd F(4x4) for >= 256 input channels" in text
    assert "Winograd tiles as rows for F(4x4) 256->256 ch @ 128x128" in text
    assert "tiles as rows" not in _kernels_text({"kernels": {"winograd": {"tile": 4, "min_channels": 256},
                                                             "winograd_rows": []}})


def test_f6_runs_only_where_its_tiles_need_fewer_products_than_f4(monkeypatch):
    assert [ops.winograd_tile(r, r, 6) for r in (4, 8, 16, 32, 64, 128, 256)] == [4, 4, 4, 4, 6, 6, 6]
    assert ops.winograd_tile(64, 64, 4) == 4 and ops.winograd_tile(64, 64, 2) == 2
    monkeypatch.setattr(ops, "CPU_WINOGRAD_ROWS", {})
    monkeypatch.setattr(ops, "CPU_WINOGRAD_ROWS_PROBE", None)  # no probe timing calls in between
    tiles = []
    real = ops.conv3x3_winograd
    monkeypatch.setattr(ops, "conv3x3_winograd",
                        lambda x, w, m=4, *a, **kw: tiles.append(m) or real(x, w, m, *a, **kw))
    gen = torch.Generator().manual_seed(6)
    w = torch.randn(8, 8, 3, 3, generator=gen)
    with ops.cpu_winograd(6), torch.no_grad():
        for r in (16, 48):
            x = torch.randn(1, 8, r, r, generator=gen)
            y = ops.conv2d_resample(x, w, padding=1)
            assert (y.double() - _ref(x, w)).abs().max() <= REL_TOL[6] * _ref(x, w).abs().max()
    assert tiles == [4, 6]
