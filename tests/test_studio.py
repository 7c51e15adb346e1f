"""The studio's non-UI glue: the reproduction command, input parsing, the per-model queue, the caches."""

from __future__ import annotations

import shlex
import threading
import time

import pytest
from click.testing import CliRunner
from PIL import Image

import sdk
import zoo
from sdk.cli import cli
from sdk.studio.state import (Cancelled, ModelQueue, StudioInputError, StudioState, parse_class_text,
                              parse_layer_text, parse_seed_text, sample_command, seeds_to_text)
from zoo.errors import UnknownModelError, ZooError

DEFAULT = "dcgan-digiface-64"


def test_sample_command_text():
    assert sample_command(DEFAULT, [0, 1, 2, 3]) == "ganzoo sample dcgan-digiface-64 --seeds 0-3 --grid grid.png"
    cmd = sample_command("stylegan3-t-ffhqu-256", [0, 1, 2, 7, 9, 10], truncation_psi=0.7, truncation_cutoff=4,
                         class_idx="golden retriever", noise_mode="random", translate=(0.25, -0.1), rotate=15.0,
                         cols=3)
    assert shlex.split(cmd) == ["ganzoo", "sample", "stylegan3-t-ffhqu-256", "--seeds", "0-2,7,9-10",
                                "--trunc", "0.7", "--trunc-cutoff", "4", "--class", "golden retriever",
                                "--noise-mode", "random", "--translate", "0.25,-0.1", "--rotate", "15",
                                "--grid", "grid.png", "--cols", "3"]
    # a path with spaces survives the shell
    assert shlex.split(sample_command("/tmp/my models/g", [5]))[2] == "/tmp/my models/g"


def test_sample_command_reproduces_the_grid(tmp_path, monkeypatch):
    """Running the studio's command line through the real CLI writes the grid the same settings sample."""
    monkeypatch.chdir(tmp_path)
    seeds = [0, 1, 2, 3, 7]
    cmd = sample_command(DEFAULT, seeds, truncation_psi=0.6, cols=3)
    args = shlex.split(cmd)
    assert args[:2] == ["ganzoo", "sample"]
    res = CliRunner().invoke(cli, args[1:] + ["--quiet"])
    assert res.exit_code == 0, res.output
    G = zoo.load(DEFAULT, quiet=True)
    want = sdk.make_grid(sdk.sample(G, seeds, truncation_psi=0.6), cols=3)
    import numpy as np

    got = np.asarray(Image.open(tmp_path / "grid.png").convert("RGB"), dtype=np.int16)
    want = np.asarray(want.convert("RGB"), dtype=np.int16)
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1  # the sampling backend is chosen per job: float rounding at most


@pytest.mark.parametrize("seeds", [[0], [0, 1, 2, 3], [3, 1, 2], [5, 6, 8, 9, 10, 0], [2**32 - 1]])
def test_seeds_to_text_round_trips(seeds):
    assert sdk.parse_seeds(seeds_to_text(seeds)) == seeds


@pytest.mark.parametrize("text, fragment", [
    ("", "empty"),
    ("   ", "empty"),
    ("0-x", "bad seed list"),
    ("5-2", "bad seed list"),
    ("0-100", "at most 64"),
    ("4294967296", "out of range"),
])
def test_seed_parsing_errors_are_one_readable_line(text, fragment):
    with pytest.raises(StudioInputError) as ei:
        parse_seed_text(text, "row seeds")
    msg = str(ei.value)
    assert isinstance(ei.value, ZooError) and "\n" not in msg
    assert msg.startswith("row seeds:") and fragment in msg


def test_seed_and_layer_parsing():
    assert parse_seed_text(" 0-3, 9 ") == [0, 1, 2, 3, 9]
    assert parse_layer_text("", 10) is None
    assert parse_layer_text("3,0-1,1", 10) == [0, 1, 3]
    with pytest.raises(StudioInputError, match=r"out of range; this model has W\+ layers 0..9"):
        parse_layer_text("8-10", 10)
    with pytest.raises(StudioInputError, match="bad list"):
        parse_layer_text("a-b", 10)
    assert parse_class_text("207: golden retriever") == 207
    assert parse_class_text("golden retriever") == "golden retriever"
    assert parse_class_text(" ") is None


def test_queue_serialises_one_model_in_arrival_order():
    q = ModelQueue()
    inside, overlaps, order = [], [], []
    gate = threading.Event()

    def job(i: int) -> None:
        with q.turn("m"):
            inside.append(i)
            if len(inside) > 1:
                overlaps.append(list(inside))
            order.append(i)
            if i == 0:
                gate.wait(5)
            time.sleep(0.01)
            inside.remove(i)

    threads = [threading.Thread(target=job, args=(0,))]
    threads[0].start()
    while not q.busy("m"):
        time.sleep(0.005)
    for i in range(1, 5):  # queue up behind job 0, one at a time so arrival order is known
        t = threading.Thread(target=job, args=(i,))
        t.start()
        threads.append(t)
        while q.waiting("m") < i:
            time.sleep(0.005)
    assert q.waiting("m") == 4 and order == [0]
    gate.set()
    for t in threads:
        t.join(10)
    assert not overlaps
    assert order == [0, 1, 2, 3, 4]
    assert not q.busy("m") and q.waiting("m") == 0


def test_queue_lets_other_models_run_and_survives_errors_and_cancel():
    q = ModelQueue()
    with q.turn("a"):
        with q.turn("b"):  # another model is not blocked by "a"
            pass
        cancelled = threading.Event()
        positions: list[int] = []
        errors: list[BaseException] = []

        def waiter() -> None:
            try:
                with q.turn("a", on_wait=positions.append, cancelled=cancelled.is_set):
                    pass
            except Cancelled as e:
                errors.append(e)

        t = threading.Thread(target=waiter)
        t.start()
        while not positions:
            time.sleep(0.005)
        cancelled.set()
        t.join(5)
        assert positions[0] == 1 and len(errors) == 1 and q.waiting("a") == 0
    with pytest.raises(RuntimeError):
        with q.turn("a"):
            raise RuntimeError("boom")
    done = threading.Event()
    threading.Thread(target=lambda: (q.turn("a").__enter__(), done.set())).start()
    assert done.wait(5), "the turn was not released after an exception"


def test_state_loads_once_and_caches_directions_per_generator():
    st = StudioState()
    a = st.model(DEFAULT)
    assert st.model(DEFAULT) is a and st.loaded() == [DEFAULT]
    assert len(a.sha256) == 64
    calls = []

    def compute():
        calls.append(1)
        time.sleep(0.05)
        return sdk.directions.sefa(a.G)

    results = []
    ts = [threading.Thread(target=lambda: results.append(st.direction(a, "sefa", {"layers": None}, compute)))
          for _ in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(10)
    assert len(calls) == 1 and sum(hit for _, hit in results) == 2
    assert len({id(d) for d, _ in results}) == 1
    st.direction(a, "sefa", {"layers": [0]}, compute)  # other parameters: computed again
    assert len(calls) == 2 and st.cached_directions() == 2


def test_state_refuses_bad_models():
    st = StudioState()
    with pytest.raises(UnknownModelError, match="no-such-model"):
        st.model("no-such-model")
    with pytest.raises(StudioInputError, match="no model given"):
        st.model("  ")
    with pytest.raises(StudioInputError, match="onnx"):
        StudioState(backend="onnx").model(DEFAULT)


def test_cli_studio_fails_fast_with_one_line():
    res = CliRunner().invoke(cli, ["studio", "no-such-model", "--quiet", "--port", "0"])
    assert res.exit_code == 1
    assert "unknown model 'no-such-model'" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(cli, ["studio", DEFAULT, "--backend", "onnx"])
    assert res.exit_code != 0 and ".onnx/.ort" in res.output
    res = CliRunner().invoke(cli, ["studio", "--help"])
    assert res.exit_code == 0
    for opt in ("--host", "--port", "--backend", "--share"):
        assert opt in res.output
    assert "127.0.0.1" in res.output


def test_ganzoo_studio_command_serves_the_app_on_localhost(tmp_path):
    """The real command, in its own process from an empty folder: it serves the page on 127.0.0.1."""
    import os
    import socket
    import subprocess
    import sys
    import urllib.request

    if os.environ.get("GANZOO_EXPECT_INSTALLED") != "1":
        pytest.importorskip("gradio")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, GANZOO_NO_LICENSE_NOTICE="1", GRADIO_TEMP_DIR=str(tmp_path / "gradio"))
    code = "import sys; from sdk.cli import main; sys.argv = ['ganzoo'] + sys.argv[1:]; main()"
    proc = subprocess.Popen([sys.executable, "-c", code, "studio", "--port", str(port)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        page = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                    page = r.read().decode("utf-8", "replace")
                break
            except OSError:
                time.sleep(0.5)
        assert page is not None, f"the studio did not start: {proc.poll()=}"
        assert "ganzoo studio" in page
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}" in out
    assert "gradio.live" not in out  # no public share link


def test_onnx_backend_samples_the_same_grid_and_command(tmp_path, monkeypatch):
    """``--backend onnx``: the Sample handler runs an exported file; its command line reproduces the grid."""
    import os

    import numpy as np

    if os.environ.get("GANZOO_EXPECT_INSTALLED") != "1":
        pytest.importorskip("gradio")
        pytest.importorskip("onnxruntime")
    from sdk.studio.app import Studio

    G = zoo.load(DEFAULT, quiet=True)
    onnx_file = str(sdk.export_onnx(G, tmp_path / "g.onnx").path)
    studio = Studio(StudioState(backend="onnx"), onnx_file)
    grid, png, cmd, _ = studio.sample(onnx_file, "0-3", 0.7, None, None, "const", 0, 0, 0, None)
    want = np.asarray(sdk.make_grid(sdk.sample(G, [0, 1, 2, 3], truncation_psi=0.7)), dtype=np.int16)
    assert np.abs(np.asarray(grid, dtype=np.int16) - want).max() <= 1  # onnxruntime vs torch rounding
    assert Image.open(png).tobytes() == grid.tobytes()
    assert "--backend onnx" in cmd and "--trunc 0.7" in cmd
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cli, shlex.split(cmd)[1:] + ["--quiet"])
    assert res.exit_code == 0, res.output
    assert Image.open(tmp_path / "grid.png").tobytes() == grid.tobytes()
    with pytest.raises(StudioInputError, match="torch backend"):
        studio.edit(onnx_file, "seed", 0, None, "SeFa", None, "", 0, 1.0, "", 1.0, None, None)
    with pytest.raises(StudioInputError, match="torch backend"):
        studio.mix(onnx_file, "0-1", "2-3", "0-1", 1.0, "const", None)
    with pytest.raises(StudioInputError, match="torch backend"):
        list(studio.invert(onnx_file, png, 5, "auto", "pixel", False, 0))


def test_handler_errors_become_one_line_page_messages():
    import os

    if os.environ.get("GANZOO_EXPECT_INSTALLED") != "1":
        pytest.importorskip("gradio")
    import gradio as gr

    import gradio.analytics

    from sdk.studio.app import friendly

    assert not gradio.analytics.analytics_enabled()  # the studio never reports usage

    def bad_input():
        raise ValueError("seeds: bad seed list 'x'\nmore detail")

    def bug():
        raise RuntimeError("boom")

    def gen():
        yield 1
        raise StudioInputError("upload a photo")

    with pytest.raises(gr.Error) as ei:
        friendly(bad_input)()
    assert ei.value.message == "seeds: bad seed list 'x'"
    with pytest.raises(gr.Error, match=r"internal error \(RuntimeError\): boom"):
        friendly(bug)()
    it = friendly(gen)()
    assert next(it) == 1
    with pytest.raises(gr.Error) as ei:
        next(it)
    assert ei.value.message == "upload a photo"


def test_class_picker_on_a_conditional_fixture(converted_fixture):
    """The Sample tab's class field: an index, a picker entry "i: name", or nothing (a clear message)."""
    import os

    if os.environ.get("GANZOO_EXPECT_INSTALLED") != "1":
        pytest.importorskip("gradio")
    import gradio as gr

    from sdk.studio.app import Studio, friendly

    folder = str(converted_fixture("sg2ada_cond_fp16_32", "network-snapshot-000000.pkl"))
    G = zoo.load(folder, quiet=True)
    studio = Studio(StudioState(), folder)
    choices = studio.load(folder)[4]["choices"]
    assert len(choices) == G.c_dim
    want = sdk.make_grid(sdk.sample(G, [0, 1], class_idx=2))
    for picked in ("2", choices[2] if isinstance(choices[2], str) else choices[2][0]):
        grid, _, cmd, _ = studio.sample(folder, "0-1", 1.0, None, picked, "const", 0, 0, 0, None)
        assert grid.tobytes() == want.tobytes() and "--class 2" in cmd
    with pytest.raises(gr.Error, match=r"conditional \(\d+ classes\): pick a class"):
        friendly(studio.sample)(folder, "0-1", 1.0, None, "", "const", 0, 0, 0, None)
    with pytest.raises(gr.Error, match="out of range"):
        friendly(studio.sample)(folder, "0-1", 1.0, None, str(G.c_dim), "const", 0, 0, 0, None)


def test_invert_aligns_the_photo_first_when_asked(tmp_path):
    """With face alignment available, Invert's "Align face first" inverts the FFHQ-style crop of the photo."""
    import os

    import numpy as np

    if os.environ.get("GANZOO_EXPECT_INSTALLED") != "1":
        pytest.importorskip("gradio")
    if not hasattr(sdk, "align_face"):
        pytest.skip("this ganzoo has no sdk.align_face")
    pytest.importorskip("dlib", reason="the align extra is not installed")
    skdata = pytest.importorskip("skimage.data")
    import gradio as gr

    from sdk.latent.invert import prepare_image
    from sdk.studio.app import Studio, friendly

    photo = tmp_path / "astronaut.png"
    Image.fromarray(skdata.astronaut()).save(photo)
    studio = Studio(StudioState(), DEFAULT)
    G = studio.state.model(DEFAULT).G
    outs = list(studio.invert(DEFAULT, str(photo), 5, "auto", "pixel", True, 0))
    target, recon, metrics, latent_path, handoff = outs[-1]
    crop = sdk.align_face(photo, output_size=G.img_resolution).image
    want = sdk.to_pil(prepare_image(crop, G.img_resolution, G.img_channels))[0]
    assert np.array_equal(np.asarray(target), np.asarray(want))
    assert "PSNR" in metrics and handoff["space"] == "z" and os.path.isfile(latent_path)
    flat = tmp_path / "wall.png"
    Image.new("RGB", (128, 128), (128, 128, 128)).save(flat)
    with pytest.raises(gr.Error, match="no face found"):
        list(friendly(studio.invert)(DEFAULT, str(flat), 5, "auto", "pixel", True, 0))


def test_stylegan3_translate_rotate_and_their_command(converted_fixture, tmp_path, monkeypatch):
    """Sample's StyleGAN3 sliders give ``sdk.sample(translate=, rotate=)``; other families get a clear message."""
    import os

    import numpy as np

    if os.environ.get("GANZOO_EXPECT_INSTALLED") != "1":
        pytest.importorskip("gradio")
    import gradio as gr

    from sdk.studio.app import Studio, friendly

    folder = str(converted_fixture("sg3_t_64", "network-snapshot-000000.pkl"))
    G = zoo.load(folder, quiet=True)
    studio = Studio(StudioState(), folder)
    grid, _, cmd, _ = studio.sample(folder, "0-1", 1.0, None, None, "const", 0.25, -0.1, 30, None)
    want = sdk.make_grid(sdk.sample(G, [0, 1], translate=(0.25, -0.1), rotate=30.0))
    plain = sdk.make_grid(sdk.sample(G, [0, 1]))
    a, b, p = (np.asarray(x, dtype=np.int16) for x in (grid, want, plain))
    assert np.abs(a - b).max() <= 1 and np.abs(a - p).max() > 10
    assert "--translate 0.25,-0.1" in cmd and "--rotate 30" in cmd
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cli, shlex.split(cmd)[1:] + ["--quiet"])
    assert res.exit_code == 0, res.output
    assert np.abs(np.asarray(Image.open(tmp_path / "grid.png"), dtype=np.int16) - a).max() <= 1
    with pytest.raises(gr.Error) as ei:
        friendly(studio.sample)(DEFAULT, "0", 1.0, None, None, "const", 0.25, 0, 0, None)
    assert "StyleGAN3" in ei.value.message and "\n" not in ei.value.message


def test_handlers_take_turns_on_one_model(tmp_path):
    """While an inversion holds the model, a sample request from another tab waits; Stop lets it through."""
    import os

    if os.environ.get("GANZOO_EXPECT_INSTALLED") != "1":
        pytest.importorskip("gradio")
    from sdk.studio.app import Studio

    studio = Studio(StudioState(), DEFAULT)
    G = studio.state.model(DEFAULT).G
    photo = tmp_path / "p.png"
    sdk.sample(G, [4])[0].save(photo)
    inv = studio.invert(DEFAULT, str(photo), 2000, "auto", "pixel", False, 0)
    next(inv)  # the worker has started
    ended: list[BaseException] = []

    def drain() -> None:
        try:
            list(inv)
        except Cancelled as e:
            ended.append(e)

    drain = threading.Thread(target=drain, daemon=True)
    drain.start()
    deadline = time.monotonic() + 30
    while not studio.state.queue.busy(DEFAULT):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    done = threading.Event()
    result = []
    t = threading.Thread(target=lambda: (result.append(studio.sample(DEFAULT, "0", 1.0, None, None, "const",
                                                                     0, 0, 0, None)), done.set()))
    t.start()
    assert not done.wait(1.0), "sampling ran while the inversion held the model"
    assert studio.state.queue.waiting(DEFAULT) == 1
    studio.stop("invert")(None)  # the Stop button of the (request-less) inversion
    assert done.wait(30)
    drain.join(30)
    assert len(ended) == 1  # the inversion ended as cancelled, not finished
    assert result and result[0][0].size == (G.img_resolution, G.img_resolution)
