"""Shared fixtures: the real portraits that ship inside installed packages."""
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def astronaut_rgb() -> np.ndarray:
    """scikit-image's astronaut (Eileen Collins), (512, 512, 3) uint8 RGB."""
    from skimage import data
    return np.ascontiguousarray(data.astronaut())


@pytest.fixture(scope="session")
def grace_hopper_path() -> Path:
    """matplotlib's sample portrait of Grace Hopper (JPEG)."""
    import matplotlib
    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    assert path.is_file(), path
    return path
