"""sdk.invert with an encoder: method="encoder" | "encoder+optimize", and the default method."""

from __future__ import annotations

import pytest
import torch

import sdk
import zoo
from conftest import golden
from sdk.latent.invert import ImageInputError, encoder_for

E4E = ("e4e_64", "e4e_ffhq_encode_64.pt")


@pytest.fixture(scope="module")
def target():
    """The fixture's decoder-made input (an in-range image) as a picture."""
    return sdk.to_pil(golden("e4e_64")["x"][2:3])[0]


def test_encoder_method_is_one_encoder_pass(converted_fixture, target):
    enc = zoo.load(converted_fixture(*E4E))
    G = enc.generator
    inv = sdk.invert(G, target, method="encoder", encoder=enc)
    assert inv.method == "encoder" and inv.steps == 0 and inv.space == "w+"
    x = sdk.latent.invert.prepare_image(target, 256, 3)
    with torch.no_grad():
        ws = enc.encode(x)
        assert torch.allclose(inv.latent, ws, atol=1e-6)
        recon = G.synthesis(ws, noise_mode="const")
    assert torch.allclose(inv.reconstruction, recon, atol=1e-6)
    assert inv.metrics["psnr"] > 0 and inv.encoder


def test_encoder_start_then_optimisation_improves(converted_fixture, target):
    folder = converted_fixture(*E4E)
    G = zoo.load(folder).generator
    only = sdk.invert(G, target, method="encoder", encoder=folder)  # a folder works as the encoder
    both = sdk.invert(G, target, method="encoder+optimize", encoder=folder, steps=8, quiet=True, loss="pixel")
    assert both.method == "encoder+optimize" and both.space == "w+" and both.steps == 8
    assert both.metrics["psnr"] > only.metrics["psnr"] + 0.5


def test_default_method_and_mismatched_encoder(converted_fixture, target):
    enc = zoo.load(converted_fixture(*E4E))
    G = enc.generator
    assert encoder_for(G) is None  # a fixture model has no registered encoder: the default stays optimisation
    inv = sdk.invert(G, target, steps=2, quiet=True, loss="pixel")
    assert inv.method == "optimize" and inv.encoder == ""
    assert sdk.invert(G, target, encoder=enc, steps=2, quiet=True, loss="pixel").method == "encoder+optimize"
    assert encoder_for(type("G", (), {"model_info": {"model_name": "stylegan2-ffhq"}})()) == "e4e-ffhq"
    other = zoo.load(converted_fixture("psp_64", "psp_ffhq_encode_64.pt"))  # w_dim 36, not 32
    with pytest.raises(ImageInputError, match="W\\+"):
        sdk.invert(G, target, method="encoder", encoder=other)
    with pytest.raises(ImageInputError, match="needs an encoder"):
        sdk.invert(G, target, method="encoder")


def test_registered_encoder_on_this_machine_becomes_the_default(converted_fixture, target):
    """A generator named like a registered one whose encoder is in the local cache starts from that encoder."""
    import shutil

    from zoo.loading import converted_dir

    folder = converted_fixture(*E4E)
    shutil.copytree(folder, converted_dir("e4e-ffhq"))  # as if `e4e-ffhq` had been downloaded and converted
    G = zoo.load(folder).generator
    G.model_info = {**G.model_info, "model_name": "stylegan2-ffhq"}
    inv = sdk.invert(G, target, steps=2, quiet=True, loss="pixel")
    assert inv.method == "encoder+optimize" and inv.encoder == "e4e-ffhq"
