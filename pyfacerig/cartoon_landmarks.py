"""The project's own cartoon landmark network (issue #14), behind the landmark-detector interface.

MediaPipe's face mesh was trained on photographs; on a drawing with big eyes it places small
human eyes inside the drawn ones.  ``pyfacerig/models/cartoon_landmarks.onnx`` was trained by
``tools/train_cartoon_landmarks.py`` on renders of pyfacerig's own head template in cartoon and
photo looks, with drawn eyes up to twice the eye opening (:mod:`pyfacerig.cartoon_renders`), so
it puts the eye contour on the drawn eye.  It returns MediaPipe's 478 points (with irises), so
everything after the landmark stage is unchanged.  The network reads x and y; the depth is
the template's, turned to the face's pose (:func:`template_depth`).

How a face is read (:meth:`CartoonLandmarkDetector.detect`):

1. a face box: MediaPipe's full-range face detector; where it finds nothing (a drawing it does
   not take for a face), the face mesh's point box;
2. the face network runs on a square crop around the box (side ``CROP_SCALE`` x the box's
   longer side, 128 px, black outside the image), and then ``passes - 1`` more times on a crop
   around the box of its own previous points, the box it was trained on (the bounding box of
   the 468 face-mesh points).  The first box, a detector's, only has to be near: training crops
   were jittered by +-5 % in position, 0.85-1.18x in size and +-15 degrees in roll;
3. the eye stage (``pyfacerig/models/cartoon_eyes.onnx``): a 64 px crop around each eye the
   face network found, ``EYE_CROP_SCALE`` x the eye's corner-to-corner width and turned to the
   eye's axis, the left one mirrored, re-reads the eye's 16 contour and 5 iris points at a
   higher resolution than the face crop's (median 1.6x on training renders, 10-90 %: 1.0-2.1x;
   Pan et al. likewise refine the eyes on their own).

Deterministic on the CPU provider; sessions are thread-safe.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, Sequence

import cv2
import numpy as np

from ._landmark_mirror import LANDMARK_MIRROR
from .errors import ModelError
from .landmarks import RIGHT_EYE_CONTOUR
from .networks import _OnnxModel, _check_rgb8

MODEL_PATH = Path(__file__).parent / "models" / "cartoon_landmarks.onnx"
#: The landmark definition the networks were trained on: the default template's 468 landmark
#: vertices at training time (tools/train_cartoon_landmarks.py writes it with the networks).
#: The tests measure the networks in that definition (docs/networks.md).
TRAINING_IDS_PATH = Path(__file__).parent / "models" / "cartoon_landmark_ids.npy"
#: The eye stage: one network for both eyes (the left eye's crop is mirrored into a right eye).
EYE_MODEL_PATH = Path(__file__).parent / "models" / "cartoon_eyes.onnx"
#: Crop side over the face box's longer side (tools/train_cartoon_landmarks.py: CROP_SCALE).
CROP_SCALE = 1.35
#: The network's box (all 468 points) over MediaPipe's full-range detector box on the same face:
#: median 0.99 (10-90 %: 0.92-1.05) on 30 training renders, so the detector's box is used as it is.
DETECTOR_BOX_SCALE = 1.0
NUM_POINTS = 478
#: Eye crop side over the eye's corner-to-corner width (tools/train_cartoon_landmarks.py): a
#: drawn eye is up to about 1.8x as tall as it is wide.
EYE_CROP_SCALE = 2.2
#: The points the eye stage predicts, in a right eye's order: its 16 contour points and 5 iris
#: points; the left eye's are their mirror images (LANDMARK_MIRROR), point for point.
RIGHT_EYE_IDS = RIGHT_EYE_CONTOUR + (468, 469, 470, 471, 472)
LEFT_EYE_IDS = tuple(LANDMARK_MIRROR[i] for i in RIGHT_EYE_IDS)


def warp_matrix(affine: np.ndarray) -> np.ndarray:
    """The ``cv2.warpAffine`` matrix of a map between continuous pixel coordinates (pixel
    (i, j) covers [i, i+1) x [j, j+1), as the renders' points are): OpenCV maps pixel centres,
    so the translation moves by half a pixel times (scale - 1).  Without it a crop at a third of
    the image's scale puts every point one image pixel off in x and in y (about 1 % of the IOD on
    the held-out renders)."""
    affine = np.asarray(affine, dtype=np.float64)
    out = affine.copy()
    out[:, 2] += 0.5 * (affine[:, :2].sum(axis=1) - 1.0)
    return out


def warp_crop(image: np.ndarray, affine: np.ndarray, size: int, interpolation: Optional[int] = None) -> np.ndarray:
    """(size, size, 3) crop of ``image`` through the image -> crop map ``affine`` (2, 3), in
    continuous pixel coordinates (:func:`warp_matrix`), black outside the image.  Area
    averaging when the map shrinks, bilinear otherwise, unless ``interpolation`` is given."""
    if interpolation is None:
        shrink = np.sqrt(abs(np.linalg.det(np.asarray(affine, dtype=np.float64)[:, :2])))
        interpolation = cv2.INTER_AREA if shrink < 1 else cv2.INTER_LINEAR
    return cv2.warpAffine(image, warp_matrix(affine), (size, size), flags=interpolation,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def unwarp(points: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Crop points (K, 2) back to the image through the inverse of ``affine`` (2, 3)."""
    affine = np.asarray(affine, dtype=np.float64)
    return (np.asarray(points, dtype=np.float64) - affine[:, 2]) @ np.linalg.inv(affine[:, :2]).T


def eye_frame(points: np.ndarray, left: bool):
    """(centre (2,), width, unit axis (2,)) of one eye from its 16 contour points in ``points``
    (478 points): the contour's mean, the corner-to-corner distance, and the outer -> inner corner
    direction."""
    ids = LEFT_EYE_IDS if left else RIGHT_EYE_IDS
    contour = np.asarray(points, dtype=np.float64)[list(ids[:16]), :2]
    axis = contour[8] - contour[0]
    width = float(np.linalg.norm(axis))
    return contour.mean(axis=0), width, axis / max(width, 1e-9)


def eye_affine(centre, width: float, axis, left: bool, size: int) -> np.ndarray:
    """(2, 3) image -> eye-crop map: the crop's x runs along ``axis`` (outer to inner corner),
    its y down the face, ``EYE_CROP_SCALE * width`` wide, ``size`` pixels.  The left eye's map
    is mirrored so that every crop shows a right eye (outer corner on the crop's left)."""
    u = np.asarray(axis, dtype=np.float64)
    v = np.array([u[1], -u[0]]) if left else np.array([-u[1], u[0]])
    k = size / max(EYE_CROP_SCALE * width, 1e-9)
    m = k * np.vstack([u, v])
    return np.column_stack([m, size / 2 - m @ np.asarray(centre, dtype=np.float64)])


def _box_of(points: np.ndarray):
    p = np.asarray(points, dtype=np.float64)[:468, :2]
    (x0, y0), (x1, y1) = p.min(axis=0), p.max(axis=0)
    return float(x0), float(y0), float(x1), float(y1)


def template_depth(points2d: np.ndarray) -> np.ndarray:
    """(478,) depth for 2-D landmarks, in MediaPipe's convention (pixels like x, smaller = closer,
    zero at the face's mean): the template's own landmarks turned to the face's pose.

    The coarse fit aligns the template to the landmarks in 3-D; a 2-D detector's zero depth
    would tell it the face is flat, and it would tilt and crumple the head to agree.  The pose
    is the weak-perspective one that best maps the template's 468 neutral landmarks onto the
    points (an affine fit whose two rows are made orthonormal); the depth row completes them.
    """
    from .templates import load_default
    model = np.asarray(load_default().extras["landmarks"], dtype=np.float64)[:NUM_POINTS]
    p = np.asarray(points2d, dtype=np.float64)[:, :2]
    x = model[:468] - model[:468].mean(axis=0)
    y = p[:468] - p[:468].mean(axis=0)
    m = np.linalg.lstsq(x, y, rcond=None)[0].T          # (2, 3): image x, y rows of s * R
    u, sv, vt = np.linalg.svd(m, full_matrices=False)
    rows = u @ vt                                       # nearest matrix with orthonormal rows
    scale = float(sv.mean())
    depth_row = np.cross(rows[0], rows[1])              # image frame: x right, y down, z away
    return scale * (model - model[:468].mean(axis=0)) @ depth_row


class CartoonLandmarkDetector:
    """The cartoon landmark network (:class:`pyfacerig.networks.LandmarkDetector`, 478 points).

    model: path or bytes of the ONNX file; default the one shipped with pyfacerig.
    eye_model: path or bytes of the eye stage's ONNX file (default: the shipped one); ``False``
        skips the eye stage.
    passes: network runs per face (the first on the face box, each further one on the box of
        the previous points).
    mirror: each face-network pass also reads the mirrored crop and averages the two.  Off by
        default: the landmark quality gate's mirror-agreement evidence compares the detector on
        the image and on its mirror image, which this averaging would make agree by construction.
    face_boxes: ``image -> [(x0, y0, x1, y1)]`` giving boxes in the network's convention (the
        468 points' bounding box); default: MediaPipe's face detector, enlarged.
    """

    num_points = NUM_POINTS

    def __init__(self, model=None, *, eye_model=None, passes: int = 1, mirror: bool = False,
                 face_boxes: Optional[Callable] = None, providers: Optional[Sequence[str]] = None):
        # One thread per session: the networks take about a millisecond, and the default thread
        # pools of two sessions run one after the other spin against each other (12 ms per face
        # instead of 1.8 ms, measured on this 2-core machine).
        self.model = _OnnxModel(MODEL_PATH if model is None else model, "cartoon landmark network", providers,
                                threads=1)
        size = self.model.input_size
        if size is None or size[0] != size[1]:
            raise ModelError(f"cartoon landmark network input must be (1, 3, S, S), it is {self.model.input.shape}")
        self.size = size[0]
        self.eye_model = None
        if eye_model is not False:
            self.eye_model = _OnnxModel(EYE_MODEL_PATH if eye_model is None else eye_model,
                                        "cartoon eye network", providers, threads=1)
            eye_size = self.eye_model.input_size
            if eye_size is None or eye_size[0] != eye_size[1]:
                raise ModelError(f"cartoon eye network input must be (N, 3, S, S), it is {self.eye_model.input.shape}")
            self.eye_size = eye_size[0]
        self.passes = max(1, int(passes))
        self.mirror = bool(mirror)
        self._face_boxes = face_boxes

    def face_boxes(self, image: np.ndarray) -> list:
        """Face boxes in the network's convention, from MediaPipe (detector, else face mesh)."""
        if self._face_boxes is not None:
            return list(self._face_boxes(image))
        from .landmarks import default_detector
        mediapipe = default_detector()
        boxes = []
        for x0, y0, x1, y1 in mediapipe.face_boxes(image):
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            half = DETECTOR_BOX_SCALE * max(x1 - x0, y1 - y0) / 2
            boxes.append((cx - half, cy - half, cx + half, cy + half))
        if not boxes:
            boxes = [_box_of(points) for points in mediapipe._mesh_whole_image(image, mediapipe.detection_max_side)]
        return boxes

    def run_crop(self, image: np.ndarray, box) -> np.ndarray:
        """One network pass on the crop around ``box``: (478, 2) image pixels."""
        x0, y0, x1, y1 = box
        side = max(CROP_SCALE * max(x1 - x0, y1 - y0), 1.0)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        k = self.size / side
        affine = np.array([[k, 0.0, self.size / 2 - cx * k], [0.0, k, self.size / 2 - cy * k]])
        crop = warp_crop(image, affine, self.size)
        points = self._run(crop)
        if self.mirror:
            # The mirror image read too (the network was trained on mirrored crops), its points
            # flipped back and relabelled left <-> right, and the two readings averaged.
            flipped = self._run(np.ascontiguousarray(crop[:, ::-1]))
            flipped = flipped[np.asarray(LANDMARK_MIRROR)] * [-1.0, 1.0] + [self.size, 0.0]
            points = 0.5 * (points + flipped)
        if not np.all(np.isfinite(points)):
            raise ModelError("cartoon landmark network returned NaN or infinite coordinates")
        return unwarp(points, affine)

    def _run(self, crop: np.ndarray) -> np.ndarray:
        tensor = np.ascontiguousarray((crop.astype(np.float32) / 255.0).transpose(2, 0, 1)[None])
        out = self.model.run(tensor)
        if out.size != 2 * NUM_POINTS:
            raise ModelError(f"cartoon landmark network returned {out.size} values, expected {2 * NUM_POINTS}")
        return out.reshape(NUM_POINTS, 2).astype(np.float64) * self.size

    def landmarks_in_box(self, image: np.ndarray, box) -> np.ndarray:
        """(478, 3) points of the face in ``box``, after :attr:`passes` passes; depth from
        :func:`template_depth`."""
        image = _check_rgb8(image, "cartoon landmark network")
        points = self.run_crop(image, box)
        for _ in range(self.passes - 1):
            points = self.run_crop(image, _box_of(points))
        if self.eye_model is not None:
            points = self.refine_eyes(image, points)
        return np.column_stack([points, template_depth(points)])

    def refine_eyes(self, image: np.ndarray, points: np.ndarray) -> np.ndarray:
        """The eye stage: each eye's 16 contour and 5 iris points re-read by the eye network
        from a crop around the eye the face network found (:func:`eye_affine`), both eyes in
        one batch.  (478, 2) image pixels in and out."""
        points = np.array(points, dtype=np.float64)
        size = self.eye_size
        maps, crops = [], []
        for left in (False, True):
            centre, width, axis = eye_frame(points, left)
            m = eye_affine(centre, width, axis, left, size)
            crops.append(warp_crop(image, m, size))
            maps.append(m)
        tensor = np.ascontiguousarray((np.stack(crops).astype(np.float32) / 255.0).transpose(0, 3, 1, 2))
        out = self.eye_model.run(tensor)
        if out.size != 2 * 2 * len(RIGHT_EYE_IDS):
            raise ModelError(f"cartoon eye network returned {out.size} values, expected {4 * len(RIGHT_EYE_IDS)}")
        out = out.reshape(2, len(RIGHT_EYE_IDS), 2).astype(np.float64) * size
        if not np.all(np.isfinite(out)):
            raise ModelError("cartoon eye network returned NaN or infinite coordinates")
        for left, m, q in zip((False, True), maps, out):
            points[list(LEFT_EYE_IDS if left else RIGHT_EYE_IDS)] = unwarp(q, m)
        return points

    def detect(self, image: np.ndarray) -> list[np.ndarray]:
        """(H, W, 3) uint8 RGB -> one (478, 3) float64 array per face, image pixels (depth 0)."""
        image = _check_rgb8(image, "cartoon landmark network")
        return [self.landmarks_in_box(image, box) for box in self.face_boxes(image)]


_default: Optional[CartoonLandmarkDetector] = None


def default_cartoon_detector() -> CartoonLandmarkDetector:
    """The process-wide cartoon network (loaded once)."""
    global _default
    if _default is None:
        _default = CartoonLandmarkDetector()
    return _default


def training_landmark_ids() -> np.ndarray:
    """(468,) int64: the skin vertices the cartoon networks were trained to find (read-only)."""
    ids = np.load(TRAINING_IDS_PATH, allow_pickle=False).astype(np.int64)
    ids.setflags(write=False)
    return ids
