"""Facial animation: takes (per-frame ARKit weights, head pose, gaze), Live Link Face CSV,
animation clips in an avatar's .glb/.fbx, and solving takes from video.

``pyfacerig.animate`` (the attribute of the top-level package) is the function
:func:`pyfacerig.animate.video.animate`, bound over this subpackage the same way
``pyfacerig.build`` is (see pyfacerig/__init__.py); import the pieces from here:
``from pyfacerig.animate import Take, read_livelink_csv, write_take``.
"""
from .take import Take, SHAPE_NAMES  # noqa: F401
from .livelink import read_livelink_csv, write_livelink_csv  # noqa: F401
from .clip import write_take, retarget_weights  # noqa: F401

__all__ = ["Take", "SHAPE_NAMES", "read_livelink_csv", "write_livelink_csv", "write_take", "retarget_weights"]
