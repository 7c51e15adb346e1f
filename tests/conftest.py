"""Shared test helpers: locate ../shared, read fixture manifests and goldens, compare with tolerances."""

from __future__ import annotations

import fnmatch
import json
import os
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GANZOO_SHARED", ROOT.parent / "shared"))
FIXTURES = SHARED / "fixtures"
WEIGHTS = SHARED / "weights"
DIRECTIONS = SHARED / "directions"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own ganzoo cache and no licence chatter."""
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path_factory.mktemp("ganzoo-cache")))
    monkeypatch.setenv("GANZOO_NO_LICENSE_NOTICE", "1")


def fixture_dir(name: str) -> Path:
    d = FIXTURES / name
    if not d.is_dir():
        pytest.fail(f"shared fixture {name} missing at {d}; CI must provide ../shared")
    return d


def manifest(name: str) -> dict[str, Any]:
    return json.loads((fixture_dir(name) / "manifest.json").read_text())


def golden(name: str) -> dict[str, torch.Tensor]:
    return load_file(fixture_dir(name) / "golden.safetensors")


def tolerance(man: dict[str, Any], key: str, default: float | None = None) -> float:
    """The manifest's max-abs tolerance for golden ``key`` (exact key first, then glob patterns).

    ``default`` covers keys the manifest gives none for, e.g. stored buffers that must copy exactly (0).
    """
    tol = man["tolerance"]
    if key in tol and isinstance(tol[key], (int, float)):
        return float(tol[key])
    for pattern, value in tol.items():
        if isinstance(value, (int, float)) and fnmatch.fnmatch(key, pattern):
            return float(value)
    if default is not None:
        return default
    raise KeyError(f"manifest {man['name']} states no tolerance for {key}")


def assert_close(actual: torch.Tensor, expected: torch.Tensor, tol: float, what: str) -> None:
    assert actual.shape == expected.shape, f"{what}: shape {list(actual.shape)} != {list(expected.shape)}"
    err = (actual.to(torch.float32) - expected.to(torch.float32)).abs().max().item()
    assert err <= tol, f"{what}: max-abs error {err:.3g} exceeds tolerance {tol:g}"


@pytest.fixture
def shape_choice_state():
    """Restore the per-layer-shape kernel choices (polyphase, Winograd tiles as rows, Winograd transposed convs),
    their probes and the compiled Winograd transforms setting after a test."""
    import importlib

    from zoo.models import ops

    tables = (ops.CPU_POLYPHASE, ops.CPU_WINOGRAD_ROWS, ops.CPU_WINOGRAD_UP)
    saved = [(dict(table), name) for table, name in zip(tables, ("CPU_POLYPHASE_PROBE", "CPU_WINOGRAD_ROWS_PROBE",
                                                                  "CPU_WINOGRAD_UP_PROBE"))]
    probes = {name: getattr(ops, name) for _, name in saved}
    native = ops.CPU_WINOGRAD_NATIVE
    yield
    ops.CPU_WINOGRAD_NATIVE = native
    for (table, name), live in zip(saved, tables):
        live.clear()
        live.update(table)
        setattr(ops, name, probes[name])
    importlib.import_module("sdk.backends.tune")._SHAPE_MEMO.clear()


@pytest.fixture(scope="session")
def converted_fixture(tmp_path_factory: pytest.TempPathFactory):
    """``converted_fixture(name, file)`` -> folder converted once per session with the project converter."""
    import converters

    cache: dict[tuple[str, str], Path] = {}

    def get(name: str, file: str) -> Path:
        key = (name, file)
        if key not in cache:
            out = tmp_path_factory.mktemp(f"conv-{name}") / "model"
            cache[key] = converters.convert(fixture_dir(name) / file, out)
        return cache[key]

    return get


def sg2_golden_calls(G: Any, z: torch.Tensor, c: torch.Tensor | None) -> dict[str, Any]:
    """The exact calls behind the StyleGAN2-format fixtures' golden keys (see their manifests' 'outputs')."""
    return {
        "w_avg": lambda: G.mapping.w_avg,
        "ws_psi1": lambda: G.mapping(z, c, truncation_psi=1),
        "ws_psi0_5": lambda: G.mapping(z, c, truncation_psi=0.5, truncation_cutoff=None),
        "ws_psi0_7_cutoff4": lambda: G.mapping(z, c, truncation_psi=0.7, truncation_cutoff=4),
        "img_const_psi1": lambda: G(z, c, truncation_psi=1, noise_mode="const"),
        "img_const_psi0_5": lambda: G(z, c, truncation_psi=0.5, noise_mode="const"),
        "img_none_psi1": lambda: G(z, c, truncation_psi=1, noise_mode="none"),
    }
