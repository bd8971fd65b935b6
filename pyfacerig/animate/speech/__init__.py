"""Lip sync from speech: audio (and its transcript) to ARKit weight curves, offline on a CPU.

audio -> phones with timings (pocketsphinx forced alignment, or phone recognition) ->
the 15 Oculus/Meta visemes with coarticulation -> the 52 ARKit weights -> a
:class:`pyfacerig.animate.Take`.  See docs/speech.md.
"""
from .pipeline import DEFAULT_FPS, avatar_lips, sidecar, speak, write_speech  # noqa: F401
from .visemes import VISEME_NAMES  # noqa: F401

__all__ = ["speak", "write_speech", "sidecar", "avatar_lips", "VISEME_NAMES", "DEFAULT_FPS"]
