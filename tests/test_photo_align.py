"""FFHQ-style alignment on real photos (scikit-image's astronaut, matplotlib's Grace Hopper) and paste-back."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

import sdk
from sdk.photo.align import AlignmentError, detect_landmarks, ffhq_quad, read_landmarks

if os.environ.get("GANZOO_EXPECT_INSTALLED") == "1":  # CI installs the align extra: run, never skip
    import dlib  # noqa: F401
else:
    pytest.importorskip("dlib", reason="the align extra (dlib-bin + face-recognition-models) is not installed")

SIZE = 256
# Eye centres and mouth centre, hand-checked on an overlay of the photo (pixels, +-8 px).
PHOTOS = {
    "astronaut": {"eyes": [(203, 102), (247, 104)], "mouth": (223, 141)},
    "grace_hopper": {"eyes": [(222, 197), (311, 192)], "mouth": (271, 275)},
}


def _photo(name: str) -> Image.Image:
    if name == "astronaut":
        from skimage import data

        return Image.fromarray(data.astronaut())
    import matplotlib.cbook as cbook

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        return Image.open(f).convert("RGB")


@pytest.fixture(scope="module")
def aligned():
    return {name: (_photo(name), sdk.align_face(_photo(name), output_size=SIZE)) for name in PHOTOS}


@pytest.mark.parametrize("name", sorted(PHOTOS))
def test_landmarks_land_on_the_eyes_and_mouth(name, aligned):
    _, face = aligned[name]
    ref = PHOTOS[name]
    lm = face.landmarks
    assert lm.shape == (68, 2) and face.detector == "dlib-68" and face.faces_found == 1
    for got, want in ((lm[36:42].mean(0), ref["eyes"][0]), (lm[42:48].mean(0), ref["eyes"][1]),
                      ((lm[48] + lm[54]) / 2, ref["mouth"])):
        assert np.hypot(*(got - np.array(want))) < 8, (got, want)


@pytest.mark.parametrize("name", sorted(PHOTOS))
def test_aligned_crop_is_upright_and_centred_like_ffhq(name, aligned):
    """Re-detect the face in the crop: eyes level, eye midpoint on the centre line, at FFHQ's height.

    The FFHQ square is centred a tenth of the eye-to-mouth distance below the eye midpoint and is at least
    3.6 eye-to-mouth distances wide, so the eye midpoint sits at x = 0.5 and y in [0.5 - 1/36, 0.5] of the crop,
    with the eyes at most a quarter of the crop apart.
    """
    _, face = aligned[name]
    assert face.image.size == (SIZE, SIZE)
    again = detect_landmarks(face.image)
    assert len(again) == 1
    left, right = again[0][36:42].mean(0) / SIZE, again[0][42:48].mean(0) / SIZE
    mid = (left + right) / 2
    angle = np.degrees(np.arctan2(right[1] - left[1], right[0] - left[0]))
    assert abs(angle) < 3, angle
    assert abs(mid[0] - 0.5) < 0.02 and 0.5 - 1 / 36 - 0.02 < mid[1] < 0.5 + 0.02, mid
    assert 0.15 < right[0] - left[0] < 0.25 + 0.02


@pytest.mark.parametrize("name", sorted(PHOTOS))
def test_paste_back_round_trips(name, aligned):
    photo, face = aligned[name]
    back = np.asarray(sdk.paste_back(photo, face.image, face), dtype=np.float64)
    orig = np.asarray(photo, dtype=np.float64)
    # the face region (eyes to mouth, well inside the crop) comes back nearly unchanged
    (x0, y0), (x1, _) = PHOTOS[name]["eyes"]
    _, my = PHOTOS[name]["mouth"]
    box = (slice(y0 - 20, my + 20), slice(x0 - 20, x1 + 20))
    assert np.abs(back[box] - orig[box]).mean() < 4
    # an edit shows up in the face; pixels far outside the crop are untouched
    red = Image.new("RGB", (64, 64), (255, 0, 0))  # any crop size: scaled to the alignment
    edited = np.asarray(sdk.paste_back(photo, red, face), dtype=np.float64)
    cx, cy = (x0 + x1) // 2, (y0 + my) // 2
    assert np.allclose(edited[cy, cx], [255, 0, 0], atol=2)
    outside = np.ones(orig.shape[:2], bool)
    q = face.quad
    lo, hi = np.floor(q.min(0)).astype(int) - 2, np.ceil(q.max(0)).astype(int) + 2
    outside[max(lo[1], 0):hi[1], max(lo[0], 0):hi[0]] = False
    assert np.array_equal(edited[outside], orig[outside])


def test_given_landmarks_and_the_landmark_file(tmp_path, aligned):
    photo, face = aligned["astronaut"]
    path = tmp_path / "lm.json"
    path.write_text(json.dumps({"landmarks": face.landmarks.tolist()}))
    again = sdk.align_face(photo, output_size=SIZE, landmarks=read_landmarks(path))
    assert again.detector == "given" and np.allclose(again.quad, face.quad)
    assert np.array_equal(np.asarray(again.image), np.asarray(face.image))
    # four points (eye centres, mouth corners) give the same square as the 68
    lm = face.landmarks
    four = np.stack([lm[36:42].mean(0), lm[42:48].mean(0), lm[48], lm[54]])
    assert np.allclose(ffhq_quad(four)[0], face.quad)
    bad = tmp_path / "bad.json"
    bad.write_text("[[1, 2], [3, 4]]")
    with pytest.raises(AlignmentError, match="68"):
        read_landmarks(bad)


def test_no_face_and_several_faces_are_clear_errors():
    blank = Image.new("RGB", (200, 200), (120, 120, 120))
    with pytest.raises(AlignmentError, match="no face"):
        sdk.align_face(blank, output_size=64)
    one = _photo("astronaut").crop((150, 50, 300, 200))
    two = Image.new("RGB", (300, 150))
    two.paste(one, (0, 0))
    two.paste(one, (150, 0))
    with pytest.raises(AlignmentError, match="found 2 faces"):
        sdk.align_face(two, output_size=64)
    assert sdk.align_face(two, output_size=64, face_index=1).faces_found == 2
