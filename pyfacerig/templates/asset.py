"""The committed template file: a deterministic, uncompressed zip of .npy arrays + JSON.

``np.savez`` stamps the current time into the archive, so the same template would
give different bytes on every run.  Here every entry gets a fixed date, a fixed
order and no compression (zlib output may differ between zlib builds), so
regenerating the template reproduces the file byte for byte.  Shape deltas are
sparse: per part, only the vertices a shape moves are stored (CSR-like:
offsets per shape, vertex indices, float32 deltas).
"""
from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from ..errors import ExportError, InvalidInputError

FORMAT = "pyfacerig-template"
VERSION = 3                 # 3: the head skeleton and the skin's joint weights
FIXED_DATE = (1980, 1, 1, 0, 0, 0)
DELTA_QUANTUM = 1e-7        # metres; smaller deltas are not stored


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def sparse_deltas(deltas: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(S, N, 3) deltas -> offsets (S+1,) int32, vertex ids (K,) int32, values (K, 3) float32."""
    q = np.round(deltas / DELTA_QUANTUM) * DELTA_QUANTUM + 0.0   # + 0.0 turns -0.0 into 0.0
    offsets, ids, values = [0], [], []
    for d in q:
        moved = np.flatnonzero(np.any(d != 0.0, axis=1))
        ids.append(moved)
        values.append(d[moved])
        offsets.append(offsets[-1] + len(moved))
    return (np.asarray(offsets, np.int32), np.concatenate(ids).astype(np.int32),
            np.concatenate(values).astype(np.float32))


def dense_deltas(offsets, ids, values, n_shapes: int, n_vertices: int) -> np.ndarray:
    out = np.zeros((n_shapes, n_vertices, 3), np.float32)
    for s in range(n_shapes):
        a, b = offsets[s], offsets[s + 1]
        out[s, ids[a:b]] = values[a:b]
    return out


def write(path: str | os.PathLike, header: dict, arrays: dict[str, np.ndarray],
          kind: str = FORMAT) -> None:
    """Write atomically (temp file in the same directory, then os.replace)."""
    path = Path(path)
    header = dict(header, format=kind, version=VERSION)
    try:
        fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_STORED) as zf:
            entries = [("header.json", json.dumps(header, sort_keys=True, indent=1).encode())]
            entries += [(f"{name}.npy", _npy_bytes(arrays[name])) for name in sorted(arrays)]
            for name, data in entries:
                info = zipfile.ZipInfo(name, date_time=FIXED_DATE)
                info.compress_type = zipfile.ZIP_STORED
                info.external_attr = 0o644 << 16
                info.create_system = 3
                zf.writestr(info, data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)          # mkstemp's 0600 is too private for an asset
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read(path: str | os.PathLike, kind: str | tuple = FORMAT) -> tuple[dict, dict[str, np.ndarray]]:
    """Header and arrays of a file written by :func:`write`; refuses any other kind of file.

    kind: the format name, or a tuple of the names accepted (the header's "format" says which).
    """
    kinds = (kind,) if isinstance(kind, str) else tuple(kind)
    try:
        with zipfile.ZipFile(path) as zf:
            header = json.loads(zf.read("header.json"))
            if header.get("format") not in kinds or header.get("version") != VERSION:
                raise InvalidInputError(f"{path} is not a {' or '.join(kinds)} v{VERSION} file")
            arrays = {}
            for name in zf.namelist():
                if name.endswith(".npy"):
                    with zf.open(name) as fh:
                        arrays[name[:-4]] = np.lib.format.read_array(io.BytesIO(fh.read()),
                                                                     allow_pickle=False)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        if isinstance(exc, InvalidInputError):
            raise
        raise InvalidInputError(f"cannot read template file {path}: {exc}") from None
    return header, arrays
