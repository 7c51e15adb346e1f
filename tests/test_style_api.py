"""``truncation_latent=`` on ``G(...)`` / ``G.mapping(...)`` and ``noise=`` on ``G.synthesis(...)`` for every
style-based family (StyleGAN v1, StyleGAN2 from TF / rosinality files, StyleGAN3)."""

from __future__ import annotations

import pytest
import torch

import sdk
import zoo

CASES = {
    "stylegan1": ("tf_stylegan1_64", "network-snapshot-003600.pkl"),
    "stylegan2-tf-ada": ("tf_stylegan2ada_64", "network-snapshot-000000.pkl"),
    "stylegan2-rosinality": ("rosinality_64", "000000.pt"),
    "stylegan3": ("sg3_t_64", "network-snapshot-000000.pkl"),
}
WITH_NOISE = ["stylegan1", "stylegan2-tf-ada", "stylegan2-rosinality"]


@pytest.fixture(scope="module")
def models(converted_fixture):
    cache: dict[str, zoo.GanGenerator] = {}

    def get(name: str) -> zoo.GanGenerator:
        if name not in cache:
            cache[name] = zoo.load(converted_fixture(*CASES[name]))
        return cache[name]

    return get


def _z(G, n: int = 2) -> torch.Tensor:
    return torch.cat([sdk.seed_to_z(s, G.z_dim) for s in range(n)])


def _centre(G, rows: int, seed: int = 3) -> torch.Tensor:
    return G.w_avg + torch.randn(rows, G.w_dim, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", sorted(CASES))
def test_truncation_latent_replaces_w_avg(name, models):
    G = models(name)
    z = _z(G)
    with torch.no_grad():
        ws1 = G.mapping(z, None, truncation_psi=1.0)
        for rows in (1, 2):  # one shared centre, or one per sample (e.g. class centroids)
            centre = _centre(G, rows)
            want = centre[:, None] + 0.5 * (ws1 - centre[:, None])
            got = G.mapping(z, None, truncation_psi=0.5, truncation_latent=centre)
            assert (got - want).abs().max() < 1e-5
            assert (got - G.mapping(z, None, truncation_psi=0.5)).abs().max() > 1e-2  # not ignored
            head = G.mapping(z, None, truncation_psi=0.5, truncation_cutoff=2, truncation_latent=centre)
            assert (head[:, :2] - want[:, :2]).abs().max() < 1e-5 and torch.equal(head[:, 2:], ws1[:, 2:])
        img = G(z, None, truncation_psi=0.5, truncation_latent=centre, noise_mode="const")
        assert (img - G.synthesis(want, noise_mode="const")).abs().max() < 1e-4
        assert (img - G(z, None, truncation_psi=0.5, noise_mode="const")).abs().max() > 1e-3
    with pytest.raises(ValueError, match="truncation_latent must have shape"):
        G.mapping(z, None, truncation_psi=0.5, truncation_latent=torch.zeros(3, G.w_dim))
    with pytest.raises(ValueError, match="truncation_latent must have shape"):
        G(z, None, truncation_psi=0.5, truncation_latent=torch.zeros(1, G.w_dim + 1))


def _const_maps(G) -> list[torch.Tensor]:
    return [b for n, b in G.synthesis.named_buffers() if n.endswith("noise_const")]


@pytest.mark.parametrize("name", WITH_NOISE)
def test_explicit_noise_reaches_every_layer(name, models):
    G = models(name)
    with torch.no_grad():
        ws = G.mapping(_z(G), None, truncation_psi=1.0)
        maps = _const_maps(G)
        assert len(maps) == G.synthesis.num_noise > 0
        zeros = [torch.zeros_like(m) for m in maps]
        assert (G.synthesis(ws, noise=zeros) - G.synthesis(ws, noise_mode="none")).abs().max() < 1e-5
        assert (G.synthesis(ws, noise=list(maps), noise_mode="random")
                - G.synthesis(ws, noise_mode="const")).abs().max() < 1e-5
        gen = torch.Generator().manual_seed(0)
        fresh = [torch.randn(2, 1, *m.shape, generator=gen) for m in maps]  # per-sample maps
        a, b = G.synthesis(ws, noise=fresh), G.synthesis(ws, noise=fresh)
        assert torch.equal(a, b) and (a - G.synthesis(ws, noise_mode="const")).abs().max() > 1e-3
        # per-sample noise: row 1 of the batch equals a batch-of-one call with that row's maps
        one = G.synthesis(ws[1:], noise=[n[1:] for n in fresh])
        assert (one - a[1:]).abs().max() < 1e-4
        # one layer given, the rest from noise_mode: only that layer changes
        partial = [None] * len(maps)
        partial[-1] = fresh[-1]
        c = G.synthesis(ws, noise=partial, noise_mode="const")
        assert 0 < (c - G.synthesis(ws, noise_mode="const")).abs().max()
        assert (G(_z(G), None, noise=zeros) - G(_z(G), None, noise_mode="none")).abs().max() < 1e-5
    with pytest.raises(ValueError, match="noise must list"):
        G.synthesis(ws, noise=zeros[:-1])


def test_stylegan3_refuses_noise_it_would_ignore(models):
    G = models("stylegan3")
    with torch.no_grad():
        ws = G.mapping(_z(G), None)
        assert torch.equal(G.synthesis(ws, noise=[]), G.synthesis(ws))
    with pytest.raises(ValueError, match="no noise inputs"):
        G.synthesis(ws, noise=[torch.zeros(4, 4)])
