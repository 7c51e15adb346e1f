"""Run a fixture manifest's ``checks`` list (the parity contract) against a loaded generator."""

from __future__ import annotations

from typing import Any

import torch

from conftest import assert_close


def _arg(value: Any, gold: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, str) and value.startswith("@"):
        return gold[value[1:]]
    return value


def run_checks(G: Any, man: dict[str, Any], gold: dict[str, torch.Tensor]) -> list[str]:
    """Call ``G`` as each check says and compare with its golden key; returns the keys checked."""
    checked = []
    c = torch.zeros([gold["z"].shape[0], G.c_dim]) if G.c_dim else None
    with torch.no_grad():
        for check in man["checks"]:
            args = {k: _arg(v, gold) for k, v in check["args"].items()}
            if check["call"] == "mapping":
                out = G.mapping(args.pop("z"), args.pop("c", c), **args)
            elif check["call"] == "forward":
                out = G(args.pop("z"), args.pop("c", c), **args)
            elif check["call"] == "synthesis":
                out = G.synthesis(args.pop("ws"), **args)
            else:
                raise AssertionError(f"{man['name']}: unknown check call {check['call']!r}")
            assert_close(out, gold[check["key"]], float(check["tol"]), f"{man['name']}:{check['key']}")
            checked.append(check["key"])
    return checked
