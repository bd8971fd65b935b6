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


@pytest.fixture(scope="session")
def template():
    """The committed default face template (pyfacerig.templates.load_default)."""
    from pyfacerig.templates import load_default
    return load_default()


@pytest.fixture(scope="session")
def portraits(astronaut_rgb, grace_hopper_path):
    """The two real bundled portraits by name, as (H, W, 3) uint8 RGB."""
    from pyfacerig.image_io import load_image
    return {"astronaut": astronaut_rgb, "grace_hopper": load_image(grace_hopper_path)}


@pytest.fixture(scope="session")
def heldout_paths() -> dict:
    """The held-out photographs of the face_recognition 1.3.0 sdist, name -> path (tests/_heldout.py).

    Fetched from PyPI on first use; a failed fetch is an error, never a skip.
    """
    from _heldout import ensure
    return ensure()


@pytest.fixture(scope="session")
def built(portraits, template, tmp_path_factory):
    """Each bundled portrait built once into its own folder: name -> (Avatar, folder)."""
    from pyfacerig.build import build
    out = {}
    for name, image in portraits.items():
        folder = tmp_path_factory.mktemp(name)
        out[name] = (build(image, out=folder / f"{name}.glb", template=template), folder)
    return out


@pytest.fixture(scope="session")
def dlib68(portraits):
    """dlib's 68 points of each bundled portrait: name -> (68, 2)."""
    from pyfacerig.evaluation import dlib_landmarks68
    return {name: dlib_landmarks68(image) for name, image in portraits.items()}


@pytest.fixture(scope="session")
def six_avatars(built, heldout_built) -> dict:
    """The two bundled and the four held-out portraits' avatars: name -> Avatar."""
    return {**{name: avatar for name, (avatar, _) in built.items()}, **heldout_built}


@pytest.fixture(scope="session")
def heldout_built(heldout_paths, template) -> dict:
    """The held-out portraits that show a whole face (obama, obama2, obama3, biden), each built
    once without files: name -> Avatar."""
    from _heldout import PORTRAITS
    from pyfacerig.build import build
    return {name: build(heldout_paths[name], template=template) for name in PORTRAITS}
