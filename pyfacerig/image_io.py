"""Image input: any portrait the caller has, as one (H, W, 3) uint8 RGB array.

``load_image`` is the one place where images enter pyfacerig.  It accepts a file
path, encoded bytes, a Pillow image or a numpy array, applies the EXIF
orientation a camera recorded, and normalises every pixel layout the pipeline
may meet (grey, grey+alpha, RGBA, palette, CMYK, 16-bit, float) to 8-bit RGB at
full resolution.  Detection runs on a smaller copy (``detection_image``); the
texture stage keeps the full-resolution pixels.

Choices where callers could expect something else:

* Transparent pixels are composited on WHITE, not black: a cut-out portrait on
  white looks like a studio photo to the face detector, whereas black turns
  dark hair and the background into one region.
* 16-bit data is scaled with ``round(v / 257)`` so 0 -> 0 and 65535 -> 255
  exactly.
* Float arrays must lie in [0, 1]; anything outside is rejected rather than
  guessed at (a [0, 255] float image is a common mistake worth naming).
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Union

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageReadError, InvalidImageError

ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview, np.ndarray, Image.Image]

#: Background colour used under transparent pixels (RGB, uint8).
ALPHA_BACKGROUND = (255, 255, 255)


def load_image(source: ImageSource) -> np.ndarray:
    """Read a portrait into an (H, W, 3) uint8 RGB array at full resolution.

    Parameters
    ----------
    source:
        * ``str`` / ``os.PathLike``: an image file Pillow can decode (JPEG, PNG,
          WebP, TIFF, BMP, ...).
        * ``bytes`` / ``bytearray`` / ``memoryview``: the encoded file content.
        * ``PIL.Image.Image``.
        * ``np.ndarray``: (H, W) grey, (H, W, 1) grey, (H, W, 3) RGB or
          (H, W, 4) RGBA, with dtype uint8, uint16 (scaled to 8 bits), bool,
          or float16/32/64 with values in [0, 1].

    EXIF orientation (tag 274) of encoded input is applied, so the returned
    pixels are upright as a photo viewer shows them.  Alpha is composited on
    white (:data:`ALPHA_BACKGROUND`).

    Returns
    -------
    (H, W, 3) uint8, C-contiguous, never a view of the caller's array.

    Raises
    ------
    ImageReadError
        missing/unreadable file, empty or corrupt bytes, unknown format,
        decompression bomb.
    InvalidImageError (an ImageReadError and an InvalidInputError)
        an array with zero size, an unsupported shape or dtype, NaN/inf, or
        float values outside [0, 1].
    """
    if isinstance(source, np.ndarray):
        return _array_to_rgb8(source, what="image array")
    if isinstance(source, Image.Image):
        return _pil_to_rgb8(source, what="PIL image")
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise ImageReadError("image bytes are empty (0 bytes)")
        return _decode(data, what=f"image bytes ({len(data)} bytes)")
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ImageReadError(f"image file not found: {str(path)!r}") from None
        except IsADirectoryError:
            raise ImageReadError(f"image path is a directory, not a file: {str(path)!r}") from None
        except OSError as exc:
            raise ImageReadError(f"cannot read image file {str(path)!r}: {exc.strerror or exc}") from None
        if not data:
            raise ImageReadError(f"image file is empty (0 bytes): {str(path)!r}")
        return _decode(data, what=f"image file {str(path)!r}")
    raise ImageReadError(
        f"cannot read an image from a {type(source).__name__}; "
        "pass a path, encoded bytes, a PIL image or a numpy array")


def detection_image(image: np.ndarray, max_side: int = 640) -> tuple[np.ndarray, float]:
    """Downscale ``image`` so its longer side is at most ``max_side`` pixels.

    Returns ``(small, scale)`` where ``small`` is (h, w, C) of the same dtype and
    ``scale = small_size / full_size`` (<= 1), so a point ``p_small`` found in
    ``small`` is ``p_small / scale`` in the full image.  An image that already
    fits is returned as is with ``scale == 1.0``.  INTER_AREA averages the
    dropped pixels, which keeps small faces detectable after a large reduction.
    """
    if max_side < 1:
        raise InvalidImageError(f"max_side must be >= 1, got {max_side}")
    h, w = image.shape[:2]
    longest = max(h, w)
    if longest <= max_side:
        return image, 1.0
    scale = max_side / longest
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    # The effective scale differs from ``scale`` by rounding; use the longer side's
    # ratio, which is exact for that side and within half a pixel for the other.
    return small, (size[0] / w if w >= h else size[1] / h)


def _decode(data: bytes, what: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as pil:
            pil.load()
            return _pil_to_rgb8(pil, what=what)
    except UnidentifiedImageError:
        raise ImageReadError(f"{what} is not an image format Pillow can identify") from None
    except Image.DecompressionBombError as exc:
        raise ImageReadError(f"{what} is too large to decode safely: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # Truncated or corrupt streams surface as OSError ("image file is truncated"),
        # SyntaxError (broken headers) or ValueError from the individual decoders.
        if isinstance(exc, ImageReadError):
            raise
        raise ImageReadError(f"{what} is corrupt or truncated: {exc}") from None


def _pil_to_rgb8(pil: Image.Image, what: str) -> np.ndarray:
    if pil.width == 0 or pil.height == 0:
        raise InvalidImageError(f"{what} has zero size ({pil.width}x{pil.height})")
    pil = ImageOps.exif_transpose(pil)
    mode = pil.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # 16-bit greyscale PNG/TIFF: Pillow keeps the values, we scale them.
        arr = np.asarray(pil)
        if mode == "I":
            if arr.size and (arr.min() < 0 or arr.max() > 65535):
                raise InvalidImageError(f"{what} has 32-bit integer pixels outside 0..65535")
        return _array_to_rgb8(arr.astype(np.uint16), what=what)
    if mode == "F":
        return _array_to_rgb8(np.asarray(pil, dtype=np.float32), what=what)
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in pil.info):
        return _array_to_rgb8(np.asarray(pil.convert("RGBA")), what=what)
    if mode != "RGB":
        pil = pil.convert("RGB")
    return np.array(pil, dtype=np.uint8, copy=True)


def _array_to_rgb8(arr: np.ndarray, what: str) -> np.ndarray:
    if arr.size == 0:
        raise InvalidImageError(f"{what} is empty (shape {arr.shape})")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise InvalidImageError(
            f"{what} has shape {arr.shape}; expected (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)")
    rgb8 = _to_uint8(arr, what)
    if rgb8.ndim == 2:
        return np.ascontiguousarray(np.repeat(rgb8[:, :, None], 3, axis=2))
    if rgb8.shape[2] == 4:
        return _composite_on_background(rgb8)
    return np.array(rgb8, dtype=np.uint8, order="C", copy=True)


def _to_uint8(arr: np.ndarray, what: str) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if arr.dtype == np.uint16:
        # 65535 / 257 == 255 exactly, so the full range maps onto the full range.
        return ((arr.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            bad = int(np.count_nonzero(~np.isfinite(arr)))
            raise InvalidImageError(f"{what} contains {bad} NaN or infinite values")
        lo, hi = float(arr.min()), float(arr.max())
        if lo < 0.0 or hi > 1.0:
            raise InvalidImageError(
                f"{what} is float with values in [{lo:g}, {hi:g}]; float images must lie in [0, 1]")
        return np.rint(arr.astype(np.float64) * 255.0).astype(np.uint8)
    raise InvalidImageError(
        f"{what} has dtype {arr.dtype}; supported are uint8, uint16, bool and float in [0, 1]")


def _composite_on_background(rgba: np.ndarray) -> np.ndarray:
    alpha = rgba[:, :, 3:4].astype(np.float32) / 255.0
    background = np.asarray(ALPHA_BACKGROUND, dtype=np.float32)
    rgb = rgba[:, :, :3].astype(np.float32) * alpha + background * (1.0 - alpha)
    return np.ascontiguousarray(np.rint(rgb).astype(np.uint8))
