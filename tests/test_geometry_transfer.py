"""DeformationTransfer: Sumner-Popovic transfer with the Eq. 14 normal vertex, translation fixed for rigs."""
import numpy as np

from pyfacerig.geometry import DeformationTransfer
from test_geometry_meshes import grid, icosphere


def _local_bump_shapes(vertices, count, seed=0, radius=0.35):
    """Expression-like shapes: each moves a smooth patch and leaves the rest exactly in place."""
    rng = np.random.default_rng(seed)
    shapes = []
    for _ in range(count):
        centre = vertices[rng.integers(len(vertices))]
        falloff = np.exp(-np.sum((vertices - centre) ** 2, axis=1) / radius ** 2)
        falloff[falloff < 0.05] = 0.0  # exact zeros: those vertices stay put
        shapes.append(vertices + falloff[:, None] * rng.normal(scale=0.15, size=3))
    return np.array(shapes)


def test_identical_neutrals_give_back_each_source_shape():
    vertices, faces = icosphere(3)
    shapes = _local_bump_shapes(vertices, 4)
    shapes = np.concatenate([shapes, (1.1 * vertices + [0.2, 0.0, -0.1])[None]])  # every vertex moves
    transferred = DeformationTransfer(vertices, vertices, faces).transfer(shapes)
    assert np.abs(transferred - shapes).max() < 1e-10


def test_scaled_and_translated_target_gets_scaled_and_translated_shapes():
    vertices, faces = icosphere(3)
    shapes = _local_bump_shapes(vertices, 4, seed=1)
    scale, offset = 0.37, np.array([1.0, -2.0, 0.5])
    transferred = DeformationTransfer(vertices, scale * vertices + offset, faces).transfer(shapes)
    assert np.abs(transferred - (scale * shapes + offset)).max() < 1e-10


def test_vertices_the_source_shape_leaves_in_place_stay_in_place_on_the_target():
    vertices, faces = icosphere(3)
    target = vertices * [1.3, 0.8, 1.0] + 0.05 * np.sin(4 * vertices)
    shapes = _local_bump_shapes(vertices, 6, seed=2)
    transferred = DeformationTransfer(vertices, target, faces).transfer(shapes)
    for shape, result in zip(shapes, transferred):
        static = (shape == vertices).all(axis=1)
        assert 0 < static.sum() < len(vertices)
        assert np.array_equal(result[static], target[static])
        assert np.abs(result[~static] - target[~static]).max() > 1e-3  # the rest did move


def test_transferred_bump_follows_the_target_surface_not_the_source_geometry():
    # A flat source grid and a curved target: a sideways shear on the source must come
    # out on the target as the same local deformation gradient, applied to the target's edges.
    vertices, faces = grid(15, 15)
    target = vertices.copy()
    target[:, 2] = 0.3 * vertices[:, 0] ** 2
    shape = vertices.copy()
    inside = (vertices[:, 0] > 0.3) & (vertices[:, 0] < 0.7)
    shape[inside, 1] += 0.2 * (vertices[inside, 0] - 0.3)  # shear in y grows with x
    shape[vertices[:, 0] >= 0.7, 1] += 0.08
    transferred = DeformationTransfer(vertices, target, faces).transfer(shape[None])[0]
    # The source moves only y, by an amount depending only on x: so must the target.
    displacement = transferred - target
    assert np.abs(displacement[:, [0, 2]]).max() < 1e-9
    assert np.abs(displacement[:, 1] - (shape - vertices)[:, 1]).max() < 1e-9


def test_a_shape_that_moves_nothing_returns_the_target_neutral_exactly():
    vertices, faces = icosphere(2)
    target = 2.0 * vertices
    transferred = DeformationTransfer(vertices, target, faces).transfer(np.stack([vertices, vertices]))
    assert np.array_equal(transferred, np.stack([target, target]))


def test_output_has_the_shape_and_dtype_of_the_input_stack():
    vertices, faces = icosphere(1)
    transferred = DeformationTransfer(vertices, vertices, faces).transfer(np.zeros((0, len(vertices), 3)))
    assert transferred.shape == (0, len(vertices), 3)
    shapes = _local_bump_shapes(vertices, 3, seed=3).astype(np.float32)
    assert DeformationTransfer(vertices, vertices, faces).transfer(shapes).shape == (3, len(vertices), 3)
