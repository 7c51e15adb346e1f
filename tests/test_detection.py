"""Every shared fixture's checkpoint is detected as its own format, whichever formats are registered beside it.

Several formats are NVIDIA-style pickles (StyleGAN2/3, StyleGAN-XL, Projected GAN, R3GAN) or torch files with
similar keys (rosinality, StyleSwin, pSp-family encoders); detection order must not let one claim another's files.
"""

from __future__ import annotations

import pytest

import converters

from conftest import fixture_dir

EXPECTED = [
    ("biggan_deep_128_mini", ".", "biggan-hf"),
    ("biggan_deep_128_mini", "pytorch_model.bin", "biggan-hf"),
    ("dcgan_examples", "weights.tar", "dcgan"),
    ("e4e_64", "e4e_ffhq_encode_64.pt", "psp-encoder-pt"),
    ("fastgan_256", "50000.pth", "fastgan"),
    ("fastgan_256", "all_50000.pth", "fastgan"),
    ("mobilestylegan_small", "mobilestylegan_small.ckpt", "mobilestylegan-ckpt"),
    ("pgan_mini", "fixture_s3_i48000-5f3abe1d.pth", "pgan-zoo"),
    ("projected_fastgan_lite_128", "network-snapshot.pkl", "projected-gan-pickle"),
    ("psp_64", "psp_ffhq_encode_64.pt", "psp-encoder-pt"),
    ("r3gan_32", "network-snapshot-000001280.pkl", "r3gan-pickle"),
    ("restyle_psp_64", "best_model.pt", "psp-encoder-pt"),
    ("rosinality_64", "000000.pt", "rosinality-pt"),
    ("sg2_in_sg3repo_64", "network-snapshot-000000.pkl", "nvidia-pickle"),
    ("sg2ada_cond_fp16_32", "network-snapshot-000000.pkl", "nvidia-pickle"),
    ("sg2ada_uncond_64", "network-snapshot-000000.pkl", "nvidia-pickle"),
    ("sg3_r_64", "network-snapshot-000000.pkl", "nvidia-pickle"),
    ("sg3_t_64", "network-snapshot-000000.pkl", "nvidia-pickle"),
    ("sgxl_cond_32", "best_model.pkl", "stylegan-xl-pickle"),
    ("studiogan_biggan_32", ".", "studiogan"),
    ("studiogan_biggan_32", "model=G_ema-best-weights-step=62000.pth", "studiogan"),
    ("studiogan_sngan_32", ".", "studiogan"),
    ("studiogan_sngan_32", "model=G-best-weights-step=86000.pth", "studiogan"),
    ("styleswin_32", "000000.pt", "styleswin-pt"),
    ("tf_stylegan1_128", "network-snapshot-004800.pkl", "tf-stylegan1-pickle"),
    ("tf_stylegan1_64", "network-snapshot-003600.pkl", "tf-stylegan1-pickle"),
    ("tf_stylegan2_64", "network-snapshot-000000.pkl", "tf-stylegan2-pickle"),
    ("tf_stylegan2ada_64", "network-snapshot-000000.pkl", "tf-stylegan2-pickle"),
]


@pytest.mark.parametrize("fixture,file,fmt", EXPECTED, ids=[f"{a}/{b}" for a, b, _ in EXPECTED])
def test_each_fixture_is_detected_as_its_own_format(fixture, file, fmt):
    path = fixture_dir(fixture) / file if file != "." else fixture_dir(fixture)
    assert converters.detect_format(path).name == fmt


def test_every_registered_format_is_exercised_by_a_fixture_or_named_here():
    covered = {fmt for _, _, fmt in EXPECTED}
    # formats whose fixtures are the real DCGAN / MLP weights under ../shared/weights (tests/test_dcgan_family.py)
    covered |= {"dcgan-named", "mlp-gan"}
    assert {f.name for f in converters.list_formats()} <= covered
