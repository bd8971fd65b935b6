"""Eyeglass frames in a portrait: found from the face's landmarks and painted out of the photo
before it is baked into the skin (docs/pipeline.md, "Texture").

A frame baked into the skin texture moves with the skin: a blink drags the top rim down over
the closed lid, where MediaPipe (and a player) reads it as the lid's edge, and the brows rise
through it.  No model for glasses ships in any package we may use, so the frame is found by its
geometry.  Around each eye it is a closed curve that contrasts with the skin on both of its
sides, all the way round, and the two curves are joined by a bridge over the nose.  The
strongest closed ridge around each eye is found by dynamic programming in polar coordinates
(the eye opening excluded); a face wears glasses when both curves hold their contrast over at
least 80 % of their length (a brow, a lid crease or a wrinkle follows only part of the way
round) and a ridge crosses the nose between them.  The frame's pixels are then painted out with
OpenCV's inpainting.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InvalidInputError
from .landmarks import LEFT_EYE_CONTOUR, RIGHT_EYE_CONTOUR

#: MediaPipe's eye contour and its (outer, inner) eye corners, per side of the face.
_EYES = {"right": (RIGHT_EYE_CONTOUR, 33, 133), "left": (LEFT_EYE_CONTOUR, 263, 362)}
#: The polar grid around an eye: angles, and radii in units of the eye's width along the eye line
#: (0.8 of that across it), centred 0.2 eye widths below the eye (a lens sits lower than the eye).
_ANGLES = 96
_RADII = np.linspace(0.45, 1.7, 56)
_CENTRE_DROP = 0.2
_ACROSS = 0.8
#: A ridge's contrast is measured this many radial samples to either side (about 2.5 % of the
#: eye's width per sample: 0.07 eye widths, a frame's rim).
_RIDGE_REACH = 3
#: How far (radial samples) the frame is looked for on either side of the ridge when it is painted out.
_FRAME_REACH = 12

#: A curve counts as a frame when its 20th-percentile contrast is this many times the median
#: contrast around the eye, on both eyes.  Measured (tests/test_glasses.py; the lower eye of
#: each face): Grace Hopper's glasses 2.49 (her mirror image 2.40), frames drawn onto the other
#: portraits 2.36-7.71; without glasses at most 1.42 over the five other portraits and their
#: mirror images, 1.31 over the drawn cartoons.
LOOP_CONTRAST = 1.9
#: ... and a ridge crosses the nose between the two curves with this contrast (Grace Hopper
#: 1.98 / 1.86, drawn frames 2.45-9.88; no glasses at most 0.59 on a photo, 1.09 on a cartoon).
BRIDGE_CONTRAST = 1.0


@dataclass(frozen=True)
class GlassesReading:
    """What :func:`find_glasses` saw.

    worn: both eyes' curves and the bridge pass their thresholds.
    loop_contrast: {"right", "left"} -> the curve's 20th-percentile contrast over the median
    contrast around the eye; bridge_contrast: the same along the bridge.
    mask: (H, W) bool, the frame's pixels (all False unless ``worn``).
    box: (x0, y0, x1, y1), the part of the image that was read (around the eyes).
    """
    worn: bool
    loop_contrast: dict
    bridge_contrast: float
    mask: np.ndarray
    box: tuple


def _sample(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``image`` (float32, H x W x C) at ``points`` (..., 2) pixel (x, y)."""
    import cv2
    flat = points.reshape(-1, 1, 2).astype(np.float32)
    values = cv2.remap(image, flat[..., 0], flat[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return values.reshape(points.shape[:-1] + image.shape[2:])


def _ridge(profiles: np.ndarray, reach: int) -> np.ndarray:
    """Per sample of each profile (rows): its colour distance to the mean of the samples
    ``reach`` before and after it (0 where those fall off the profile)."""
    contrast = np.zeros(profiles.shape[:2])
    middle = profiles[:, reach:-reach]
    sides = 0.5 * (profiles[:, :-2 * reach] + profiles[:, 2 * reach:])
    contrast[:, reach:-reach] = np.linalg.norm(middle - sides, axis=-1)
    return contrast


def _closed_path(score: np.ndarray) -> np.ndarray:
    """The radius index per angle (rows) of the path round the eye with the largest summed
    score that moves at most one radius step between neighbouring angles.

    Dynamic programming over the angles repeated three times; the middle copy is the answer:
    far from both ends, it no longer depends on where the path starts, so it closes on itself
    up to a step or two (not exactly: exact closure would take one solve per start radius)."""
    angles, radii = score.shape
    tiled = np.concatenate([score, score, score])
    total = tiled[0].copy()
    back = np.zeros(tiled.shape, dtype=np.int64)
    steps = np.array([0, -1, 1])
    columns = np.arange(radii)
    for k in range(1, len(tiled)):
        options = np.full((3, radii), -np.inf)
        options[0] = total
        options[1, 1:] = total[:-1]
        options[2, :-1] = total[1:]
        choice = np.argmax(options, axis=0)        # first of equals: deterministic
        back[k] = columns + steps[choice]
        total = options[choice, columns] + tiled[k]
    path = np.empty(len(tiled), dtype=np.int64)
    path[-1] = int(np.argmax(total))
    for k in range(len(tiled) - 1, 0, -1):
        path[k - 1] = back[k, path[k]]
    return path[angles:2 * angles]


def _frame_extent(profiles: np.ndarray, centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per profile (row), the first and last sample index of the frame around ``centre``: the
    run of samples whose colour stays far from the skin on both sides of it (the samples
    :data:`_FRAME_REACH` before and after)."""
    count, length = profiles.shape[:2]
    rows = np.arange(count)
    before = profiles[rows, np.clip(centre - _FRAME_REACH, 0, length - 1)]
    after = profiles[rows, np.clip(centre + _FRAME_REACH, 0, length - 1)]
    far = np.minimum(np.linalg.norm(profiles - before[:, None], axis=-1),
                     np.linalg.norm(profiles - after[:, None], axis=-1))
    peak = far[rows, centre]
    threshold = np.maximum(0.35 * peak, 12.0)[:, None]
    inside = far > threshold
    first, last = centre.copy(), centre.copy()
    for k in range(count):
        while first[k] > max(centre[k] - _FRAME_REACH, 0) and inside[k, first[k] - 1]:
            first[k] -= 1
        while last[k] < min(centre[k] + _FRAME_REACH, length - 1) and inside[k, last[k] + 1]:
            last[k] += 1
    return first, last


def _grow_frame(smooth: np.ndarray, core: np.ndarray, points: np.ndarray, eye_width: float) -> np.ndarray:
    """The frame's pixels: ``core`` (the rims' runs found along each curve) grown over the pixels
    near it that are far darker than the skin or a grey highlight (a thick rim's far edge, a
    cat-eye's wings, the bright line on a rim), then by a margin for the anti-aliased edge and
    the rim's shadow.  The eye openings are never frame."""
    import cv2
    keep = (~core).astype(np.float32)
    sigma = 0.3 * eye_width
    # The skin around each pixel, the frame left out (a normalised convolution).
    skin = cv2.GaussianBlur(smooth * keep[..., None], (0, 0), sigma) / np.maximum(
        cv2.GaussianBlur(keep, (0, 0), sigma), 1e-3)[..., None]
    # A rim is far darker than the skin (a dark acetate frame, its shadow) or a highlight far
    # brighter and greyer; a wrinkle, a lid crease or the lens's tint is neither.
    luma = smooth @ np.array([0.299, 0.587, 0.114], np.float32)
    skin_luma = skin @ np.array([0.299, 0.587, 0.114], np.float32)
    # Around a thick rim the skin estimate is darkened by the rim itself: the face's median
    # brightness (inside its oval) bounds it from below.
    from .texture import FACE_OVAL
    oval = np.zeros(core.shape, np.uint8)
    cv2.fillPoly(oval, [np.round(points[list(FACE_OVAL)]).astype(np.int32)], 1)
    if oval.any():
        skin_luma = np.maximum(skin_luma, float(np.median(luma[oval > 0])))
    grey = smooth.max(axis=2) - smooth.min(axis=2) < 0.25 * np.maximum(smooth.max(axis=2), 1.0)
    unlike = (luma < 0.5 * skin_luma) | ((luma > skin_luma + 0.5 * (255.0 - skin_luma)) & grey)
    # Near the rims only 0.15 eye widths: farther up are the brows, as dark as a rim.  Beyond the
    # brows' tails (0.5 eye widths out from an eye's outer corner) a cat-eye's wing reaches 0.3.
    def within(fraction):
        reach = int(round(2.0 * fraction * eye_width)) | 1
        return cv2.dilate(core.astype(np.uint8), np.ones((reach, reach), np.uint8)) > 0
    rows, columns = np.mgrid[:core.shape[0], :core.shape[1]]
    temple = np.zeros(core.shape, bool)
    for _, outer, inner in _EYES.values():
        outward = (points[outer] - points[inner]) / max(float(np.linalg.norm(points[outer] - points[inner])), 1e-9)
        temple |= ((columns - points[outer, 0]) * outward[0] + (rows - points[outer, 1]) * outward[1]) > 0.5 * eye_width
    near = within(0.15) | (within(0.3) & temple)
    openings = np.zeros(core.shape, np.uint8)
    for contour, _, _ in _EYES.values():
        cv2.fillPoly(openings, [np.round(points[list(contour)]).astype(np.int32)], 1)
    candidate = (unlike & near | core) & (openings == 0)
    count, labels = cv2.connectedComponents(candidate.astype(np.uint8), connectivity=8)
    touching = np.unique(labels[core & candidate])
    frame = np.isin(labels, touching[touching > 0])
    grow = max(3, int(round(0.06 * eye_width)) | 1)
    frame = cv2.dilate(frame.astype(np.uint8), np.ones((grow, grow), np.uint8)) > 0
    return frame & (openings == 0)


#: The eyes' surroundings are read with the eye-to-eye span scaled to this many pixels, so the
#: reading does not depend on the photo's resolution and costs the same on a 12-megapixel photo.
WORKING_SPAN = 160.0


def _working_crop(image: np.ndarray, points: np.ndarray, box) -> tuple[np.ndarray, np.ndarray, float]:
    """The box of ``image`` scaled to :data:`WORKING_SPAN`, the landmarks (x, y) in it, and the scale."""
    import cv2
    x0, y0, x1, y1 = box
    span = float(np.linalg.norm(points[263, :2] - points[33, :2]))
    scale = WORKING_SPAN / span
    size = (max(1, int(round((x1 - x0) * scale))), max(1, int(round((y1 - y0) * scale))))
    crop = np.ascontiguousarray(image[y0:y1, x0:x1])
    # The actual scale per axis after rounding the size (what maps crop pixels to working pixels).
    sx, sy = size[0] / (x1 - x0), size[1] / (y1 - y0)
    work = cv2.resize(crop, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    moved = (points[:, :2] - [x0, y0] + 0.5) * [sx, sy] - 0.5
    return work, moved, scale


def find_glasses(image: np.ndarray, landmarks: np.ndarray) -> GlassesReading:
    """Whether the face in ``image`` wears glasses, and where their frame is.

    image: (H, W, 3) uint8 RGB; landmarks: (478, 2+) MediaPipe's points in its pixels.
    """
    import cv2
    image = np.asarray(image)
    points = np.asarray(landmarks, dtype=np.float64)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InvalidInputError(f"find_glasses needs an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    if points.ndim != 2 or len(points) < 478 or points.shape[1] < 2 or not np.isfinite(points[:, :2]).all():
        raise InvalidInputError(f"find_glasses needs MediaPipe's 478 finite landmarks, got {points.shape}")
    if not np.linalg.norm(points[263, :2] - points[33, :2]) > 0:
        raise InvalidInputError("find_glasses: the landmarks' eye corners coincide")
    # Only the eyes' surroundings are read: a box one eye-to-eye span beyond the eye contours.
    contours = [i for contour, _, _ in _EYES.values() for i in contour]
    span = float(np.linalg.norm(points[263, :2] - points[33, :2]))
    low = np.floor(points[contours, :2].min(axis=0) - span).astype(int)
    high = np.ceil(points[contours, :2].max(axis=0) + span).astype(int)
    x0, y0 = np.clip(low, 0, [image.shape[1], image.shape[0]])
    x1, y1 = np.clip(high, 0, [image.shape[1], image.shape[0]])
    full = np.zeros(image.shape[:2], bool)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return GlassesReading(worn=False, loop_contrast={side: 0.0 for side in _EYES}, bridge_contrast=0.0,
                              mask=full, box=(int(x0), int(y0), int(x1), int(y1)))
    image, points, scale = _working_crop(image, points, (x0, y0, x1, y1))
    height, width = image.shape[:2]
    working_span = float(np.linalg.norm(points[263] - points[33]))
    widest_eye = max(float(np.linalg.norm(points[outer] - points[inner])) for _, outer, inner in _EYES.values())
    if not (working_span < 2.0 * WORKING_SPAN and widest_eye < working_span):
        # The image holds a sliver of a face many times its size, or an eye wider than the
        # span across both: landmarks no detector gives.
        return GlassesReading(worn=False, loop_contrast={side: 0.0 for side in _EYES}, bridge_contrast=0.0,
                              mask=full, box=(int(x0), int(y0), int(x1), int(y1)))
    smooth = cv2.GaussianBlur(image, (0, 0), 1.0).astype(np.float32)
    eye_line = points[263] - points[33]
    along = eye_line / np.linalg.norm(eye_line)
    down = np.array([-along[1], along[0]])          # image y points down
    angles = np.linspace(0.0, 2.0 * np.pi, _ANGLES, endpoint=False)
    loops, contrast_of, base_of, width_of = {}, {}, {}, {}
    for side, (contour, outer, inner) in _EYES.items():
        eye_width = float(np.linalg.norm(points[outer] - points[inner]))
        centre = points[list(contour)].mean(axis=0) + _CENTRE_DROP * eye_width * down
        offsets = (np.cos(angles)[:, None, None] * _RADII[None, :, None] * eye_width * along
                   + np.sin(angles)[:, None, None] * _RADII[None, :, None] * _ACROSS * eye_width * down)
        grid = centre + offsets                                        # (angles, radii, 2)
        profiles = _sample(smooth, grid)
        contrast = _ridge(profiles, _RIDGE_REACH)
        # The eye opening (and a margin for its lashes) is no frame.
        opening = np.zeros((height, width), np.float32)
        cv2.fillPoly(opening, [np.round(points[list(contour)]).astype(np.int32)], 1.0)
        margin = int(0.25 * eye_width) | 1
        opening = cv2.dilate(opening, np.ones((margin, margin), np.uint8))
        contrast[_sample(opening[..., None], grid)[..., 0] > 0] = 0.0
        path = _closed_path(contrast)
        base = float(np.median(contrast[contrast > 0])) if (contrast > 0).any() else 0.0
        on_path = contrast[np.arange(_ANGLES), path]
        contrast_of[side] = float(np.percentile(on_path, 20) / base) if base > 0 else 0.0
        loops[side] = (grid, profiles, path)
        base_of[side], width_of[side] = base, eye_width
    # The bridge: a ridge across the nose between the curves' points nearest each other, at the
    # height (within 0.3 eye widths of the line joining them) where it is strongest.
    eye_width = 0.5 * (width_of["right"] + width_of["left"])
    base = 0.5 * (base_of["right"] + base_of["left"])
    right_curve = loops["right"][0][np.arange(_ANGLES), loops["right"][2]]
    left_curve = loops["left"][0][np.arange(_ANGLES), loops["left"][2]]
    start = right_curve[int(np.argmax(right_curve @ along))]
    end = left_curve[int(np.argmin(left_curve @ along))]
    steps = np.linspace(0.0, 1.0, 24)
    across = np.arange(-_FRAME_REACH, _FRAME_REACH + 1) * 0.025 * _ACROSS * eye_width
    bridge_contrast, bridge = 0.0, None
    for shift in np.linspace(-0.3, 0.3, 13) * eye_width:
        line = start + steps[:, None] * (end - start) + shift * down
        profiles = _sample(smooth, line[:, None] + across[None, :, None] * down)
        middle = _FRAME_REACH
        ridge = _ridge(profiles, _RIDGE_REACH)[:, middle]
        value = float(np.percentile(ridge, 20) / base) if base > 0 else 0.0
        if value > bridge_contrast:
            bridge_contrast, bridge = value, (line, profiles)
    worn = (min(contrast_of.values()) >= LOOP_CONTRAST and bridge_contrast >= BRIDGE_CONTRAST)
    mask = np.zeros((height, width), np.uint8)
    if worn:
        for grid, profiles, path in loops.values():
            first, last = _frame_extent(profiles, path)
            rows = np.arange(_ANGLES)
            inner_edge, outer_edge = grid[rows, first], grid[rows, last]
            for k in range(_ANGLES):
                n = (k + 1) % _ANGLES
                quad = np.array([inner_edge[k], inner_edge[n], outer_edge[n], outer_edge[k]])
                cv2.fillPoly(mask, [np.round(quad).astype(np.int32)], 1)
        line, profiles = bridge
        first, last = _frame_extent(profiles, np.full(len(line), _FRAME_REACH))
        top = line + across[first][:, None] * down
        bottom = line + across[last][:, None] * down
        cv2.fillPoly(mask, [np.round(np.concatenate([top, bottom[::-1]])).astype(np.int32)], 1)
        mask = _grow_frame(smooth, mask.astype(bool), points, eye_width)
    if worn:
        full[y0:y1, x0:x1] = cv2.resize(np.asarray(mask, np.uint8), (int(x1 - x0), int(y1 - y0)),
                                        interpolation=cv2.INTER_NEAREST) > 0
    return GlassesReading(worn=bool(worn), loop_contrast=contrast_of, bridge_contrast=bridge_contrast,
                          mask=full, box=(int(x0), int(y0), int(x1), int(y1)))


def frame_from_labels(labels: np.ndarray, shape: tuple) -> np.ndarray:
    """The eyeglasses of a face parser's (H, W) label map (class "eyeglasses" of
    :data:`pyfacerig.networks.FACE_PARSING_CLASSES`), as (H, W) bool."""
    from .networks import FACE_PARSING_CLASSES
    labels = np.asarray(labels)
    if labels.shape != tuple(shape):
        raise InvalidInputError(f"face parser labels {labels.shape} do not match the image {tuple(shape)}")
    return labels == FACE_PARSING_CLASSES.index("eyeglasses")


def remove_glasses(image: np.ndarray, landmarks: np.ndarray,
                   frame: np.ndarray | None = None) -> tuple[np.ndarray, GlassesReading]:
    """``image`` with the frame of any glasses painted out (OpenCV's Telea inpainting), and the
    reading it was found by.  Without glasses, ``image`` itself comes back unchanged.

    frame: optional (H, W) bool, the glasses' pixels as a face parser labels them
    (:func:`frame_from_labels`); a learned segmentation knows glasses better than the frame's
    geometry does, so it replaces :func:`find_glasses`'s (the reading's contrasts are still
    measured and reported)."""
    import cv2
    reading = find_glasses(image, landmarks)
    points = np.asarray(landmarks, dtype=np.float64)[:, :2]
    eye_width = float(np.linalg.norm(points[33] - points[133]))
    if frame is not None:
        frame = np.asarray(frame, dtype=bool)
        if frame.shape != np.asarray(image).shape[:2]:
            raise InvalidInputError(f"glasses mask {frame.shape} does not match the image {np.asarray(image).shape[:2]}")
        grow = max(3, int(round(0.06 * eye_width)) | 1)
        mask = cv2.dilate(frame.astype(np.uint8), np.ones((grow, grow), np.uint8)) > 0
        height, width = mask.shape
        reading = GlassesReading(worn=bool(frame.any()), loop_contrast=reading.loop_contrast,
                                 bridge_contrast=reading.bridge_contrast, mask=mask, box=(0, 0, width, height))
    if not reading.worn:
        return np.asarray(image), reading
    return _paint_out(np.asarray(image), reading.mask, points), reading


def _paint_out(image: np.ndarray, mask: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``image`` with ``mask``'s pixels inpainted (OpenCV's Telea method, radius 0.1 eye widths).

    Only the mask's bounding box (and half an eye-to-eye span around it) is worked on, at most
    at :data:`WORKING_SPAN` pixels per span: the fill is smooth skin whatever the resolution,
    and Telea's cost grows with the mask's area times the radius squared (22 s for Grace
    Hopper's frame at 6x her photo's size, painted at full resolution)."""
    import cv2
    span = float(np.linalg.norm(points[263] - points[33]))
    rows, columns = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    margin = int(np.ceil(0.5 * span))
    height, width = mask.shape
    y0, y1 = max(rows[0] - margin, 0), min(rows[-1] + 1 + margin, height)
    x0, x1 = max(columns[0] - margin, 0), min(columns[-1] + 1 + margin, width)
    region = np.ascontiguousarray(image[y0:y1, x0:x1])
    inside = mask[y0:y1, x0:x1]
    scale = min(1.0, WORKING_SPAN / max(span, 1e-9))
    size = (max(1, int(round((x1 - x0) * scale))), max(1, int(round((y1 - y0) * scale))))
    if size != (x1 - x0, y1 - y0):
        work = cv2.resize(region, size, interpolation=cv2.INTER_AREA)
        work_mask = cv2.resize(inside.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0
    else:
        work, work_mask = region, inside
    eye_width = float(np.linalg.norm(points[33] - points[133])) * size[0] / (x1 - x0)
    painted_work = cv2.inpaint(work, work_mask.astype(np.uint8), max(3.0, 0.1 * eye_width), cv2.INPAINT_TELEA)
    if size != (x1 - x0, y1 - y0):
        painted_work = cv2.resize(painted_work, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    painted = np.array(image, copy=True)
    painted[y0:y1, x0:x1][inside] = painted_work[inside]
    return painted
