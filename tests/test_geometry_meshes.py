"""Small procedural meshes for the geometry tests, and checks that they are what they claim.

Imported by the other tests/test_geometry*.py modules (pytest puts tests/ on sys.path).
"""
import numpy as np


def grid(nx: int, ny: int, size: float = 1.0):
    """Flat (nx*ny) vertex grid in the XY plane, two triangles per cell, counter-clockwise."""
    xs, ys = np.meshgrid(np.linspace(0.0, size, nx), np.linspace(0.0, size, ny))
    vertices = np.stack([xs.ravel(), ys.ravel(), np.zeros(nx * ny)], axis=1)
    i, j = np.meshgrid(np.arange(nx - 1), np.arange(ny - 1))
    a = (j * nx + i).ravel()
    b, c, d = a + 1, a + nx, a + nx + 1
    faces = np.concatenate([np.stack([a, b, d], 1), np.stack([a, d, c], 1)]).astype(np.int32)
    return vertices, faces


def icosphere(subdivisions: int, radius: float = 1.0):
    """Closed sphere: an icosahedron split 4-to-1 `subdivisions` times, projected to the sphere."""
    t = (1.0 + 5.0 ** 0.5) / 2.0
    vertices = [[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t],
                [0, -1, -t], [0, 1, -t], [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]]
    faces = [[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4],
             [11, 10, 2], [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8],
             [3, 8, 9], [4, 9, 5], [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]]
    vertices = [np.array(v, dtype=float) for v in vertices]
    for _ in range(subdivisions):
        midpoint = {}

        def mid(a, b):
            key = (min(a, b), max(a, b))
            if key not in midpoint:
                midpoint[key] = len(vertices)
                vertices.append((vertices[a] + vertices[b]) / 2.0)
            return midpoint[key]

        new_faces = []
        for a, b, c in faces:
            ab, bc, ca = mid(a, b), mid(b, c), mid(c, a)
            new_faces += [[a, ab, ca], [b, bc, ab], [c, ca, bc], [ab, bc, ca]]
        faces = new_faces
    v = np.array(vertices)
    v *= radius / np.linalg.norm(v, axis=1, keepdims=True)
    return v, np.array(faces, dtype=np.int32)


def box_bar(length: int, width: int = 2):
    """Closed rectangular bar along +X: `length` x `width` x `width` cells of unit size.

    Built as the boundary of a voxel grid so the surface is watertight and made of
    right triangles; returns (vertices, faces).
    """
    nx, ny, nz = length + 1, width + 1, width + 1
    index = {}
    vertices = []

    def vid(p):
        if p not in index:
            index[p] = len(vertices)
            vertices.append(p)
        return index[p]

    faces = []

    def quad(p0, p1, p2, p3):  # counter-clockwise seen from outside
        a, b, c, d = vid(p0), vid(p1), vid(p2), vid(p3)
        faces.extend([[a, b, c], [a, c, d]])

    for i in range(length):
        for j in range(width):
            quad((i, j, 0), (i, j + 1, 0), (i + 1, j + 1, 0), (i + 1, j, 0))            # z = 0
            quad((i, j, width), (i + 1, j, width), (i + 1, j + 1, width), (i, j + 1, width))  # z = w
            quad((i, 0, j), (i + 1, 0, j), (i + 1, 0, j + 1), (i, 0, j + 1))            # y = 0
            quad((i, width, j), (i, width, j + 1), (i + 1, width, j + 1), (i + 1, width, j))  # y = w
    for j in range(width):
        for k in range(width):
            quad((0, j, k), (0, j, k + 1), (0, j + 1, k + 1), (0, j + 1, k))            # x = 0
            quad((length, j, k), (length, j + 1, k), (length, j + 1, k + 1), (length, j, k + 1))
    del nx, ny, nz
    return np.array(vertices, dtype=float), np.array(faces, dtype=np.int32)


def edge_list(faces):
    """Unique undirected edges (E,2) of a triangle mesh."""
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    return np.unique(np.sort(e, axis=1), axis=0)


def test_icosphere_is_a_closed_genus_zero_surface():
    vertices, faces = icosphere(2)
    edges = edge_list(faces)
    assert len(vertices) - len(edges) + len(faces) == 2  # Euler characteristic of a sphere
    assert np.allclose(np.linalg.norm(vertices, axis=1), 1.0)


def test_box_bar_is_a_closed_genus_zero_surface():
    vertices, faces = box_bar(6, 2)
    edges = edge_list(faces)
    assert len(vertices) - len(edges) + len(faces) == 2
    # Every edge is shared by exactly two triangles: watertight.
    e = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    _, counts = np.unique(e, axis=0, return_counts=True)
    assert (counts == 2).all()
