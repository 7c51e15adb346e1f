"""Recognising torch state-dict files by their tensor names, without loading (or executing) anything.

A ``torch.save`` file is either a zip with ``<name>/data.pkl`` or, for the legacy format, four pickles
in a row (magic number, protocol version, system info, then the object) followed by raw storages.
The state dict's keys are ``BINUNICODE`` strings in the object pickle; reading its opcodes with
:mod:`pickletools` lists them without importing or calling anything.
"""

from __future__ import annotations

import io
import pickletools
import re
import zipfile
from pathlib import Path

#: ``torch.serialization``'s legacy magic number 0x1950a86a20f9469cfc6c, pickled as a protocol-2 LONG1.
LEGACY_TORCH_HEAD = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
_PARAM_NAME = re.compile(r"[A-Za-z0-9_.]+\.(weight|bias|running_mean|running_var|num_batches_tracked)")


def _strings(stream: io.BytesIO, pickles: int) -> list[str]:
    """Unicode strings of the ``pickles``-th pickle in ``stream`` (1-based); a truncated tail is fine."""
    out: list[str] = []
    try:
        for i in range(pickles):
            for op, arg, _ in pickletools.genops(stream):
                if i == pickles - 1 and op.name in ("BINUNICODE", "SHORT_BINUNICODE", "UNICODE", "BINUNICODE8"):
                    out.append(str(arg))
    except Exception:  # noqa: BLE001 - a stream cut off by the 64 KiB head yields what was read
        pass
    return out


def pickle_strings(path: Path, head: bytes) -> list[str]:
    """The strings of the object pickle of a torch file (zip or legacy); ``[]`` for anything else."""
    if not path.is_file():
        return []
    if head.startswith(LEGACY_TORCH_HEAD):
        return _strings(io.BytesIO(head), 4)
    if head.startswith(b"PK") and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
            if not names:
                return []
            with z.open(names[0]) as f:
                data = f.read(1 << 20)  # the key/metadata pickle of a generator is far smaller
        return _strings(io.BytesIO(data), 1)
    return []


def param_names(path: Path, head: bytes) -> set[str]:
    """Names that look like module parameters/buffers (``x.weight``, ``bn.running_mean`` ...) in a torch file."""
    return {s for s in pickle_strings(path, head) if _PARAM_NAME.fullmatch(s)}
