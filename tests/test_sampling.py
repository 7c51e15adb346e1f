"""Sampling surface: seeds, batch independence, truncation, class handling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import sdk
import zoo

PKL = "network-snapshot-000000.pkl"


def test_seed_to_z_is_numpy_randomstate():
    z = sdk.seed_to_z(85, 512)
    ref = np.random.RandomState(85).randn(1, 512)
    assert z.dtype == torch.float32 and z.shape == (1, 512)
    assert np.allclose(z.numpy(), ref.astype(np.float32))


def test_seed_matches_fixture_z(converted_fixture):
    from conftest import golden, manifest

    gold, man = golden("sg2ada_uncond_64"), manifest("sg2ada_uncond_64")
    z = torch.cat([sdk.seed_to_z(s, 512) for s in man["seeds"]])
    assert torch.equal(z, gold["z"])


def test_sample_matches_golden_images(converted_fixture):
    """sdk.sample(seeds) reproduces upstream gen_images output for those seeds (uint8 convention)."""
    from conftest import golden, manifest

    gold, man = golden("sg2ada_uncond_64"), manifest("sg2ada_uncond_64")
    G = zoo.load(converted_fixture("sg2ada_uncond_64", PKL))
    imgs = sdk.sample(G, seeds=man["seeds"], truncation_psi=0.5, batch_size=3)
    expected = sdk.to_uint8(gold["img_const_psi0_5"]).numpy().astype(int)
    got = np.stack([np.asarray(im) for im in imgs]).astype(int)
    assert np.abs(got - expected).max() <= 1


@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_batch_size_independence(converted_fixture, batch_size):
    G = zoo.load(converted_fixture("sg2ada_cond_fp16_32", PKL))
    ref = sdk.generate(G, [0, 1, 2, 3, 4], class_idx=2, batch_size=1)
    out = sdk.generate(G, [0, 1, 2, 3, 4], class_idx=2, batch_size=batch_size)
    assert (ref - out).abs().max().item() < 1e-4


def test_truncate_identity_and_center(converted_fixture):
    G = zoo.load(converted_fixture("sg2ada_uncond_64", PKL))
    ws = G.mapping(torch.randn(3, 512), None)
    assert torch.equal(sdk.truncate(ws, G, psi=1.0), ws)
    center = sdk.truncate(ws, G, psi=0.0)
    assert torch.allclose(center, G.mapping.w_avg.expand_as(ws))
    cut = sdk.truncate(ws, G, psi=0.0, cutoff=4)
    assert torch.allclose(cut[:, :4], G.mapping.w_avg.expand(3, 4, -1))
    assert torch.equal(cut[:, 4:], ws[:, 4:])
    # the function on latents equals the mapping's own truncation
    z = torch.randn(2, 512)
    assert torch.allclose(sdk.truncate(G.mapping(z, None), G, psi=0.7, cutoff=4),
                          G.mapping(z, None, truncation_psi=0.7, truncation_cutoff=4))


def test_class_errors(converted_fixture):
    G = zoo.load(converted_fixture("sg2ada_cond_fp16_32", PKL))
    with pytest.raises(ValueError, match="out of range"):
        sdk.sample(G, [0], class_idx=5)
    with pytest.raises(ValueError, match="conditional"):
        sdk.sample(G, [0])
    U = zoo.load("dcgan-digiface-64")
    with pytest.raises(ValueError, match="unconditional"):
        sdk.sample(U, [0], class_idx=1)


def test_noise_modes(converted_fixture):
    G = zoo.load(converted_fixture("sg2ada_uncond_64", PKL))
    z = sdk.seed_to_z(0, 512)
    a = G(z, noise_mode="const")
    assert torch.equal(a, G(z, noise_mode="const"))
    torch.manual_seed(0)
    r1 = G(z, noise_mode="random")
    r2 = G(z, noise_mode="random")
    assert not torch.equal(r1, r2)
    with pytest.raises(ValueError, match="noise_mode"):
        G(z, noise_mode="bogus")


def test_parse_seeds():
    assert sdk.parse_seeds("0-3,12") == [0, 1, 2, 3, 12]
    for bad in ("x", "5-2", "", "-1"):
        with pytest.raises(ValueError):
            sdk.parse_seeds(bad)


def test_wrong_z_shape_is_clear():
    G = zoo.load("dcgan-digiface-64")
    with pytest.raises(ValueError, match=r"\[N, 100\]"):
        G(torch.randn(2, 64))


def test_save_images_writes_every_file_in_order_on_several_threads(tmp_path):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)) for _ in range(7)]
    paths = [tmp_path / "out" / f"seed{i:04d}.png" for i in range(7)]
    written = sdk.save_images(list(zip(images, paths)), workers=3)
    assert written == paths
    for im, p in zip(images, paths):
        assert np.array_equal(np.asarray(Image.open(p)), np.asarray(im))  # lossless, each to its own name
    with pytest.raises(ValueError, match="unknown image extension '.bmpx'"):
        sdk.save_images([(images[0], tmp_path / "bad" / "a.png"), (images[1], tmp_path / "bad" / "b.bmpx")],
                        workers=2)
    assert not (tmp_path / "bad" / "b.bmpx").exists()
    assert all(not p.name.startswith(".") for p in (tmp_path / "bad").iterdir())  # no temporary file left behind
