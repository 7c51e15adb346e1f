"""The compiled Winograd tile transforms (zoo/models/native): built once per machine into the cache, equal to
direct convolution with the modulation inside them, used only where they apply, and absent without harm."""

from __future__ import annotations

import importlib
import os
import stat

import pytest
import torch
import torch.nn.functional as F

import zoo
from zoo.fileio import current_umask
from zoo.loading import cache_dir
from zoo.models import native, ops

from conftest import assert_close, golden, manifest, sg2_golden_calls, tolerance

PKL = "network-snapshot-000000.pkl"
# relative to the output's largest magnitude, against float64 direct convolution (measured: F(2x2) ~5e-7,
# F(4x4) ~1e-5 with the scalings, as the PyTorch forms)
REL_TOL = {2: 2e-6, 4: 3e-5, 6: 3e-5}
SHAPES = [(1, 16, 32, 7, 7), (3, 32, 16, 8, 8), (2, 16, 48, 9, 6), (1, 64, 64, 13, 5)]  # N, C_in, C_out, H, W


def _built(monkeypatch, f6: bool):
    monkeypatch.delenv(native.NATIVE_ENV, raising=False)
    native.reset()
    got = native.winograd(f6)
    if got is None:
        pytest.fail(f"the native Winograd transforms did not build here: {native.status(f6)}")
    return got


@pytest.fixture
def lib(monkeypatch):
    """The compiled library as sampling loads it by default, built in this test's cache; forgotten afterwards."""
    yield _built(monkeypatch, False)
    native.reset()


@pytest.fixture
def lib6(monkeypatch):
    """The build that also has F(6x6), in this test's cache."""
    yield _built(monkeypatch, True)
    native.reset()


class Spy:
    """Counts the calls into the compiled transforms."""

    def __init__(self, lib) -> None:
        self.lib, self.calls = lib, []

    def __getattr__(self, name):
        fn = getattr(self.lib, name)
        return (lambda *a: self.calls.append(name) or fn(*a)) if callable(fn) else fn


def _modulated_ref(x, w, s_in, s_out, b):
    y = F.conv2d(x.double() * s_in.double()[:, :, None, None], w.double(), padding=1)
    if s_out is not None:
        y = y * s_out.double()[:, :, None, None]
    return y if b is None else y + b.double()[None, :, None, None]


def test_built_once_into_the_cache_with_plain_file_permissions(lib, monkeypatch):
    path = native._STATE[False]["path"]
    assert path.parent == cache_dir() / "native" and path.is_file()
    assert native.status() == f"on ({path.name})"
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~current_umask()
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary file left
    mtime = path.stat().st_mtime_ns
    native.reset()
    monkeypatch.setattr(native, "_build", lambda *a: pytest.fail("compiled again although the cache has it"))
    assert native.winograd() is not None and path.stat().st_mtime_ns == mtime


def test_f6_is_a_build_of_its_own_and_the_default_one_leaves_it_to_pytorch(lib, monkeypatch):
    assert lib.tiles == {2, 4}
    gen = torch.Generator().manual_seed(3)
    x, w = torch.randn(1, 16, 12, 12, generator=gen), torch.randn(16, 16, 3, 3, generator=gen)
    ref = F.conv2d(x.double(), w.double(), padding=1)
    xc = x.contiguous(memory_format=torch.channels_last)
    v = torch.empty(64, 4, 16)
    assert lib.ganzoo_wino_input(xc.data_ptr(), None, ops._point_ptrs(v, 64, 4 * 16), 16, 1, 12, 12, 16, 6, 1) == -1
    spy = Spy(lib)
    monkeypatch.setattr(ops, "CPU_WINOGRAD_NATIVE", spy)
    with torch.no_grad():
        y = ops.conv3x3_winograd(x, w, 6)
    assert not spy.calls and (y.double() - ref).abs().max() <= REL_TOL[6] * ref.abs().max()
    lib6 = native.winograd(f6=True)
    assert lib6 is not None and lib6.tiles == {2, 4, 6}
    paths = sorted(p.name for p in (cache_dir() / "native").iterdir())
    assert len(paths) == 2 and paths[0].endswith("-f6.so") and paths[0][:-len("-f6.so")] + ".so" == paths[1]
    assert native.status() == f"on ({paths[1]})" and native.status(f6=True) == f"on ({paths[0]})"
    spy = Spy(lib6)
    monkeypatch.setattr(ops, "CPU_WINOGRAD_NATIVE", spy)
    with torch.no_grad():
        y6 = ops.conv3x3_winograd(x, w, 6)
    assert spy.calls == ["ganzoo_wino_input", "ganzoo_wino_output"]
    assert (y6.double() - ref).abs().max() <= REL_TOL[6] * ref.abs().max()


def test_sampling_loads_the_f6_build_only_when_that_tile_is_asked_for(lib, shape_choice_state, monkeypatch):
    tuning = importlib.import_module("sdk.backends.tune")
    saved = (ops.CPU_WINOGRAD, ops.CPU_WINOGRAD_MIN_CHANNELS)
    try:
        for env, tiles in (("4", {2, 4}), ("6:128", {2, 4, 6})):
            monkeypatch.setenv(tuning.WINOGRAD_ENV, env)
            tuning.apply_kernel_layouts(torch.device("cpu"))
            assert ops.CPU_WINOGRAD_NATIVE.tiles == tiles, env
    finally:
        ops.set_cpu_winograd(*saved)
    assert sum(1 for p in (cache_dir() / "native").iterdir() if p.name.endswith("-f6.so")) == 1


@pytest.mark.parametrize("rows", [False, True])
@pytest.mark.parametrize("m", [2, 4, 6])
def test_transforms_equal_the_modulated_direct_convolution(lib, lib6, m, rows, monkeypatch):
    spy = Spy(lib6 if m == 6 else lib)
    monkeypatch.setattr(ops, "CPU_WINOGRAD_NATIVE", spy)
    gen = torch.Generator().manual_seed(m + 2 * rows)
    form = "rows" if rows else "points"
    for n, c, o, h, wd in SHAPES:
        x, w = torch.randn(n, c, h, wd, generator=gen), torch.randn(o, c, 3, 3, generator=gen)
        s_in, s_out, b = torch.rand(n, c, generator=gen) + 0.5, torch.rand(n, o, generator=gen) + 0.5, torch.randn(o)
        for layout in (torch.contiguous_format, torch.channels_last):
            xl = x.contiguous(memory_format=layout)
            for kw in ({}, {"in_scale": s_in}, {"out_scale": s_out}, {"bias": b},
                       {"in_scale": s_in, "out_scale": s_out, "bias": b}):
                ref = _modulated_ref(x, w, kw.get("in_scale", torch.ones(n, c)), kw.get("out_scale"), kw.get("bias"))
                spy.calls.clear()
                with torch.no_grad():
                    y = ops.conv3x3_winograd(xl, w, m, form=form, **kw)
                assert spy.calls == ["ganzoo_wino_input", "ganzoo_wino_output"]
                assert y.shape == ref.shape and y.is_contiguous(memory_format=torch.channels_last)
                err = (y.double() - ref).abs().max().item() / ref.abs().max().item()
                assert err <= REL_TOL[m], f"F({m}) {form} {list(x.shape)}->{o} {sorted(kw)}: relative {err:.2g}"


def test_only_eager_fp32_inference_with_channels_in_sixteens_uses_them(lib, monkeypatch):
    spy = Spy(lib)
    monkeypatch.setattr(ops, "CPU_WINOGRAD_NATIVE", spy)
    gen = torch.Generator().manual_seed(7)
    x, w = torch.randn(2, 24, 10, 10, generator=gen), torch.randn(16, 24, 3, 3, generator=gen)
    ref = F.conv2d(x.double(), w.double(), padding=1)
    with torch.no_grad():
        y = ops.conv3x3_winograd(x, w, 4)  # 24 input channels: the PyTorch form
    assert not spy.calls and (y.double() - ref).abs().max() <= REL_TOL[4] * ref.abs().max()
    x16, w16 = x[:, :16].contiguous(), w[:, :16].contiguous().requires_grad_()
    y = ops.conv3x3_winograd(x16, w16, 4)  # autograd
    (g,) = torch.autograd.grad(y.sum(), [w16])
    assert not spy.calls and torch.isfinite(g).all()
    with torch.no_grad():
        ops.conv3x3_winograd(x16.double(), w16.detach().double(), 4)  # float64
        assert not spy.calls
        ops.conv3x3_winograd(x16, w16.detach(), 4)
    assert spy.calls == ["ganzoo_wino_input", "ganzoo_wino_output"]


def test_modulated_layers_scale_inside_the_transforms_in_both_gemm_forms(lib, shape_choice_state, monkeypatch):
    spy = Spy(lib)
    monkeypatch.setattr(ops, "CPU_FUSED_MODCONV", False)
    gen = torch.Generator().manual_seed(11)
    x, w = torch.randn(2, 32, 12, 12, generator=gen), torch.randn(32, 32, 3, 3, generator=gen)
    styles, bias, noise = torch.rand(2, 32, generator=gen) + 0.5, torch.randn(32, generator=gen), torch.randn(12, 12)
    with ops.cpu_winograd(0), torch.no_grad():
        direct = ops.modulated_conv2d(x, w, styles, noise, padding=1, bias=bias, out_scale=2 ** 0.5)
    for rows in (False, True):
        ops.CPU_WINOGRAD_ROWS.clear()
        ops.CPU_WINOGRAD_ROWS_PROBE = lambda _shape, on=rows: on
        ops.CPU_WINOGRAD_NATIVE = spy
        spy.calls.clear()
        with ops.cpu_winograd(4), torch.no_grad():
            y = ops.modulated_conv2d(x, w, styles, noise, padding=1, bias=bias, out_scale=2 ** 0.5)
        assert spy.calls == ["ganzoo_wino_input", "ganzoo_wino_output"]
        assert (y - direct).abs().max() <= REL_TOL[4] * direct.abs().max(), f"rows={rows}"


def _reproduce_sg2_goldens(G, lib, monkeypatch, what: str) -> Spy:
    """The StyleGAN2 fixture's goldens through ``G`` with the compiled transforms behind a spy (returned)."""
    name = "sg2ada_uncond_64"
    gold, man = golden(name), manifest(name)
    calls = sg2_golden_calls(G, gold["z"], None)
    spy = Spy(lib)
    monkeypatch.setattr(ops, "CPU_WINOGRAD_NATIVE", spy)
    with torch.no_grad():
        for key in ("img_const_psi1", "img_const_psi0_5", "img_none_psi1"):
            assert_close(calls[key](), gold[key], tolerance(man, key), f"{key} {what}")
    return spy


def test_stylegan2_fixture_reproduces_its_goldens_through_them(lib, converted_fixture, monkeypatch):
    G = zoo.load(converted_fixture("sg2ada_uncond_64", PKL), quiet=True)
    with ops.cpu_winograd(4):
        spy = _reproduce_sg2_goldens(G, lib, monkeypatch, "with the compiled transforms")
    n3 = sum(1 for mod in G.modules() if getattr(mod, "up", None) == 1 and getattr(mod, "weight", None) is not None
             and mod.weight.ndim == 4 and mod.weight.shape[2] == 3 and mod.weight.shape[1] % 16 == 0)
    assert n3 > 0 and spy.calls.count("ganzoo_wino_output") >= 3 * n3


@pytest.mark.parametrize("env, cc, why", [("0", None, "off: GANZOO_NATIVE=0"),
                                          (None, "/nonexistent/cc", "off: no C compiler"),
                                          (None, "false", "off: compiling winograd.c failed")])
def test_without_them_sampling_keeps_the_pytorch_forms(env, cc, why, monkeypatch):
    monkeypatch.delenv(native.NATIVE_ENV, raising=False)
    if env is not None:
        monkeypatch.setenv(native.NATIVE_ENV, env)
    if cc is not None:
        monkeypatch.setenv("CC", cc)
    native.reset()
    try:
        assert native.winograd() is None
        assert native.status().startswith(why)
        built = cache_dir() / "native"
        assert not built.exists() or not any(built.iterdir())  # a failed build leaves nothing behind
        tuning = importlib.import_module("sdk.backends.tune")
        saved = ops.CPU_WINOGRAD_NATIVE
        try:
            tuning.apply_kernel_layouts(torch.device("cpu"))
            assert ops.CPU_WINOGRAD_NATIVE is None
            assert tuning.kernel_settings(torch.device("cpu"))["winograd"]["native_transforms"] is False
            from sdk.backends.machine import fingerprint

            assert fingerprint("cpu")["native"].startswith(why)
        finally:
            ops.CPU_WINOGRAD_NATIVE = saved
    finally:
        native.reset()


def test_kernel_settings_fingerprint_and_info_report_them(lib, shape_choice_state):
    tuning = importlib.import_module("sdk.backends.tune")
    from sdk.backends.machine import fingerprint
    from sdk.cli.models import _kernels_text

    tuning.apply_kernel_layouts(torch.device("cpu"))
    assert ops.CPU_WINOGRAD_NATIVE is lib
    assert tuning.kernel_settings(torch.device("cpu"))["winograd"]["native_transforms"] is True
    assert fingerprint("cpu")["native"] == native.status()  # probes measured without them are not reused
    text = _kernels_text({"kernels": {"winograd": {"tile": 4, "min_channels": 128, "native_transforms": True}}})
    assert "Winograd F(4x4) for >= 128 input channels, compiled transforms" in text
    assert "compiled" not in _kernels_text({"kernels": {"winograd": {"tile": 4, "min_channels": 128}}})


def test_the_source_ships_with_the_package():
    assert native._SOURCE.is_file() and os.path.getsize(native._SOURCE) > 0
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    assert "recursive-include zoo/models/native *.c" in (root / "MANIFEST.in").read_text()
    assert '"zoo.models.native" = ["*.c"]' in (root / "pyproject.toml").read_text()


# --- the stride-2 3x3 transposed convolutions (ops.conv_transpose3x3_winograd) ------------------------------------

UP_SHAPES = [(1, 16, 32, 5, 7), (3, 32, 16, 8, 8), (2, 16, 48, 9, 6), (1, 64, 16, 1, 3)]  # N, C_in, C_out, H, W
UP_TOL = 2e-6  # relative, against float64; measured ~2e-7 here and ~2e-6 at 512 channels


def test_transposed_convolutions_equal_the_reference(lib, monkeypatch):
    spy = Spy(lib)
    monkeypatch.setattr(ops, "CPU_WINOGRAD_NATIVE", spy)
    gen = torch.Generator().manual_seed(21)
    for n, c, o, h, wd in UP_SHAPES:
        x, wt = torch.randn(n, c, h, wd, generator=gen), torch.randn(c, o, 3, 3, generator=gen)
        s, d = torch.rand(n, c, generator=gen) + 0.5, torch.rand(n, o, generator=gen) + 0.5
        for layout in (torch.contiguous_format, torch.channels_last):
            for kw in ({}, {"in_scale": s}, {"out_scale": d}, {"in_scale": s, "out_scale": d}):
                ref = F.conv_transpose2d(x.double() * kw.get("in_scale", torch.ones(n, c)).double()[:, :, None, None],
                                         wt.double(), stride=2)
                if "out_scale" in kw:
                    ref = ref * d.double()[:, :, None, None]
                spy.calls.clear()
                with torch.no_grad():
                    y = ops.conv_transpose3x3_winograd(x.contiguous(memory_format=layout), wt, **kw)
                assert spy.calls == ["ganzoo_upwino_input", "ganzoo_upwino_output"]
                assert y.shape == ref.shape and y.is_contiguous(memory_format=torch.channels_last)
                err = (y.double() - ref).abs().max().item() / ref.abs().max().item()
                assert err <= UP_TOL, f"{[n, c, h, wd]} -> {o} {sorted(kw)}: relative {err:.2g}"


def test_transposed_convolutions_refuse_what_they_cannot_run(lib, monkeypatch):
    x, wt = torch.randn(1, 16, 4, 4), torch.randn(16, 24, 3, 3)
    with torch.no_grad(), pytest.raises(ValueError, match="multiples of 16"):
        ops.conv_transpose3x3_winograd(x, wt)  # 24 output channels
    monkeypatch.setattr(ops, "CPU_WINOGRAD_NATIVE", None)
    with torch.no_grad(), pytest.raises(ValueError, match="compiled transforms"):
        ops.conv_transpose3x3_winograd(x, torch.randn(16, 16, 3, 3))


def test_upsampling_layers_run_them_where_the_table_says(lib, shape_choice_state, monkeypatch):
    spy = Spy(lib)
    monkeypatch.setattr(ops, "CPU_FUSED_MODCONV", False)
    f = ops.make_filter([1, 3, 3, 1])
    gen = torch.Generator().manual_seed(5)
    x, w = torch.randn(2, 32, 6, 6, generator=gen), torch.randn(16, 32, 3, 3, generator=gen)
    styles, bias = torch.rand(2, 32, generator=gen) + 0.5, torch.randn(16, generator=gen)
    noise = torch.randn(12, 12, generator=gen)

    def layer(xx: torch.Tensor) -> torch.Tensor:
        return ops.modulated_conv2d(xx, w, styles, noise, up=2, padding=1, resample_filter=f, flip_weight=False,
                                    bias=bias, out_scale=2 ** 0.5)

    monkeypatch.setattr(ops, "CPU_WINOGRAD_NATIVE", None)
    with torch.no_grad():
        ref = layer(x)
    ops.CPU_WINOGRAD_UP.clear()
    probed = []
    ops.CPU_WINOGRAD_UP_PROBE = lambda shape: probed.append(shape) or True
    monkeypatch.setattr(ops, "CPU_WINOGRAD_NATIVE", spy)
    with torch.no_grad():
        got = [layer(x), layer(x)]
    assert probed == [(32, 16, 6, 6)] and spy.calls.count("ganzoo_upwino_output") == 2  # probed once, kept
    for y in got:
        assert y.shape == ref.shape and (y - ref).abs().max() <= 1e-5 * ref.abs().max()
    spy.calls.clear()
    xg = x.clone().requires_grad_()
    (g,) = torch.autograd.grad(layer(xg).sum(), [xg])  # autograd: the PyTorch forms
    assert not spy.calls and torch.isfinite(g).all()
    ops.CPU_WINOGRAD_UP[(32, 16, 6, 6)] = False
    with torch.no_grad():
        layer(x)
    assert spy.calls == ["ganzoo_fir4"]  # the table said no: only the FIR is compiled
    spy.calls.clear()
    x1, noise1 = torch.randn(1, 32, 12, 12, generator=gen), torch.randn(24, 24, generator=gen)
    ops.CPU_WINOGRAD_UP[(32, 16, 12, 12)] = True
    monkeypatch.setattr(ops, "CPU_FUSED_MODCONV", True)
    with torch.no_grad():  # batch 1 with the styles folded into a per-call weight: not a weight to transform
        y1 = ops.modulated_conv2d(x1, w, styles[:1], noise1, up=2, padding=1, resample_filter=f, flip_weight=False,
                                  bias=bias, out_scale=2 ** 0.5)
        monkeypatch.setattr(ops, "CPU_FUSED_MODCONV", False)
        ref1 = ops.modulated_conv2d(x1, w, styles[:1], noise1, up=2, padding=1, resample_filter=f, flip_weight=False,
                                    bias=bias, out_scale=2 ** 0.5)
    # the fused call filters natively, the second runs the transforms too
    assert spy.calls == ["ganzoo_fir4", "ganzoo_upwino_input", "ganzoo_upwino_output", "ganzoo_fir4"]
    assert (y1 - ref1).abs().max() <= 1e-5 * ref1.abs().max()


def test_stylegan2_fixture_reproduces_its_goldens_with_winograd_upsampling(lib, converted_fixture, shape_choice_state,
                                                                          monkeypatch):
    G = zoo.load(converted_fixture("sg2ada_uncond_64", PKL), quiet=True)
    monkeypatch.setattr(ops, "CPU_FUSED_MODCONV", False)
    ops.CPU_WINOGRAD_UP.clear()
    ops.CPU_WINOGRAD_UP_PROBE = lambda _shape: True
    spy = _reproduce_sg2_goldens(G, lib, monkeypatch, "with Winograd transposed convs")
    ups = sum(1 for mod in G.modules() if getattr(mod, "up", 1) == 2 and getattr(mod, "weight", None) is not None
              and mod.weight.ndim == 4 and mod.weight.shape[2] == 3 and mod.weight.shape[0] % 16 == 0)
    assert ups > 0 and spy.calls.count("ganzoo_upwino_output") >= 3 * ups


def test_transposed_choice_is_timed_once_kept_forced_by_env_and_reported(lib, shape_choice_state, monkeypatch):
    import json

    from sdk.backends import BackendError
    from sdk.cli.models import _kernels_text

    tuning = importlib.import_module("sdk.backends.tune")
    tuning.apply_kernel_layouts(torch.device("cpu"))
    shape = (16, 16, 12, 12)
    on = tuning.probe_winograd_up(shape)
    files = list(tuning._autotune_dir().glob("winograd-up-*.json"))
    assert len(files) == 1
    rec = json.loads(files[0].read_text())["shapes"]["16,16,12,12"]
    assert rec["on"] == on and rec["layer"] == "16->16 ch @ 12x12" and rec["winograd_ms"] > 0
    assert on == (rec["winograd_ms"] <= tuning.FORM_MIN_GAIN * rec.get("polyphase_ms", rec.get("transposed_conv_ms")))
    tuning._SHAPE_MEMO.clear()
    assert tuning.kernel_winograd_up() == {shape: on}  # read back from the file
    monkeypatch.setattr(tuning, "probe_winograd_up", lambda _s: pytest.fail("a kept shape was timed again"))
    tuning.apply_kernel_layouts(torch.device("cpu"))
    assert ops.CPU_WINOGRAD_UP == {shape: on}
    ops.CPU_WINOGRAD_UP[shape] = True
    assert tuning.kernel_settings(torch.device("cpu"))["winograd_upconv"] == ["16->16 ch @ 12x12"]
    assert "Winograd transposed convs for 16->16 ch @ 12x12" in _kernels_text(
        {"kernels": {"winograd_upconv": ["16->16 ch @ 12x12"]}})
    for env, want in (("1", True), ("0", False)):
        monkeypatch.setenv(tuning.WINOGRAD_UP_ENV, env)
        tuning.apply_kernel_layouts(torch.device("cpu"))
        assert ops.CPU_WINOGRAD_UP == {} and ops.CPU_WINOGRAD_UP_PROBE((64, 32, 8, 8)) is want
    monkeypatch.setenv(tuning.WINOGRAD_UP_ENV, "sometimes")
    with pytest.raises(BackendError, match="GANZOO_WINOGRAD_UP='sometimes'"):
        tuning.apply_kernel_layouts(torch.device("cpu"))


def _fir_ref(x, f, pad, scale, bias, noise, activation, clamp):
    """float64 reference: the project's upfirdn2d (tests/test_upfirdn.py checks it against upstream), then the
    epilogue step by step."""
    y = ops.upfirdn2d(x.double(), f.double(), padding=(pad,) * 4, gain=4)
    if scale is not None:
        y = y * scale.double()[:, :, None, None]
    if bias is not None:
        y = y + bias.double()[None, :, None, None]
    if noise is not None:
        y = y + noise.double()
    y = {"lrelu": lambda t: F.leaky_relu(t, 0.2), "relu": F.relu, "linear": lambda t: t}[activation](y)
    return y if clamp is None else y.clamp(-clamp, clamp)


@pytest.mark.parametrize("activation, clamp", [("linear", None), ("lrelu", None), ("lrelu", 0.3), ("relu", 0.5)])
def test_fir_equals_upfirdn_with_the_epilogue(lib, activation, clamp, monkeypatch):
    spy = Spy(lib)
    monkeypatch.setattr(ops, "CPU_WINOGRAD_NATIVE", spy)
    gen = torch.Generator().manual_seed(13)
    f2, f1 = ops.make_filter([1, 3, 3, 1]), torch.tensor([1.0, 3.0, 3.0, 1.0]) / 8
    for n, c, h, w, pad in [(1, 16, 13, 13, 1), (3, 32, 9, 17, 1), (2, 16, 8, 8, 2), (2, 48, 7, 5, 0)]:
        x = torch.randn(n, c, h, w, generator=gen).contiguous(memory_format=torch.channels_last)
        ho, wo = h + 2 * pad - 3, w + 2 * pad - 3
        scale, bias = torch.rand(n, c, generator=gen) + 0.5, torch.randn(c, generator=gen)
        for noise in (None, torch.randn(ho, wo, generator=gen), torch.randn(n, 1, ho, wo, generator=gen)):
            for f, kw in ((f2, {"scale": scale, "bias": bias}), (f1, {"bias": bias}), (f2, {})):
                ep = ops.Epilogue(noise, activation, clamp)
                spy.calls.clear()
                with torch.no_grad():
                    y = ops.fir4_native(x, f, pad, 4.0, epilogue=ep, **kw)
                ref = _fir_ref(x, f2, pad, kw.get("scale"), kw.get("bias"), noise, activation, clamp)
                size = _fir_ref(x, f2, pad, kw.get("scale"), kw.get("bias"), noise, "linear", None).abs().max()
                assert spy.calls == ["ganzoo_fir4"] and y.shape == ref.shape
                assert y.is_contiguous(memory_format=torch.channels_last)
                err = (y.double() - ref).abs().max().item() / size.item()  # relative to the values before the clamp
                assert err <= 1e-6, f"{[n, c, h, w]} pad {pad} noise {None if noise is None else noise.ndim}: {err:.2g}"


def test_fir_refuses_filters_it_cannot_run(lib, monkeypatch):
    monkeypatch.setattr(ops, "CPU_WINOGRAD_NATIVE", lib)
    x = torch.randn(1, 16, 8, 8)
    with torch.no_grad():
        assert ops.fir4_native(x, torch.outer(torch.tensor([1., 3, 3, 1]), torch.tensor([1., 2, 2, 1])), 1) is None
        assert ops.fir4_native(x, torch.rand(4, 4) + torch.eye(4), 1) is None  # not separable
        assert ops.fir4_native(x, ops.make_filter([1, 2, 1]), 1) is None  # 3 taps
    assert not ops._fir4_ok(torch.randn(1, 24, 8, 8), ops.make_filter([1, 3, 3, 1]))  # 24 channels
    assert not ops._fir4_ok(x.double(), ops.make_filter([1, 3, 3, 1]))


def test_a_noise_with_channels_runs_as_pytorch_passes_after_the_compiled_output(lib, monkeypatch):
    monkeypatch.setattr(ops, "CPU_WINOGRAD_NATIVE", lib)
    applied = []
    real = ops.apply_epilogue
    monkeypatch.setattr(ops, "apply_epilogue", lambda x, ep: applied.append(ep) or real(x, ep))
    gen = torch.Generator().manual_seed(17)
    x, w = torch.randn(2, 16, 8, 8, generator=gen), torch.randn(16, 16, 3, 3, generator=gen)
    ref = F.conv2d(x.double(), w.double(), padding=1)
    for noise, fused in ((torch.randn(2, 1, 8, 8, generator=gen), True),
                         (torch.randn(1, 16, 8, 8, generator=gen), False)):
        applied.clear()
        with torch.no_grad():
            y = ops.conv3x3_winograd(x, w, 4, epilogue=ops.Epilogue(noise, "lrelu", 2.0))
        want = F.leaky_relu(ref + noise.double(), 0.2).clamp(-2, 2)
        assert (y.double() - want).abs().max() <= REL_TOL[4] * want.abs().max()
        assert applied == [None] if fused else [ops.Epilogue(noise, "lrelu", 2.0)]


@pytest.mark.parametrize("up", [1, 2])
@pytest.mark.parametrize("activation", ["lrelu", "linear"])
@pytest.mark.parametrize("noise_mode", ["const", "random", "none"])
def test_synthesis_layers_finish_inside_the_compiled_kernels(lib, up, activation, noise_mode, shape_choice_state,
                                                             monkeypatch):
    from zoo.models.stylegan2 import SynthesisLayer

    from test_stylegan2_layer import reference

    spy = Spy(lib)
    monkeypatch.setattr(ops, "CPU_FUSED_MODCONV", False)
    torch.manual_seed(3)
    layer = SynthesisLayer(32, 16, w_dim=8, resolution=12, up=up, activation=activation, conv_clamp=0.4)
    with torch.no_grad():
        layer.bias.normal_()
        layer.noise_strength.fill_(0.7)
    x, w = torch.randn(3, 32, 12 // up, 12 // up), torch.randn(3, 8)
    monkeypatch.setattr(ops, "apply_epilogue", lambda y, ep: pytest.fail("a PyTorch pass") if ep else y)
    for other in (False, True):  # Winograd rows / the transposed Winograd, or the other forms
        ops.CPU_WINOGRAD_ROWS.clear()
        ops.CPU_WINOGRAD_UP.clear()
        ops.CPU_WINOGRAD_ROWS_PROBE = ops.CPU_WINOGRAD_UP_PROBE = lambda _shape, on=other: on
        ops.CPU_WINOGRAD_NATIVE = spy
        spy.calls.clear()
        gen_state = torch.random.get_rng_state()
        with ops.cpu_winograd(4), torch.no_grad():
            y = layer(x, w, noise_mode=noise_mode, gain=0.5 ** 0.5)
        torch.random.set_rng_state(gen_state)
        noise = None
        if noise_mode == "const":
            noise = layer.noise_const * layer.noise_strength
        elif noise_mode == "random":
            noise = torch.randn([3, 1, 12, 12]) * layer.noise_strength
        layer64 = layer.double()
        ref = reference(layer64, x.double(), w.double(), None if noise is None else noise.double(), 0.5 ** 0.5)
        layer.float()
        assert spy.calls[-1] == ("ganzoo_fir4" if up == 2 else "ganzoo_wino_output")
        assert (y.double() - ref).abs().max() <= 1e-4 * ref.abs().max(), f"other forms: {other}"
