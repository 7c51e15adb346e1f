"""Run a fixture manifest's ``checks`` list (the parity contract) against a loaded generator."""

from __future__ import annotations

from typing import Any

import torch

from conftest import assert_close


def resolve(value: Any, gold: dict[str, torch.Tensor]) -> Any:
    """A check argument: ``"@key"`` is that golden tensor (also inside lists, e.g. per-layer noise)."""
    if isinstance(value, str) and value.startswith("@"):
        return gold[value[1:]]
    if isinstance(value, list):
        return [resolve(v, gold) for v in value]
    return value


def output_keys(man: dict[str, Any]) -> set[str]:
    """The golden keys the manifest marks as upstream outputs (each must have a check)."""
    return {k for k, v in man["golden_keys"].items() if v["role"] == "output"}


def run_checks(G: Any, man: dict[str, Any], gold: dict[str, torch.Tensor]) -> list[str]:
    """Call ``G`` as each check says and compare with its golden key; returns the keys checked.

    ``forward`` / ``mapping`` / ``synthesis`` calls take the check's arguments as keywords; a conditional model
    whose check gives no ``c`` gets zeros (the manifests of unconditional-style calls leave it out).
    """
    calls = {"forward": G, "mapping": getattr(G, "mapping", None), "synthesis": getattr(G, "synthesis", None)}
    checked = []
    with torch.no_grad():
        for check in man["checks"]:
            fn = calls.get(check["call"])
            if fn is None:
                raise AssertionError(f"{man['name']}: unknown check call {check['call']!r}")
            args = {k: resolve(v, gold) for k, v in check["args"].items()}
            if check["call"] != "synthesis" and G.c_dim and "c" not in args:
                args["c"] = torch.zeros([args["z"].shape[0], G.c_dim])
            out = fn(**args)
            assert out.dtype == torch.float32, f"{man['name']}:{check['key']} came back as {out.dtype}"
            assert_close(out, gold[check["key"]], float(check["tol"]),
                         f"{man['name']}:{check['key']} via {check['call']}")
            checked.append(check["key"])
    return checked
