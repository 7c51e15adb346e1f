"""Write a TF network tuple back to a pickle shaped like the upstream one (``dnnlib.tflib.network.Network``
records, NEWOBJ + BUILD), so tests can feed modified real fixtures through ``ganzoo convert``."""

from __future__ import annotations

import pickle
import sys
import types
from pathlib import Path
from typing import Any

from converters.tf_stylegan2 import TFNetworkRecord


def write_tf_pickle(path: Path, nets: tuple[TFNetworkRecord, ...], protocol: int = 3) -> Path:
    """Pickle ``(G, D, Gs)`` as ``dnnlib.tflib.network.Network`` objects carrying each record's state."""
    names = ("dnnlib", "dnnlib.tflib", "dnnlib.tflib.network")
    saved = {n: sys.modules.get(n) for n in names}
    mod = types.ModuleType("dnnlib.tflib.network")

    class Network:  # a stand-in with the upstream class path; pickles only its state
        def __init__(self, state: dict[str, Any]) -> None:
            self._state = state

        def __getstate__(self) -> dict[str, Any]:  # the default reduction: NEWOBJ, then BUILD with this
            return self._state

    Network.__module__, Network.__qualname__ = "dnnlib.tflib.network", "Network"
    mod.Network = Network  # type: ignore[attr-defined]

    def wrap(rec: TFNetworkRecord) -> Any:
        state = dict(rec.state)
        state["components"] = {k: wrap(v) for k, v in rec.components.items()}
        return Network(state)

    try:
        for n in names[:-1]:
            sys.modules[n] = types.ModuleType(n)
        sys.modules[names[-1]] = mod
        path.write_bytes(pickle.dumps(tuple(wrap(n) for n in nets), protocol=protocol))
    finally:
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m
    return path

