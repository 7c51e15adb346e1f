"""Pivotal tuning: reconstruction improves around the pivot, G is left alone, save/load with provenance."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

import sdk
import zoo
from conftest import golden
from sdk.latent.invert import prepare_image
from sdk.photo.pti import photo_sha256, save_tuned

E4E = ("e4e_64", "e4e_ffhq_encode_64.pt")


@pytest.fixture(scope="module")
def setup(tmp_path_factory, converted_fixture):
    enc = zoo.load(converted_fixture(*E4E))
    photo = tmp_path_factory.mktemp("pti") / "photo.png"
    sdk.to_pil(golden("e4e_64")["x"][2:3])[0].save(photo)  # in range: made by the decoder
    with torch.no_grad():
        pivot = enc.encode(prepare_image(photo, 256, 3))
    return enc, photo, pivot


def test_tuning_improves_the_pivot_and_leaves_g_alone(setup):
    enc, photo, pivot = setup
    G = enc.generator
    before = {k: v.clone() for k, v in G.state_dict().items()}
    tuned, rep = sdk.pivotal_tuning(G, photo, pivot, steps=15, loss="pixel", lr=2e-3, quiet=True)
    assert rep.psnr_after > rep.psnr_before + 3, (rep.psnr_before, rep.psnr_after)
    assert rep.steps == 15 and len(rep.history) == 15 and rep.history[-1] < rep.history[0]
    assert all(torch.equal(before[k], v) for k, v in G.state_dict().items())  # the base generator is untouched
    assert not torch.equal(tuned.state_dict()["synthesis.b64.conv1.weight"], before["synthesis.b64.conv1.weight"])
    assert rep.photo_sha256 == photo_sha256(photo) and rep.base_weights_sha256 == G.model_info["weights_sha256"]


def test_out_of_range_photo_gets_closer(setup):
    """A real photo the tiny decoder cannot produce: tuning still raises the PSNR of G(pivot)."""
    from skimage import data

    enc, _, _ = setup
    photo = Image.fromarray(data.astronaut()).crop((150, 50, 300, 200))
    with torch.no_grad():
        pivot = enc.encode(prepare_image(photo, 256, 3))
    _, rep = sdk.pivotal_tuning(enc.generator, photo, pivot, steps=15, loss="pixel", lr=2e-3, quiet=True)
    assert rep.psnr_after > rep.psnr_before + 2, (rep.psnr_before, rep.psnr_after)


def test_save_and_load_as_a_common_format_folder(setup, tmp_path):
    enc, photo, pivot = setup
    tuned, rep = sdk.pivotal_tuning(enc.generator, photo, pivot, steps=3, loss="pixel", quiet=True)
    folder = save_tuned(tuned, tmp_path / "tuned", rep, pivot_ws=pivot)
    cfg = json.loads((folder / "config.json").read_text())
    prov = cfg["provenance"]
    assert prov["source_format"] == "pivotal-tuning"
    assert prov["base_weights_sha256"] == enc.generator.model_info["weights_sha256"]
    assert prov["photo_sha256"] == photo_sha256(photo) and prov["settings"]["steps"] == 3
    assert (folder / "README.md").is_file()
    G2 = zoo.load(folder)
    ws = sdk.load_latent(folder / "pivot.safetensors", G2)
    latent = ws[0] if isinstance(ws, tuple) else getattr(ws, "latent", ws)
    with torch.no_grad():
        assert torch.equal(G2.synthesis(pivot, noise_mode="const"), tuned.synthesis(pivot, noise_mode="const"))
    assert torch.allclose(torch.as_tensor(latent).reshape(pivot.shape), pivot)
    with pytest.raises(FileExistsError):
        save_tuned(tuned, folder, rep)


def test_a_near_perfect_pivot_is_never_made_worse(setup):
    """G(pivot) itself as the photo: whatever Adam does near the optimum, the kept weights are no worse."""
    enc, _, pivot = setup
    G = enc.generator
    with torch.no_grad():
        photo = sdk.to_pil(G.synthesis(pivot, noise_mode="const"))[0]
    tuned, rep = sdk.pivotal_tuning(G, photo, pivot, steps=5, loss="pixel", lr=1e-2, quiet=True)
    assert rep.psnr_after >= rep.psnr_before and 0 <= rep.settings["kept_step"] <= 5
