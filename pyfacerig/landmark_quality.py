"""Landmark quality gate: do the detected landmarks fit the image, before anything is fitted?

MediaPipe's face mesh always returns a face-shaped set of points, even on a drawing it does not
understand: on a flat-colour cartoon with big anime eyes it places small human eyes inside the
upper half of the drawn ones, and the build goes on to paint the drawn eyes onto the skin
(issue #14).  This module judges the landmarks against the image, per region, and
:func:`check_landmark_quality` refuses them with :class:`~pyfacerig.errors.LandmarkQualityError`
below a threshold.  Two kinds of evidence, chosen because they separated real portraits from
drawn cartoons where others did not (docs/pipeline.md, "Landmark quality gate"):

* **drawn features** (eyes, mouth) -- on a flat-colour drawing every feature is a set of pixels
  whose colour differs from the skin's.  The drawn feature that the landmarks' eye (lip)
  polygon touches must be centred on that polygon.  Measured on a copy of the face scaled to a
  fixed inter-ocular distance.  Only trusted where the face IS flat colour (the fraction of
  flat pixels in the face oval, :data:`FLAT_RAMP`): on a photo, skin is not one colour and the
  "feature" would swallow brows and shadows;
* **mirror agreement** (every region) -- the landmarks of the mirror image, flipped back and
  relabelled with MediaPipe's left/right correspondence
  (:data:`pyfacerig._landmark_mirror.LANDMARK_MIRROR`), must land where the first pass's did.
  On the real portraits the passes agree to 0.5-4 % of the inter-ocular distance per region;
  a detector that guesses may guess differently for the mirror image, or find no face in it.
  This costs one more detector call.

Each region's score is in [0, 1]; a measure exactly at its tolerance (:data:`TOLERANCES`)
scores 0.5, the threshold (:data:`THRESHOLDS`), and the worst measure sets the region's score.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Optional

import cv2
import numpy as np

from ._landmark_mirror import LANDMARK_MIRROR
from .errors import InvalidImageError, InvalidInputError, LandmarkQualityError
from .landmarks import (LEFT_EYE_CONTOUR, LEFT_EYE_OUTER, LEFT_IRIS, NUM_POINTS, RIGHT_EYE_CONTOUR,
                        RIGHT_EYE_OUTER, RIGHT_IRIS, detect_faces, mediapipe_to_ibug68)

__all__ = ["LandmarkQuality", "assess_landmark_quality", "check_landmark_quality", "REGIONS", "THRESHOLDS",
           "TOLERANCES"]

MIRROR = np.asarray(LANDMARK_MIRROR, dtype=np.int64)

#: Outer lip contour (closed), and the inner lip line (upper then lower), MediaPipe ids.
OUTER_LIPS = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146)
INNER_LIPS = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95)
#: Brows: the subject's right and left brow, as MediaPipe marks them (a band, upper and lower line).
RIGHT_BROW = (46, 53, 52, 65, 55, 70, 63, 105, 66, 107)
LEFT_BROW = (276, 283, 282, 295, 285, 300, 293, 334, 296, 336)
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152,
             148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)

#: Landmark ids of each scored region.
REGIONS = {
    "eyes": RIGHT_EYE_CONTOUR + LEFT_EYE_CONTOUR + RIGHT_IRIS + LEFT_IRIS,
    "mouth": OUTER_LIPS + INNER_LIPS,
    "brows": RIGHT_BROW + LEFT_BROW,
    "contour": FACE_OVAL,
}

#: The scale (pixels between the outer eye corners) at which the image evidence is measured.
CANONICAL_IOD = 96.0

#: Gradient (grey levels per pixel, /8 Sobel) below which a pixel counts as flat colour.
FLAT_GRADIENT = 0.004
#: RGB distance (0..sqrt 3) from the (shaded) skin colour above which a pixel counts as drawn.
DRAWN_COLOUR_DISTANCE = 0.08
#: Range of brightness factors of the skin colour that still count as skin (shadows, highlights).
SKIN_SHADING = (0.55, 1.3)

#: Faces whose flat-colour fraction is below the first value are judged as photos (the
#: drawn-feature evidence is ignored), above the second as drawings; linear in between.
#: Measured: real and LFW photos 0.01-0.28, stylised photos 0.33-0.70, drawn cartoons 0.76-0.93.
FLAT_RAMP = (0.70, 0.80)
#: Per region and measure, the value that scores exactly the threshold.
#: drawn_offset (fraction of the drawn eyes' distance): the issue's "eyes on the drawn eyes"
#: read as 5 %; the mouth only refused when clearly elsewhere (10 %).  mirror_disagreement
#: (fraction of the landmarks' outer-corner IOD): about twice the worst seen on a real photo
#: (eyes 0.038, mouth 0.116, brows 0.075, contour 0.107 over the six portraits, their eye
#: warps and 95 LFW faces).  Measurements: docs/pipeline.md, "Landmark quality gate".
TOLERANCES = {
    "eyes": {"drawn_offset": 0.05, "mirror_disagreement": 0.08},
    "mouth": {"drawn_offset": 0.10, "mirror_disagreement": 0.20},
    "brows": {"mirror_disagreement": 0.15},
    "contour": {"mirror_disagreement": 0.20},
}
#: A region fails below this score (a measure beyond its tolerance).
THRESHOLDS = {"eyes": 0.5, "mouth": 0.5, "brows": 0.5, "contour": 0.5}


@dataclass(frozen=True)
class LandmarkQuality:
    """How well landmarks fit an image.

    scores: region ("eyes", "mouth", "brows", "contour") -> score in [0, 1].
    evidence: region -> {measure name: value}, the raw measures behind each score.
    failing: regions whose score is below its threshold, worst first.
    seconds: wall time of the assessment (including the mirror pass).
    """

    scores: dict
    evidence: dict
    thresholds: dict = field(default_factory=lambda: dict(THRESHOLDS))
    seconds: float = 0.0

    @property
    def failing(self) -> tuple:
        bad = [r for r, s in self.scores.items() if s < self.thresholds.get(r, 0.0)]
        return tuple(sorted(bad, key=lambda r: self.scores[r] - self.thresholds[r]))

    @property
    def passed(self) -> bool:
        return not self.failing

    def as_dict(self) -> dict:
        """Plain JSON-ready record (the sidecar's "landmark_quality")."""
        return {
            "passed": self.passed,
            "scores": {r: round(float(s), 4) for r, s in self.scores.items()},
            "thresholds": {r: float(t) for r, t in self.thresholds.items()},
            "failing": list(self.failing),
            # NaN (no mirror face) becomes null: JSON has no NaN.
            "evidence": {r: {k: (round(float(v), 4) if np.isfinite(v) else None) for k, v in e.items()}
                         for r, e in self.evidence.items()},
        }


def assess_landmark_quality(image: np.ndarray, points: np.ndarray, *, detector=None,
                            mirror_points: Optional[np.ndarray] = None) -> LandmarkQuality:
    """Score how well ``points`` fit ``image``, per region.

    image: (H, W, 3) uint8 RGB, the image the points were detected on.
    points: (478, 2|3) MediaPipe-ordered landmarks in its pixels.
    detector: the landmark detector used (for the mirror pass); default MediaPipe.
    mirror_points: (478, 2|3) landmarks of the mirror image already flipped back into
        ``image``'s pixels WITHOUT relabelling, or None to detect them here (the default).
    """
    start = time.perf_counter()
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[0] != NUM_POINTS or points.shape[1] not in (2, 3):
        raise InvalidInputError(f"expected MediaPipe landmarks of shape ({NUM_POINTS}, 2|3), got {points.shape}")
    points = points[:, :2]
    if not np.all(np.isfinite(points)):
        raise InvalidInputError("landmarks contain NaN or infinite values")
    if not np.linalg.norm(points[LEFT_EYE_OUTER] - points[RIGHT_EYE_OUTER]) >= 1.0:
        raise InvalidInputError("the landmarks' outer eye corners (33, 263) are less than a pixel apart")
    image = _check_rgb8(image)
    if mirror_points is None:
        mirror_points = _mirror_pass(image, points, detector)
    evidence = _image_evidence(image, points)
    agreement = _mirror_agreement(points, mirror_points)
    for region in REGIONS:
        evidence[region]["mirror_disagreement"] = agreement[region]
    scores = {region: _score(region, evidence[region]) for region in REGIONS}
    return LandmarkQuality(scores=scores, evidence=evidence, seconds=time.perf_counter() - start)


def check_landmark_quality(quality: LandmarkQuality) -> None:
    """Raise :class:`LandmarkQualityError` naming the worst failing region, if any fails."""
    if quality.passed:
        return
    details = ", ".join(f"{r} {quality.scores[r]:.2f} < {quality.thresholds[r]:.2f}" for r in quality.failing)
    worst = quality.failing[0]
    raise LandmarkQualityError(
        f"the detected landmarks do not fit the image ({details}): the {worst} landmarks are not where "
        f"the image shows the {worst} (a drawing or an unusual face the photo landmark detector misreads); "
        "pass force=True (CLI --force) to build anyway", region=worst, score=quality.scores[worst])


def _check_rgb8(image) -> np.ndarray:
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3
            and image.shape[2] == 3 and image.size):
        desc = f"{image.shape} {image.dtype}" if isinstance(image, np.ndarray) else type(image).__name__
        raise InvalidImageError(f"the landmark quality gate needs an (H, W, 3) uint8 RGB image, got {desc}")
    return np.ascontiguousarray(image)


# ----------------------------------------------------------------------------- mirror pass
def _mirror_pass(image: np.ndarray, points: np.ndarray, detector) -> Optional[np.ndarray]:
    """Landmarks of the mirrored image, flipped back into ``image``'s pixels (labels unchanged),
    of the face that overlaps ``points`` most; None if the mirror shows no such face."""
    width = image.shape[1]
    faces = detect_faces(np.ascontiguousarray(image[:, ::-1]), detector=detector)
    best, best_overlap = None, 0.0
    lo, hi = points.min(0), points.max(0)
    for face in faces:
        flipped = face.points[:, :2] * [-1.0, 1.0] + [width, 0.0]
        f_lo, f_hi = flipped.min(0), flipped.max(0)
        inter = np.prod(np.clip(np.minimum(hi, f_hi) - np.maximum(lo, f_lo), 0, None))
        union = np.prod(hi - lo) + np.prod(f_hi - f_lo) - inter
        overlap = inter / union if union > 0 else 0.0
        if overlap > best_overlap:
            best, best_overlap = flipped, overlap
    return best


def _mirror_agreement(points: np.ndarray, mirror_points: Optional[np.ndarray]) -> dict:
    """Region -> mean distance between the two passes, as a fraction of the inter-ocular distance.

    The mirror pass's landmark ``MIRROR[i]`` sits, flipped back, where landmark ``i`` is.
    NaN (no evidence) when the mirror pass found no face: that happens on real photos too
    (2 of the 97 upscaled LFW faces), so it is not held against the landmarks."""
    if mirror_points is None:
        return {region: float("nan") for region in REGIONS}
    iod = max(np.linalg.norm(points[LEFT_EYE_OUTER] - points[RIGHT_EYE_OUTER]), 1e-6)
    relabelled = np.asarray(mirror_points, dtype=np.float64)[MIRROR, :2]
    distance = np.linalg.norm(relabelled - points, axis=1) / iod
    return {region: float(distance[list(ids)].mean()) for region, ids in REGIONS.items()}


# ----------------------------------------------------------------------------- image evidence
def _canonical(image: np.ndarray, points: np.ndarray):
    """The face's crop scaled to CANONICAL_IOD, its gradient, and the points in its pixels.

    Returns (RGB (h, w, 3) float32 in [0, 1], grey gradient magnitude (h, w) float32, points (478, 2))."""
    iod = max(np.linalg.norm(points[LEFT_EYE_OUTER] - points[RIGHT_EYE_OUTER]), 1e-6)
    scale = CANONICAL_IOD / iod
    lo = points[:468].min(0) - 0.25 * iod
    hi = points[:468].max(0) + 0.25 * iod
    size = np.ceil((hi - lo) * scale).astype(int) + 1
    affine = np.array([[scale, 0.0, -lo[0] * scale], [0.0, scale, -lo[1] * scale]])
    colour = cv2.warpAffine(image, affine, (int(size[0]), int(size[1])),
                            flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE).astype(np.float32) / 255.0
    grey = cv2.cvtColor(colour, cv2.COLOR_RGB2GRAY)
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    return colour, np.hypot(gx, gy) / 8.0, (points - lo) * scale


def _polygon_mask(shape, polygon: np.ndarray) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(polygon * 4).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=2)
    return mask.astype(bool)


def _image_evidence(image: np.ndarray, points: np.ndarray) -> dict:
    """Region -> {"flat_fraction", "drawn_offset"} for the eyes and the mouth (:func:`_drawn_centre`)."""
    colour, gradient, p = _canonical(image, points)
    face = _polygon_mask(gradient.shape, p[list(FACE_OVAL)])
    flat = float(np.mean(gradient[face] < FLAT_GRADIENT)) if face.any() else 0.0
    if _flat_weight(flat) == 0.0:   # a photo: the drawn-feature evidence would not be used
        return {"eyes": {"flat_fraction": flat, "drawn_offset": float("nan")},
                "mouth": {"flat_fraction": flat, "drawn_offset": float("nan")}, "brows": {}, "contour": {}}
    skin = np.median(colour[face], axis=0) if face.any() else np.median(colour.reshape(-1, 3), axis=0)
    drawn = ~_skin_like(colour, skin)
    # Each feature's centre as the fitted avatar will have it: the mean of its iBUG-68 points;
    # offsets are fractions of the distance between the drawn eyes (between the landmarks' eye
    # centres when an eye is not found), the measure a user sees on the avatar.
    ibug = mediapipe_to_ibug68(p)
    placed = [ibug[36:42].mean(axis=0), ibug[42:48].mean(axis=0), ibug[48:60].mean(axis=0)]
    found = [_drawn_centre(drawn, p[list(ids)]) for ids in (RIGHT_EYE_CONTOUR, LEFT_EYE_CONTOUR, OUTER_LIPS)]
    scale = np.linalg.norm(placed[1] - placed[0])
    if found[0] is not None and found[1] is not None:
        scale = max(np.linalg.norm(found[1] - found[0]), 0.5 * scale)
    offsets = [1.0 if f is None else float(np.linalg.norm(f - c) / max(scale, 1e-6)) for f, c in zip(found, placed)]
    return {"eyes": {"flat_fraction": flat, "drawn_offset": max(offsets[:2])},
            "mouth": {"flat_fraction": flat, "drawn_offset": offsets[2]},
            "brows": {}, "contour": {}}


def _skin_like(colour: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """(h, w) bool: pixels whose colour is the skin colour lit more or less brightly.

    Shading (cel bands, soft falloff) scales the skin colour; drawn features do not keep its
    hue: ink is near black, eye whites and irises have other hues.  A pixel is skin-like when
    it is ``k * skin`` for k in SKIN_SHADING, within DRAWN_COLOUR_DISTANCE."""
    norm = float(skin @ skin)
    if not norm > 0:
        return np.zeros(colour.shape[:2], bool)
    k = (colour @ skin) / norm
    residual = np.linalg.norm(colour - k[..., None] * skin, axis=2)
    return (residual < DRAWN_COLOUR_DISTANCE) & (k > SKIN_SHADING[0]) & (k < SKIN_SHADING[1])


def _drawn_centre(drawn: np.ndarray, polygon: np.ndarray) -> Optional[np.ndarray]:
    """Centre of the drawn feature that a landmark polygon lands on, in a flat drawing.

    drawn: (h, w) bool, pixels that are not skin.  The feature is every connected part of
    ``drawn`` that the polygon touches, cut to a window around the polygon; its centre is the
    centre of its bounding box (a highlight or pupil inside does not move it).  None when the
    polygon touches nothing drawn."""
    lo, hi = polygon.min(0), polygon.max(0)
    reach = 0.3 * CANONICAL_IOD
    x0, y0 = np.maximum(np.floor(lo - reach).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(hi + reach).astype(int), np.array(drawn.shape[::-1]) - 1)
    window = drawn[y0:y1 + 1, x0:x1 + 1].astype(np.uint8)
    inside = _polygon_mask(window.shape, polygon - [x0, y0])
    _, labels = cv2.connectedComponents(window, connectivity=8)
    touched = np.unique(labels[inside & (window > 0)])
    touched = touched[touched > 0]
    if not len(touched):
        return None
    ys, xs = np.nonzero(np.isin(labels, touched))
    return np.array([(xs.min() + xs.max() + 1) / 2 + x0, (ys.min() + ys.max() + 1) / 2 + y0])


def _flat_weight(flat_fraction: float) -> float:
    """How far the drawn-feature evidence is trusted: 0 on photos, 1 on flat-colour drawings."""
    lo, hi = FLAT_RAMP
    return float(np.clip((flat_fraction - lo) / (hi - lo), 0.0, 1.0))


def _score(region: str, evidence: dict) -> float:
    """Region score in [0, 1]: each measure m maps to 1 - m / (2 tolerance), the worst counts,
    so a measure exactly at its tolerance scores 0.5 (the threshold)."""
    measures = {}
    if np.isfinite(evidence["mirror_disagreement"]):
        measures["mirror_disagreement"] = evidence["mirror_disagreement"]
    if np.isfinite(evidence.get("drawn_offset", np.nan)):
        measures["drawn_offset"] = evidence["drawn_offset"] * _flat_weight(evidence["flat_fraction"])
    tolerance = TOLERANCES[region]
    return float(min((np.clip(1.0 - value / (2.0 * tolerance[name]), 0.0, 1.0) for name, value in measures.items()),
                     default=1.0))
