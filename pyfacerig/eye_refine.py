"""Eye-landmark refinement (Pan et al. §3.2.1): snap the eye contours to the segmented eyes.

Landmark detectors trained on photographs put the eye contour where a normal
eye would be; on a cartoon with exaggerated eyes the points fall inside the
real eye, and the texture then maps eye onto skin (Pan et al. Fig. 8).  Pan
et al. segment the eyes with a face parser and move each eye landmark to the
nearest point on the boundary of the segmented eye, when such a boundary
exists.  This module does the same:

* segmentation from a :class:`pyfacerig.networks.FaceParser` when one is given
  (classes 4 and 5 together; each eye takes the labelled region at or nearest
  to its iris centre, so the parser's left/right convention does not matter);
* otherwise a classical segmentation of each eye region: GrabCut in a window
  around the eye, on CIELAB colours with the chroma amplified, seeded with the
  landmark polygon as probable eye, its inner half and the iris disc as certain
  eye and the window's border as certain background; very dark pixels outside
  the iris (lashes, lid crease) are then removed (:func:`segment_eye_classical`);
* the contour is first made at least as large as the eye's iris implies
  (:func:`iris_scaled_contour`): a detector contour that is too small for its iris is
  scaled about its centre, by as much as the irises are too large for the face
  (:func:`iris_rule_strength`);
* each of the 16 contour points of an eye is snapped to that eye's segmented
  boundary (:func:`snap_outward` by default, the paper's nearest-point rule with
  ``snap="nearest"``), at most ``max_shift`` eye widths away; an eye whose
  segmentation is implausible (empty, touching the window border, far larger
  or smaller than the landmark polygon) keeps its points.

Why "outward" by default: the detector's failure on cartoon eyes is a contour
that is too SMALL (Pan et al. Fig. 8).  On ordinary eyes MediaPipe's contour
deliberately lies a little outside the visible white of the eye (on the lid
margin, and past the white at the corners), so snapping inwards to the visible
boundary would shrink every normal eye, and nearest-point snapping also slides
points along the boundary and bunches them.  The outward rule moves a point
only along the ray from the eye's centre through it, and only when the
segmented eye extends beyond it.

Why the iris: the outward snap can only move a point where the segmentation shows
more eye beyond it, and at the corners (where the white tapers out) or on a squinting,
shadowed eye (Grace Hopper behind her glasses) it shows almost nothing.  The iris is
the one part of the eye that both MediaPipe's iris model and the segmentation see
clearly, and it is a reliable ruler: the visible iris is about 11.7 mm across and the
eye opening, corner to corner, about 29 mm in adults, a ratio of about 0.40
(:data:`IRIS_TO_EYE_WIDTH`; MediaPipe's own contours on the two ordinary portraits give
0.40-0.41).  On magnified eyes MediaPipe's iris grows with the eye (1.2-1.25x at a 1.6x
warp) while its contour lags (1.03-1.13x), so the ratio rises (0.44-0.51) and the contour
is scaled back to it.  The ratio is anatomical, not fitted, but the enlarged-eye checks
are sensitive to it: with 0.39-0.41 every case follows the warp, with 0.42 Grace
Hopper's does not.

Why the gate (:func:`iris_rule_strength`): the iris ratio cannot tell an enlarged eye from an
ordinary one with a short visible opening (hooded or squinting: Biden in the held-out
portraits has 0.44-0.45, and widening his contours cost 1 % of the IOD against dlib).  The
iris's size relative to the distance between the irises can: an enlarged or cartoon eye has an
iris too large for the face.  The rule, and without a parser the snap's reach, scale with how
far that ratio is above the adult mean; on human proportions the refinement leaves MediaPipe's
contours alone and GrabCut does not run.  With a parser the snap keeps the paper's full reach.

Measured (tests/test_eye_refine.py, eye-contour error in inter-ocular units, on
eyes enlarged 1.3x and 1.6x in the astronaut and Grace Hopper portraits):
photo eyes magnified by a known warp, 1.6x: MediaPipe 0.051, refined 0.037
(0.047 by the segmentation alone, before the iris rule); 1.3x: MediaPipe 0.023,
refined 0.015 (0.022).  Flat drawn cartoon eyes: MediaPipe 0.052, refined 0.014.
The constants below (chroma gain, darkness fraction, plausibility ratios) were
chosen on those same cases.  The iris ratios are anatomical, except the top of the
gate's ramp (1.5 SD), picked because 2 SD left Grace Hopper's 1.3x case short.  On the
held-out face_recognition portraits, which nothing was tuned on, the fit follows eyes
enlarged 1.3x and 1.6x in all 8 cases and halves the error at 1.6x (obama3 2.95 -> 1.47 %
of the IOD), while their ordinary eyes keep MediaPipe's contours except Biden's (strength
0.26; eye error against dlib 2.11 -> 2.38 %).  docs/pipeline.md has the tables.

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
#: Stretch of CIELAB a*, b* before GrabCut (see :func:`segment_eye_classical`).
CHROMA_GAIN = 3.0
#: Pixels darker than this fraction of the surrounding skin's lightness, outside the
#: iris, count as lashes or lid shadow rather than eye.
DARK_FRACTION = 0.55
#: Iris diameter over the eye's corner-to-corner width in adults (about 11.7 mm / 29 mm).
IRIS_TO_EYE_WIDTH = 0.40
#: Iris diameter over the distance between the two iris centres in adults: 11.7 mm / 63 mm,
#: and one standard deviation of that ratio (iris 11.7 +- 0.4 mm, pupil distance 63 +- 3.8 mm,
#: independent: 7 % relative).
IRIS_TO_PUPIL_DISTANCE = 0.186
IRIS_TO_PUPIL_DISTANCE_SD = 0.013
#: The iris rule acts fully once the irises are this many standard deviations above the mean.
IRIS_RULE_FULL_AT_SD = 1.5


def iris_rule_strength(points: np.ndarray) -> float:
    """How much of the iris rule to apply, 0..1, from how large the irises are for the face.

    points: (478, 2|3) MediaPipe landmarks.  The iris rule (:func:`iris_scaled_contour`) widens a
    contour that is narrow for its iris.  That is the signature of an enlarged, cartoon-like eye,
    but also of an ordinary hooded or squinting eye, whose visible opening is short (Biden in the
    held-out portraits: iris ratio 0.44-0.45, contours widened 9-13 %, eye error vs dlib 2.1 ->
    3.1 % of the IOD).  The two differ in the iris itself: an enlarged eye has an iris too large
    for the distance between the eyes, an ordinary one does not.  The rule therefore ramps from
    0 at the adult mean of iris diameter / iris-centre distance to 1 at
    ``IRIS_RULE_FULL_AT_SD`` standard deviations above it.
    """
    points = np.asarray(points, dtype=np.float64)
    right, left = points[list(RIGHT_IRIS), :2], points[list(LEFT_IRIS), :2]
    distance = float(np.linalg.norm(left[0] - right[0]))
    if not distance > 0:
        return 0.0
    diameter = np.mean([2.0 * np.mean(np.linalg.norm(iris[1:] - iris[0], axis=1)) for iris in (right, left)])
    excess = (diameter / distance - IRIS_TO_PUPIL_DISTANCE) / (IRIS_RULE_FULL_AT_SD * IRIS_TO_PUPIL_DISTANCE_SD)
    return float(np.clip(excess, 0.0, 1.0))


def iris_scaled_contour(contour_xy: np.ndarray, iris_xy: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """The eye contour scaled about its centroid so it is at least as wide as its iris implies.

    contour_xy: (16, 2) contour (outer corner first, inner corner at index 8); iris_xy:
    (5, 2) iris centre and rim.  A contour whose width is already at least
    ``iris diameter / IRIS_TO_EYE_WIDTH`` is returned unchanged; a narrower one is scaled
    up uniformly to that width (the detector's failure on enlarged eyes is a contour that
    is too small as a whole, corners included).  ``strength`` in [0, 1] goes that fraction
    of the way (:func:`iris_rule_strength`).
    """
    width = float(np.linalg.norm(contour_xy[0] - contour_xy[8]))
    diameter = 2.0 * float(np.mean(np.linalg.norm(iris_xy[1:] - iris_xy[0], axis=1)))
    if not width > 0 or diameter <= IRIS_TO_EYE_WIDTH * width:
        return contour_xy.copy()
    centre = contour_xy.mean(axis=0)
    scale = 1.0 + float(np.clip(strength, 0.0, 1.0)) * (diameter / (IRIS_TO_EYE_WIDTH * width) - 1.0)
    return centre + scale * (contour_xy - centre)


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

    Seeds: the window's outer frame is certain background; the iris disc (shrunk to
    stay clear of the lids) and the landmark polygon shrunk by half about its
    centroid are certain eye; the rest of the polygon is probable eye and the rest
    of the window probable background -- so the colour models start from the
    detector's guess and GrabCut grows or shrinks the region to the colour boundary.

    GrabCut runs on CIELAB with a* and b* stretched 3x about neutral: the white of
    an eye differs from skin mostly in chroma (it is grey-pink, skin is
    orange-pink) while their lightness overlaps, and GrabCut's colour models on
    plain RGB are dominated by lightness.
    """
    h, w = window_rgb.shape[:2]
    mask = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
    cv2.fillPoly(mask, [np.round(contour_uv).astype(np.int32)], cv2.GC_PR_FGD)
    centroid = contour_uv.mean(axis=0)
    inner = centroid + 0.5 * (contour_uv - centroid)
    cv2.fillPoly(mask, [np.round(inner).astype(np.int32)], cv2.GC_FGD)
    centre = iris_uv[0]
    radius = float(np.mean(np.linalg.norm(iris_uv[1:] - centre, axis=1)))
    cv2.circle(mask, tuple(int(round(c)) for c in centre), max(2, int(0.5 * radius)), cv2.GC_FGD, -1)
    frame = max(2, int(0.04 * max(h, w)))
    mask[:frame, :] = mask[-frame:, :] = cv2.GC_BGD
    mask[:, :frame] = mask[:, -frame:] = cv2.GC_BGD
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    lab = cv2.cvtColor(window_rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
    lab[:, :, 1:] = 128.0 + CHROMA_GAIN * (lab[:, :, 1:] - 128.0)
    features = np.clip(lab, 0, 255).astype(np.uint8)
    cv2.setRNGSeed(0)   # GrabCut's k-means initialisation draws from OpenCV's RNG
    cv2.grabCut(features, mask, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
    eye = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
    # Eyelashes and the lid crease are as dark as the iris and cling to the region;
    # they belong to the lid, so very dark pixels outside the iris disc are dropped.
    # The iris itself is dark too: its radius is the larger of the detector's and the
    # dark run through the iris centre along the row (lashes lie above, not beside it).
    lightness = lab[:, :, 0]
    dark = lightness < DARK_FRACTION * float(np.median(lightness[mask == cv2.GC_BGD]))
    radius = max(radius, _dark_run_halfwidth(dark, centre))
    yy, xx = np.mgrid[0:h, 0:w]
    outside_iris = (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 > (1.2 * radius) ** 2
    eye &= ~(outside_iris & dark)
    return _component_at(eye, centre)


def _dark_run_halfwidth(dark: np.ndarray, centre_uv: np.ndarray) -> float:
    """Half the length of the horizontal run of ``dark`` pixels through ``centre_uv`` (0 if not dark)."""
    x, y = int(round(centre_uv[0])), int(round(centre_uv[1]))
    h, w = dark.shape
    if not (0 <= y < h and 0 <= x < w) or not dark[y, x]:
        return 0.0
    row = dark[y]
    left = x - (np.argmin(row[x::-1]) if not row[x::-1].all() else x + 1)
    right = x + (np.argmin(row[x:]) if not row[x:].all() else w - x)
    return (right - left) / 2.0


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


def _plausible(mask: np.ndarray, contour_uv: np.ndarray, min_ratio=0.4, max_ratio=8.0) -> bool:
    """Reject segmentations that leaked into the window border or lost the eye."""
    if not mask.any():
        return False
    border = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
    if border.any():
        return False
    polygon_area = abs(cv2.contourArea(contour_uv.astype(np.float32)))
    return min_ratio * polygon_area <= mask.sum() <= max_ratio * polygon_area


def snap_outward(contour_uv: np.ndarray, mask: np.ndarray, max_distance: float, step: float = 0.25) -> np.ndarray:
    """Push contour points outward to where the segmented eye ends, along rays from the centroid.

    contour_uv: (16, 2) window pixels; mask: (h, w) bool eye segmentation.  For each point
    the ray from the contour's centroid through it is followed until it leaves the mask;
    if that exit lies beyond the point (and within ``max_distance`` of it) the point moves
    there, otherwise it stays.  A ray that starts outside the mask leaves its point alone.
    """
    h, w = mask.shape
    centre = contour_uv.mean(axis=0)
    out = contour_uv.copy()
    for i, point in enumerate(contour_uv):
        radius = float(np.linalg.norm(point - centre))
        if radius < 1e-9:
            continue
        direction = (point - centre) / radius
        t = np.arange(0.0, radius + max_distance + step, step)
        samples = np.rint(centre + t[:, None] * direction).astype(int)
        valid = (samples[:, 0] >= 0) & (samples[:, 0] < w) & (samples[:, 1] >= 0) & (samples[:, 1] < h)
        inside = np.zeros(len(t), bool)
        inside[valid] = mask[samples[valid, 1], samples[valid, 0]]
        if not inside[0] or inside.all():
            continue
        exit_t = t[np.argmin(inside)] - step / 2       # boundary between last inside and first outside
        if radius < exit_t <= radius + max_distance:
            out[i] = centre + exit_t * direction
    return out


def snap_to_boundary(contour_uv: np.ndarray, boundary_uv: np.ndarray, max_distance: float) -> np.ndarray:
    """Pan et al.'s rule: move each point to its nearest boundary point, if within ``max_distance``."""
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
                         snap: str = "outward", max_shift: float = 0.5) -> np.ndarray:
    """Eye contours snapped to the segmented eye boundary (Pan et al. §3.2.1).

    image: (H, W, 3) uint8 RGB, the image the points were detected in.
    points: (478, 3) float64 MediaPipe landmarks in that image's pixels
        (e.g. ``FaceLandmarks.points``).
    parser: optional :class:`~pyfacerig.networks.FaceParser`; without it the eyes are
        segmented with :func:`segment_eye_classical`.
    snap: ``"outward"`` (:func:`snap_outward`, default) or ``"nearest"`` (Pan et al.'s
        nearest boundary point, :func:`snap_to_boundary`).
    max_shift: the farthest a point may move, in eye widths (outer to inner corner).

    Returns a new (478, 3) float64 array: the 32 eye-contour points
    (:data:`EYE_CONTOUR_IDS`) moved in x, y; everything else identical.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
        raise InvalidInputError(f"refine_eye_landmarks needs an (H, W, 3) uint8 RGB image, "
                                f"got {image.shape} {image.dtype}")
    if snap not in ("outward", "nearest"):
        raise InvalidInputError(f"snap must be 'outward' or 'nearest', got {snap!r}")
    points = np.asarray(points, dtype=np.float64)
    if points.shape != (478, 3):
        raise InvalidInputError(f"refine_eye_landmarks needs (478, 3) MediaPipe points, got {points.shape}")
    if not np.all(np.isfinite(points)):
        raise InvalidInputError("landmark points contain NaN or infinite values")
    refined = points.copy()
    strength = iris_rule_strength(points)
    # A trained parser's boundary is trusted on any eye (the paper's rule).  GrabCut's is not: on
    # ordinary eyes it is noisier than MediaPipe's contour, so without a parser the points may
    # move only as far as the irises say the eyes are enlarged -- not at all on human proportions.
    reach = max_shift if parser is not None else max_shift * strength
    if not reach > 0:
        return refined
    for (contour_ids, iris_ids), (window, mask) in zip(EYES, eye_masks(image, points, parser)):
        if mask is None:
            continue
        # Only where the segmentation confirms an eye: a detector contour too small for its
        # iris grows first, then every point snaps to the segmented boundary.
        contour_xy = iris_scaled_contour(points[list(contour_ids), :2], points[list(iris_ids), :2], strength)
        contour_uv = window.to_window(contour_xy)
        if snap == "outward":
            snapped = snap_outward(contour_uv, mask, reach * EYE_WIDTH_PX)
        else:
            snapped = snap_to_boundary(contour_uv, _boundary(mask), reach * EYE_WIDTH_PX)
        refined[list(contour_ids), :2] = window.to_image(snapped)
    return refined
