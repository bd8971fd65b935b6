"""What is derived from a template alone, kept for the life of the process.

A loaded template's arrays are read-only and never change, so a fit system, an operator or an
atlas layout made from them can be kept between builds.  Entries are keyed by the ids of the
arrays they derive from and hold those arrays, so an id cannot be reused while its entry lives;
writable arrays (a caller's own, which may change in place) are never cached.
"""
from __future__ import annotations

import numpy as np


def lookup(cache: dict, key, sources):
    """The value kept under ``key`` for exactly these ``sources`` (by identity), or None."""
    hit = cache.get(key)
    if hit is not None and len(hit[0]) == len(sources) and all(a is b for a, b in zip(hit[0], sources)):
        return hit[1]
    return None


def remember(cache: dict, key, sources, value, limit: int = 8) -> None:
    """Keep ``value``, derived from the arrays ``sources`` (None allowed) alone, under ``key`` --
    only when every source is read-only.  A cache past ``limit`` entries starts over."""
    if all(a is None or (isinstance(a, np.ndarray) and not a.flags.writeable) for a in sources):
        if len(cache) > limit:
            cache.clear()
        cache[key] = (tuple(sources), value)


def once(cache: dict, sources, compute, limit: int = 8):
    """``compute()``, or what it gave before for the same read-only ``sources``."""
    key = tuple(id(a) for a in sources)
    value = lookup(cache, key, sources)
    if value is None:
        value = compute()
        remember(cache, key, sources, value, limit)
    return value
