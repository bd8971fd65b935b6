"""Python face of the embedded blendshape runtime (src_cpp/runtime, C ABI).

pyfacerig's offline side writes a rig into the compact ``.frig`` format
(docs/rig_format.md); every load and every evaluation then goes through the same
shared library a game engine would link, via ctypes, so Python exercises the
exact C entry points.

    rig = Rig.from_arrays(neutral, deltas, names)   # (N,3), (M,N,3), M names
    rig.save("face.frig"); rig = Rig.load("face.frig")
    positions = rig.evaluate(weights)                # (N,3) float32

Evaluation is S = S0 + sum_i w_i dS_i (Pan et al., Eq. 13) in float32.
"""

from __future__ import annotations

import ctypes
import os
import struct
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np

from .errors import ExportError, InvalidInputError, RigFileError

__all__ = ["Rig", "SIMD_LEVELS", "build_rig_bytes", "library_path", "simd_supported"]

#: Dispatch levels of the C library (frig_simd_level), by name.
SIMD_LEVELS = {"scalar": 0, "sse2": 1, "avx2": 2, "avx512": 3, "neon": 4}

# Format constants; they mirror docs/rig_format.md and src_cpp/runtime/rig_loader.c.
_MAGIC = b"FRIG\r\n\x1a\n"
# magic, version, header size, file size, flags, N, M, block size, B, E,
# then the names offset and size and six section offsets; 16 reserved zero bytes.
_HEADER = struct.Struct("<8sIIQ6I8Q16x")
_VERSION = 1
_HEADER_SIZE = 128
_ALIGN = 64
_BLOCK = 16  # vertices per block
_MAX_VERTICES = 1 << 24
_MAX_SHAPES = 1 << 16
_MAX_NAME_BYTES = 255
_FLAG_HAS_NORMALS = 1
_FLAG_HALF_DELTAS = 2
_DELTA_DTYPES = {"float32": "<f4", "float16": "<f2"}

_OK, _INVALID_ARGUMENT = 0, 1


def library_path() -> Path:
    """Path of the shared runtime library installed beside this module."""
    if sys.platform == "win32":
        name = "facerig_runtime.dll"
    elif sys.platform == "darwin":
        name = "libfacerig_runtime.dylib"
    else:
        name = "libfacerig_runtime.so"
    return Path(__file__).resolve().parent / name


def _load_library() -> ctypes.CDLL:
    path = library_path()
    if not path.is_file():
        raise ImportError(
            f"the runtime library {path.name} is missing from {path.parent}; "
            "build it with tools/dev_build.sh or install pyfacerig with pip")
    lib = ctypes.CDLL(str(path))
    c_rig = ctypes.c_void_p
    f32p = ctypes.c_void_p  # numpy data addresses, passed as integers (cheapest ctypes path)
    signatures = {
        "frig_last_error": (ctypes.c_char_p, []),
        "frig_rig_load_memory": (ctypes.c_int, [ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(c_rig)]),
        "frig_rig_load_file": (ctypes.c_int, [ctypes.c_char_p, ctypes.POINTER(c_rig)]),
        "frig_rig_free": (None, [c_rig]),
        "frig_rig_vertex_count": (ctypes.c_uint32, [c_rig]),
        "frig_rig_shape_count": (ctypes.c_uint32, [c_rig]),
        "frig_rig_has_normals": (ctypes.c_int, [c_rig]),
        "frig_rig_shape_name": (ctypes.c_char_p, [c_rig, ctypes.c_uint32]),
        "frig_rig_file_bytes": (ctypes.c_void_p, [c_rig, ctypes.POINTER(ctypes.c_size_t)]),
        "frig_evaluate": (ctypes.c_int, [c_rig, f32p, ctypes.c_size_t, f32p, f32p]),
        "frig_evaluate_range": (ctypes.c_int, [c_rig, f32p, ctypes.c_size_t, ctypes.c_uint32,
                                               ctypes.c_uint32, f32p, f32p]),
        "frig_simd_supported": (ctypes.c_int, [ctypes.c_int]),
        "frig_simd_best": (ctypes.c_int, []),
        "frig_rig_simd_level": (ctypes.c_int, [c_rig]),
        "frig_rig_set_simd_level": (ctypes.c_int, [c_rig, ctypes.c_int]),
    }
    for name, (restype, argtypes) in signatures.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


_lib = _load_library()


def _last_error() -> str:
    return _lib.frig_last_error().decode("utf-8", "replace")


def simd_supported() -> list[str]:
    """Names of the SIMD levels this CPU and build can run, narrowest first."""
    return [name for name, level in SIMD_LEVELS.items() if _lib.frig_simd_supported(level)]


def _float_array(value, name: str, shape: tuple, dtype="<f4") -> np.ndarray:
    """Finite C-contiguous copy of `value` in `dtype` with exactly `shape` (None = any).

    Rounds once, from the caller's precision straight to `dtype`.
    """
    dtype = np.dtype(dtype)
    arr = value if isinstance(value, np.ndarray) and value.dtype == dtype else None
    if arr is None:
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"{name} is not a numeric array: {exc}") from None
    if arr.ndim != len(shape) or any(want is not None and got != want
                                     for got, want in zip(arr.shape, shape)):
        want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        raise InvalidInputError(f"{name} has shape {arr.shape}, expected {want}")
    if not np.all(np.isfinite(arr)):
        raise InvalidInputError(f"{name} contains NaN or infinite values")
    if arr.dtype != dtype and arr.size and np.abs(arr).max() > np.finfo(dtype).max:
        raise InvalidInputError(f"{name} has values beyond the {dtype.name} range")
    return np.ascontiguousarray(arr, dtype=dtype)


def _encode_names(names, shape_count: int) -> bytes:
    if isinstance(names, (str, bytes)):
        raise InvalidInputError("names must be a sequence of strings, not a single string")
    names = list(names)
    if len(names) != shape_count:
        raise InvalidInputError(f"{len(names)} names for {shape_count} shapes")
    if len(set(names)) != len(names):
        raise InvalidInputError("shape names are not unique")
    blob = bytearray()
    for i, name in enumerate(names):
        if not isinstance(name, str) or not name:
            raise InvalidInputError(f"shape name {i} ({name!r}) is not a non-empty string")
        raw = name.encode("utf-8")
        if b"\0" in raw or len(raw) > _MAX_NAME_BYTES:
            raise InvalidInputError(
                f"shape name {name!r} contains NUL or exceeds {_MAX_NAME_BYTES} UTF-8 bytes")
        blob += raw + b"\0"
    return bytes(blob)


def build_rig_bytes(neutral, deltas, names, normals=None, normal_deltas=None,
                    delta_precision="float32") -> bytes:
    """Serialise a rig to the .frig format (the offline half; see docs/rig_format.md).

    neutral (N, 3), deltas (M, N, 3), names: M unique strings; optional normals
    (N, 3) and normal_deltas (M, N, 3) (zeros if normals are given alone).
    Only the 16-vertex blocks in which a shape moves anything are stored.
    delta_precision "float32" (lossless, default) or "float16": deltas stored as
    IEEE binary16, half the bytes to stream, relative rounding <= 2**-11 per delta;
    evaluation stays float32 either way.
    The output depends only on the inputs (byte-identical for equal inputs).
    """
    neutral = _float_array(neutral, "neutral", (None, 3))
    n = neutral.shape[0]
    if not 1 <= n <= _MAX_VERTICES:
        raise InvalidInputError(f"neutral has {n} vertices, expected 1..{_MAX_VERTICES}")
    if delta_precision not in _DELTA_DTYPES:
        raise InvalidInputError(
            f"delta_precision must be one of {sorted(_DELTA_DTYPES)}, not {delta_precision!r}")
    delta_dtype = _DELTA_DTYPES[delta_precision]
    deltas = _float_array(deltas, "deltas", (None, n, 3), delta_dtype)
    m = deltas.shape[0]
    if m > _MAX_SHAPES:
        raise InvalidInputError(f"{m} shapes, at most {_MAX_SHAPES} are supported")
    name_blob = _encode_names(names, m)
    has_normals = normals is not None
    if normal_deltas is not None and not has_normals:
        raise InvalidInputError("normal_deltas were given without neutral normals")
    if has_normals:
        normals = _float_array(normals, "normals", (n, 3))
        normal_deltas = (np.zeros_like(deltas) if normal_deltas is None
                         else _float_array(normal_deltas, "normal_deltas", (m, n, 3), delta_dtype))

    # Block-major sparse layout: entry (block b, shape i) exists when shape i moves
    # (or turns the normal of) any vertex of block b.  Entries are ordered by block,
    # then shape, so the evaluator streams the deltas front to back.
    blocks = -(-n // _BLOCK)
    pad = blocks * _BLOCK - n

    def as_blocks(a):
        return np.pad(a, ((0, 0), (0, pad), (0, 0))).reshape(m, blocks, _BLOCK * 3)

    pos_blocks = as_blocks(deltas)
    moved = np.any(pos_blocks != 0, axis=2)
    if has_normals:
        nrm_blocks = as_blocks(normal_deltas)
        moved |= np.any(nrm_blocks != 0, axis=2)
    block_idx, shape_idx = np.nonzero(moved.T)
    entry_count = len(block_idx)
    block_starts = np.zeros(blocks + 1, dtype="<u4")
    np.cumsum(np.bincount(block_idx, minlength=blocks), out=block_starts[1:])

    sections = [name_blob, neutral.astype("<f4").tobytes()]
    if has_normals:
        sections.append(normals.astype("<f4").tobytes())
    sections += [block_starts.tobytes(), shape_idx.astype("<u4").tobytes(),
                 pos_blocks[shape_idx, block_idx].tobytes()]
    if has_normals:
        sections.append(nrm_blocks[shape_idx, block_idx].tobytes())

    body = bytearray(_HEADER_SIZE)
    offsets = []
    for data in sections:
        body += bytes(-len(body) % _ALIGN)
        offsets.append(len(body))
        body += data
    if has_normals:
        names_off, neutral_off, normals_off, starts_off, shapes_off, deltas_off, ndeltas_off = offsets
    else:
        names_off, neutral_off, starts_off, shapes_off, deltas_off = offsets
        normals_off = ndeltas_off = 0
    flags = ((_FLAG_HAS_NORMALS if has_normals else 0)
             | (_FLAG_HALF_DELTAS if delta_precision == "float16" else 0))
    header = _HEADER.pack(_MAGIC, _VERSION, _HEADER_SIZE, len(body) + 4, flags, n, m, _BLOCK,
                          blocks, entry_count, names_off, len(name_blob), neutral_off,
                          normals_off, starts_off, shapes_off, deltas_off, ndeltas_off)
    body[:len(header)] = header
    body += np.array([zlib.crc32(body)], "<u4").tobytes()
    return bytes(body)


class Rig:
    """A loaded, validated, immutable blendshape rig owned by the C runtime.

    Create it with :meth:`from_arrays`, :meth:`from_bytes` or :meth:`load`.
    Evaluation never allocates in C and may run from several threads at once
    (ctypes releases the GIL during the call).
    """

    def __init__(self, handle: ctypes.c_void_p):
        # Private: use the class methods, which validate before a handle exists.
        self._handle = handle
        self._free = _lib.frig_rig_free  # kept so __del__ works during interpreter shutdown
        self.vertex_count = int(_lib.frig_rig_vertex_count(handle))
        self.shape_count = int(_lib.frig_rig_shape_count(handle))
        self.has_normals = bool(_lib.frig_rig_has_normals(handle))
        self.names = tuple(_lib.frig_rig_shape_name(handle, i).decode("utf-8", "replace")
                           for i in range(self.shape_count))

    def __del__(self):
        handle = getattr(self, "_handle", None)
        if handle:
            self._free(handle)
            self._handle = None

    def __repr__(self) -> str:
        return (f"Rig(vertices={self.vertex_count}, shapes={self.shape_count}, "
                f"normals={self.has_normals})")

    # -- construction -----------------------------------------------------
    @classmethod
    def from_arrays(cls, neutral, deltas, names, normals=None, normal_deltas=None,
                    delta_precision="float32") -> "Rig":
        """Build a rig from neutral (N, 3), deltas (M, N, 3) and M unique names.

        Optional normals (N, 3) and normal_deltas (M, N, 3) make the rig evaluate
        normals too.  delta_precision: see build_rig_bytes.  Raises
        InvalidInputError for bad arrays or names.
        """
        return cls.from_bytes(build_rig_bytes(neutral, deltas, names, normals, normal_deltas,
                                              delta_precision))

    @classmethod
    def from_bytes(cls, data) -> "Rig":
        """Load a .frig image from memory.  Raises RigFileError if it is not a valid rig."""
        try:
            data = bytes(data)
        except TypeError:
            raise InvalidInputError(f"rig data must be bytes-like, not {type(data).__name__}") from None
        handle = ctypes.c_void_p()
        if _lib.frig_rig_load_memory(data, len(data), ctypes.byref(handle)) != _OK:
            raise RigFileError(f"rig bytes rejected: {_last_error()}")
        return cls(handle)

    @classmethod
    def load(cls, path) -> "Rig":
        """Load a .frig file.  Raises RigFileError if it is missing, unreadable or invalid."""
        handle = ctypes.c_void_p()
        if _lib.frig_rig_load_file(os.fsencode(os.fspath(path)), ctypes.byref(handle)) != _OK:
            raise RigFileError(f"rig file {os.fspath(path)!r} rejected: {_last_error()}")
        return cls(handle)

    def to_bytes(self) -> bytes:
        """The validated .frig image, byte for byte as loaded or built."""
        size = ctypes.c_size_t()
        ptr = _lib.frig_rig_file_bytes(self._handle, ctypes.byref(size))
        return ctypes.string_at(ptr, size.value)

    def save(self, path) -> None:
        """Write the rig to `path` atomically (temp file in the same folder, then rename).

        Raises ExportError if the file cannot be written; no partial file is left.
        """
        path = Path(path)
        tmp_name = None
        try:
            with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.",
                                             suffix=".tmp", delete=False) as tmp:
                tmp_name = tmp.name
                tmp.write(self.to_bytes())
                tmp.flush()
                os.fsync(tmp.fileno())
            os.replace(tmp_name, path)
        except OSError as exc:
            if tmp_name is not None and os.path.exists(tmp_name):
                os.unlink(tmp_name)
            raise ExportError(f"cannot write rig file {str(path)!r}: {exc}") from None

    # -- dispatch (tests and benchmarks) ------------------------------------
    @property
    def simd_level(self) -> str:
        level = _lib.frig_rig_simd_level(self._handle)
        return next(name for name, value in SIMD_LEVELS.items() if value == level)

    def force_simd_level(self, name: str) -> None:
        """Run this rig's evaluations on one kernel ('scalar', 'sse2', 'avx2', 'avx512', 'neon')."""
        if name not in SIMD_LEVELS:
            raise InvalidInputError(f"unknown SIMD level {name!r}; known: {sorted(SIMD_LEVELS)}")
        if _lib.frig_rig_set_simd_level(self._handle, SIMD_LEVELS[name]) != _OK:
            raise InvalidInputError(_last_error())

    # -- evaluation ---------------------------------------------------------
    def _weights(self, weights) -> np.ndarray:
        # Fast path for the per-frame case; the C side still refuses NaN/inf weights.
        if (type(weights) is np.ndarray and weights.dtype == np.float32
                and weights.shape == (self.shape_count,) and weights.flags.c_contiguous):
            return weights
        return _float_array(weights, "weights", (self.shape_count,))

    def _output(self, out, name: str) -> np.ndarray:
        if out is None:
            return np.empty((self.vertex_count, 3), dtype=np.float32)
        if (not isinstance(out, np.ndarray) or out.dtype != np.float32
                or out.shape != (self.vertex_count, 3) or not out.flags.c_contiguous
                or not out.flags.writeable):
            raise InvalidInputError(
                f"{name} must be a writeable C-contiguous float32 array of shape "
                f"({self.vertex_count}, 3)")
        return out

    def _call(self, weights, begin, end, out, normals_out):
        status = _lib.frig_evaluate_range(
            self._handle, weights.ctypes.data, weights.size, begin, end, out.ctypes.data,
            None if normals_out is None else normals_out.ctypes.data)
        if status != _OK:
            raise InvalidInputError(_last_error())

    def evaluate(self, weights, out=None) -> np.ndarray:
        """Positions (N, 3) float32 = neutral + sum_i weights[i] * deltas[i].

        weights: (M,) finite numbers, any sign or magnitude.  `out`, if given,
        must be a writeable C-contiguous (N, 3) float32 array and is returned.
        """
        weights = self._weights(weights)
        out = self._output(out, "out")
        self._call(weights, 0, self.vertex_count, out, None)
        return out

    def evaluate_with_normals(self, weights, out=None, normals_out=None):
        """(positions (N, 3), unit normals (N, 3)) float32; the rig must have normals."""
        if not self.has_normals:
            raise InvalidInputError("this rig was built without normals")
        weights = self._weights(weights)
        out = self._output(out, "out")
        normals_out = self._output(normals_out, "normals_out")
        self._call(weights, 0, self.vertex_count, out, normals_out)
        return out, normals_out

    def evaluate_range(self, weights, begin: int, end: int, out=None, normals_out=None) -> np.ndarray:
        """Write only vertices [begin, end) of a full-size (N, 3) `out` and return it.

        Lets a host split one evaluation over threads; rows outside the range
        are left untouched (uninitialised if `out` is None).
        """
        weights = self._weights(weights)
        if not (isinstance(begin, (int, np.integer)) and isinstance(end, (int, np.integer))
                and 0 <= begin <= end <= self.vertex_count):
            raise InvalidInputError(
                f"vertex range [{begin}, {end}) not within [0, {self.vertex_count}]")
        if normals_out is not None and not self.has_normals:
            raise InvalidInputError("this rig was built without normals")
        out = self._output(out, "out")
        if normals_out is not None:
            normals_out = self._output(normals_out, "normals_out")
        self._call(weights, int(begin), int(end), out, normals_out)
        return out
