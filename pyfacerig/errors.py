"""Typed errors raised where bad data enters pyfacerig.

Every error names the offending thing in its message.  The array-checking
errors derive from ``ValueError`` so callers that only know the standard
library still catch them; the CLI maps every ``PyFaceRigError`` to a non-zero
exit code with the message on stderr.
"""


class PyFaceRigError(Exception):
    """Base of every error pyfacerig raises on purpose."""


class InvalidInputError(PyFaceRigError, ValueError):
    """Arrays or arguments that cannot be used: NaN, wrong shapes, bad indices, degenerate triangles."""


class ImageReadError(PyFaceRigError, ValueError):
    """The image could not be read or decoded (missing file, corrupt bytes, unsupported layout)."""


class FaceDetectionError(PyFaceRigError, ValueError):
    """Base for problems with the face found (or not found) in an image."""


class NoFaceError(FaceDetectionError):
    """No face was found in the image."""


class MultipleFacesError(FaceDetectionError):
    """Several faces were found and the caller did not say which one to use."""


class FaceTooSmallError(FaceDetectionError):
    """The face is too small in the image to reconstruct reliably."""


class FaceCutOffError(FaceDetectionError):
    """Too much of the face lies outside the image."""


class ModelError(PyFaceRigError, ValueError):
    """A user-supplied network (ONNX model) does not meet its stage's contract."""


class RigFileError(PyFaceRigError, ValueError):
    """A runtime rig file (.frig) is truncated, corrupt or hostile."""


class ExportError(PyFaceRigError, ValueError):
    """An asset cannot be written: bad asset data, names a format cannot carry, an unwritable path."""


class InvalidImageError(ImageReadError, InvalidInputError):
    """An image array that cannot be used: zero size, unsupported shape or dtype, NaN, out of range.

    Both an ImageReadError (it is the image that failed) and an InvalidInputError
    (it is an array problem), so either ``except`` catches it.
    """


class TakeError(InvalidInputError):
    """An animation take (weights, head pose, gaze, frame rate) with wrong shapes, NaN or bad values."""


class LiveLinkFormatError(TakeError):
    """A Live Link Face CSV that does not have Live Link Face's columns, or has unreadable rows."""


class VideoReadError(ImageReadError):
    """A video (or frame sequence) that cannot be opened or decoded."""


class AudioReadError(PyFaceRigError, ValueError):
    """Audio that cannot be used: missing or corrupt file, unsupported sample format, no samples, NaN."""


class TranscriptError(InvalidInputError):
    """A transcript that cannot be spoken: empty after normalisation, or not text."""


class SpeechSynthesisError(PyFaceRigError, RuntimeError):
    """Text could not be turned into speech (espeak-ng is not installed, or it failed)."""


class MissingDependencyError(PyFaceRigError, ImportError):
    """An optional dependency a feature needs is not installed (the message says how to install it)."""


class LandmarkQualityError(FaceDetectionError):
    """The landmarks found do not fit the image (e.g. a cartoon the photo detector misreads).

    ``region`` names the worst region ("eyes", "mouth", "brows", "contour") and ``score`` its
    quality score in [0, 1] (pyfacerig.landmark_quality).
    """

    def __init__(self, message: str, *, region: str = "", score: float = float("nan")):
        super().__init__(message)
        self.region = region
        self.score = score


class TemplateSourceError(InvalidInputError):
    """A head given to the template maker (a glTF file) cannot become a template: unreadable,
    damaged, without UVs or eyes, or in the wrong units.  ``missing`` lists ARKit shape names the
    head lacks (empty for other problems)."""

    def __init__(self, message: str, missing: tuple = ()):
        super().__init__(message)
        self.missing = tuple(missing)
