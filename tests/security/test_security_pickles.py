"""Hostile pickles fed to every converter format and to zoo.load: refused before anything executes.

Each payload would create a marker file if run; the marker must never appear, the error must be a
ZooError (one clear line), and no output folder may be left behind.
"""

from __future__ import annotations

import os
import pickle
import random
import zipfile
from pathlib import Path

import pytest
import torch

import converters
import zoo
from conftest import fixture_dir
from payloads import inject_after, protocol4_payload, raw_payloads, replace_string, shell
from zoo.errors import UnsafePickleError, ZooError

FORMATS = [f.name for f in converters.list_formats()]
PAYLOAD_NAMES = sorted(raw_payloads(Path("/x")))
SNAPSHOT = fixture_dir("sg2ada_uncond_64") / "network-snapshot-000000.pkl"


@pytest.fixture
def marker(tmp_path):
    m = tmp_path / "pwned"
    yield m
    assert not m.exists(), "a payload ran"


def _refused(path: Path, out: Path, marker: Path) -> list[str]:
    """Feed ``path`` to auto-detection, zoo.load and every format forced; return the messages."""
    messages = []
    with pytest.raises(ZooError) as e:
        converters.convert(path, out)
    messages.append(str(e.value))
    with pytest.raises(ZooError) as e:
        zoo.load(path, quiet=True)
    messages.append(str(e.value))
    for fmt in FORMATS:
        with pytest.raises(ZooError) as e:
            converters.convert(path, out, format=fmt)
        messages.append(f"{fmt}: {e.value}")
    assert not out.exists(), "partial output left behind"
    assert not marker.exists()
    for m in messages:
        assert "\n" not in m.strip() and len(m) < 2000
    return messages


@pytest.mark.parametrize("name", PAYLOAD_NAMES)
def test_raw_payload_refused_everywhere(name, tmp_path, marker):
    path = tmp_path / "network-snapshot-evil.pkl"
    path.write_bytes(raw_payloads(marker)[name])
    msgs = _refused(path, tmp_path / "out", marker)
    if name != "unregistered_extension":
        # the pickle-reading formats name the refused global (or say the file is not readable)
        assert any("allow-list" in m for m in msgs)


def test_restricted_unpickler_raises_unsafe_for_every_global_payload(tmp_path, marker):
    from converters.nvidia import NVIDIA_GLOBALS
    from converters.safe_pickle import restricted_load

    for name, data in raw_payloads(marker).items():
        if name == "unregistered_extension":
            with pytest.raises(zoo.ConversionError):
                restricted_load(data, NVIDIA_GLOBALS)
            continue
        with pytest.raises(UnsafePickleError, match="allow-list"):
            restricted_load(data, NVIDIA_GLOBALS)


@pytest.mark.parametrize("module,name", [("os", "system"), ("builtins", "exec"), ("subprocess", "getoutput"),
                                         ("builtins", "getattr"), ("copyreg", "_reconstructor"),
                                         ("_codecs", "encode")])
def test_payload_hidden_deep_in_a_valid_nvidia_snapshot(module, name, tmp_path, marker):
    arg = shell(marker) if module != "builtins" else f"open({str(marker)!r}, 'w').close()"
    data = inject_after(SNAPSHOT.read_bytes(), "_init_kwargs", protocol4_payload(module, name, arg))
    path = tmp_path / "network-snapshot-000000.pkl"
    path.write_bytes(data)
    msgs = _refused(path, tmp_path / "out", marker)
    assert f"{module}.{name}" in msgs[0]


def test_injection_helper_keeps_the_snapshot_valid(tmp_path):
    """Control for the test above: a harmless stack-neutral insertion still converts, so the refusal
    really comes from the payload's global, not from a broken stream."""
    data = inject_after(SNAPSHOT.read_bytes(), "_init_kwargs", b"\x8c\x04junk0")
    path = tmp_path / "network-snapshot-000000.pkl"
    path.write_bytes(data)
    G = zoo.load(path, quiet=True)
    assert G.img_resolution == 64


def test_module_source_is_never_executed(tmp_path, marker):
    """The embedded upstream source is data: extra code appended to it must not run on conversion."""
    evil_line = f"\nimport os\nos.system({shell(marker)!r})\nopen({str(marker)!r}, 'w').close()\n"
    data = replace_string(SNAPSHOT.read_bytes(), "class Generator", lambda src: src + evil_line)
    path = tmp_path / "network-snapshot-000000.pkl"
    path.write_bytes(data)
    G = zoo.load(path, quiet=True)
    assert G.img_resolution == 64 and not marker.exists()


def test_nested_pickle_in_storage_bytes_is_refused(tmp_path, marker):
    """``torch.storage._load_from_bytes`` is allowed; the bytes it carries must be loaded safely too."""
    cmd = shell(marker).encode()
    # protocol 2 with opcodes torch's weights-only loader understands, so it reaches the global check
    inner = b"\x80\x02cos\nsystem\nX" + len(cmd).to_bytes(4, "little") + cmd + b"\x85R."
    payload = (b"\x8c\rtorch.storage\x8c\x10_load_from_bytes\x93" + b"C" + bytes([len(inner)]) + inner + b"\x85R0")
    data = inject_after(SNAPSHOT.read_bytes(), "_init_kwargs", payload)
    path = tmp_path / "network-snapshot-000000.pkl"
    path.write_bytes(data)
    msgs = _refused(path, tmp_path / "out", marker)
    assert "os.system" in msgs[0] and "nothing from the file was executed" in msgs[0]


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (shell(self.marker),))


class _EvalEvil(_Evil):
    def __reduce__(self):
        return (eval, (f"open({str(self.marker)!r}, 'w').close()",))


@pytest.mark.parametrize("evil", [_Evil, _EvalEvil])
@pytest.mark.parametrize("suffix", [".pt", ".pth", ".pkl"])
def test_torch_zip_with_payload_in_data_pkl(evil, suffix, tmp_path, marker):
    path = tmp_path / f"weights{suffix}"
    torch.save({"main.0.weight": torch.zeros(4, 4, 4, 4), "netG_state_dict": {"x": evil(marker)}}, path)
    assert zipfile.is_zipfile(path)
    msgs = _refused(path, tmp_path / "out", marker)
    assert any("allow-list" in m or "not a checkpoint" in m for m in msgs)


def test_legacy_torch_file_with_payload(tmp_path, marker):
    path = tmp_path / "weights.pth"
    torch.save({"main.0.weight": _Evil(marker)}, path, _use_new_zipfile_serialization=False)
    _refused(path, tmp_path / "out", marker)


def test_zip_bomb_like_and_junk_files(tmp_path, marker):
    """Not pickles at all: zips without data.pkl, random bytes, empty files - clear errors only."""
    cases = {"empty.pkl": b"", "random.pkl": random.Random(0).randbytes(4096), "text.pt": b"hello" * 100,
             "pickle_int.pkl": pickle.dumps(42, protocol=2)}
    z = tmp_path / "nodata.pt"
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("archive/other.txt", "x")
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    for p in [z, *(tmp_path / n for n in cases)]:
        with pytest.raises(ZooError):
            zoo.load(p, quiet=True)
        for fmt in FORMATS:
            with pytest.raises(ZooError):
                converters.convert(p, tmp_path / "out", format=fmt)
        assert not (tmp_path / "out").exists()
