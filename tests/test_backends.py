"""Backend choice: eager torch, cached AOTInductor packages and ONNX files, batch sizes measured per machine."""

from __future__ import annotations

import importlib
import json
import os
import stat
import time

import pytest
import torch
from click.testing import CliRunner

import sdk
import zoo
from sdk.backends import BackendError, cached_choice, kernel_layouts, make_runner, resolve, tune
from sdk.backends.tune import BatchPlan, max_batch
from sdk.cli import cli
from zoo.models import ops

from conftest import assert_close, golden, manifest, sg2_golden_calls, tolerance

PKL = "network-snapshot-000000.pkl"


@pytest.fixture(scope="module")
def dcgan():
    return zoo.load("dcgan-digiface-64", quiet=True)


@pytest.fixture(scope="module")
def sg2(converted_fixture):
    return zoo.load(converted_fixture("sg2ada_uncond_64", PKL), quiet=True)


def test_auto_measures_batch_sizes_on_the_job_and_caches_them(dcgan):
    seeds = list(range(20))
    reference = sdk.generate(dcgan, seeds, backend="torch", batch_size=8)
    assert cached_choice(dcgan) is None  # forced runs measure nothing
    auto = sdk.generate(dcgan, seeds)
    # batch size never changes a seed's image beyond fp32 rounding (oneDNN blocks odd batches differently)
    torch.testing.assert_close(auto, reference, atol=1e-5, rtol=0)
    assert torch.equal(auto[:8], reference[:8])  # power-of-two chunks (1, 1, 2, 2, ...) agree exactly here
    choice = cached_choice(dcgan)
    assert choice is not None and choice.backend == "torch" and choice.source == "cached"
    measured = choice.timings["torch"]
    sizes = sorted(int(b) for b in measured)
    assert len(sizes) >= 2 and sizes == [1, 2, 4, 8, 16][:len(sizes)]  # doubling while faster (timing-dependent)
    assert choice.batch_size == int(min(measured, key=measured.__getitem__))
    _, again = resolve(dcgan)
    assert again.source == "cached" and again.batch_size == choice.batch_size
    torch.testing.assert_close(sdk.generate(dcgan, seeds), reference, atol=1e-5, rtol=0)


def _run_plan(fake_ms: dict[int, float], calls: int) -> tuple[list[int], BatchPlan]:
    from sdk.backends import BackendChoice

    plan = BatchPlan(BackendChoice("torch", None, "adaptive", "", max_batch=16), 100)
    sizes = []
    for call in range(calls):
        n = plan.next_size(100)
        sizes.append(n)
        warm_up = 10.0 if call == 0 else 1.0  # the first call pays for kernel set-up
        plan.record(n, fake_ms[n] * n / 1e3 * warm_up)
    return sizes, plan


def test_batch_plan_schedule_warms_up_then_keeps_the_fastest(monkeypatch):
    tuning = importlib.import_module("sdk.backends.tune")  # the module (sdk.backends.tune is also a function)

    released = []
    monkeypatch.setattr(tuning, "release_memory", lambda: released.append(True))
    # the first (warm-up) call does not count; each size runs twice; batches 4 and 8 are both slower than 2, so 16
    # is never tried, and the heap the larger batches grew is handed back
    sizes, plan = _run_plan({1: 5.0, 2: 3.0, 4: 4.0, 8: 3.5}, 11)
    assert sizes == [1, 1, 1, 2, 2, 4, 4, 8, 8, 2, 2]
    assert plan.measured == {1: 5.0, 2: 3.0, 4: 4.0, 8: 3.5} and plan.next_size(1) == 1
    assert released == [True]


def test_batch_plan_looks_past_one_slower_size(monkeypatch):
    tuning = importlib.import_module("sdk.backends.tune")  # the module (sdk.backends.tune is also a function)

    monkeypatch.setattr(tuning, "release_memory", lambda: None)
    # batch 1 has a fused form of its own: batch 2 is slower per image, batch 4 faster than both
    sizes, plan = _run_plan({1: 5.0, 2: 5.3, 4: 4.5, 8: 4.6, 16: 4.7}, 13)
    assert sizes == [1, 1, 1, 2, 2, 4, 4, 8, 8, 16, 16, 4, 4]
    assert plan.best() == 4


def test_batch_plan_keeps_the_better_of_two_runs_and_stops_without_a_clear_gain(monkeypatch):
    tuning = importlib.import_module("sdk.backends.tune")  # the module (sdk.backends.tune is also a function)

    monkeypatch.setattr(tuning, "release_memory", lambda: None)
    from sdk.backends import BackendChoice

    plan = BatchPlan(BackendChoice("torch", None, "adaptive", "", max_batch=16), 100)
    for n, ms in [(1, 50.0), (1, 6.0), (1, 5.0), (2, 9.0), (2, 4.95)]:  # warm-up, then 1 twice, then 2 twice
        assert plan.next_size(100) == n
        plan.record(n, ms * n / 1e3)
    # batch 2's better run (4.95 ms) is within 3 % of batch 1's 5.0, and so is batch 4's: batch 8 is not tried
    for n, ms in [(4, 4.9), (4, 4.96)]:
        assert plan.next_size(100) == n
        plan.record(n, ms * n / 1e3)
    assert plan.measured == {1: 5.0, 2: 4.95, 4: 4.9}
    assert plan.next_size(100) == 4 and not plan.schedule


def test_memory_budget_caps_the_batch(dcgan, monkeypatch):
    monkeypatch.setenv("GANZOO_MEMORY_BUDGET", "1KiB")
    assert max_batch(dcgan) == 1
    monkeypatch.setenv("GANZOO_MEMORY_BUDGET", "lots")
    with pytest.raises(BackendError, match="not a size"):
        max_batch(dcgan)


def test_a_first_job_takes_its_memory_cap_from_its_warm_up_call(dcgan, monkeypatch):
    tuning = importlib.import_module("sdk.backends.tune")  # the module (sdk.backends.tune is also a function)

    per_image = tuning.per_image_bytes(dcgan)  # the meta-device estimate a later `ganzoo tune` would make
    factor = tuning.REUSE_HEAP_FACTOR if tuning.configure_allocator() == "reuse" else 1
    monkeypatch.setenv("GANZOO_MEMORY_BUDGET", str(int(2.5 * per_image * factor)))  # room for batch 2, not 4
    monkeypatch.setattr(tuning, "per_image_bytes", lambda *a, **k: pytest.fail("the meta-device forward ran"))
    _, choice = resolve(dcgan)
    assert choice.source == "adaptive" and choice.max_batch is None  # not known before the first call
    sdk.generate(dcgan, list(range(12)), backend=choice)
    assert choice.max_batch == 2  # the warm-up call's module outputs, as the meta forward sums them
    cached = cached_choice(dcgan)
    assert cached is not None and cached.max_batch == 2
    assert sorted(int(b) for b in cached.timings["torch"]) == [1, 2]  # batch 4 would not fit: never tried


def test_compiled_package_is_built_once_matches_eager_and_is_reused(dcgan, monkeypatch):
    z = sdk.seeds_to_z(dcgan, [3, 4, 5])
    with torch.no_grad():
        eager = dcgan(z)
        runner = make_runner(dcgan, "compiled")
        out = runner(z, None, 1.0)
    assert_close(out, eager, 1e-4, "compiled vs eager")
    path = runner.path
    assert path.is_file() and path.parent.parent.name == "artifacts"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600

    def no_compiling(*a, **k):
        raise AssertionError("recompiled although the package is cached")

    monkeypatch.setattr(torch._inductor, "aoti_compile_and_package", no_compiling)
    with torch.no_grad():
        again = make_runner(dcgan, "compiled", build=False)(z[:1], None, 1.0)
    assert_close(again, eager[:1], 1e-4, "reloaded package vs eager")


def test_onnx_backend_and_tuning_choice_on_a_stylegan2(sg2):
    z = sdk.seeds_to_z(sg2, [0, 1])
    with torch.no_grad():
        eager = sg2(z, None, truncation_psi=0.7)
        onnx = make_runner(sg2, "onnx")(z, None, 0.7)
    assert_close(onnx, eager, 1e-4, "onnx backend vs eager")
    choice = tune(sg2, ["torch", "onnx"], [1, 2], repeats=1)
    assert set(choice.timings) == {"torch", "onnx"} and set(choice.timings["onnx"]) == {"1", "2"}
    best = min((t, b, n) for n, ts in choice.timings.items() for b, t in ts.items())
    assert (choice.backend, str(choice.batch_size)) == (best[2], best[1])
    _, auto = resolve(sg2)
    assert auto.source == "cached" and auto.backend == choice.backend
    images = sdk.generate(sg2, [0, 1], truncation_psi=0.7)
    assert_close(images, eager, 1e-4, "auto choice vs eager")
    _, rnd = resolve(sg2, noise_mode="random")
    assert rnd.backend == "torch"  # graphs bake their noise: random noise always runs eagerly
    with pytest.raises(BackendError, match="random"):
        make_runner(sg2, "onnx", noise_mode="random")


@pytest.mark.parametrize("channels_last", [False, True])
def test_both_cpu_layouts_reproduce_the_upstream_golden(channels_last, converted_fixture):
    name = "sg2ada_uncond_64"
    G = zoo.load(converted_fixture(name, PKL), quiet=True)
    saved = dict(ops.CPU_CHANNELS_LAST)
    try:
        ops.set_cpu_layouts({"conv_transpose": channels_last, "fir": channels_last})
        gold, man = golden(name), manifest(name)
        calls = sg2_golden_calls(G, gold["z"], None)
        for key in ("img_const_psi1", "img_const_psi0_5"):
            with torch.no_grad():
                assert_close(calls[key](), gold[key], tolerance(man, key), f"{key} channels_last={channels_last}")
    finally:
        ops.set_cpu_layouts(saved)
    with pytest.raises(ValueError, match="unknown layout op"):
        ops.set_cpu_layouts({"winograd": True})


@pytest.mark.parametrize("form,channels_last", [("fused_modconv", True), ("fused_modconv", False),
                                                 ("separable_fir", True)])
def test_each_kernel_form_reproduces_the_upstream_golden_at_batch_1(form, channels_last, converted_fixture,
                                                                    monkeypatch):
    import zoo.models.stylegan2 as sg2_module

    # the fused form scales a cached transposed weight laid out to match the activations: test both layouts
    monkeypatch.setattr(ops, "CPU_CHANNELS_LAST", {"conv_transpose": channels_last, "fir": channels_last})

    name = "sg2ada_uncond_64"
    G = zoo.load(converted_fixture(name, PKL), quiet=True)
    fused_calls = []
    real = ops._fused_modconv_batch1
    monkeypatch.setattr(ops, "_fused_modconv_batch1", lambda *a: fused_calls.append(1) or real(*a))
    monkeypatch.setattr(ops, "CPU_FUSED_MODCONV", form == "fused_modconv")
    monkeypatch.setattr(sg2_module, "SEPARABLE_FIR", form == "separable_fir")
    gold, man = golden(name), manifest(name)
    for i in range(gold["z"].shape[0]):
        calls = sg2_golden_calls(G, gold["z"][i:i + 1], None)
        for key in ("img_const_psi1", "img_const_psi0_5"):
            with torch.no_grad():
                assert_close(calls[key](), gold[key][i:i + 1], tolerance(man, key), f"{key}[{i}] {form}")
    assert bool(fused_calls) == (form == "fused_modconv")  # the form under test really ran


def test_kernel_forms_are_measured_once_cached_and_applied():
    import zoo.models.stylegan2 as sg2_module
    from sdk.backends.tune import _autotune_dir, apply_kernel_layouts, kernel_forms

    forms = kernel_forms(refresh=True)
    assert set(forms) == {"separable_fir", "fused_modconv"}
    files = list(_autotune_dir().glob("forms-*.json"))
    assert len(files) == 1
    record = json.loads(files[0].read_text())
    for name, ms in record["ms"].items():  # on only when clearly faster in the recorded timings
        assert forms[name] == (ms["on_ms"] <= ms["off_ms"] * 0.97)
    flipped = {k: not v for k, v in forms.items()}
    files[0].write_text(json.dumps({**record, "forms": flipped}))  # a cached answer is read back, not re-measured
    try:
        tuning = importlib.import_module("sdk.backends.tune")
        tuning._FORMS_MEMO.clear()
        apply_kernel_layouts(torch.device("cpu"))
        assert (sg2_module.SEPARABLE_FIR, ops.CPU_FUSED_MODCONV) == (flipped["separable_fir"],
                                                                     flipped["fused_modconv"])
    finally:
        kernel_forms(refresh=True)
        apply_kernel_layouts(torch.device("cpu"))


def test_kernel_layouts_are_measured_once_and_cached():
    from sdk.backends.tune import _autotune_dir

    layouts = kernel_layouts(refresh=True)
    assert set(layouts) == set(ops.CPU_CHANNELS_LAST)
    files = list(_autotune_dir().glob("kernels-*.json"))
    assert len(files) == 1
    record = json.loads(files[0].read_text())
    for op, ms in record["ms"].items():  # the recorded choice follows the recorded timings
        assert layouts[op] == (ms["channels_last_ms"] < ms["nchw_ms"])


def test_cli_tune_info_and_sample_report_the_choice(tmp_path):
    runner = CliRunner()
    r = runner.invoke(cli, ["tune", "dcgan-digiface-64", "--backends", "torch", "--batches", "1,2", "--json", "-q"])
    assert r.exit_code == 0, r.output
    tuned = json.loads(r.output)
    assert tuned["backend"] == "torch" and tuned["batch_size"] in (1, 2)
    r = runner.invoke(cli, ["info", "dcgan-digiface-64", "--json"])
    info = json.loads(r.output)["backend"]
    assert info["batch_size"] == tuned["batch_size"]
    import zoo.models.stylegan2 as sg2_module

    tune_module = importlib.import_module("sdk.backends.tune")
    assert info["kernels"] == {"allocator": "reuse",
                               "winograd": {"tile": ops.CPU_WINOGRAD, "min_channels": ops.CPU_WINOGRAD_MIN_CHANNELS,
                                            "native_transforms": ops.CPU_WINOGRAD_NATIVE is not None},
                               "separable_fir": sg2_module.SEPARABLE_FIR,
                               "fused_modconv_batch1": ops.CPU_FUSED_MODCONV,
                               "polyphase_upconv": sorted(tune_module._shape_text(k)
                                                          for k, on in ops.CPU_POLYPHASE.items() if on),
                               "winograd_rows": sorted(tune_module._winograd_shape_text(k)
                                                       for k, on in ops.CPU_WINOGRAD_ROWS.items() if on),
                               "winograd_upconv": sorted(tune_module._shape_text((*k, False))
                                                         for k, on in ops.CPU_WINOGRAD_UP.items() if on)}
    r = runner.invoke(cli, ["info", "dcgan-digiface-64"])
    assert "kernels: allocator reuse; channels-last" in r.output, r.output
    r = runner.invoke(cli, ["sample", "--seeds", "0-2", "--outdir", str(tmp_path / "o"), "--json", "-q"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["backend"]["source"] == "cached" and out["backend"]["batch_size"] == tuned["batch_size"]
    r = runner.invoke(cli, ["tune", "dcgan-digiface-64", "--backends", "tensorrt"])
    assert r.exit_code != 0 and "unknown backend" in r.output
    r = runner.invoke(cli, ["sample", "x.onnx", "--backend", "compiled", "--grid", str(tmp_path / "g.png")])
    assert r.exit_code != 0 and "exported file" in r.output


def test_bf16_is_opt_in_reported_and_refused_where_it_cannot_run(dcgan, monkeypatch):
    from sdk.backends import machine, precision_quality

    if not {"avx512_bf16", "amx_bf16", "bf16"} & set(machine.cpu_flags()):
        with pytest.raises(BackendError, match="no bfloat16"):
            sdk.generate(dcgan, [0], precision="bf16")
        return
    q = precision_quality(dcgan, "bf16", seeds=[0, 1])
    assert q["psnr_db"] is not None and 30 < q["psnr_db"] < 120  # lossy, but close to fp32
    fp32 = sdk.generate(dcgan, [0, 1], backend="torch")
    assert torch.equal(sdk.generate(dcgan, [0, 1]), fp32)  # the default stays fp32
    assert not torch.equal(sdk.generate(dcgan, [0, 1], precision="bf16"), fp32)
    with pytest.raises(BackendError, match="torch backend"):
        sdk.generate(dcgan, [0], precision="bf16", backend="onnx")
    monkeypatch.setattr(machine, "cpu_flags", lambda: ["avx2", "fma"])
    with pytest.raises(BackendError, match="no bfloat16"):
        sdk.generate(dcgan, [0], precision="bf16")
    with pytest.raises(BackendError, match="fp16 runs on CUDA"):
        sdk.generate(dcgan, [0], precision="fp16")


def test_bf16_measures_its_own_batch_size_and_keeps_it_apart(dcgan):
    from sdk.backends import machine
    from sdk.backends.tune import _precision_file, choice_path

    if not {"avx512_bf16", "amx_bf16", "bf16"} & set(machine.cpu_flags()):
        pytest.skip("this CPU has no bfloat16 arithmetic")
    _, first = resolve(dcgan, precision="bf16")
    assert first.source == "adaptive" and first.batch_size is None and first.precision == "bf16"
    sdk.generate(dcgan, list(range(16)), precision="bf16")
    kept = json.loads(_precision_file(dcgan, "bf16").read_text())["timings"]["torch-bf16"]
    assert len(kept) >= 2  # at least two sizes measured on the job's own images
    assert not choice_path(dcgan).exists()  # the fp32 default still has nothing cached: bf16 stays opt-in
    _, again = resolve(dcgan, precision="bf16")
    assert again.source == "cached" and again.batch_size == int(min(kept, key=kept.__getitem__))
    _, fp32 = resolve(dcgan)
    assert fp32.source == "adaptive" and fp32.precision == "fp32"
    _, forced = resolve(dcgan, batch_size=3, precision="bf16")
    assert forced.source == "forced" and forced.batch_size == 3


def _sleeper(*seconds: float):
    """A callable that sleeps the given seconds on successive calls (the last one repeats); counts its calls."""
    calls = []

    def fn() -> None:
        calls.append(None)
        time.sleep(seconds[min(len(calls), len(seconds)) - 1])

    fn.calls = calls
    return fn


def test_a_form_race_is_not_decided_by_one_disturbed_round():
    steady, disturbed = _sleeper(0.02), _sleeper(0.001, 0.08, 0.004)  # warm-up, a disturbed round, then fast
    race = importlib.import_module("sdk.backends.tune")._race
    t_steady, t_disturbed = race(steady, disturbed)
    assert t_disturbed < 0.01 < t_steady  # the second round shows the disturbed form is the fast one
    slow, fast = _sleeper(0.03), _sleeper(0.005)
    race(slow, fast)
    assert len(slow.calls) == len(fast.calls) == 3  # warm-up and two rounds: clearly slower, not timed further
