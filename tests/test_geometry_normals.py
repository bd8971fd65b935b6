"""Normal deltas of blendshapes (the exported normal morph targets), checked against recomputing
every vertex normal of each shaped mesh from scratch."""
import numpy as np
import pytest
from test_geometry_meshes import icosphere

from pyfacerig.errors import InvalidInputError
from pyfacerig.geometry import vertex_normal_deltas


def full_normals(vertices, faces):
    """Area-weighted unit vertex normals, recomputed over the whole mesh."""
    face = np.cross(vertices[faces[:, 1]] - vertices[faces[:, 0]], vertices[faces[:, 2]] - vertices[faces[:, 0]])
    summed = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(summed, faces[:, k], face)
    return summed / np.linalg.norm(summed, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def shapes():
    vertices, faces = icosphere(3)
    rng = np.random.default_rng(7)
    deltas = np.zeros((4, len(vertices), 3), np.float32)
    # A local bump, a rigid shift of a cap (normals unchanged), a tiny nudge, and no motion.
    bump = np.flatnonzero(vertices[:, 2] > 0.8)
    deltas[0, bump] = 0.2 * vertices[bump] * rng.uniform(0.5, 1.0, (len(bump), 1))
    deltas[1, vertices[:, 1] > 0.5] = [0.1, 0.0, 0.0]
    deltas[2, 5] = [1e-6, 0.0, 0.0]
    return vertices, faces, deltas


def test_normal_deltas_match_recomputing_every_normal(shapes):
    vertices, faces, deltas = shapes
    neutral = full_normals(vertices, faces)
    got = vertex_normal_deltas(vertices, faces, neutral, deltas)
    assert got.shape == deltas.shape and got.dtype == np.float32
    for s in range(len(deltas)):
        want = (full_normals(vertices + deltas[s], faces) - neutral).astype(np.float32)
        want[np.abs(want).max(axis=1) < 1e-3] = 0.0
        np.testing.assert_allclose(got[s], want, atol=1e-6)
    assert np.abs(got[0]).max() > 0.05              # the bump turns its normals
    assert not got[2].any() and not got[3].any()    # below the threshold, and no motion
    # A shifted cap keeps its interior normals; only the seam where it slides past the rest turns.
    inner = np.flatnonzero(vertices[:, 1] > 0.7)
    assert np.abs(got[1, inner]).max() < 1e-6


def test_normal_deltas_are_deterministic(shapes):
    vertices, faces, deltas = shapes
    neutral = full_normals(vertices, faces)
    first = vertex_normal_deltas(vertices, faces, neutral, deltas)
    assert first.tobytes() == vertex_normal_deltas(vertices, faces, neutral, deltas).tobytes()


@pytest.mark.parametrize("fault, match", [
    ("nan", "non-finite"),
    ("shape", "shape_deltas must have shape"),
    ("face", "out of range"),
    ("normals", "neutral_normals must have"),
])
def test_normal_deltas_refuse_bad_input(shapes, fault, match):
    vertices, faces, deltas = shapes
    neutral = full_normals(vertices, faces)
    deltas = deltas.copy()
    if fault == "nan":
        deltas[0, 3, 1] = np.nan
    elif fault == "shape":
        deltas = deltas[:, :-1]
    elif fault == "face":
        faces = faces.copy()
        faces[0, 0] = len(vertices)
    elif fault == "normals":
        neutral = neutral[:-2]
    with pytest.raises(InvalidInputError, match=match):
        vertex_normal_deltas(vertices, faces, neutral, deltas)
