"""Held-out real portraits for the tests: the photographs in the face_recognition 1.3.0 sdist.

The two portraits inside installed packages (the astronaut, Grace Hopper) also helped build
the default template, so a fit measured on them flatters the coarse stage.  The sdist of
``face_recognition`` on PyPI carries its own test photographs: four portraits of two people
(obama, obama2, obama3, biden; public-domain U.S. government photos), two photos of a face
cut off by the frame, and a 32-bit RGBA PNG.  None of them was used to build or tune anything
in pyfacerig, so they are the held-out set.

They come from PyPI by package name, like every other dependency: the pinned sdist is found
on the package index's simple page (PEP 503; ``$PIP_INDEX_URL`` or pypi.org), checked against
its SHA-256 and unpacked into ``tests/.data`` (git-ignored).  ``pip download`` is not used
because it would run the package's setup.py to read its metadata.  Run this file to fetch
the images ahead of the tests.
"""
from __future__ import annotations

import io
import tarfile
from pathlib import Path

PROJECT = "face-recognition"
SDIST_FILE = "face_recognition-1.3.0.tar.gz"
SDIST_SHA256 = "5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec"
MEMBER_DIR = "face_recognition-1.3.0/tests/test_images/"
#: Whole faces, by name.
PORTRAITS = ("obama", "obama2", "obama3", "biden")
#: Faces the frame cuts off.
CUT_OFF = ("obama_partial_face", "obama_partial_face2")
FILES = {**{name: f"{name}.jpg" for name in PORTRAITS + CUT_OFF}, "rgba32": "32bit.png"}
DEFAULT_DIR = Path(__file__).parent / ".data" / "face_recognition"


def ensure(directory: Path = DEFAULT_DIR) -> dict[str, Path]:
    """The held-out images as name -> path, fetching them first if they are not there yet."""
    directory = Path(directory)
    paths = {name: directory / file for name, file in FILES.items()}
    if all(p.is_file() for p in paths.values()):
        return paths
    directory.mkdir(parents=True, exist_ok=True)
    archive = _download_sdist()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for name, file in FILES.items():
            data = tar.extractfile(MEMBER_DIR + file).read()
            partial = paths[name].with_suffix(".part")
            partial.write_bytes(data)
            partial.replace(paths[name])
    return paths


def _download_sdist() -> bytes:
    from pyfacerig.templates.makehuman import download_pinned
    return download_pinned(PROJECT, SDIST_FILE, SDIST_SHA256, timeout=300)


if __name__ == "__main__":
    for name, path in ensure().items():
        print(f"{name:22s} {path}")
