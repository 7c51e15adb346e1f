"""The polyphase form of the stride-2 3x3 transposed convolutions (zoo.models.ops.CPU_POLYPHASE): equal to the
transposed convolution, the upstream goldens reproduced through it, and the per-shape choice timed once, kept per
machine and applied."""

from __future__ import annotations

import importlib
import json

import pytest
import torch
import torch.nn.functional as F
from conftest import assert_close, golden, manifest, sg2_golden_calls, tolerance

import zoo
from sdk.backends import BackendError
from zoo.models import ops

tune = importlib.import_module("sdk.backends.tune")
PKL = "network-snapshot-000000.pkl"


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("size", [(7, 6), (1, 1), (4, 9)])
def test_polyphase_equals_the_transposed_convolution(size, channels_last):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, *size, generator=gen, dtype=torch.float64)
    wt = torch.randn(5, 4, 3, 3, generator=gen, dtype=torch.float64)
    if channels_last:
        x, wt = (t.contiguous(memory_format=torch.channels_last) for t in (x, wt))
    got = ops.conv_transpose3x3_polyphase(x, ops.phase_kernels(wt))
    ref = F.conv_transpose2d(x, wt, stride=2)
    assert got.shape == ref.shape == (2, 4, 2 * size[0] + 1, 2 * size[1] + 1)
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-12)
    if not x.is_contiguous():  # a 1x1 input is both: either output order is right
        assert got.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("fused", [False, True])
def test_upstream_golden_through_the_polyphase_form(fused, converted_fixture, shape_choice_state, monkeypatch):
    name = "sg2ada_uncond_64"
    G = zoo.load(converted_fixture(name, PKL), quiet=True)
    calls = []
    real = ops.conv_transpose3x3_polyphase
    monkeypatch.setattr(ops, "conv_transpose3x3_polyphase", lambda *a: calls.append(a[0].shape) or real(*a))
    monkeypatch.setattr(ops, "CPU_FUSED_MODCONV", fused)
    ops.CPU_POLYPHASE.clear()
    ops.CPU_POLYPHASE_PROBE = lambda _shape: True
    gold, man = golden(name), manifest(name)
    zs = [gold["z"][i:i + 1] for i in range(gold["z"].shape[0])] if fused else [gold["z"]]
    start = 0
    for z in zs:
        got = sg2_golden_calls(G, z, None)
        for key in ("img_const_psi1", "img_const_psi0_5"):
            with torch.no_grad():
                assert_close(got[key](), gold[key][start:start + z.shape[0]], tolerance(man, key), f"{key} {fused}")
        start += z.shape[0]
    n_up = sum(1 for m in G.modules() if getattr(m, "up", 1) == 2 and hasattr(m, "weight")
               and m.weight.ndim == 4 and m.weight.shape[2] == 3)
    assert n_up > 0 and len(calls) >= n_up  # every upsampling 3x3 layer ran in the polyphase form
    assert all(ops.CPU_POLYPHASE.values()) and len(ops.CPU_POLYPHASE) >= 1


def test_choice_is_timed_once_per_shape_kept_and_applied(shape_choice_state, monkeypatch):
    tune.apply_kernel_layouts(torch.device("cpu"))  # the other per-machine choices, timed here once
    shape = (32, 16, 24, 24, True)
    on = tune.probe_polyphase(shape)
    files = list(tune._autotune_dir().glob("polyphase-*.json"))
    assert len(files) == 1
    rec = json.loads(files[0].read_text())["shapes"]["32,16,24,24,1"]
    assert rec["on"] == on == (rec["polyphase_ms"] <= rec["transposed_conv_ms"] * tune.FORM_MIN_GAIN)
    # a second process reads the kept answer (flipped here to prove it is read, not re-measured)
    rec["on"] = not on
    files[0].write_text(json.dumps({**json.loads(files[0].read_text()), "shapes": {"32,16,24,24,1": rec}}))
    tune._SHAPE_MEMO.clear()
    monkeypatch.setattr(tune, "_once", lambda _fn: pytest.fail("a kept shape was timed again"))
    tune.apply_kernel_layouts(torch.device("cpu"))
    assert ops.CPU_POLYPHASE[shape] is (not on)
    assert ops.CPU_POLYPHASE_PROBE is tune.probe_polyphase
    settings = tune.kernel_settings(torch.device("cpu"))
    assert ("32->16 ch @ 24x24 channels-last" in settings["polyphase_upconv"]) == (not on)


def test_unseen_shape_is_probed_at_first_use(shape_choice_state, monkeypatch):
    probed = []
    monkeypatch.setattr(ops, "CPU_POLYPHASE_PROBE", lambda shape: probed.append(shape) or True)
    ops.CPU_POLYPHASE.clear()
    gen = torch.Generator().manual_seed(1)
    x, w = torch.randn(1, 6, 5, 5, generator=gen), torch.randn(4, 6, 3, 3, generator=gen)
    f = ops.make_filter([1, 3, 3, 1])
    with torch.no_grad():
        a = ops.conv2d_resample(x, w, f=f, up=2, padding=1)
        b = ops.conv2d_resample(x, w, f=f, up=2, padding=1)
    assert probed == [(6, 4, 5, 5, ops.CPU_CHANNELS_LAST["conv_transpose"])]  # once: the answer is kept
    ops.CPU_POLYPHASE_PROBE = lambda _shape: False
    ops.CPU_POLYPHASE.clear()
    with torch.no_grad():
        ref = ops.conv2d_resample(x, w, f=f, up=2, padding=1)
    torch.testing.assert_close(a, ref, rtol=1e-5, atol=1e-6)
    assert torch.equal(a, b)


def test_env_forces_the_form_and_refuses_a_bad_value(shape_choice_state, monkeypatch):
    monkeypatch.setenv(tune.POLYPHASE_ENV, "0")
    tune.apply_kernel_layouts(torch.device("cpu"))
    assert ops.CPU_POLYPHASE == {} and ops.CPU_POLYPHASE_PROBE((8, 8, 8, 8, False)) is False
    monkeypatch.setenv(tune.POLYPHASE_ENV, "1")
    tune.apply_kernel_layouts(torch.device("cpu"))
    assert ops.CPU_POLYPHASE_PROBE((8, 8, 8, 8, False)) is True
    monkeypatch.setenv(tune.POLYPHASE_ENV, "yes")
    with pytest.raises(BackendError, match=r"GANZOO_POLYPHASE='yes': use 0 .* 1 .* auto"):
        tune.apply_kernel_layouts(torch.device("cpu"))


def test_training_and_tracing_keep_the_transposed_convolution(shape_choice_state):
    ops.CPU_POLYPHASE.clear()
    ops.CPU_POLYPHASE_PROBE = lambda _shape: True
    x = torch.randn(1, 6, 5, 5, requires_grad=True)
    wt = torch.randn(6, 4, 3, 3)
    assert not ops._polyphase(x, wt, 2)  # autograd: the one-op form
    assert ops._polyphase(x.detach(), wt, 2)
    assert not ops._polyphase(x.detach().double(), wt.double(), 2)


def test_sampling_reports_the_shapes_it_ran_polyphase(converted_fixture, shape_choice_state, monkeypatch):
    import sdk
    from sdk.backends import cached_choice

    monkeypatch.setenv(tune.POLYPHASE_ENV, "1")  # every upsampling shape on, decided on first use
    G = zoo.load(converted_fixture("sg2ada_uncond_64", PKL), quiet=True)
    sdk.generate(G, list(range(8)))
    on = sorted(tune._shape_text(k) for k, v in ops.CPU_POLYPHASE.items() if v)
    assert on  # the fixture has upsampling layers
    assert cached_choice(G).kernels["polyphase_upconv"] == on


def test_cli_refuses_a_bad_polyphase_setting_in_one_line(tmp_path, monkeypatch, shape_choice_state):
    from click.testing import CliRunner

    from sdk.cli import cli

    monkeypatch.setenv(tune.POLYPHASE_ENV, "fast")
    r = CliRunner().invoke(cli, ["sample", "dcgan-digiface-64", "--seeds", "0-1", "--outdir", str(tmp_path / "o"), "-q"])
    assert r.exit_code != 0
    assert "GANZOO_POLYPHASE='fast'" in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "o").exists()  # nothing half-written
