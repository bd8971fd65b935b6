"""Face landmarks: MediaPipe's 478-point face mesh (with iris) in full-resolution pixels.

``detect_landmarks`` finds every face, picks one (or refuses, naming why), and
checks it is usable for reconstruction.  The default detector is MediaPipe,
from the models inside the ``mediapipe==0.10.21`` wheel:

1. MediaPipe face detection, FULL-RANGE model (``model_selection=1``), on a copy
   of the image whose longer side is at most ``detection_max_side`` pixels.  The
   full-range model is used because the face mesh's own short-range detector
   misses faces smaller than about a fifth of the image (e.g. two portraits side
   by side).
2. ONE face found: the face mesh (static_image_mode, refine_landmarks: 478 points)
   runs on the whole image, downscaled no further than keeps the face box at least
   ``whole_image_face_px`` pixels wide (the face mesh looks at the face through its
   own ~256-px region of interest, so nothing is lost), and at most
   ``whole_image_max_side`` pixels long.  Measured against dlib's 68 points, this is
   as good as or better than a tight crop: on Grace Hopper 2.66 % vs 3.70 % of the
   inter-ocular distance, on the astronaut 2.29 % vs 2.21 %, and over both
   portraits' mirrored, rotated, rescaled and recompressed copies 3.01 % vs 3.16 %
   (docs/networks.md).
3. SEVERAL faces (or a face too small for step 2): for every face box, a square crop
   of the FULL-RESOLUTION image (twice the box, padded with black where it leaves the
   image) resized to ``crop_size`` pixels goes through the face mesh, so each face is
   meshed on its own.
4. Points are mapped back to full-image pixels.

If the face detector finds nothing, the face mesh is run once on the whole
downscaled image as a fallback (extreme close-ups can defeat the box detector).

Coordinates of :class:`FaceLandmarks.points`: x to the right, y down, in pixels
of the full image as given; z is MediaPipe's relative depth scaled like x (same
pixel units), smaller = closer to the camera, zero near the face's centre plane.

The module also defines, once, the 68 iBUG points on MediaPipe's topology (and so on the
template, whose skin starts with MediaPipe's 468 landmarks): :func:`mediapipe_to_ibug68`.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

import cv2
import numpy as np

from .errors import (FaceCutOffError, FaceTooSmallError, InvalidInputError, ModelError,
                     MultipleFacesError, NoFaceError)
from .image_io import detection_image, load_image

NUM_POINTS = 478

#: Subject's right eye (on a frontal photo: the IMAGE-LEFT eye), closed contour in
#: order: outer corner, upper lid to the inner corner, lower lid back.
RIGHT_EYE_CONTOUR = (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7)
#: Subject's left eye (IMAGE-RIGHT on a frontal photo), same ordering as RIGHT_EYE_CONTOUR.
LEFT_EYE_CONTOUR = (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249)
#: Iris landmarks added by refine_landmarks: centre first, then four rim points.
RIGHT_IRIS = (468, 469, 470, 471, 472)
LEFT_IRIS = (473, 474, 475, 476, 477)
#: Outer eye corners, used for the inter-ocular distance.
RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 33, 263

# ----------------------------------------------------------------------------- iBUG-68
# The 68 iBUG points (dlib's order, 0-based) defined ONCE on MediaPipe's face-mesh topology.
# The template's skin keeps MediaPipe's 468 landmarks as its first vertices, so the same
# definition reads the 68 points off detected landmarks and off a projected, fitted model
# (``mediapipe_to_ibug68``); the template stores the nearest vertex of each for reference.
#
# The definition follows the iBUG/300-W annotation protocol rather than a fit to any
# detector's output:
# * anatomical points are MediaPipe vertices with the same meaning: eye corners, nose
#   bridge top (nasion) and tip, nostril base, mouth corners, lip centres, inner-lip points;
# * iBUG's semi-landmarks -- points placed at equal steps along a curve between two
#   anatomical points -- are placed the same way along MediaPipe's curve, in image space.
#   The jaw has three anatomical points, the tops of the two ear attachments (127, 356) and
#   the chin (menton, 152, iBUG point 8); points 0..8 lie at equal arc-length steps from 127
#   to the chin and points 8..16 from the chin to 356.  The upper/lower eyelid points sit at
#   1/3 and 2/3 of each lid.  Resampling the PROJECTED outline makes the jaw points slide
#   along the visible outline as the head turns, the way iBUG annotators place them, while
#   the chin stays on the chin;
# * iBUG's eyebrow runs along the brow's upper edge from its tail to its head; MediaPipe
#   marks the brow as a band (upper and lower line), so the tail and head are the midpoints
#   of the band's ends and the three points between lie on its upper line.
# Checked against dlib's 68 points: on the two bundled portraits the jaw points lie at equal
# arc-length steps of the outline (mean positions 0.013, 0.073, ..., 0.991 of the way), and of
# the brow variants tried (upper line; band midline; upper line resampled at equal steps) the
# one above agreed best.  Anchoring the chin changes nothing on those frontal faces (contour
# error 2.43 -> 2.43 and 3.09 -> 3.13 % of the IOD) but on the held-out face_recognition
# portraits, whose heads are turned, resampling the whole outline in one piece slid the chin
# by up to 17 % of the IOD (contour error 12.1 -> 6.6 and 10.6 -> 4.5 %; docs/pipeline.md).
# Nothing else in this definition was chosen against a detector.

#: Face outline from the subject's right ear attachment (image left) over the chin to the left.
IBUG68_JAW_OUTLINE = (127, 234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152,
                      377, 400, 378, 379, 365, 397, 288, 361, 323, 454, 356)
#: The chin (menton): iBUG point 8, an anatomical point that splits the jaw into two curves.
IBUG68_CHIN = 152
_CHIN_AT = IBUG68_JAW_OUTLINE.index(IBUG68_CHIN)
#: (iBUG points, MediaPipe curve): the iBUG points sit at equal arc-length steps along the
#: curve, the first and last on its end vertices.  Jaw line (two halves) and eyelids.
IBUG68_CURVES = (
    (tuple(range(0, 9)), IBUG68_JAW_OUTLINE[:_CHIN_AT + 1]),           # right ear attachment -> chin
    (tuple(range(8, 17)), IBUG68_JAW_OUTLINE[_CHIN_AT:]),              # chin -> left ear attachment
    ((36, 37, 38, 39), (33, 246, 161, 160, 159, 158, 157, 173, 133)),     # right eye, upper lid
    ((39, 40, 41, 36), (133, 155, 154, 153, 145, 144, 163, 7, 33)),       # right eye, lower lid
    ((42, 43, 44, 45), (362, 398, 384, 385, 386, 387, 388, 466, 263)),    # left eye, upper lid
    ((45, 46, 47, 42), (263, 249, 390, 373, 374, 380, 381, 382, 362)),    # left eye, lower lid
)
#: iBUG point -> the MediaPipe landmarks it is the mean of (one vertex for most).
IBUG68_POINTS = {
    # brows (subject's right 17..21 tail to head, left 22..26 head to tail)
    17: (46, 70), 18: (63,), 19: (105,), 20: (66,), 21: (107, 55),
    22: (336, 285), 23: (296,), 24: (334,), 25: (293,), 26: (276, 300),
    # nose bridge (nasion to tip) and nostril base (right alar, subnasale, left alar)
    27: (168,), 28: (197,), 29: (5,), 30: (4,), 31: (75,), 32: (97,), 33: (2,), 34: (326,), 35: (305,),
    # outer lips: corners 48/54, upper centre 51, lower centre 57
    48: (61,), 49: (39,), 50: (37,), 51: (0,), 52: (267,), 53: (269,), 54: (291,),
    55: (405,), 56: (314,), 57: (17,), 58: (84,), 59: (181,),
    # inner lips: corners 60/64, centres 62/66
    60: (78,), 61: (82,), 62: (13,), 63: (312,), 64: (308,), 65: (317,), 66: (14,), 67: (87,),
}

#: iBUG-68 index ranges per facial region (Pan et al. Table 1 regions).
IBUG68_REGIONS = {
    "contour": tuple(range(0, 17)),
    "brows": tuple(range(17, 27)),
    "nose": tuple(range(27, 36)),
    "eyes": tuple(range(36, 48)),
    "mouth": tuple(range(48, 68)),
}


@dataclass(frozen=True)
class FaceLandmarks:
    """One face's landmarks.

    points:      (478, 3) float64, read-only. x right, y down in full-image pixels;
                 z MediaPipe's relative depth in the same pixel scale (negative =
                 towards the camera).  Indices follow MediaPipe's face mesh
                 topology; 468..477 are the irises (:data:`RIGHT_IRIS`, :data:`LEFT_IRIS`).
    image_size:  (width, height) of the full image the points refer to.
    bbox:        (x_min, y_min, x_max, y_max) of the 2-D points, in pixels (not clipped).
    """

    points: np.ndarray
    image_size: tuple[int, int]
    bbox: tuple[float, float, float, float] = field(init=False)

    def __post_init__(self):
        points = np.array(self.points, dtype=np.float64, copy=True)
        if points.ndim != 2 or points.shape[1] != 3:
            raise InvalidInputError(f"landmark points must be (N, 3), got {points.shape}")
        if not np.all(np.isfinite(points)):
            raise InvalidInputError("landmark points contain NaN or infinite values")
        points.setflags(write=False)
        object.__setattr__(self, "points", points)
        object.__setattr__(self, "image_size", (int(self.image_size[0]), int(self.image_size[1])))
        lo, hi = points[:, :2].min(axis=0), points[:, :2].max(axis=0)
        object.__setattr__(self, "bbox", (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])))

    @property
    def points2d(self) -> np.ndarray:
        """(478, 2) float64 image pixels (x, y)."""
        return self.points[:, :2]

    @property
    def interocular(self) -> float:
        """Distance in pixels between the outer eye corners (landmarks 33 and 263)."""
        return float(np.linalg.norm(self.points[LEFT_EYE_OUTER, :2] - self.points[RIGHT_EYE_OUTER, :2]))

    @property
    def bbox_area(self) -> float:
        x0, y0, x1, y1 = self.bbox
        return (x1 - x0) * (y1 - y0)

    def outside_fraction(self) -> float:
        """Fraction of the 2-D points that fall outside the image."""
        w, h = self.image_size
        x, y = self.points[:, 0], self.points[:, 1]
        outside = (x < 0) | (y < 0) | (x > w - 1) | (y > h - 1)
        return float(np.count_nonzero(outside)) / len(self.points)

    def outside_area_fraction(self) -> float:
        """Fraction of the face's area (the convex hull of the 468 face-mesh points, whose
        outline is the face oval) that lies outside the image.

        Counting area rather than points matters because the points are dense on the eyes,
        nose and lips and sparse on the jaw: a photo cut off below the mouth loses a fifth of
        the face but only about a tenth of the points.
        """
        w, h = self.image_size
        hull = cv2.convexHull(self.points[:468, :2].astype(np.float32))
        area = float(cv2.contourArea(hull))
        if not area > 0:
            return 1.0
        frame = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
        inside, _ = cv2.intersectConvexConvex(hull, frame)
        return float(np.clip(1.0 - inside / area, 0.0, 1.0))

    def ibug68(self) -> np.ndarray:
        """(68, 2) float64: the iBUG-68 points (:func:`mediapipe_to_ibug68`)."""
        return mediapipe_to_ibug68(self.points)


def mediapipe_to_ibug68(points: np.ndarray) -> np.ndarray:
    """The 68 iBUG points of a MediaPipe-ordered point set (the definition above).

    points: (>=468, 2|3) in MediaPipe order and image pixels -- detected landmarks, or the
    template's first 468 skin vertices projected into the image.  Only x, y are used.
    Returns (68, 2) float64 in the same pixels.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[0] < 468 or points.shape[1] not in (2, 3):
        raise InvalidInputError(f"expected MediaPipe points of shape (478, 2|3), got {points.shape}")
    if not np.all(np.isfinite(points[:468, :2])):
        raise InvalidInputError("MediaPipe points contain NaN or infinite values")
    xy = points[:468, :2]
    out = np.empty((68, 2))
    for index, ids in IBUG68_POINTS.items():
        out[index] = xy[list(ids)].mean(axis=0)
    for indices, curve in IBUG68_CURVES:
        out[list(indices)] = _resample(xy[list(curve)], len(indices))
    return out


def ibug68_nearest_landmarks(points: np.ndarray) -> np.ndarray:
    """(68,) int64: a vertex-id form of the definition, for consumers that can only index vertices.

    For each iBUG point of ``points`` (see :func:`mediapipe_to_ibug68`), the landmark nearest
    to it among the landmarks its definition uses (the curve's vertices for a jaw, eyelid or
    brow point).  The template stores this for its neutral face.
    """
    points = np.asarray(points, dtype=np.float64)
    ibug = mediapipe_to_ibug68(points)
    candidates = {index: list(ids) for index, ids in IBUG68_POINTS.items()}
    for indices, curve in IBUG68_CURVES:
        vertices = [i for v in curve for i in (v if isinstance(v, tuple) else (v,))]
        for index in indices:
            candidates[index] = vertices
    out = np.empty(68, dtype=np.int64)
    for index, ids in candidates.items():
        out[index] = ids[int(np.argmin(np.linalg.norm(points[ids, :2] - ibug[index], axis=1)))]
    return out


def _resample(polyline: np.ndarray, count: int) -> np.ndarray:
    """``count`` points at equal arc-length steps along a polyline, both ends included."""
    steps = np.linalg.norm(np.diff(polyline, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(steps)])
    if not arc[-1] > 0:
        return np.repeat(polyline[:1], count, axis=0)
    t = np.linspace(0.0, arc[-1], count)
    return np.column_stack([np.interp(t, arc, polyline[:, 0]), np.interp(t, arc, polyline[:, 1])])


class MediaPipeLandmarkDetector:
    """MediaPipe face detection (full range) + face mesh with iris, as described in the module doc.

    Implements :class:`pyfacerig.networks.LandmarkDetector`.  One detector object
    owns one FaceDetection and one FaceMesh graph, created on first use and
    reused (creating them costs tens of milliseconds).  MediaPipe graphs are not
    re-entrant, so calls on one object are serialised with a lock: share an
    object between threads freely, or give each worker thread its own to run in
    parallel.
    """

    num_points = NUM_POINTS

    def __init__(self, *, detection_max_side: int = 640, crop_size: int = 384,
                 whole_image_face_px: int = 256, whole_image_max_side: int = 2048,
                 min_detection_confidence: float = 0.5, max_num_faces: int = 8):
        self.detection_max_side = int(detection_max_side)
        self.crop_size = int(crop_size)
        self.whole_image_face_px = int(whole_image_face_px)
        self.whole_image_max_side = int(whole_image_max_side)
        self.min_detection_confidence = float(min_detection_confidence)
        self.max_num_faces = int(max_num_faces)
        self._lock = threading.Lock()
        self._face_detection = None
        self._face_mesh = None

    def _graphs(self):
        if self._face_mesh is None:
            import mediapipe as mp  # imported lazily: it loads TensorFlow Lite and protobuf
            self._face_detection = mp.solutions.face_detection.FaceDetection(
                model_selection=1, min_detection_confidence=self.min_detection_confidence)
            self._face_mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True, refine_landmarks=True, max_num_faces=self.max_num_faces,
                min_detection_confidence=self.min_detection_confidence)
        return self._face_detection, self._face_mesh

    def close(self) -> None:
        """Release the MediaPipe graphs (they are recreated if the detector is used again)."""
        with self._lock:
            for graph in (self._face_detection, self._face_mesh):
                if graph is not None:
                    graph.close()
            self._face_detection = self._face_mesh = None

    def face_boxes(self, image: np.ndarray) -> list[tuple[float, float, float, float]]:
        """Face boxes (x0, y0, x1, y1) in full-image pixels from the full-range face detector."""
        small, scale = detection_image(image, self.detection_max_side)
        with self._lock:
            face_detection, _ = self._graphs()
            result = face_detection.process(np.ascontiguousarray(small))
        boxes = []
        sh, sw = small.shape[:2]
        for det in result.detections or []:
            rb = det.location_data.relative_bounding_box
            x0, y0 = rb.xmin * sw / scale, rb.ymin * sh / scale
            boxes.append((x0, y0, x0 + rb.width * sw / scale, y0 + rb.height * sh / scale))
        return boxes

    def detect(self, image: np.ndarray) -> list[np.ndarray]:
        """All faces in ``image`` ((H, W, 3) uint8 RGB): a list of (478, 3) float64 in its pixels."""
        boxes = self.face_boxes(image)
        if len(boxes) == 1:
            single = self._mesh_single_face(image, boxes[0])
            if single is not None:
                return [single]
        faces = [p for box in boxes if (p := self._mesh_in_box(image, box)) is not None]
        if not faces:
            faces = self._mesh_whole_image(image, self.detection_max_side)
        return _drop_duplicates(faces)

    def _mesh_single_face(self, image: np.ndarray, box) -> Optional[np.ndarray]:
        """The face mesh on the whole image when the detector found one face (module doc, step 2).

        None when that would need too large an image, or when the mesh does not find exactly
        one face overlapping the detector's box; the caller then crops.
        """
        longest = max(image.shape[:2])
        box_side = max(box[2] - box[0], box[3] - box[1], 1.0)
        max_side = max(self.detection_max_side, int(np.ceil(longest * self.whole_image_face_px / box_side)))
        if min(max_side, longest) > self.whole_image_max_side:
            return None
        faces = self._mesh_whole_image(image, max_side)
        if len(faces) != 1:
            return None
        (x0, y0), (x1, y1) = faces[0][:, :2].min(0), faces[0][:, :2].max(0)
        ix = min(x1, box[2]) - max(x0, box[0])
        iy = min(y1, box[3]) - max(y0, box[1])
        return faces[0] if ix > 0 and iy > 0 else None

    def _mesh_in_box(self, image: np.ndarray, box) -> Optional[np.ndarray]:
        x0, y0, x1, y1 = box
        side = 2.0 * max(x1 - x0, y1 - y0)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        left, top = int(round(cx - side / 2)), int(round(cy - side / 2))
        side_px = max(int(round(side)), 8)
        crop = _crop_with_padding(image, left, top, side_px)
        zoom = self.crop_size / side_px
        crop = cv2.resize(crop, (self.crop_size, self.crop_size),
                          interpolation=cv2.INTER_AREA if zoom < 1 else cv2.INTER_LINEAR)
        with self._lock:
            _, face_mesh = self._graphs()
            result = face_mesh.process(crop)
        if not result.multi_face_landmarks:
            return None
        # A neighbour's face may also show in the crop: keep the one nearest the crop centre.
        candidates = [_landmarks_array(lm, self.crop_size, self.crop_size) for lm in result.multi_face_landmarks]
        centre = np.array([self.crop_size / 2, self.crop_size / 2])
        best = min(candidates, key=lambda p: np.linalg.norm(p[:, :2].mean(axis=0) - centre))
        # crop pixels -> full-image pixels; z scales with x (MediaPipe's convention).
        return np.column_stack([best[:, 0] / zoom + left, best[:, 1] / zoom + top, best[:, 2] / zoom])

    def _mesh_whole_image(self, image: np.ndarray, max_side: int) -> list[np.ndarray]:
        small, scale = detection_image(image, max_side)
        with self._lock:
            _, face_mesh = self._graphs()
            result = face_mesh.process(np.ascontiguousarray(small))
        sh, sw = small.shape[:2]
        return [_landmarks_array(lm, sw, sh) / scale for lm in result.multi_face_landmarks or []]


_default_detector: Optional[MediaPipeLandmarkDetector] = None
_default_lock = threading.Lock()


def default_detector() -> MediaPipeLandmarkDetector:
    """The process-wide MediaPipe detector used when ``detector=None`` (created once)."""
    global _default_detector
    with _default_lock:
        if _default_detector is None:
            _default_detector = MediaPipeLandmarkDetector()
        return _default_detector


def detect_faces(image, *, detector=None) -> list[FaceLandmarks]:
    """Every face the detector finds, ordered left to right by the centre of its bbox.

    image: anything :func:`pyfacerig.image_io.load_image` accepts; usually (H, W, 3) uint8 RGB.
    detector: a :class:`pyfacerig.networks.LandmarkDetector` returning 478 points per
    face; default: :func:`default_detector`.
    """
    image = _as_rgb8(image)
    detector = default_detector() if detector is None else detector
    h, w = image.shape[:2]
    faces = []
    for points in detector.detect(image):
        points = np.asarray(points, dtype=np.float64)
        if points.shape != (NUM_POINTS, 3):
            raise ModelError(
                f"landmark detector {type(detector).__name__} returned points of shape {points.shape}; "
                f"the reconstruction needs MediaPipe's ({NUM_POINTS}, 3) face-mesh topology")
        faces.append(FaceLandmarks(points=points, image_size=(w, h)))
    faces.sort(key=lambda f: (f.bbox[0] + f.bbox[2]) / 2)
    return faces


def detect_landmarks(image, *, face: Union[str, int] = "error", detector=None,
                     min_interocular: float = 30.0, max_outside_fraction: float = 0.10) -> FaceLandmarks:
    """Landmarks of the one face to reconstruct.

    image: anything :func:`pyfacerig.image_io.load_image` accepts; usually (H, W, 3) uint8 RGB
        at full resolution (the detector downscales internally; the points refer to this image).
    face: what to do when several faces are found:
        ``"error"`` (default) raise MultipleFacesError; ``"largest"`` take the face with the
        largest landmark bounding box; an ``int`` i take the i-th face counted left to right
        (0-based, by bounding-box centre).
    detector: a :class:`pyfacerig.networks.LandmarkDetector` (478 points); default MediaPipe.
    min_interocular: the smallest accepted distance between the outer eye corners, in pixels.
        Below it the texture would be a smear and the fit unreliable.
    max_outside_fraction: the largest accepted fraction of the face's area outside the image
        (:meth:`FaceLandmarks.outside_area_fraction`).

    Raises NoFaceError, MultipleFacesError, FaceTooSmallError, FaceCutOffError (all
    FaceDetectionError), ImageReadError for unreadable input, ModelError for a detector
    that does not return (478, 3) points.
    """
    faces = detect_faces(image, detector=detector)
    if not faces:
        raise NoFaceError("no face found in the image")
    if isinstance(face, str):
        if face == "error":
            if len(faces) > 1:
                sizes = ", ".join(f"#{i} at x~{(f.bbox[0] + f.bbox[2]) / 2:.0f}px ({f.bbox[2] - f.bbox[0]:.0f}px wide)"
                                  for i, f in enumerate(faces))
                raise MultipleFacesError(
                    f"{len(faces)} faces found ({sizes}); pass face='largest' or face=<index> "
                    "(0-based, left to right) to choose one")
            chosen = faces[0]
        elif face == "largest":
            chosen = max(faces, key=lambda f: f.bbox_area)
        else:
            raise InvalidInputError(f"face must be 'error', 'largest' or an int index, got {face!r}")
    elif isinstance(face, (int, np.integer)) and not isinstance(face, bool):
        if not 0 <= face < len(faces):
            raise NoFaceError(f"face index {face} requested but {len(faces)} face(s) found "
                              f"(valid: 0..{len(faces) - 1}, left to right)")
        chosen = faces[int(face)]
    else:
        raise InvalidInputError(f"face must be 'error', 'largest' or an int index, got {face!r}")

    outside = chosen.outside_area_fraction()
    if outside > max_outside_fraction:
        raise FaceCutOffError(
            f"{outside:.0%} of the face lies outside the image "
            f"(at most {max_outside_fraction:.0%} allowed); use a photo showing the whole face")
    if chosen.interocular < min_interocular:
        raise FaceTooSmallError(
            f"the face is too small: {chosen.interocular:.1f}px between the outer eye corners, "
            f"at least {min_interocular:g}px needed; use a larger or closer photo")
    return chosen


def _as_rgb8(image) -> np.ndarray:
    if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 \
            and image.size:
        return np.ascontiguousarray(image)
    return load_image(image)


def _landmarks_array(landmark_list, width: int, height: int) -> np.ndarray:
    """MediaPipe NormalizedLandmarkList -> (N, 3) pixels; z is normalised by width like x."""
    lm = landmark_list.landmark
    return np.array([(p.x * width, p.y * height, p.z * width) for p in lm], dtype=np.float64)


def _crop_with_padding(image: np.ndarray, left: int, top: int, side: int) -> np.ndarray:
    """Square (side, side) crop at (left, top); parts outside the image are black."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = max(left, 0), max(top, 0), min(left + side, w), min(top + side, h)
    crop = np.zeros((side, side, 3), dtype=np.uint8)
    if x1 > x0 and y1 > y0:
        crop[y0 - top:y1 - top, x0 - left:x1 - left] = image[y0:y1, x0:x1]
    return crop


def _drop_duplicates(faces: Sequence[np.ndarray], iou_threshold: float = 0.5) -> list[np.ndarray]:
    """Remove faces whose landmark boxes overlap an earlier face's box by more than the threshold."""
    kept: list[np.ndarray] = []
    for points in faces:
        if all(_box_iou(points, other) <= iou_threshold for other in kept):
            kept.append(points)
    return kept


def _box_iou(a: np.ndarray, b: np.ndarray) -> float:
    (ax0, ay0), (ax1, ay1) = a[:, :2].min(0), a[:, :2].max(0)
    (bx0, by0), (bx1, by1) = b[:, :2].min(0), b[:, :2].max(0)
    iw, ih = max(0.0, min(ax1, bx1) - max(ax0, bx0)), max(0.0, min(ay1, by1) - max(ay0, by0))
    inter = iw * ih
    union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter
    return inter / union if union > 0 else 0.0
