"""Eye-landmark refinement (Pan et al. §3.2.1): snap the eye contours to the segmented eyes.

Landmark detectors trained on photographs put the eye contour where a normal
eye would be; on a cartoon with exaggerated eyes the points fall inside the
real eye, and the texture then maps eye onto skin (Pan et al. Fig. 8).  Pan
et al. segment the eyes with a face parser and move each eye landmark to the
nearest point on the boundary of the segmented eye, when such a boundary
exists.  This module does the same:

* segmentation from a :class:`pyfacerig.networks.FaceParser` when one is given
  (classes 4 and 5, matched to each eye by overlap with its landmark polygon);
* otherwise a classical segmentation of each eye region: GrabCut in a window
  around the eye, seeded with the landmark polygon as probable eye, the iris
  disc as certain eye and the window's border as certain background
  (:func:`segment_eye_classical`);
* each of the 16 contour points of an eye moves to the nearest point of that
  eye's segmented boundary, at most ``max_shift`` eye widths away; an eye whose
  segmentation is implausible (empty, touching the window border, far larger
  or smaller than the landmark polygon) keeps its points.

Only the 32 eye-contour points move (x and y); every other point, and every z,
is returned unchanged.  The result is deterministic (OpenCV's RNG, which GrabCut
uses to initialise its colour models, is re-seeded for each eye).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from .errors import InvalidInputError
from .landmarks import LEFT_EYE_CONTOUR, LEFT_IRIS, RIGHT_EYE_CONTOUR, RIGHT_IRIS
from .networks import EYE_CLASSES, FaceParser

#: Both eyes as (contour ids, iris ids): the subject's right eye first.
EYES = ((RIGHT_EYE_CONTOUR, RIGHT_IRIS), (LEFT_EYE_CONTOUR, LEFT_IRIS))
EYE_CONTOUR_IDS = np.array(RIGHT_EYE_CONTOUR + LEFT_EYE_CONTOUR, dtype=np.int64)


@dataclass(frozen=True)
class EyeWindow:
    """A crop around one eye, resampled so the eye is about ``EYE_WIDTH_PX`` wide.

    origin: (x, y) image pixel of the window's top-left corner.
    zoom: window pixels per image pixel.
    size: (width, height) of the window in window pixels.
    """

    origin: np.ndarray
    zoom: float
    size: tuple[int, int]

    def to_window(self, xy: np.ndarray) -> np.ndarray:
        return (np.asarray(xy, np.float64) - self.origin) * self.zoom

    def to_image(self, uv: np.ndarray) -> np.ndarray:
        return np.asarray(uv, np.float64) / self.zoom + self.origin

    def crop(self, image: np.ndarray, interpolation=cv2.INTER_CUBIC) -> np.ndarray:
        m = np.array([[self.zoom, 0, -self.origin[0] * self.zoom],
                      [0, self.zoom, -self.origin[1] * self.zoom]])
        return cv2.warpAffine(image, m, self.size, flags=interpolation, borderMode=cv2.BORDER_REFLECT)


#: Working resolution: the eye's landmark width in window pixels.  GrabCut's
#: boundary is pixel-accurate, so a fixed, fine scale keeps the snapped points
#: sub-pixel in the original image whatever the photo's size.
EYE_WIDTH_PX = 64.0


def eye_window(contour_xy: np.ndarray, margin: float = 0.75) -> EyeWindow:
    """Window around an eye contour ((16, 2) image pixels), ``margin`` eye widths on every side."""
    width = float(np.linalg.norm(contour_xy[0] - contour_xy[8]))     # outer to inner corner
    if not width > 0:
        raise InvalidInputError("eye contour has zero width (outer and inner corners coincide)")
    lo, hi = contour_xy.min(axis=0) - margin * width, contour_xy.max(axis=0) + margin * width
    zoom = EYE_WIDTH_PX / width
    size = np.ceil((hi - lo) * zoom).astype(int)
    return EyeWindow(origin=lo, zoom=zoom, size=(int(size[0]), int(size[1])))


def segment_eye_classical(window_rgb: np.ndarray, contour_uv: np.ndarray, iris_uv: np.ndarray,
                          iterations: int = 5) -> np.ndarray:
    """GrabCut segmentation of one eye inside its window.

    window_rgb: (h, w, 3) uint8 RGB crop; contour_uv: (16, 2) eye contour and iris_uv:
    (5, 2) iris centre + rim, both in window pixels.
    Returns (h, w) bool, True on the eye (sclera + iris + pupil).

    Seeds: the window's outer frame is certain background, the iris disc (shrunk to
    stay clear of the lids) certain eye, the landmark polygon probable eye and the
    rest probable background -- so the colour models start from the detector's
    guess and GrabCut grows or shrinks the region to the colour boundary.
    """
    h, w = window_rgb.shape[:2]
    mask = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
    cv2.fillPoly(mask, [np.round(contour_uv).astype(np.int32)], cv2.GC_PR_FGD)
    centre = iris_uv[0]
    radius = float(np.mean(np.linalg.norm(iris_uv[1:] - centre, axis=1)))
    cv2.circle(mask, tuple(int(round(c)) for c in centre), max(2, int(0.5 * radius)), cv2.GC_FGD, -1)
    frame = max(2, int(0.04 * max(h, w)))
    mask[:frame, :] = mask[-frame:, :] = cv2.GC_BGD
    mask[:, :frame] = mask[:, -frame:] = cv2.GC_BGD
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)   # GrabCut's k-means initialisation draws from OpenCV's RNG
    cv2.grabCut(cv2.cvtColor(window_rgb, cv2.COLOR_RGB2BGR), mask, None, bgd, fgd, iterations,
                cv2.GC_INIT_WITH_MASK)
    eye = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
    return _component_at(eye, centre)


def _component_at(mask: np.ndarray, point_uv: np.ndarray) -> np.ndarray:
    """The connected component of ``mask`` containing (or nearest to) ``point_uv``, holes filled."""
    mask = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    count, labels = cv2.connectedComponents(mask, connectivity=8)
    if count <= 1:
        return np.zeros(mask.shape, bool)
    ys, xs = np.nonzero(labels)
    nearest = np.argmin((xs - point_uv[0]) ** 2 + (ys - point_uv[1]) ** 2)
    component = (labels == labels[ys[nearest], xs[nearest]]).astype(np.uint8)
    contours, _ = cv2.findContours(component, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    filled = np.zeros_like(component)
    cv2.drawContours(filled, contours, -1, 1, thickness=-1)
    return filled.astype(bool)


def _boundary(mask: np.ndarray) -> np.ndarray:
    """(M, 2) float64 window pixels on the outer boundary of a filled mask (pixel centres)."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return np.zeros((0, 2))
    return max(contours, key=len)[:, 0, :].astype(np.float64)


def _plausible(mask: np.ndarray, contour_uv: np.ndarray, min_ratio=0.4, max_ratio=4.0) -> bool:
    """Reject segmentations that leaked into the window border or lost the eye."""
    if not mask.any():
        return False
    border = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
    if border.any():
        return False
    polygon_area = abs(cv2.contourArea(contour_uv.astype(np.float32)))
    return min_ratio * polygon_area <= mask.sum() <= max_ratio * polygon_area


def snap_to_boundary(contour_uv: np.ndarray, boundary_uv: np.ndarray, max_distance: float) -> np.ndarray:
    """Move each contour point to its nearest boundary point if that is within ``max_distance``."""
    if len(boundary_uv) == 0:
        return contour_uv.copy()
    d = np.linalg.norm(contour_uv[:, None, :] - boundary_uv[None, :, :], axis=2)
    nearest = d.argmin(axis=1)
    near_enough = d[np.arange(len(contour_uv)), nearest] <= max_distance
    return np.where(near_enough[:, None], boundary_uv[nearest], contour_uv)


def eye_masks(image: np.ndarray, points: np.ndarray, parser: Optional[FaceParser] = None):
    """Per-eye (window, mask) pairs; masks are (h, w) bool in window pixels, or None if implausible."""
    labels = None
    if parser is not None:
        labels = np.asarray(parser.parse(image))
        if labels.shape != image.shape[:2]:
            raise InvalidInputError(f"face parser returned labels of shape {labels.shape}, "
                                    f"expected {image.shape[:2]}")
        eye_labels = np.isin(labels, EYE_CLASSES).astype(np.uint8)
    result = []
    for contour_ids, iris_ids in EYES:
        contour_xy = points[list(contour_ids), :2]
        window = eye_window(contour_xy)
        contour_uv = window.to_window(contour_xy)
        iris_uv = window.to_window(points[list(iris_ids), :2])
        if labels is None:
            mask = segment_eye_classical(window.crop(image), contour_uv, iris_uv)
        else:
            # Nearest-neighbour keeps labels crisp; the component touching this eye's
            # polygon is this eye, whatever the parser called it (l_eye / r_eye).
            crop = window.crop(eye_labels, interpolation=cv2.INTER_NEAREST).astype(bool)
            mask = _component_at(crop, iris_uv[0])
        result.append((window, mask if _plausible(mask, contour_uv) else None))
    return result


def refine_eye_landmarks(image: np.ndarray, points: np.ndarray, *, parser: Optional[FaceParser] = None,
                         max_shift: float = 0.5) -> np.ndarray:
    """Eye contours snapped to the segmented eye boundary (Pan et al. §3.2.1).

    image: (H, W, 3) uint8 RGB, the image the points were detected in.
    points: (478, 3) float64 MediaPipe landmarks in that image's pixels
        (e.g. ``FaceLandmarks.points``).
    parser: optional :class:`~pyfacerig.networks.FaceParser`; without it the eyes are
        segmented with :func:`segment_eye_classical`.
    max_shift: the farthest a point may move, in eye widths (outer to inner corner).

    Returns a new (478, 3) float64 array: the 32 eye-contour points
    (:data:`EYE_CONTOUR_IDS`) moved in x, y; everything else identical.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
        raise InvalidInputError(f"refine_eye_landmarks needs an (H, W, 3) uint8 RGB image, "
                                f"got {image.shape} {image.dtype}")
    points = np.asarray(points, dtype=np.float64)
    if points.shape != (478, 3):
        raise InvalidInputError(f"refine_eye_landmarks needs (478, 3) MediaPipe points, got {points.shape}")
    if not np.all(np.isfinite(points)):
        raise InvalidInputError("landmark points contain NaN or infinite values")
    refined = points.copy()
    for (contour_ids, _), (window, mask) in zip(EYES, eye_masks(image, points, parser)):
        if mask is None:
            continue
        contour_uv = window.to_window(points[list(contour_ids), :2])
        snapped = snap_to_boundary(contour_uv, _boundary(mask), max_shift * EYE_WIDTH_PX)
        refined[list(contour_ids), :2] = window.to_image(snapped)
    return refined
