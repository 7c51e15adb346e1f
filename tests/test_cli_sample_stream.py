"""``ganzoo sample`` writes each batch's files as the batch comes (an interrupted job keeps them), and reports the
backend that runs: onnxruntime for an exported .onnx file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from sdk.backends.runners import TorchRunner
from sdk.cli import cli

ROOT = Path(__file__).resolve().parents[1]


def _pngs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.png")) if folder.is_dir() else []


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) if folder.is_dir() else []


def _assert_complete_pngs(folder: Path, names: list[str]) -> None:
    for name in names:
        with Image.open(folder / name) as im:
            assert im.format == "PNG" and im.size == (64, 64)
            im.load()  # decodes the whole file: a truncated one raises


@pytest.fixture
def batch_hook(monkeypatch: pytest.MonkeyPatch):
    """``batch_hook(outdir, stop_at=None)``: records the .png files in ``outdir`` when each batch is generated
    (eager torch runner calls); raises KeyboardInterrupt at call ``stop_at`` (0-based), as Ctrl-C there would."""
    seen: list[list[str]] = []
    call = TorchRunner.__call__

    def install(outdir: Path, stop_at: int | None = None) -> list[list[str]]:
        def hooked(self, z, c, truncation_psi):
            seen.append(_pngs(outdir))
            if stop_at is not None and len(seen) > stop_at:
                raise KeyboardInterrupt
            return call(self, z, c, truncation_psi)

        monkeypatch.setattr(TorchRunner, "__call__", hooked)
        return seen

    return install


def test_files_are_written_as_each_batch_comes(tmp_path, batch_hook):
    out = tmp_path / "o"
    seen = batch_hook(out)
    r = CliRunner().invoke(cli, ["sample", "dcgan-digiface-64", "--seeds", "0-7", "--batch-size", "2",
                                 "--backend", "torch", "--outdir", str(out), "--json", "-q"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    names = [f"seed{s:04d}.png" for s in range(8)]
    # when batch k is generated, the files of batches 0 .. k-1 are already on disk
    assert seen == [names[:2 * k] for k in range(4)]
    assert json.loads(r.output)["files"] == [str(out / n) for n in names]
    _assert_complete_pngs(out, names)
    assert not _leftovers(out)


def test_interrupt_keeps_the_finished_batches(tmp_path, batch_hook):
    out = tmp_path / "o"
    batch_hook(out, stop_at=1)  # Ctrl-C while the second batch runs
    r = CliRunner().invoke(cli, ["sample", "dcgan-digiface-64", "--seeds", "0-7", "--batch-size", "2",
                                                 "--backend", "torch", "--outdir", str(out), "--json", "-q"])
    assert r.exit_code != 0
    assert r.stdout == ""  # no JSON summary for a job that did not finish
    assert _pngs(out) == ["seed0000.png", "seed0001.png"]
    _assert_complete_pngs(out, ["seed0000.png", "seed0001.png"])
    assert not _leftovers(out)  # no temporary files


def test_interrupt_while_saving_leaves_no_partial_file(tmp_path, monkeypatch):
    """Ctrl-C while the second batch is being written: the first batch stays, no temporary or broken file."""
    import sdk.images

    out = tmp_path / "o"
    calls = []
    save = sdk.images.save_image

    def interrupted_save(image, path, **kwargs):
        calls.append(path)
        if len(calls) == 3:  # the first file of the second batch
            def broken(fp, *a, **k):
                Path(fp).write_bytes(b"\x89PNG\r\n\x1a\n")  # part of a file
                raise KeyboardInterrupt
            monkeypatch.setattr(image, "save", broken)
        return save(image, path, **kwargs)

    monkeypatch.setattr(sdk.images, "save_image", interrupted_save)
    r = CliRunner().invoke(cli, ["sample", "dcgan-digiface-64", "--seeds", "0-7", "--batch-size", "2",
                                 "--backend", "torch", "--outdir", str(out), "-q"])
    assert r.exit_code != 0
    names = _pngs(out)  # seed0003 is saved on another thread and may be there
    assert names[:2] == ["seed0000.png", "seed0001.png"] and "seed0002.png" not in names
    assert not set(names) - {"seed0000.png", "seed0001.png", "seed0003.png"}  # nothing of the third batch
    _assert_complete_pngs(out, names)
    assert not _leftovers(out)


def test_sigint_keeps_written_files_and_reports_on_stderr(tmp_path):
    """A real Ctrl-C (SIGINT) on ``ganzoo sample``: exit 130, "aborted" on stderr, stdout empty, finished files."""
    out = tmp_path / "o"
    # each batch takes >= 50 ms, so the job (2000 seeds) is still running when the signal comes
    code = ("import time; from sdk.backends.runners import TorchRunner; call = TorchRunner.__call__; "
            "TorchRunner.__call__ = lambda self, *a: (time.sleep(0.05), call(self, *a))[1]; "
            "from sdk.cli import main; main()")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.Popen([sys.executable, "-c", code, "sample", "dcgan-digiface-64", "--seeds", "0-1999",
                          "--batch-size", "2", "--backend", "torch", "--outdir", str(out), "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while len(_pngs(out)) < 4 and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert p.poll() is None, "the job ended before any file appeared"
        p.send_signal(signal.SIGINT)
        stdout, stderr = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 130, stderr
    assert stdout == ""
    assert stderr.rstrip().endswith("aborted") and "Traceback" not in stderr
    names = _pngs(out)
    assert 4 <= len(names) < 2000
    assert names == [f"seed{s:04d}.png" for s in range(len(names))]  # every finished seed, in order
    _assert_complete_pngs(out, names)
    assert not _leftovers(out)


def test_grid_and_outdir_still_written(tmp_path):
    out, grid = tmp_path / "o", tmp_path / "g.png"
    r = CliRunner().invoke(cli, ["sample", "--seeds", "0-4", "--batch-size", "2", "--outdir", str(out),
                                 "--grid", str(grid), "--cols", "5", "--json", "-q"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    files = json.loads(r.output)["files"]
    assert files == [str(out / f"seed{s:04d}.png") for s in range(5)] + [str(grid)]
    with Image.open(grid) as g, Image.open(out / "seed0003.png") as one:
        assert g.size == (320, 64)
        assert g.crop((192, 0, 256, 64)).convert(one.mode).tobytes() == one.tobytes()


def test_sample_batches_is_what_sample_gives():
    import sdk
    import zoo
    from sdk.sampling import sample_batches

    G = zoo.load("dcgan-digiface-64", quiet=True)
    batches = list(sample_batches(G, range(5), batch_size=2, backend="torch"))
    assert [chunk for chunk, _ in batches] == [[0, 1], [2, 3], [4]]
    whole = sdk.sample(G, range(5), batch_size=5, backend="torch")
    assert [im.tobytes() for _, ims in batches for im in ims] == [im.tobytes() for im in whole]


def test_exported_onnx_file_reports_the_onnx_backend(tmp_path):
    onnx = tmp_path / "dc.onnx"
    r = CliRunner().invoke(cli, ["export", "dcgan-digiface-64", "--out", str(onnx), "-q"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["sample", str(onnx), "--backend", "onnx", "--seeds", "0-3",
                                                 "--outdir", str(tmp_path / "o"), "--json"], catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    choice = json.loads(r.stdout)["backend"]
    assert choice["backend"] == "onnx" and choice["batch_size"] == 8 and choice["source"] == "forced"
    assert choice["reason"] == "onnxruntime runs dc.onnx on CPUExecutionProvider"
    assert "ganzoo: backend onnx, batch 8 (forced: onnxruntime runs dc.onnx on CPUExecutionProvider)" in r.stderr
    assert "sampling (onnx)" in r.stderr and "torch" not in r.stderr
    assert len(_pngs(tmp_path / "o")) == 4
    r = CliRunner().invoke(cli, ["sample", str(onnx), "--seeds", "0-3", "--outdir",
                                                 str(tmp_path / "a"), "--json", "-q"], catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    choice = json.loads(r.stdout)["backend"]
    assert choice["backend"] == "onnx" and choice["source"] == "adaptive" and "CPUExecutionProvider" in choice["reason"]
    for s in range(4):  # the same images either way
        with Image.open(tmp_path / "o" / f"seed{s:04d}.png") as a, Image.open(tmp_path / "a" / f"seed{s:04d}.png") as b:
            assert a.tobytes() == b.tobytes()
