"""Bad input to the geometry solvers raises InvalidInputError (a ValueError) naming the problem."""
import numpy as np
import pytest

from pyfacerig import _core
from pyfacerig.errors import InvalidInputError
from pyfacerig.geometry import DeformationTransfer, LaplacianDeformer
from test_geometry_meshes import icosphere


@pytest.fixture
def sphere():
    vertices, faces = icosphere(2)
    return vertices, faces, np.arange(0, len(vertices), 9)


def _raises(match, fn, *args, **kwargs):
    with pytest.raises(InvalidInputError, match=match) as info:
        fn(*args, **kwargs)
    assert isinstance(info.value, ValueError)


# ------------------------------------------------------------------ LaplacianDeformer
def test_nan_vertex_is_rejected(sphere):
    vertices, faces, anchors = sphere
    vertices = vertices.copy()
    vertices[17, 1] = np.nan
    _raises(r"vertices contains non-finite.*row 17", LaplacianDeformer, vertices, faces, anchors)


def test_infinite_anchor_position_is_rejected(sphere):
    vertices, faces, anchors = sphere
    positions = vertices[anchors].copy()
    positions[3, 0] = np.inf
    _raises(r"anchor_positions contains non-finite", LaplacianDeformer(vertices, faces, anchors).solve, positions)


def test_face_index_out_of_range_is_rejected(sphere):
    vertices, faces, anchors = sphere
    faces = faces.copy()
    faces[5, 2] = len(vertices)
    _raises(r"faces index out of range: face 5", LaplacianDeformer, vertices, faces, anchors)


def test_negative_face_index_is_rejected(sphere):
    vertices, faces, anchors = sphere
    faces = faces.copy()
    faces[0, 0] = -1
    _raises(r"faces index out of range: face 0", LaplacianDeformer, vertices, faces, anchors)


def test_face_with_a_repeated_vertex_is_rejected(sphere):
    vertices, faces, anchors = sphere
    faces = faces.copy()
    faces[8, 1] = faces[8, 0]
    _raises(r"faces has a repeated vertex index: face 8", LaplacianDeformer, vertices, faces, anchors)


def test_zero_area_triangle_is_rejected(sphere):
    vertices, faces, anchors = sphere
    vertices = vertices.copy()
    a, b, c = faces[11]
    vertices[c] = 0.5 * (vertices[a] + vertices[b])  # collinear corners
    _raises(r"degenerate \(zero-area\) triangle", LaplacianDeformer, vertices, faces, anchors)


def test_anchor_index_out_of_range_is_rejected(sphere):
    vertices, faces, anchors = sphere
    _raises(r"anchor_ids out of range", LaplacianDeformer, vertices, faces, np.r_[anchors, len(vertices) + 4])


def test_repeated_anchor_index_is_rejected(sphere):
    vertices, faces, anchors = sphere
    _raises(r"anchor_ids has repeated index 9", LaplacianDeformer, vertices, faces, np.r_[anchors, 9])


def test_empty_anchor_set_is_rejected(sphere):
    vertices, faces, _ = sphere
    _raises(r"anchor_ids is empty", LaplacianDeformer, vertices, faces, np.array([], dtype=int))


def test_component_without_an_anchor_is_rejected_as_singular(sphere):
    vertices, faces, anchors = sphere
    two_spheres = np.r_[vertices, vertices + 3.0]
    two_faces = np.r_[faces, faces + len(vertices)]
    _raises(r"connected component of 162 vertices \(containing vertex 162\) without an anchor.*singular",
            LaplacianDeformer, two_spheres, two_faces, anchors)


def test_vertex_used_by_no_face_is_rejected(sphere):
    vertices, faces, anchors = sphere
    _raises(r"vertex 162 is not used by any face", LaplacianDeformer,
            np.r_[vertices, [[5.0, 5.0, 5.0]]], faces, np.r_[anchors, 162])


def test_vertices_of_the_wrong_shape_are_rejected(sphere):
    vertices, faces, anchors = sphere
    _raises(r"vertices must have shape \(N, 3\)", LaplacianDeformer, vertices[:, :2], faces, anchors)


def test_faces_of_the_wrong_shape_are_rejected(sphere):
    vertices, faces, anchors = sphere
    _raises(r"faces must have shape \(F, 3\)", LaplacianDeformer, vertices, np.c_[faces, faces[:, :1]], anchors)


def test_float_faces_are_rejected_not_rounded(sphere):
    vertices, faces, anchors = sphere
    _raises(r"faces must hold integers", LaplacianDeformer, vertices, faces + 0.4, anchors)


def test_wrong_number_of_anchor_positions_is_rejected(sphere):
    vertices, faces, anchors = sphere
    deformer = LaplacianDeformer(vertices, faces, anchors)
    _raises(rf"anchor_positions must have {len(anchors)} rows", deformer.solve, vertices[anchors][:-1])


@pytest.mark.parametrize("weight", [0.0, -1.0, np.nan, np.inf])
def test_non_positive_or_non_finite_weight_is_rejected(sphere, weight):
    vertices, faces, anchors = sphere
    _raises(r"weight must be finite and > 0", LaplacianDeformer, vertices, faces, anchors, weight=weight)


def test_unknown_laplacian_is_rejected(sphere):
    vertices, faces, anchors = sphere
    _raises(r"laplacian must be one of", LaplacianDeformer, vertices, faces, anchors, laplacian="mean-value")


def test_core_reports_a_singular_system_as_an_error_not_nan(sphere):
    # Bypasses the Python checks on purpose: the C++ factorisation must refuse the
    # unanchored second sphere itself instead of returning garbage.
    vertices, faces, anchors = sphere
    two_spheres = np.r_[vertices, vertices + 3.0]
    two_faces = np.r_[faces, faces + len(vertices)].astype(np.int32)
    with pytest.raises(ValueError, match="factorisation .* failed"):
        _core.laplacian_deformation_precompute(two_spheres, two_faces, anchors.astype(np.int32), 100.0, "cotangent")


# ------------------------------------------------------------------ DeformationTransfer
def test_transfer_rejects_neutrals_of_different_shapes(sphere):
    vertices, faces, _ = sphere
    _raises(r"source_neutral \(162, 3\) and target_neutral \(161, 3\)", DeformationTransfer,
            vertices, vertices[:-1], faces)


def test_transfer_rejects_nan_in_target_neutral(sphere):
    vertices, faces, _ = sphere
    target = vertices.copy()
    target[4, 2] = np.nan
    _raises(r"target_neutral contains non-finite", DeformationTransfer, vertices, target, faces)


def test_transfer_rejects_a_degenerate_target_triangle(sphere):
    vertices, faces, _ = sphere
    target = vertices.copy()
    a, b, c = faces[30]
    target[b] = target[a]  # two corners on top of each other
    _raises(r"target_neutral has .* degenerate \(zero-area\) triangle", DeformationTransfer, vertices, target, faces)


def test_transfer_rejects_out_of_range_faces(sphere):
    vertices, faces, _ = sphere
    bad = faces.copy()
    bad[2, 1] = 10_000
    _raises(r"faces index out of range", DeformationTransfer, vertices, vertices, bad)


def test_transfer_rejects_shapes_with_the_wrong_vertex_count(sphere):
    vertices, faces, _ = sphere
    transfer = DeformationTransfer(vertices, vertices, faces)
    _raises(r"source_shapes must have shape \(M, 162, 3\)", transfer.transfer, np.zeros((2, 161, 3)))
    _raises(r"source_shapes must have shape \(M, 162, 3\)", transfer.transfer, vertices)


def test_transfer_rejects_nan_in_a_source_shape(sphere):
    vertices, faces, _ = sphere
    shapes = np.stack([vertices, vertices, vertices])
    shapes[2, 40, 0] = np.nan
    _raises(r"source_shapes contains non-finite .* shape 2", DeformationTransfer(vertices, vertices, faces).transfer,
            shapes)
