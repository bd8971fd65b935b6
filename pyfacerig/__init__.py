"""pyfacerig: one portrait in, a textured, ARKit-rigged game face out.

The heavy pipeline is imported lazily so that ``import pyfacerig`` stays cheap
for scripts that only need the geometry core or the runtime.
"""
from .errors import (  # noqa: F401
    PyFaceRigError, InvalidInputError, ImageReadError, FaceDetectionError, NoFaceError,
    MultipleFacesError, FaceTooSmallError, FaceCutOffError, ModelError, RigFileError, ExportError,
)

__version__ = "0.1.0"


def build(*args, **kwargs):
    """Portrait to game asset; see :func:`pyfacerig.build.build`."""
    from .build import build as _build
    return _build(*args, **kwargs)
