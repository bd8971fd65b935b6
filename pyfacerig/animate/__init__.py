"""Facial animation: takes (per-frame ARKit weights, head pose, gaze), Live Link Face CSV,
animation clips in an avatar's .glb/.fbx, and solving takes from video.

This package is also callable: ``pyfacerig.animate(video, "npc.glb", ...)`` is
:func:`pyfacerig.animate.video.animate`.  Unlike ``pyfacerig.build`` (a function bound over
its module), the package stays a module, so ``import pyfacerig.animate.take`` and
``from pyfacerig.animate import Take`` keep working.
"""
import sys as _sys
import types as _types

from .take import Take, SHAPE_NAMES  # noqa: F401
from .livelink import read_livelink_csv, write_livelink_csv  # noqa: F401
from .clip import write_take, retarget_weights  # noqa: F401
from .video import animate, solve_take, track_landmarks, SolveSettings  # noqa: F401

__all__ = ["Take", "SHAPE_NAMES", "read_livelink_csv", "write_livelink_csv", "write_take", "retarget_weights",
           "animate", "solve_take", "track_landmarks", "SolveSettings"]


class _CallableModule(_types.ModuleType):
    """The module type of this package: calling it runs :func:`animate`."""

    def __call__(self, *args, **kwargs):
        return animate(*args, **kwargs)


_sys.modules[__name__].__class__ = _CallableModule
