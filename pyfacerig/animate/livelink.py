"""Live Link Face CSV: the take format of Epic's Live Link Face iPhone app.

Layout (one header row, then one row per frame)::

    Timecode,BlendShapeCount,EyeBlinkLeft,EyeLookDownLeft,...,TongueOut,
    HeadYaw,HeadPitch,HeadRoll,LeftEyeYaw,LeftEyePitch,LeftEyeRoll,RightEyeYaw,RightEyePitch,RightEyeRoll
    00:00:00:00.000,61,0.0123,...

* The 52 weights use PascalCase names in the app's own column order, which is Apple's ARKit
  order except that JawRight comes before JawLeft and MouthRight before MouthLeft (as in the
  header rows of published Live Link Face captures); values are 0..1.
* BlendShapeCount is 61: the 52 shapes plus the 9 head and eye angles.
* Timecode is ``HH:MM:SS:FF.mmm``: FF the frame within the second at the timecode rate, mmm the
  sub-frame in thousandths of a frame.  pyfacerig writes the take's fps (rounded) as the rate,
  starting at 00:00:00:00.000; recorded takes start at the phone's clock, so reading
  subtracts the first row's time.
* Head and eye angles are NORMALISED ANGLES, not degrees or radians: the angle in degrees
  divided by 180 (so -1..1 covers -180..180 degrees).  This is how Epic's ARKit face code
  (``ToBlendShapeMap`` in Unreal's AppleARKit plugin, which Live Link Face streams and
  records) fills HeadYaw...RightEyeRoll.  pyfacerig converts: CSV = radians / pi.  Signs follow
  :mod:`pyfacerig.animate.take` (yaw > 0 toward the subject's left, pitch > 0 down).
  Eye roll is written as 0 (eyes do not roll); head translation is not part of the format
  and reads back as 0.
"""
from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path

import numpy as np

from ..errors import LiveLinkFormatError
from ._files import write_bytes_atomically
from .take import SHAPE_NAMES, Take

__all__ = ["LIVELINK_SHAPE_COLUMNS", "LIVELINK_ANGLE_COLUMNS", "LIVELINK_HEADER", "BLENDSHAPE_COUNT",
           "write_livelink_csv", "read_livelink_csv", "format_timecode", "parse_timecode"]


def _pascal(name: str) -> str:
    return name[0].upper() + name[1:]


def _livelink_order() -> tuple[str, ...]:
    names = [_pascal(n) for n in SHAPE_NAMES]
    for a, b in (("JawLeft", "JawRight"), ("MouthLeft", "MouthRight")):
        i, j = names.index(a), names.index(b)
        names[i], names[j] = names[j], names[i]
    return tuple(names)


#: The 52 weight columns in Live Link Face's order (PascalCase).
LIVELINK_SHAPE_COLUMNS: tuple[str, ...] = _livelink_order()
#: The 9 angle columns that follow the weights.
LIVELINK_ANGLE_COLUMNS = ("HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
                          "RightEyeYaw", "RightEyePitch", "RightEyeRoll")
LIVELINK_HEADER = ("Timecode", "BlendShapeCount") + LIVELINK_SHAPE_COLUMNS + LIVELINK_ANGLE_COLUMNS
BLENDSHAPE_COUNT = len(LIVELINK_SHAPE_COLUMNS) + len(LIVELINK_ANGLE_COLUMNS)  # 61

# Column k of the CSV's weights holds Take.weights[:, _TAKE_INDEX[k]].
_TAKE_INDEX = np.array([[_pascal(n) for n in SHAPE_NAMES].index(c) for c in LIVELINK_SHAPE_COLUMNS])
_TIMECODE = re.compile(r"^(\d{1,3}):(\d{2}):(\d{2})[:;](\d{1,3})(?:\.(\d{1,6}))?$")
#: Timecode rates recognised when reading (Live Link Face records at 60 or 30).
_STANDARD_RATES = (24, 25, 30, 48, 50, 60, 90, 100, 120, 240)


def format_timecode(frame: int, fps: float) -> str:
    """``HH:MM:SS:FF.mmm`` of frame ``frame`` of a take at ``fps`` (rate = round(fps))."""
    rate = max(1, int(round(fps)))
    # Time in timecode frames; exact for integer rates, sub-frame for others (29.97, 23.976).
    position = round(frame * rate / fps * 1000)  # thousandths of a timecode frame
    whole, thousandths = divmod(position, 1000)
    seconds, ff = divmod(whole, rate)
    minutes, ss = divmod(seconds, 60)
    hh, mm = divmod(minutes, 60)
    return f"{hh:02d}:{mm:02d}:{ss:02d}:{ff:02d}.{thousandths:03d}"


def parse_timecode(text: str, where: str = "timecode") -> tuple[int, float]:
    """(whole seconds, frame position within the second incl. sub-frame) of ``HH:MM:SS:FF[.mmm]``."""
    match = _TIMECODE.match(text.strip())
    if not match:
        raise LiveLinkFormatError(f"{where}: {text!r} is not a timecode HH:MM:SS:FF.mmm")
    hh, mm, ss, ff, sub = match.groups()
    if int(mm) >= 60 or int(ss) >= 60:
        raise LiveLinkFormatError(f"{where}: {text!r} has minutes or seconds beyond 59")
    fraction = int(sub) / 10 ** len(sub) if sub else 0.0
    return int(hh) * 3600 + int(mm) * 60 + int(ss), int(ff) + fraction


def _number(value: float) -> str:
    # 9 significant digits keep float32 exactly; "-0" is written as "0" for stable bytes.
    text = f"{value:.9g}"
    return "0" if text in ("-0", "0") else text


def livelink_csv_text(take: Take) -> str:
    """The CSV text of ``take`` (what :func:`write_livelink_csv` writes)."""
    if not isinstance(take, Take):
        raise LiveLinkFormatError(f"write_livelink_csv: expected a Take, got {type(take).__name__}")
    angles = np.zeros((take.frame_count, len(LIVELINK_ANGLE_COLUMNS)), np.float64)
    angles[:, 0:3] = take.head_pose[:, 0:3].astype(np.float64) / math.pi
    angles[:, 3:5] = take.gaze[:, 0:2].astype(np.float64) / math.pi
    angles[:, 6:8] = take.gaze[:, 2:4].astype(np.float64) / math.pi
    weights = take.weights[:, _TAKE_INDEX].astype(np.float64)
    lines = [",".join(LIVELINK_HEADER)]
    for frame in range(take.frame_count):
        values = [_number(v) for v in weights[frame]] + [_number(v) for v in angles[frame]]
        lines.append(",".join([format_timecode(frame, take.fps), str(BLENDSHAPE_COUNT)] + values))
    return "\n".join(lines) + "\n"


def write_livelink_csv(take: Take, path) -> Path:
    """Write ``take`` as a Live Link Face CSV at ``path`` (atomically).  Returns the path."""
    return write_bytes_atomically(path, livelink_csv_text(take).encode("ascii"))


def read_livelink_csv(path, fps: float | None = None) -> Take:
    """Read a Live Link Face CSV into a :class:`Take`.

    Columns are matched by name (case-insensitively, so ``BlendshapeCount`` and camelCase
    names are accepted); any other set of columns raises LiveLinkFormatError naming the
    missing or unknown ones.  fps: the take's frame rate; by default the timecode rate, read
    from the FF values (the smallest standard rate above the largest FF; a take shorter than
    a second may not show its rate: pass fps then).
    Weights are clipped to [0, 1] (ARKit may report -1e-8); how many were clipped is in
    ``take.report["clipped_weights"]``.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise LiveLinkFormatError(f"{str(path)!r}: no such file") from None
    except IsADirectoryError:
        raise LiveLinkFormatError(f"{str(path)!r}: is a folder, not a CSV file") from None
    except UnicodeDecodeError:
        raise LiveLinkFormatError(f"{str(path)!r}: is not a text (UTF-8) file") from None
    except OSError as exc:
        raise LiveLinkFormatError(f"{str(path)!r}: cannot read ({exc.strerror or exc})") from None
    rows = [row for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)]
    if not rows:
        raise LiveLinkFormatError(f"{str(path)!r}: is empty")
    header = [cell.strip() for cell in rows[0]]
    columns = _column_indices(header, path)
    if len(rows) < 2:
        raise LiveLinkFormatError(f"{str(path)!r}: has a header but no frames")

    count = len(rows) - 1
    values = np.empty((count, len(header) - 1), np.float64)
    stamps = []
    for k, row in enumerate(rows[1:]):
        line = f"{path.name}, line {k + 2}"
        if len(row) != len(header):
            raise LiveLinkFormatError(f"{line}: has {len(row)} fields, the header has {len(header)}")
        stamps.append(parse_timecode(row[columns["timecode"]], line))
        try:
            values[k] = [float(row[i]) for i in columns["numbers"]]
        except ValueError:
            bad = next(c for c in (row[i] for i in columns["numbers"]) if not _is_float(c))
            raise LiveLinkFormatError(f"{line}: {bad!r} is not a number") from None
    if not np.isfinite(values).all():
        row = int(np.flatnonzero(~np.isfinite(values).all(axis=1))[0])
        raise LiveLinkFormatError(f"{path.name}, line {row + 2}: contains NaN or infinity")

    rate = _timecode_rate(stamps)
    times = np.array([(s - stamps[0][0]) + (f - stamps[0][1]) / rate for s, f in stamps])
    if len(times) > 1 and (np.diff(times) <= 0).any():
        bad = int(np.flatnonzero(np.diff(times) <= 0)[0])
        raise LiveLinkFormatError(f"{path.name}, line {bad + 3}: timecode does not increase")
    if fps is None:
        fps = float(rate)

    names = columns["names"]
    weights_llf = values[:, [names.index(c.lower()) for c in LIVELINK_SHAPE_COLUMNS]]
    angles = values[:, [names.index(c.lower()) for c in LIVELINK_ANGLE_COLUMNS]] * math.pi
    clipped = int(((weights_llf < 0) | (weights_llf > 1)).sum())
    weights = np.empty_like(weights_llf)
    weights[:, _TAKE_INDEX] = np.clip(weights_llf, 0.0, 1.0)
    head = np.zeros((count, 6))
    head[:, 0:3] = angles[:, 0:3]
    gaze = angles[:, [3, 4, 6, 7]]
    report = {"source": str(path), "frames": count, "timecode_rate": rate,
              "duration_s": float(times[-1]) if count else 0.0, "clipped_weights": clipped}
    return Take(weights, head, gaze, fps, report)


def _is_float(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _column_indices(header: list, path: Path) -> dict:
    lowered = [h.lower() for h in header]
    expected = [h.lower() for h in LIVELINK_HEADER]
    duplicates = sorted({h for h in header if lowered.count(h.lower()) > 1})
    if duplicates:
        raise LiveLinkFormatError(f"{str(path)!r}: not a Live Link Face CSV: duplicate columns {duplicates}")
    missing = [h for h in LIVELINK_HEADER if h.lower() not in lowered]
    unknown = [h for h in header if h.lower() not in expected]
    if missing or unknown:
        problems = []
        if missing:
            problems.append(f"missing columns {missing}")
        if unknown:
            problems.append(f"unknown columns {unknown}")
        raise LiveLinkFormatError(f"{str(path)!r}: not a Live Link Face CSV: " + "; ".join(problems))
    timecode = lowered.index("timecode")
    numbers = [i for i in range(len(header)) if i != timecode]
    return {"timecode": timecode, "numbers": numbers, "names": [lowered[i] for i in numbers]}


def _timecode_rate(stamps: list) -> int:
    """The timecode's frames-per-second: the smallest standard rate above the largest frame
    field seen.  Exact for a take that crosses a second boundary (its FF values wrap at the
    rate); for a shorter take it is the smallest rate the frame numbers allow (pass ``fps``
    to read_livelink_csv when you know better)."""
    largest = max(int(f) for _, f in stamps)
    return next((r for r in _STANDARD_RATES if r > largest), largest + 1)
