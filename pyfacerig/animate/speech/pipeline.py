"""``speak()``: speech audio (and optionally its transcript) in, a lip-sync :class:`Take` out.

Reads top to bottom: audio -> phones with timings -> visemes with coarticulation -> ARKit
weights (loudness, lip closure solved on the avatar's mesh) -> Take; ``write_speech`` then
writes the clip into the avatar, the Live Link Face CSV and the sidecar with the viseme curves.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from ...errors import ExportError, InvalidInputError
from ..take import Take
from .align import align
from .arkit import LipGap, close_lips, loudness_gain, visemes_to_weights
from .audio import SAMPLE_RATE, frame_rms_db, read_audio
from .text import normalise_transcript
from .visemes import VISEME_NAMES, closure_curve, viseme_curves

#: Default frame rate of speech takes: 60, so a 50 ms lip closure spans three frames.
DEFAULT_FPS = 60.0


def avatar_lips(avatar) -> LipGap | None:
    """The :class:`LipGap` of an avatar: a path to a pyfacerig .glb, an :class:`pyfacerig.Avatar`,
    or None (no avatar: lips are closed the ARKit way, mouthClose = jawOpen)."""
    if avatar is None:
        return None
    from ...templates import ARKIT_SHAPE_NAMES, load_default
    template = load_default()
    if isinstance(avatar, (str, os.PathLike)):
        positions, deltas, names = _skin_from_glb_cached(Path(avatar))
        missing = [n for n in ARKIT_SHAPE_NAMES if n not in names]
        if missing:
            raise InvalidInputError(f"{str(avatar)!r}: the face mesh lacks ARKit shapes {missing[:5]}")
        return LipGap.from_skin(positions, deltas[[names.index(n) for n in ARKIT_SHAPE_NAMES]],
                                template.skin_landmark_ids(len(positions)))
    parts = getattr(avatar, "parts", None)
    if isinstance(parts, dict) and "skin" in parts:
        skin = parts["skin"]
        return LipGap.from_skin(skin.vertices, skin.shape_deltas, template.skin_landmark_ids(len(skin.vertices)))
    raise InvalidInputError(f"avatar must be a .glb path or a pyfacerig Avatar, not {type(avatar).__name__}")


_SKIN_CACHE: dict = {}


def _skin_from_glb_cached(path: Path) -> tuple[np.ndarray, np.ndarray, list]:
    """(positions (N, 3), target deltas (M, N, 3), target names) of a pyfacerig .glb's skin,
    remembered per (path, size, modification time): a batch of lines for one avatar reads
    its file once."""
    from ..avatar_file import load_avatar_glb
    try:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    except OSError:
        key = None
    if key is None or key not in _SKIN_CACHE:
        loaded = load_avatar_glb(path)       # typed InvalidInputError for anything but an avatar glb
        skin = loaded.part("skin")
        value = (skin.positions, skin.target_positions, list(loaded.target_names))
        if key is None:
            return value
        _SKIN_CACHE.clear()
        _SKIN_CACHE[key] = value
    return _SKIN_CACHE[key]


def speak(audio, avatar=None, text: str | None = None, fps: float = DEFAULT_FPS,
          sample_rate: int | None = None) -> Take:
    """Lip sync: a :class:`pyfacerig.animate.Take` of ARKit weights that speaks ``audio``.

    audio: WAV path or bytes, or an (N,) / (N, channels) sample array with ``sample_rate``.
    avatar: the .glb (or :class:`pyfacerig.Avatar`) the take is for; its mesh decides how far
        mouthClose must go to shut its lips.  None: a generic take (mouthClose = jawOpen).
    text: the transcript (forced alignment), or None (phone recognition).
    fps: frame rate of the take.
    Returns a Take: weights (T, 52) float32, head_pose and gaze zero, and ``report`` with the
    phones, words, method ("forced", "recognised" or "silent"), notes on every fallback and
    "visemes" ({"names": 15 names, "fps", "curves": (15, T) list}).
    """
    started = time.perf_counter()
    try:
        fps = float(fps)
    except (TypeError, ValueError):
        raise InvalidInputError(f"fps must be a number, got {fps!r}") from None
    if not np.isfinite(fps) or not 1.0 <= fps <= 240.0:
        raise InvalidInputError(f"fps must lie in 1..240, got {fps}")
    words = normalise_transcript(text) if text is not None else None
    lips = avatar_lips(avatar)
    sound = read_audio(audio, sample_rate=sample_rate)
    loaded = time.perf_counter()

    alignment = align(sound, words)
    aligned = time.perf_counter()

    frame_count = int(np.floor(sound.duration * fps)) + 1
    curves = viseme_curves(alignment.phones, frame_count, fps)
    levels = _levels_at_frames(sound.samples, frame_count, fps)
    speaking = _speaking_frames(alignment.phones, frame_count, fps)
    weights = visemes_to_weights(curves, loudness_gain(levels, speaking))
    weights = close_lips(weights, closure_curve(alignment.phones, frame_count, fps), lips)
    finished = time.perf_counter()

    report = {
        "source": "speech",
        "method": alignment.method,
        "alignment_score_per_frame": alignment.score_per_frame,
        "transcript_words": words or [],
        "notes": list(sound.notes) + list(alignment.notes),
        "audio": {"duration_s": round(sound.duration, 4), "source_rate": sound.source_rate,
                  "source_channels": sound.source_channels},
        "phones": [[p.phone, round(p.start, 4), round(p.end, 4)] for p in alignment.phones],
        "words": [list(w) for w in alignment.words],
        "lip_closure": "solved on the avatar's mesh" if lips is not None else "mouthClose = jawOpen",
        "visemes": {"names": list(VISEME_NAMES), "fps": fps,
                    "curves": np.round(curves.astype(np.float64), 4).tolist()},
        "timings_s": {"read": round(loaded - started, 4), "align": round(aligned - loaded, 4),
                      "animate": round(finished - aligned, 4)},
    }
    frames = len(weights)
    return Take(weights=weights.astype(np.float32), head_pose=np.zeros((frames, 6), np.float32),
                gaze=np.zeros((frames, 4), np.float32), fps=fps, report=report)


def _levels_at_frames(samples: np.ndarray, frame_count: int, fps: float) -> np.ndarray:
    """(T,) dBFS level around each take frame (40 ms window, 10 ms hop, smoothed, then sampled)."""
    from scipy.ndimage import gaussian_filter1d
    levels = frame_rms_db(samples, hop=SAMPLE_RATE // 100, window=int(0.04 * SAMPLE_RATE))
    # Loudness is a syllable-scale envelope (~60 ms); anything faster would make the jaw buzz.
    levels = gaussian_filter1d(levels, 6.0, mode="nearest")
    times = np.arange(frame_count) / fps
    return np.interp(times * 100.0, np.arange(len(levels)), levels)


def _speaking_frames(phones, frame_count: int, fps: float) -> np.ndarray:
    """(T,) bool: the frames that fall in a spoken (not silent) phone."""
    times = np.arange(frame_count) / fps
    speaking = np.zeros(frame_count, bool)
    for seg in phones:
        if seg.phone != "sil":
            speaking |= (times >= seg.start) & (times < seg.end)
    return speaking


def sidecar(take: Take, clip_report: dict | None = None) -> dict:
    """The JSON sidecar of a speech take: viseme curves for engines that drive visemes, plus the
    phones and how they were found."""
    report = take.report
    visemes = report.get("visemes", {})
    return {
        "generator": "pyfacerig",
        "kind": "speech",
        "fps": take.fps,
        "frames": take.frame_count,
        "visemes": visemes.get("names", list(VISEME_NAMES)),
        "curves": visemes.get("curves", []),
        "method": report.get("method"),
        "notes": report.get("notes", []),
        "phones": report.get("phones", []),
        "words": report.get("words", []),
        "clip": clip_report or {},
    }


def write_speech(take: Take, avatar_path, out_path, csv_path=None, clip_name: str = "speech",
                 preset: str = "unity") -> dict:
    """Write the lip-sync outputs; nothing appears unless all of them were written.

    out_path (.glb or .fbx): the avatar with ``take`` as clip ``clip_name``;
    out_path with .json: the sidecar (viseme names, fps, (15, T) curves, phones);
    csv_path: a Live Link Face CSV, if given.
    Returns {"asset", "sidecar", "csv"} paths (csv None when not asked for).
    """
    from ..clip import write_take
    from ..livelink import livelink_csv_text

    out_path = Path(out_path)
    if out_path.suffix.lower() not in (".glb", ".fbx"):
        raise ExportError(f"{str(out_path)!r}: the animated avatar must end in .glb or .fbx")
    json_path = out_path.with_suffix(".json")
    targets = [out_path, json_path] + ([Path(csv_path)] if csv_path is not None else [])
    if len({p.resolve() for p in targets}) != len(targets):
        raise ExportError(f"output paths collide: {[str(p) for p in targets]}")
    for path in targets:
        if path.name in ("", ".", "..") or path.is_dir():
            raise ExportError(f"{str(path)!r}: is a folder; give a file name")
        if not path.parent.is_dir():
            raise ExportError(f"{str(path)!r}: folder {str(path.parent)!r} does not exist")
    temporaries: dict = {}
    try:
        for path in targets:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
            os.close(fd)
            temporaries[path] = Path(tmp)
        clip_report = write_take(avatar_path, take, temporaries[out_path], clip_name=clip_name, preset=preset)
        clip_report["path"] = str(out_path)
        temporaries[json_path].write_text(json.dumps(sidecar(take, clip_report), separators=(",", ":")) + "\n")
        if csv_path is not None:
            temporaries[Path(csv_path)].write_bytes(livelink_csv_text(take).encode("ascii"))
        umask = os.umask(0)
        os.umask(umask)
        for path, tmp in temporaries.items():
            os.chmod(tmp, 0o666 & ~umask)
            os.replace(tmp, path)
    except OSError as exc:
        raise ExportError(f"cannot write {str(out_path)!r}: {exc.strerror or exc}") from None
    finally:
        for tmp in temporaries.values():
            tmp.unlink(missing_ok=True)
    return {"asset": out_path, "sidecar": json_path, "csv": Path(csv_path) if csv_path is not None else None}


__all__ = ["speak", "write_speech", "sidecar", "avatar_lips", "DEFAULT_FPS"]
