"""Quality metrics in the manner of Pan et al. Table 1: landmark error per region, photometric error.

The independent reference detector is dlib's 68-point shape predictor, the one
the paper used (via ``dlib-bin``), with the ``shape_predictor_68_face_landmarks.dat``
file that the ``face-recognition-models`` package ships.  That package's
``__init__`` imports ``pkg_resources`` (gone from recent setuptools), so the file
is located with ``importlib.util.find_spec`` -- which finds a top-level package
without executing it -- and opened by path.

Normalisation: landmark errors are divided by the reference's inter-ocular
distance measured between the OUTER eye corners (iBUG points 36 and 45), the
300-W convention.  Eye centres would give a ~30 % larger divisor and smaller
numbers; outer corners are what dlib itself is evaluated with and are less
affected by gaze.
"""
from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Optional

import numpy as np

from .errors import InvalidInputError, ModelError, NoFaceError
from .landmarks import IBUG68_REGIONS

#: Regions of Pan et al. Table 1 as iBUG-68 index ranges (0-based).
REGIONS = IBUG68_REGIONS
OUTER_EYE_CORNERS = (36, 45)

_PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"
_dlib_lock = threading.Lock()
_dlib_models: Optional[tuple] = None


def dlib_predictor_path() -> Path:
    """Path of dlib's 68-point predictor inside the installed face-recognition-models package."""
    spec = importlib.util.find_spec("face_recognition_models")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        path = Path(location) / "models" / _PREDICTOR_FILE
        if path.is_file():
            return path
    raise ModelError(f"{_PREDICTOR_FILE} not found: install the 'face-recognition-models' package "
                     f"(searched {locations or 'no installed face_recognition_models package'})")


def _dlib():
    global _dlib_models
    with _dlib_lock:
        if _dlib_models is None:
            import dlib
            _dlib_models = (dlib, dlib.get_frontal_face_detector(), dlib.shape_predictor(str(dlib_predictor_path())))
        return _dlib_models


def dlib_landmarks68(image: np.ndarray, *, upsample: int = 1) -> np.ndarray:
    """dlib's 68 landmarks of the largest face: (68, 2) float64 pixels (x right, y down).

    image: (H, W, 3) uint8 RGB.  upsample: times dlib's HOG detector doubles the image
    before searching (1 finds faces down to ~40 px).  Raises NoFaceError.
    """
    image = _rgb8(image, "dlib_landmarks68")
    dlib, detector, predictor = _dlib()
    with _dlib_lock:   # dlib's detector and predictor objects are not documented as thread-safe
        rects = detector(image, upsample)
        if len(rects) == 0:
            raise NoFaceError("dlib's frontal face detector found no face")
        rect = max(rects, key=lambda r: r.area())
        shape = predictor(image, rect)
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)


def interocular_distance(ref68: np.ndarray) -> float:
    """Distance between the outer eye corners (iBUG 36 and 45) of a (68, 2) point set."""
    ref68 = _points68(ref68, "ref68")
    return float(np.linalg.norm(ref68[OUTER_EYE_CORNERS[1]] - ref68[OUTER_EYE_CORNERS[0]]))


def landmark_error_by_region(pred68: np.ndarray, ref68: np.ndarray) -> dict[str, float]:
    """Mean point-to-point distance per region, as a fraction of the inter-ocular distance.

    pred68, ref68: (68, 2) (or (68, 3); only x, y are used) in the same pixel frame,
    iBUG-68 order.  ref68 is the reference (e.g. dlib) and sets the normaliser
    (:func:`interocular_distance`).
    Returns {"eyes", "nose", "brows", "mouth", "contour": mean error / IOD, "mean": mean
    over all 68 points / IOD}.  Multiply by 100 for "% of IOD".
    """
    pred, ref = _points68(pred68, "pred68"), _points68(ref68, "ref68")
    iod = interocular_distance(ref)
    if not iod > 0:
        raise InvalidInputError("reference outer eye corners (36, 45) coincide: inter-ocular distance is 0")
    distance = np.linalg.norm(pred - ref, axis=1) / iod
    errors = {region: float(distance[list(ids)].mean()) for region, ids in REGIONS.items()}
    errors["mean"] = float(distance.mean())
    return errors


def photometric_error(rendered: np.ndarray, image: np.ndarray, mask: np.ndarray) -> float:
    """Average Manhattan colour distance inside a mask (Pan et al. §4.2.1; A_m of Eq. 5).

    rendered, image: (H, W, 3) uint8 RGB, or float RGB in [0, 1].
    mask: (H, W) bool, or float weights in [0, 1] (a confidence map).
    Returns the weighted mean over pixels of |dR| + |dG| + |dB| with colours scaled to
    [0, 1], so 0 (identical) .. 3 (black vs white).
    """
    a, b = _unit_rgb(rendered, "rendered"), _unit_rgb(image, "image")
    if a.shape != b.shape:
        raise InvalidInputError(f"rendered {a.shape} and image {b.shape} differ in size")
    weights = np.asarray(mask)
    if weights.shape != a.shape[:2]:
        raise InvalidInputError(f"mask shape {weights.shape} does not match the image's {a.shape[:2]}")
    weights = weights.astype(np.float64)
    if not np.all(np.isfinite(weights)) or weights.min() < 0 or weights.max() > 1:
        raise InvalidInputError("mask must be bool or finite weights in [0, 1]")
    total = weights.sum()
    if total <= 0:
        raise InvalidInputError("mask selects no pixels")
    manhattan = np.abs(a - b).sum(axis=2)
    return float((manhattan * weights).sum() / total)


def _points68(points, what) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[0] != 68 or points.shape[1] not in (2, 3):
        raise InvalidInputError(f"{what} must be (68, 2) iBUG-68 points, got {points.shape}")
    if not np.all(np.isfinite(points)):
        raise InvalidInputError(f"{what} contains NaN or infinite values")
    return points[:, :2]


def _rgb8(image, what) -> np.ndarray:
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3
            and image.shape[2] == 3 and image.size):
        desc = f"{image.shape} {image.dtype}" if isinstance(image, np.ndarray) else type(image).__name__
        raise InvalidInputError(f"{what} needs an (H, W, 3) uint8 RGB image, got {desc}")
    return np.ascontiguousarray(image)


def _unit_rgb(image, what) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
        raise InvalidInputError(f"{what} must be (H, W, 3) RGB, got {image.shape}")
    if image.dtype == np.uint8:
        return image.astype(np.float64) / 255.0
    if np.issubdtype(image.dtype, np.floating):
        if not np.all(np.isfinite(image)):
            raise InvalidInputError(f"{what} contains NaN or infinite values")
        if image.min() < 0 or image.max() > 1:
            raise InvalidInputError(f"{what} is float outside [0, 1]")
        return image.astype(np.float64)
    raise InvalidInputError(f"{what} has dtype {image.dtype}; use uint8 or float in [0, 1]")
