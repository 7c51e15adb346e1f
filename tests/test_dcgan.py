"""DCGAN (pytorch-examples layout): parity with the real gan-face-generate weights, and the embedded default."""

from __future__ import annotations

import numpy as np
import torch

import sdk
import zoo
from conftest import WEIGHTS, assert_close, golden, manifest, tolerance


def test_dcgan_examples_parity(converted_fixture):
    man, gold = manifest("dcgan_examples"), golden("dcgan_examples")
    G = zoo.load(converted_fixture("dcgan_examples", "weights.tar"))
    with torch.no_grad():
        img = G(gold["z"])  # manifest: netG.eval()(z) with z [4, 100, 1, 1]
    assert_close(img, gold["img_eval"], tolerance(man, "img_eval"), "dcgan_examples:img_eval")
    with torch.no_grad():  # also accepts the flat [N, z_dim] form
        assert_close(G(gold["z"].flatten(1)), gold["img_eval"], tolerance(man, "img_eval"), "flat z")


def test_embedded_default_matches_fp32_conversion(tmp_path):
    """The fp16 copy shipped in the package stays close to a fresh fp32 conversion of the upstream file."""
    import converters

    ref = zoo.load(converters.convert(WEIGHTS / "gan-face-generate-1.1.1_weights.tar", tmp_path / "m"))
    G = zoo.load("dcgan-digiface-64")
    assert G.model_info["model_name"] == "dcgan-digiface-64"
    z = torch.cat([sdk.seed_to_z(s, 100) for s in range(4)])
    with torch.no_grad():
        a, b = G(z), ref(z)
    assert (a - b).abs().max().item() < 2e-2
    assert a.shape == (4, 3, 64, 64) and a.min() >= -1 and a.max() <= 1


def test_embedded_default_samples_real_faces():
    G = zoo.load("dcgan-digiface-64")
    imgs = sdk.sample(G, seeds=[0, 1, 2])
    arrs = [torch.from_numpy(np.asarray(im, dtype=np.float32)) for im in imgs]
    assert all(im.size == (64, 64) and im.mode == "RGB" for im in imgs)
    assert all(a.std() > 20 for a in arrs)  # not a flat image
    assert (arrs[0] - arrs[1]).abs().mean() > 5  # different seeds, different faces
