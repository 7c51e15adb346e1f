"""FFHQ-style face alignment and pasting an edited crop back into the photo.

The crop follows the procedure of the FFHQ dataset script (NVlabs/ffhq-dataset ``download_ffhq.py``,
``recreate_aligned_images``), reimplemented here. It uses five landmark positions only: the two eye centres
(the means of 68-point landmarks 36-41 and 42-47) and the two outer mouth corners (points 48 and 54):

1. an oriented square: its x axis is the eye-to-eye vector minus the eye-to-mouth vector turned by 90
   degrees, its half-size ``max(2 * |eye-to-eye|, 1.8 * |eye-to-mouth|)``, its centre the eye midpoint moved
   a tenth of the way towards the mouth;
2. shrink the photo by an integer factor when the square is over twice the output size;
3. crop to the square plus a 10% border;
4. pad with reflection where the square leaves the photo, blurring the padding towards its outer edge and
   pulling it towards the photo's median colour;
5. sample the square into ``transform_size`` pixels (bilinear), then resize to ``output_size`` (Lanczos).

Landmarks come from dlib's 68-point shape predictor, which the ``face-recognition-models`` package ships
(``pip install "ganzoo[align]"``: prebuilt ``dlib-bin`` wheels, nothing downloaded at run time), or from the
caller (``landmarks=``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageFilter

from zoo.errors import ZooError

#: 68-point indices (iBUG 300-W layout) of what the FFHQ crop uses.
LEFT_EYE = slice(36, 42)
RIGHT_EYE = slice(42, 48)
MOUTH_LEFT, MOUTH_RIGHT = 48, 54


class AlignmentError(ZooError, ValueError):
    """The photo could not be aligned (no face, several faces, bad landmarks, detector missing)."""


@dataclass
class AlignedFace:
    """An aligned crop and how it sits in the original photo.

    ``quad``: the crop's corners in original-photo pixels (upper-left, lower-left, lower-right, upper-right);
    ``affine``: the 2x3 matrix taking crop pixel coordinates (of an ``output_size`` crop) to photo coordinates.
    """

    image: Image.Image
    landmarks: np.ndarray
    quad: np.ndarray
    output_size: int
    source_size: tuple[int, int]
    detector: str
    face_index: int = 0
    faces_found: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def affine(self) -> np.ndarray:
        q0, q1, q3 = self.quad[0], self.quad[1], self.quad[3]
        s = float(self.output_size)
        return np.array([[(q3[0] - q0[0]) / s, (q1[0] - q0[0]) / s, q0[0]],
                         [(q3[1] - q0[1]) / s, (q1[1] - q0[1]) / s, q0[1]]])

    def to_aligned(self, points: np.ndarray) -> np.ndarray:
        """Photo coordinates -> crop coordinates (``output_size`` pixels)."""
        a = self.affine
        return (np.asarray(points, dtype=np.float64) - a[:, 2]) @ np.linalg.inv(a[:, :2]).T

    def to_json(self) -> dict[str, Any]:
        return {"output_size": self.output_size, "source_size": list(self.source_size), "detector": self.detector,
                "face_index": self.face_index, "faces_found": self.faces_found,
                "quad": np.round(self.quad, 3).tolist(), "landmarks": np.round(self.landmarks, 2).tolist()}


def _five_points(lm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    if lm.shape == (68, 2):
        return lm[LEFT_EYE].mean(0), lm[RIGHT_EYE].mean(0), lm[MOUTH_LEFT], lm[MOUTH_RIGHT]
    if lm.shape == (4, 2):  # eye_left, eye_right, mouth_left, mouth_right
        return lm[0], lm[1], lm[2], lm[3]
    raise AlignmentError(f"landmarks must be 68 (x, y) points (dlib / iBUG layout) or 4 points (eye centres, "
                         f"mouth corners), got an array of shape {list(lm.shape)}")


def ffhq_quad(landmarks: np.ndarray) -> tuple[np.ndarray, float]:
    """The FFHQ crop square (4 corners, photo pixels) and its side length, from the landmarks."""
    eye_l, eye_r, mouth_l, mouth_r = _five_points(np.asarray(landmarks, dtype=np.float64))
    eye_mid = (eye_l + eye_r) / 2
    eye_to_eye = eye_r - eye_l
    eye_to_mouth = (mouth_l + mouth_r) / 2 - eye_mid
    # x axis: eye line blended with the face's vertical (the eye-to-mouth vector turned by -90 degrees)
    x = eye_to_eye - np.array([-eye_to_mouth[1], eye_to_mouth[0]])
    norm = np.hypot(*x)
    if not np.isfinite(norm) or norm < 1e-6:
        raise AlignmentError("landmarks are degenerate (eyes and mouth coincide); check the landmark file")
    x = x / norm * max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.array([-x[1], x[0]])
    c = eye_mid + eye_to_mouth * 0.1
    quad = np.stack([c - x - y, c - x + y, c + x + y, c + x - y])
    return quad, float(np.hypot(*x) * 2)


def _gaussian(img: np.ndarray, sigma: float) -> np.ndarray:
    try:
        from scipy.ndimage import gaussian_filter
    except ImportError:  # pillow's box-approximated Gaussian, per channel
        chans = [np.asarray(Image.fromarray(img[..., k]).filter(ImageFilter.GaussianBlur(sigma)), dtype=np.float32)
                 for k in range(img.shape[2])]
        return np.stack(chans, axis=2)
    return gaussian_filter(img, [sigma, sigma, 0])


def _crop_pad_transform(img: Image.Image, quad: np.ndarray, qsize: float, output_size: int,
                        transform_size: int) -> Image.Image:
    quad = quad.copy()
    shrink = int(np.floor(qsize / output_size * 0.5))
    if shrink > 1:
        size = (int(np.rint(img.size[0] / shrink)), int(np.rint(img.size[1] / shrink)))
        img = img.resize(size, Image.LANCZOS)
        quad /= shrink
        qsize /= shrink
    border = max(int(np.rint(qsize * 0.1)), 3)
    lo, hi = np.floor(quad.min(0)).astype(int), np.ceil(quad.max(0)).astype(int)
    crop = (max(lo[0] - border, 0), max(lo[1] - border, 0), min(hi[0] + border, img.size[0]),
            min(hi[1] + border, img.size[1]))
    if crop[2] - crop[0] < img.size[0] or crop[3] - crop[1] < img.size[1]:
        img = img.crop(crop)
        quad -= crop[:2]
    lo, hi = np.floor(quad.min(0)).astype(int), np.ceil(quad.max(0)).astype(int)
    pad = [max(-lo[0] + border, 0), max(-lo[1] + border, 0), max(hi[0] - img.size[0] + border, 0),
           max(hi[1] - img.size[1] + border, 0)]
    if max(pad) > border - 4:
        pad = [max(p, int(np.rint(qsize * 0.3))) for p in pad]
        arr = np.pad(np.asarray(img, dtype=np.float32), ((pad[1], pad[3]), (pad[0], pad[2]), (0, 0)), "reflect")
        h, w, _ = arr.shape
        yy, xx = np.ogrid[:h, :w]
        xx = xx[..., None].astype(np.float32)
        yy = yy[..., None].astype(np.float32)
        # 0 inside the photo, rising to 1 at the outer edge of the padding
        mask = np.maximum(1.0 - np.minimum(xx / pad[0], (w - 1 - xx) / pad[2]),
                          1.0 - np.minimum(yy / pad[1], (h - 1 - yy) / pad[3]))
        blur = qsize * 0.02
        arr += (_gaussian(arr, blur) - arr) * np.clip(mask * 3.0 + 1.0, 0.0, 1.0)
        arr += (np.median(arr, axis=(0, 1)) - arr) * np.clip(mask, 0.0, 1.0)
        img = Image.fromarray(np.uint8(np.clip(np.rint(arr), 0, 255)), "RGB")
        quad += pad[:2]
    img = img.transform((transform_size, transform_size), Image.QUAD, tuple((quad + 0.5).flatten()), Image.BILINEAR)
    if output_size < transform_size:
        img = img.resize((output_size, output_size), Image.LANCZOS)
    return img


_DLIB: dict[str, Any] = {}
PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"


def predictor_path() -> Path:
    """The 68-point predictor inside the installed ``face-recognition-models`` package.

    Located without importing the package (its ``__init__`` needs ``pkg_resources``, absent from new setuptools).
    """
    import importlib.util

    spec = importlib.util.find_spec("face_recognition_models")
    for loc in (spec.submodule_search_locations or []) if spec else []:
        path = Path(loc) / "models" / PREDICTOR_FILE
        if path.is_file():
            return path
    raise AlignmentError("face alignment needs dlib's 68-point predictor: pip install \"ganzoo[align]\" "
                         "(face-recognition-models ships it), or pass landmarks (--landmarks FILE.json)")


def _dlib_models() -> tuple[Any, Any]:
    if not _DLIB:
        try:
            import dlib
        except ImportError:
            raise AlignmentError("face alignment needs dlib: pip install \"ganzoo[align]\" (prebuilt dlib-bin "
                                 "wheels), or pass landmarks (--landmarks FILE.json)") from None
        path = predictor_path()
        _DLIB["detector"] = dlib.get_frontal_face_detector()
        _DLIB["predictor"] = dlib.shape_predictor(str(path))
    return _DLIB["detector"], _DLIB["predictor"]


def detect_landmarks(image: Image.Image, min_score: float = 0.3) -> list[np.ndarray]:
    """68-point landmarks of every face dlib finds, largest face first. Each is a [68, 2] float array.

    The HOG detector runs at the photo's size, and on a 2x up-sampled copy only when that finds nothing
    (small faces); detections scoring under ``min_score`` are dropped (up-sampling finds weak false faces).
    """
    detector, predictor = _dlib_models()
    arr = np.asarray(image.convert("RGB"))
    rects: list[Any] = []
    for upsample in (0, 1):
        found, scores, _ = detector.run(arr, upsample, 0.0)
        rects = [r for r, sc in zip(found, scores) if sc >= min_score]
        if rects:
            break
    rects.sort(key=lambda r: -r.area())
    out = []
    for r in rects:
        shape = predictor(arr, r)
        out.append(np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64))
    return out


def read_landmarks(path: str | os.PathLike[str]) -> np.ndarray:
    """Landmarks from JSON: a list of 68 ``[x, y]`` (or 4: eye centres, mouth corners), or ``{"landmarks": [...]}``."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise AlignmentError(f"cannot read landmarks from {path}: {e}") from None
    if isinstance(data, dict):
        data = data.get("landmarks")
    try:
        lm = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError):
        lm = np.zeros((0,))
    if lm.ndim != 2 or lm.shape[1] != 2 or lm.shape[0] not in (4, 68) or not np.isfinite(lm).all():
        raise AlignmentError(f"{path}: expected a JSON list of 68 [x, y] points (or 4: left eye, right eye, left "
                             "and right mouth corner), optionally under a 'landmarks' key")
    return lm


def align_face(image: Image.Image | str | os.PathLike[str], *, output_size: int = 1024, transform_size: int = 4096,
               detector: str = "auto", landmarks: np.ndarray | Sequence[Sequence[float]] | None = None,
               face_index: int | None = None) -> AlignedFace:
    """Crop, rotate and scale the face in ``image`` the way FFHQ was made (see the module docstring).

    ``detector``: ``"auto"`` / ``"dlib"`` (68-point predictor) or ``"none"`` (``landmarks`` required).
    Several faces: pass ``face_index`` (0 = largest). ``transform_size`` is the intermediate sampling size
    (FFHQ: 4096 for a 1024 crop); it is lowered to ``4 * output_size`` at most, which is equivalent.
    """
    if isinstance(image, (str, os.PathLike)):
        try:
            image = Image.open(image)
            image.load()
        except (OSError, ValueError) as e:
            raise AlignmentError(f"cannot read the photo {image}: {e}") from None
    if output_size < 8 or output_size > 4096:
        raise AlignmentError(f"output_size must be in 8..4096, got {output_size}")
    from PIL import ImageOps

    img = ImageOps.exif_transpose(image).convert("RGB")
    found = 1
    if landmarks is not None:
        lm = np.asarray(landmarks, dtype=np.float64)
        used = "given"
        index = 0
    else:
        if detector not in ("auto", "dlib"):
            raise AlignmentError(f"unknown detector {detector!r}; use 'auto'/'dlib', or pass landmarks")
        faces = detect_landmarks(img)
        found = len(faces)
        if not faces:
            raise AlignmentError("no face found in the photo; use a photo with a clearly visible frontal face, or "
                                 "pass landmarks (--landmarks FILE.json)")
        if face_index is None and len(faces) > 1:
            raise AlignmentError(f"found {len(faces)} faces; choose one with face_index / --face-index "
                                 f"(0 = largest ... {len(faces) - 1})")
        index = face_index or 0
        if not 0 <= index < len(faces):
            raise AlignmentError(f"face_index {index} out of range: found {len(faces)} face(s)")
        lm, used = faces[index], "dlib-68"
    quad, qsize = ffhq_quad(lm)
    transform_size = max(output_size, min(transform_size, 4 * output_size))
    crop = _crop_pad_transform(img, quad, qsize, output_size, transform_size)
    return AlignedFace(image=crop, landmarks=lm, quad=quad, output_size=output_size, source_size=img.size,
                       detector=used, face_index=index, faces_found=found)


def _feather_mask(size: int, feather: float) -> Image.Image:
    """A crop-sized mask: 1 inside, fading to 0 over ``feather`` (fraction of the size) at the border."""
    inset = max(1, int(round(size * feather)))
    mask = Image.new("L", (size, size), 0)
    mask.paste(255, (inset, inset, size - inset, size - inset))
    return mask.filter(ImageFilter.GaussianBlur(inset / 2))


def paste_back(original: Image.Image, aligned_edit: Image.Image, aligned_face: AlignedFace, *,
               feather: float = 0.06) -> Image.Image:
    """Put an edited aligned crop (any size) back into ``original`` through the inverse alignment transform.

    The crop's border fades out over ``feather`` of its size; pixels outside the crop are unchanged.
    """
    from PIL import ImageOps

    base = ImageOps.exif_transpose(original).convert("RGB")
    if base.size != tuple(aligned_face.source_size):
        raise AlignmentError(f"the original is {base.size[0]}x{base.size[1]} but the face was aligned on a "
                             f"{aligned_face.source_size[0]}x{aligned_face.source_size[1]} photo")
    edit = aligned_edit.convert("RGB")
    if edit.size[0] != edit.size[1]:
        raise AlignmentError(f"the edited crop must be square, got {edit.size[0]}x{edit.size[1]}")
    scale = edit.size[0] / aligned_face.output_size
    a = aligned_face.affine
    # PIL maps continuous output coordinates (pixel i spans [i, i+1]) to input ones; the quad is in pixel
    # indices (centre of pixel i at i), hence the half-pixel shift, as in the forward QUAD transform.
    shift = np.array([[1, 0, -0.5], [0, 1, -0.5], [0, 0, 1]])
    inv = (np.linalg.inv(np.vstack([a, [0, 0, 1]])) @ shift)[:2] * scale  # photo -> edit coordinates
    data = tuple(inv.flatten())
    warped = edit.transform(base.size, Image.AFFINE, data, Image.BICUBIC)
    mask = _feather_mask(edit.size[0], feather).transform(base.size, Image.AFFINE, data, Image.BILINEAR)
    return Image.composite(warped, base, mask)
