"""Write files so that a failure never leaves a half-written one behind."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import ExportError


def check_destination(path, suffixes) -> Path:
    """Return ``path`` as a Path after checking its suffix and that its folder exists."""
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise ExportError(f"{path}: file name must end in one of {', '.join(suffixes)}")
    if not path.parent.is_dir():
        raise ExportError(f"{path}: folder {path.parent} does not exist")
    if path.is_dir():
        raise ExportError(f"{path}: is a folder")
    return path


def write_files_atomically(files: dict) -> None:
    """Write ``{Path: bytes}``: every file goes to a temporary file in its own folder, then
    all are renamed into place.  On any failure the temporaries are removed and the
    destinations are untouched (renames of the same folder are atomic on POSIX and NTFS)."""
    temps = []
    try:
        for path, data in files.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            temps.append((tmp, path))
            # mkstemp makes owner-only files; give the result the mode open() would have.
            os.fchmod(fd, 0o666 & ~_umask())
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        for tmp, path in temps:
            os.replace(tmp, path)
    except OSError as exc:
        for tmp, _ in temps:
            if os.path.exists(tmp):
                os.remove(tmp)
        raise ExportError(f"{', '.join(str(p) for p in files)}: cannot write ({exc})") from exc


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask
