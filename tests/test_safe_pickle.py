"""The restricted unpickler refuses code-executing pickles before anything runs."""

from __future__ import annotations

import io
import os
import pickle
import subprocess
from pathlib import Path

import pytest

import converters
import zoo
from converters.nvidia import NVIDIA_GLOBALS, read_snapshot
from converters.safe_pickle import restricted_load
from zoo.errors import UnsafePickleError


class _SystemCall:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _EvalCall:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (eval, (f"open({str(self.marker)!r}, 'w').close()",))


class _SubprocessCall:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (subprocess.call, (["touch", str(self.marker)],))


@pytest.mark.parametrize("payload", [_SystemCall, _EvalCall, _SubprocessCall])
def test_payload_refused_before_running(tmp_path, payload):
    marker = tmp_path / "pwned"
    data = pickle.dumps({"G_ema": payload(marker)}, protocol=4)
    with pytest.raises(UnsafePickleError, match="allow-list"):
        restricted_load(data, NVIDIA_GLOBALS)
    assert not marker.exists()


@pytest.mark.parametrize("payload", [_SystemCall, _EvalCall, _SubprocessCall])
def test_payload_in_snapshot_file_refused_by_convert_and_load(tmp_path, payload):
    marker = tmp_path / "pwned"
    # Looks like an NVIDIA snapshot to the format sniffer, carries a payload.
    bad = tmp_path / "network-snapshot-evil.pkl"
    buf = io.BytesIO()
    pickle.dump({"note": "torch_utils.persistence", "G_ema": payload(marker)}, buf, protocol=4)
    bad.write_bytes(buf.getvalue())
    with pytest.raises(UnsafePickleError):
        converters.convert(bad, tmp_path / "out")
    with pytest.raises(UnsafePickleError):
        zoo.load(bad)
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_error_names_the_global(tmp_path):
    data = pickle.dumps(_SystemCall(tmp_path / "x"), protocol=2)
    with pytest.raises(UnsafePickleError) as e:
        restricted_load(data, NVIDIA_GLOBALS)
    assert "system" in str(e.value)


def test_real_snapshot_reads_as_data():
    from conftest import fixture_dir
    from converters.nvidia import PersistentRecord

    snap = read_snapshot(fixture_dir("sg2ada_uncond_64") / "network-snapshot-000000.pkl")
    assert isinstance(snap["G_ema"], PersistentRecord)
    assert "class Generator" in snap["G_ema"].module_src  # kept as text, never executed


def test_truncated_pickle_is_a_clear_error(tmp_path):
    from conftest import fixture_dir

    src = (fixture_dir("sg2ada_uncond_64") / "network-snapshot-000000.pkl").read_bytes()
    cut = tmp_path / "network-snapshot-cut.pkl"
    cut.write_bytes(src[: len(src) // 2])
    with pytest.raises(zoo.ConversionError, match="corrupt or truncated"):
        converters.convert(cut, tmp_path / "out")
    assert not (tmp_path / "out").exists()
