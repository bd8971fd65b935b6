"""The network behind each pipeline stage, as a small interface, plus ONNX Runtime implementations.

Three stages can use a learned network (Pan et al. §3):

* :class:`LandmarkDetector` -- image -> per-face landmark arrays.  Default: MediaPipe
  (:class:`pyfacerig.landmarks.MediaPipeLandmarkDetector`).
* :class:`FaceParser` -- image -> (H, W) label map in the 19-class CelebAMask-HQ /
  BiSeNet convention (:data:`FACE_PARSING_CLASSES`).  Used by eye refinement (§3.2.1).
  Default: none (eye refinement falls back to a classical segmentation).
* :class:`Stylizer` -- portrait -> cartoon image of the same size (§3, stage 1).
  Default: the OpenCV filter in :mod:`pyfacerig.stylize`.

Any object with the right method satisfies an interface (they are
``typing.Protocol`` classes), so a caller can plug in a PyTorch model, a web
service or a stub.  The ``Onnx*`` classes run a user's ``.onnx`` file with ONNX
Runtime, preferring ``CUDAExecutionProvider`` when ``onnxruntime-gpu`` is
installed and falling back to the CPU.  Each checks the model against its
stage's contract when it is loaded and raises :class:`pyfacerig.errors.ModelError`
naming the mismatch; the contracts are written out in ``docs/networks.md``.

All ONNX classes are safe to share between threads (``InferenceSession.run`` is
thread-safe) and deterministic on the CPU provider.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Optional, Protocol, Sequence, Union, runtime_checkable

import cv2
import numpy as np

from .errors import InvalidInputError, ModelError

ModelSource = Union[str, os.PathLike, bytes]

#: 19-class face parsing labels (CelebAMask-HQ order, as used by BiSeNet face parsers).
#: Label maps from a :class:`FaceParser` use these integer ids.
FACE_PARSING_CLASSES = (
    "background",   # 0
    "skin",         # 1
    "l_brow",       # 2
    "r_brow",       # 3
    "l_eye",        # 4
    "r_eye",        # 5
    "eyeglasses",   # 6
    "l_ear",        # 7
    "r_ear",        # 8
    "earring",      # 9
    "nose",         # 10
    "mouth",        # 11  inner mouth, between the lips
    "u_lip",        # 12
    "l_lip",        # 13
    "neck",         # 14
    "necklace",     # 15
    "cloth",        # 16
    "hair",         # 17
    "hat",          # 18
)
BACKGROUND, SKIN, L_BROW, R_BROW, L_EYE, R_EYE = 0, 1, 2, 3, 4, 5
NOSE, MOUTH, U_LIP, L_LIP, HAIR = 10, 11, 12, 13, 17
#: Both eye labels.  Published CelebAMask-HQ parsers disagree on whether "l_" means the
#: subject's or the viewer's left, so pyfacerig never relies on it: an eye region is
#: matched to an eye by position (see :mod:`pyfacerig.eye_refine`).
EYE_CLASSES = (L_EYE, R_EYE)
NUM_PARSING_CLASSES = len(FACE_PARSING_CLASSES)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@runtime_checkable
class LandmarkDetector(Protocol):
    """Finds faces and their landmarks.

    ``detect(image)``: image (H, W, 3) uint8 RGB -> list with one (num_points, 3) float64
    array per face, x/y in pixels of ``image`` (x right, y down), z depth in the same
    units or 0 for 2-D detectors.  The reconstruction needs ``num_points == 478`` in
    MediaPipe's face-mesh order; 68-point (iBUG) detectors suit evaluation.
    """

    num_points: int

    def detect(self, image: np.ndarray) -> list[np.ndarray]: ...


@runtime_checkable
class FaceParser(Protocol):
    """``parse(image)``: (H, W, 3) uint8 RGB -> (H, W) uint8 labels, ids of :data:`FACE_PARSING_CLASSES`."""

    def parse(self, image: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class Stylizer(Protocol):
    """``stylize(image)``: (H, W, 3) uint8 RGB -> (H, W, 3) uint8 RGB, same size (e.g. portrait -> cartoon)."""

    def stylize(self, image: np.ndarray) -> np.ndarray: ...


def default_providers() -> list[str]:
    """ONNX Runtime execution providers to use: CUDA first when available, always the CPU."""
    import onnxruntime as ort
    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


@dataclass(frozen=True)
class _TensorSpec:
    name: str
    shape: tuple            # ints for fixed dims, None for symbolic ones
    element_type: str


class _OnnxModel:
    """An InferenceSession with the single NCHW float32 RGB input every stage contract uses."""

    def __init__(self, model: ModelSource, stage: str, providers: Optional[Sequence[str]] = None,
                 threads: Optional[int] = None):
        import onnxruntime as ort
        self.stage = stage
        self.source = "<bytes>" if isinstance(model, (bytes, bytearray)) else str(model)
        if not isinstance(model, (bytes, bytearray)):
            if not os.path.isfile(model):
                raise ModelError(f"{self.stage} model file not found: {self.source!r}")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads is not None:
            options.intra_op_num_threads = int(threads)
        try:
            self.session = ort.InferenceSession(
                bytes(model) if isinstance(model, (bytes, bytearray)) else os.fspath(model),
                sess_options=options, providers=list(providers) if providers else default_providers())
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise ModelError(f"{self.stage} model {self.source!r} cannot be loaded by ONNX Runtime: "
                             f"{str(exc).strip().splitlines()[0][:300]}") from None
        inputs = [_spec(i) for i in self.session.get_inputs()]
        self.outputs = [_spec(o) for o in self.session.get_outputs()]
        if len(inputs) != 1:
            raise ModelError(f"{self.stage} model {self.source!r} must have exactly 1 input, "
                             f"it has {len(inputs)}: {[i.name for i in inputs]}")
        self.input = inputs[0]
        if self.input.element_type != "tensor(float)":
            raise ModelError(f"{self.stage} model input {self.input.name!r} must be float32 "
                             f"(tensor(float)), it is {self.input.element_type}")
        if len(self.input.shape) != 4:
            raise ModelError(f"{self.stage} model input {self.input.name!r} must be NCHW (rank 4), "
                             f"its shape is {self.input.shape}")
        if self.input.shape[1] not in (3, None):
            raise ModelError(f"{self.stage} model input {self.input.name!r} must have 3 (RGB) channels "
                             f"in NCHW layout, its shape is {self.input.shape}")
        if self.input.shape[0] not in (1, None):
            raise ModelError(f"{self.stage} model input {self.input.name!r} must accept batch size 1, "
                             f"its shape is {self.input.shape}")
        if not self.outputs:
            raise ModelError(f"{self.stage} model {self.source!r} has no outputs")

    @property
    def input_size(self) -> Optional[tuple[int, int]]:
        """(height, width) the model requires, or None when both are dynamic."""
        h, w = self.input.shape[2], self.input.shape[3]
        return (h, w) if h is not None and w is not None else None

    def run(self, tensor: np.ndarray) -> np.ndarray:
        """Run on one (1, 3, H, W) float32 tensor; returns the first output as float32."""
        try:
            out = self.session.run([self.outputs[0].name], {self.input.name: tensor})[0]
        except Exception as exc:
            raise ModelError(f"{self.stage} model {self.source!r} failed on a {tensor.shape} input: "
                             f"{str(exc).strip().splitlines()[0][:300]}") from None
        out = np.asarray(out)
        if not np.issubdtype(out.dtype, np.floating):
            raise ModelError(f"{self.stage} model output {self.outputs[0].name!r} must be float, got {out.dtype}")
        return out.astype(np.float32, copy=False)


def _spec(node_arg) -> _TensorSpec:
    shape = tuple(d if isinstance(d, int) and d > 0 else None for d in (node_arg.shape or ()))
    return _TensorSpec(node_arg.name, shape, node_arg.type)


def _to_nchw(image: np.ndarray, size_hw: tuple[int, int], mean, std) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (1, 3, h, w) float32, ((pixel / 255) - mean) / std per channel."""
    h, w = size_hw
    if image.shape[:2] != (h, w):
        interpolation = cv2.INTER_AREA if h * w < image.shape[0] * image.shape[1] else cv2.INTER_LINEAR
        image = cv2.resize(image, (w, h), interpolation=interpolation)
    x = image.astype(np.float32) / 255.0
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def _check_rgb8(image: np.ndarray, what: str) -> np.ndarray:
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3
            and image.shape[2] == 3 and image.shape[0] > 0 and image.shape[1] > 0):
        desc = f"{image.shape} {image.dtype}" if isinstance(image, np.ndarray) else type(image).__name__
        raise InvalidInputError(f"{what} needs an (H, W, 3) uint8 RGB image, got {desc}")
    return image


def _working_size(image_hw, model_hw, multiple: int, max_side: int) -> tuple[int, int]:
    """The size to feed: the model's fixed size, else the image's (capped) rounded to ``multiple``."""
    if model_hw is not None:
        return model_hw
    h, w = image_hw
    scale = min(1.0, max_side / max(h, w))
    return (max(multiple, int(round(h * scale / multiple)) * multiple),
            max(multiple, int(round(w * scale / multiple)) * multiple))


class OnnxFaceParser:
    """A 19-class face parser in ONNX (e.g. a BiSeNet trained on CelebAMask-HQ).

    Contract (docs/networks.md): input (1, 3, H, W) float32 RGB, normalised with
    ``mean``/``std`` (ImageNet by default) after scaling pixels to [0, 1]; H, W fixed
    (typically 512) or dynamic (then the image is fed at its size, longer side capped
    at ``max_side``, rounded to a multiple of 32).  First output: (1, 19, h, w) float
    class scores.  ``parse`` returns the argmax, resized (nearest) to the image size.
    """

    stage = "face parser"

    def __init__(self, model: ModelSource, *, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                 max_side: int = 512, providers: Optional[Sequence[str]] = None):
        self.model = _OnnxModel(model, self.stage, providers)
        self.mean, self.std, self.max_side = tuple(mean), tuple(std), int(max_side)
        out = self.model.outputs[0].shape
        if len(out) != 4:
            raise ModelError(f"face parser output {self.model.outputs[0].name!r} must be (1, 19, H, W), "
                             f"its shape is {out}")
        if out[1] not in (NUM_PARSING_CLASSES, None):
            raise ModelError(f"face parser output must have {NUM_PARSING_CLASSES} class channels "
                             f"(CelebAMask-HQ labels), it has {out[1]}")

    def parse(self, image: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB -> (H, W) uint8 label map (ids of :data:`FACE_PARSING_CLASSES`)."""
        image = _check_rgb8(image, "face parser")
        size = _working_size(image.shape[:2], self.model.input_size, 32, self.max_side)
        scores = self.model.run(_to_nchw(image, size, self.mean, self.std))
        if scores.ndim != 4 or scores.shape[0] != 1 or scores.shape[1] != NUM_PARSING_CLASSES:
            raise ModelError(f"face parser returned scores of shape {scores.shape}, expected "
                             f"(1, {NUM_PARSING_CLASSES}, h, w)")
        labels = scores[0].argmax(axis=0).astype(np.uint8)
        h, w = image.shape[:2]
        return cv2.resize(labels, (w, h), interpolation=cv2.INTER_NEAREST)


class OnnxStylizer:
    """An image-to-image stylizer in ONNX (portrait -> cartoon, e.g. an AnimeGAN/White-box export).

    Contract (docs/networks.md): input (1, 3, H, W) float32 RGB normalised to [-1, 1]
    (``mean = std = 0.5`` after scaling to [0, 1]); H, W fixed or dynamic (then the image
    is fed at its size, longer side capped at ``max_side``, rounded to a multiple of 8).
    First output: (1, 3, h, w) float RGB in the same [-1, 1] range (values outside are
    clipped).  ``stylize`` resizes the result back to the input size.
    """

    stage = "stylizer"

    def __init__(self, model: ModelSource, *, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
                 max_side: int = 1024, providers: Optional[Sequence[str]] = None):
        self.model = _OnnxModel(model, self.stage, providers)
        self.mean, self.std, self.max_side = tuple(mean), tuple(std), int(max_side)
        out = self.model.outputs[0].shape
        if len(out) != 4 or out[1] not in (3, None):
            raise ModelError(f"stylizer output {self.model.outputs[0].name!r} must be (1, 3, H, W) RGB, "
                             f"its shape is {out}")

    def stylize(self, image: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB -> stylized (H, W, 3) uint8 RGB."""
        image = _check_rgb8(image, "stylizer")
        size = _working_size(image.shape[:2], self.model.input_size, 8, self.max_side)
        out = self.model.run(_to_nchw(image, size, self.mean, self.std))
        if out.ndim != 4 or out.shape[:2] != (1, 3):
            raise ModelError(f"stylizer returned shape {out.shape}, expected (1, 3, h, w)")
        if not np.all(np.isfinite(out)):
            raise ModelError("stylizer returned NaN or infinite values")
        rgb = out[0].transpose(1, 2, 0) * np.asarray(self.std, np.float32) + np.asarray(self.mean, np.float32)
        rgb = np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)
        h, w = image.shape[:2]
        if rgb.shape[:2] != (h, w):
            rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_LINEAR)
        return np.ascontiguousarray(rgb)


FaceBoxes = Callable[[np.ndarray], Sequence[tuple[float, float, float, float]]]


class OnnxLandmarkDetector:
    """A face-crop landmark regressor in ONNX (e.g. a 478-point face mesh or a 68-point model).

    Contract (docs/networks.md): input (1, 3, S, S) float32 RGB, pixels scaled to [0, 1]
    then normalised with ``mean``/``std`` (default mean 0, std 1); S fixed (e.g. 192 or
    256).  The input is a square crop around a face box: side ``crop_scale`` times the
    box's longer side, centred on the box, black outside the image.  First output:
    ``num_points`` x 2 or x 3 values (any shape with that many elements, row-major point
    by point) in pixels of the S x S crop (``coordinates="pixels"``) or in [0, 1]
    (``coordinates="normalized"``); a third coordinate is depth in the same units as x.

    Face boxes come from ``face_boxes(image) -> [(x0, y0, x1, y1), ...]`` in image pixels;
    the default is MediaPipe's full-range face detector.
    """

    stage = "landmark detector"

    def __init__(self, model: ModelSource, *, num_points: int = 478, coordinates: str = "pixels",
                 crop_scale: float = 1.5, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
                 face_boxes: Optional[FaceBoxes] = None, providers: Optional[Sequence[str]] = None):
        if coordinates not in ("pixels", "normalized"):
            raise InvalidInputError(f"coordinates must be 'pixels' or 'normalized', got {coordinates!r}")
        if num_points < 1:
            raise InvalidInputError(f"num_points must be positive, got {num_points}")
        self.model = _OnnxModel(model, self.stage, providers)
        if self.model.input_size is None or self.model.input_size[0] != self.model.input_size[1]:
            raise ModelError(f"landmark model input must have a fixed square size (1, 3, S, S), "
                             f"its shape is {self.model.input.shape}")
        self.num_points, self.coordinates = int(num_points), coordinates
        self.crop_scale, self.mean, self.std = float(crop_scale), tuple(mean), tuple(std)
        count = _element_count(self.model.outputs[0].shape)
        if count is not None and count not in (2 * num_points, 3 * num_points):
            raise ModelError(f"landmark model output {self.model.outputs[0].name!r} has {count} values; "
                             f"expected {num_points} points x 2 or x 3 = {2 * num_points} or {3 * num_points}")
        self._face_boxes = face_boxes

    def face_boxes(self, image: np.ndarray):
        if self._face_boxes is None:
            from .landmarks import default_detector
            return default_detector().face_boxes(image)
        return self._face_boxes(image)

    def detect(self, image: np.ndarray) -> list[np.ndarray]:
        """(H, W, 3) uint8 RGB -> one (num_points, 3) float64 array per face box, image pixels."""
        image = _check_rgb8(image, "landmark detector")
        side_in = self.model.input_size[0]
        faces = []
        for x0, y0, x1, y1 in self.face_boxes(image):
            side = max(self.crop_scale * max(x1 - x0, y1 - y0), 1.0)
            left, top = (x0 + x1) / 2 - side / 2, (y0 + y1) / 2 - side / 2
            # Affine crop: crop pixel (u, v) samples image pixel (left + u * k, top + v * k).
            k = side / side_in
            crop = cv2.warpAffine(image, np.array([[1 / k, 0, -left / k], [0, 1 / k, -top / k]]),
                                  (side_in, side_in), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            out = self.model.run(_to_nchw(crop, (side_in, side_in), self.mean, self.std))
            if out.size not in (2 * self.num_points, 3 * self.num_points):
                raise ModelError(f"landmark model returned {out.size} values, expected "
                                 f"{self.num_points} points x 2 or x 3")
            points = out.reshape(self.num_points, -1).astype(np.float64)
            if not np.all(np.isfinite(points)):
                raise ModelError("landmark model returned NaN or infinite coordinates")
            if self.coordinates == "normalized":
                points = points * side_in
            xyz = np.zeros((self.num_points, 3))
            xyz[:, 0] = left + points[:, 0] * k
            xyz[:, 1] = top + points[:, 1] * k
            if points.shape[1] == 3:
                xyz[:, 2] = points[:, 2] * k
            faces.append(xyz)
        return faces


def _element_count(shape) -> Optional[int]:
    if any(d is None for d in shape):
        return None
    return int(np.prod(shape)) if shape else 1
