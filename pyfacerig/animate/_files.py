"""Atomic file writing for the animate package (temporary file in the same folder + os.replace)."""
from __future__ import annotations

from pathlib import Path

from engine_export.atomic import write_files_atomically

from ..errors import ExportError


def write_bytes_atomically(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that the file is either complete or untouched."""
    path = Path(path)
    if path.name in ("", ".", "..") or path.is_dir():
        raise ExportError(f"{str(path)!r}: is a folder; give a file name")
    if not path.parent.is_dir():
        raise ExportError(f"{str(path)!r}: folder {str(path.parent)!r} does not exist")
    try:
        write_files_atomically({path: data})
    except ValueError as exc:  # engine_export.ExportError
        raise ExportError(str(exc)) from None
    return path
