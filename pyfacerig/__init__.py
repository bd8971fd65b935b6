"""pyfacerig: one portrait in, a textured, ARKit-rigged game face out.

``pyfacerig.build`` names both the submodule ``pyfacerig/build.py`` and the function in it.
The import system binds a package attribute to a submodule only when the submodule is
first loaded; importing the function here right away therefore leaves ``pyfacerig.build``
bound to the function for good, whatever is imported later (``import pyfacerig.build``
finds the module already loaded and does not rebind the name).  The price is that
``import pyfacerig`` loads the pipeline's dependencies (numpy, scipy, OpenCV, the exporter;
about 0.4 s here); MediaPipe itself is still loaded only when a face is first detected.
"""
from .errors import (  # noqa: F401
    PyFaceRigError, InvalidInputError, ImageReadError, FaceDetectionError, NoFaceError,
    MultipleFacesError, FaceTooSmallError, FaceCutOffError, ModelError, RigFileError, ExportError,
    TakeError, LiveLinkFormatError, VideoReadError,
)
from .build import Avatar, build  # noqa: F401  (binds the function over the submodule; see above)
from . import animate  # noqa: F401  (a callable package: pyfacerig.animate(video, avatar) -> Take)
from .animate import Take  # noqa: F401
from .animate.speech import speak  # noqa: F401  (lip sync: audio (+ transcript) -> Take)

__version__ = "0.1.0"
