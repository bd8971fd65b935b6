"""Portrait -> cartoon (Pan et al. §3, stage 1), with a user's network or a classical filter.

Pan et al. stylise the portrait with a StyleGAN before reconstruction.  Here the
caller may plug in any :class:`pyfacerig.networks.Stylizer` (for example an ONNX
export of a portrait-to-cartoon generator via :class:`~pyfacerig.networks.OnnxStylizer`);
without one, ``style="cartoon"`` still runs end to end with a classical OpenCV
filter made of three steps:

1. edge-preserving smoothing (``cv2.edgePreservingFilter``, recursive filter)
   flattens skin and cloth into areas of nearly constant colour while keeping
   the borders between them;
2. colour quantisation in CIELAB (lightness into ``levels`` bands, chroma into
   coarser steps) gives the flat, banded shading of cel animation -- a fixed
   uniform quantiser rather than k-means, so the result does not depend on a
   random seed;
3. dark outlines from an adaptive threshold of the median-blurred grey image,
   drawn where the local contrast is strong (eyes, brows, lips, hair line).

The filter works on a copy whose longer side is at most ``max_side`` pixels (the
look does not need more, and the smoothing is the slow part) and returns an image
of the input's size.  It is deterministic: same pixels in, same bytes out.
"""
from __future__ import annotations

from typing import Optional, Union

import cv2
import numpy as np

from .errors import InvalidInputError
from .image_io import detection_image
from .networks import ModelSource, OnnxStylizer, Stylizer


def stylize(image: np.ndarray, model: Optional[Union[Stylizer, ModelSource]] = None, *,
            levels: int = 8, max_side: int = 1024) -> np.ndarray:
    """Cartoon version of a portrait.

    image: (H, W, 3) uint8 RGB.
    model: a :class:`~pyfacerig.networks.Stylizer` object, or a path / bytes of an ONNX
        stylizer (loaded with :class:`~pyfacerig.networks.OnnxStylizer`); ``None`` uses
        :func:`cartoon_filter`.
    levels, max_side: parameters of :func:`cartoon_filter` (ignored with a model).

    Returns (H, W, 3) uint8 RGB, the same size as ``image``.
    """
    if model is None:
        return cartoon_filter(image, levels=levels, max_side=max_side)
    stylizer = model if isinstance(model, Stylizer) else OnnxStylizer(model)
    out = np.asarray(stylizer.stylize(image))
    if out.shape != image.shape or out.dtype != np.uint8:
        raise InvalidInputError(f"stylizer {type(stylizer).__name__} returned {out.shape} {out.dtype}; "
                                f"expected {image.shape} uint8 like its input")
    return out


def cartoon_filter(image: np.ndarray, *, levels: int = 8, max_side: int = 1024) -> np.ndarray:
    """Classical cartoon look: edge-preserving smoothing, CIELAB banding, dark outlines.

    image: (H, W, 3) uint8 RGB.  levels: number of lightness bands (2..64).
    Returns (H, W, 3) uint8 RGB.
    """
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3
            and image.shape[2] == 3 and image.shape[0] > 0 and image.shape[1] > 0):
        desc = f"{image.shape} {image.dtype}" if isinstance(image, np.ndarray) else type(image).__name__
        raise InvalidInputError(f"cartoon_filter needs an (H, W, 3) uint8 RGB image, got {desc}")
    if not 2 <= levels <= 64:
        raise InvalidInputError(f"levels must be in 2..64, got {levels}")
    h, w = image.shape[:2]
    work, _ = detection_image(image, max_side)
    # Smoothing radius in pixels scales with the picture so the look is size-independent.
    sigma_s = max(5.0, 0.05 * max(work.shape[:2]))
    smooth = cv2.edgePreservingFilter(work, flags=cv2.RECURS_FILTER, sigma_s=sigma_s, sigma_r=0.35)
    flat = _quantise_lab(smooth, levels)
    outlines = _outlines(smooth)
    cartoon = (flat.astype(np.float32) * outlines[:, :, None]).astype(np.uint8)
    if cartoon.shape[:2] != (h, w):
        cartoon = cv2.resize(cartoon, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(cartoon)


def _quantise_lab(rgb: np.ndarray, levels: int) -> np.ndarray:
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)   # uint8 LAB: all channels 0..255
    band = 256.0 / levels
    lab[:, :, 0] = (np.floor(lab[:, :, 0] / band) + 0.5) * band
    # Chroma keeps more steps than lightness: skin tones need subtle hue differences.
    chroma_band = 256.0 / (4 * levels)
    lab[:, :, 1:] = (np.floor(lab[:, :, 1:] / chroma_band) + 0.5) * chroma_band
    return cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def _outlines(rgb: np.ndarray) -> np.ndarray:
    """(H, W) float32 in [0, 1]: ~0.25 on outlines, 1 elsewhere.  ``rgb`` is the smoothed image."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    size = max(rgb.shape[:2])
    blur = 2 * (size // 400) + 3                      # odd aperture, grows with the picture
    gray = cv2.medianBlur(gray, blur)
    block = 2 * (size // 100) + 9                     # neighbourhood for the local mean
    ink = cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, block, 10)
    # Keep strokes, drop specks: components smaller than a few pixels' worth of line.
    count, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    min_area = max(12, size // 25)
    keep = np.zeros(count, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_area
    ink = keep[labels].astype(np.float32)
    ink = cv2.GaussianBlur(ink, (3, 3), 0)
    return 1.0 - 0.75 * ink
