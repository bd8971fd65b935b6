"""A folder of distinct real portraits for batch tests and benches.

Made from the six whole-face real photographs the suite has (the two bundled examples and the
four held-out ones from tests/_heldout.py): each as it is, mirrored, and trimmed by a few
percent at the borders, so every file is a different image with a face that still builds.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

EXAMPLES = Path(__file__).resolve().parents[1] / "pyfacerig" / "examples"


def source_portraits() -> dict:
    """name -> path of the six whole-face photographs (fetches the held-out ones if needed)."""
    import sys
    sys.path.insert(0, str(Path(__file__).parent))
    from _heldout import PORTRAITS, ensure
    heldout = ensure()
    return {"astronaut": EXAMPLES / "astronaut.png", "grace_hopper": EXAMPLES / "grace_hopper.jpg",
            **{name: heldout[name] for name in PORTRAITS}}


def variants(image: np.ndarray):
    """(suffix, image) pairs: the original, its mirror image, and two trims of the borders."""
    height, width = image.shape[:2]
    yield "", image
    yield "_flip", np.ascontiguousarray(image[:, ::-1])
    for percent in (4, 8):
        dy, dx = height * percent // 100, width * percent // 100
        yield f"_trim{percent}", np.ascontiguousarray(image[dy:height - dy, dx:width - dx])


def write_portrait_set(folder, count: int = 20) -> list:
    """Write ``count`` distinct portraits (JPEG/PNG as their source) into ``folder``; return the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sources = {name: (path, cv2.imread(str(path), cv2.IMREAD_COLOR)) for name, path in source_portraits().items()}
    written = []
    for suffix_index in range(4):
        for name, (path, image) in sources.items():
            if len(written) == count:
                return written
            suffix, variant = list(variants(image))[suffix_index]
            target = folder / f"{name}{suffix}{path.suffix}"
            cv2.imwrite(str(target), variant)
            written.append(target)
    if len(written) < count:
        raise ValueError(f"only {len(written)} distinct portraits available, {count} asked")
    return written
