"""The head UV atlas on a synthetic closed 'head': a sphere with a mouth-like pocket.

The test surface is a surface of revolution about +Z: an outer sphere whose front pole is
pushed in through a narrow opening into a bulb-shaped sac, the way the mouth sac of a head
is reached between closed lips.  It is closed and genus 0, like the real head.
"""
from __future__ import annotations

import numpy as np
import pytest

from pyfacerig.errors import InvalidInputError
from pyfacerig.templates.atlas import atlas_report, coverage, find_pockets, head_atlas

SEGMENTS = 48


def _profile() -> np.ndarray:
    """(K, 2) (rho, z) points from the sac's bottom on the axis to the back pole."""
    bulb = [(0.0, 0.25), (0.15, 0.28), (0.27, 0.40), (0.28, 0.55), (0.2, 0.70), (0.08, 0.82), (0.05, 0.92)]
    lip = [(0.06, 0.97), (0.1, 0.995)]
    theta = np.linspace(np.arcsin(0.14), np.pi, 40)
    sphere = [(np.sin(t), np.cos(t)) for t in theta]
    pts = np.array(bulb + lip + sphere)
    # resample evenly by arc length so the triangles are well shaped
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    s = np.concatenate([[0], np.cumsum(seg)])
    t = np.linspace(0, s[-1], 90)
    return np.stack([np.interp(t, s, pts[:, 0]), np.interp(t, s, pts[:, 1])], 1)


def pocket_sphere() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """vertices (N, 3) (+Y up, face toward +Z), faces (F, 3) ccw from outside, sac vertex ids."""
    prof = _profile()
    rings = prof[1:-1]
    phi = 2 * np.pi * np.arange(SEGMENTS) / SEGMENTS
    ring_v = np.stack([rings[:, None, 0] * np.cos(phi), rings[:, None, 0] * np.sin(phi),
                       np.broadcast_to(rings[:, None, 1], (len(rings), SEGMENTS))], 2).reshape(-1, 3)
    first, last = len(ring_v), len(ring_v) + 1
    vertices = np.vstack([ring_v, [[0, 0, prof[0, 1]], [0, 0, prof[-1, 1]]]])
    faces = []
    k = np.arange(SEGMENTS)
    k1 = (k + 1) % SEGMENTS
    faces.append(np.stack([np.full(SEGMENTS, first), k1, k], 1))
    for r in range(len(rings) - 1):
        a, b = r * SEGMENTS + k, r * SEGMENTS + k1
        c, d = (r + 1) * SEGMENTS + k, (r + 1) * SEGMENTS + k1
        faces += [np.stack([a, b, d], 1), np.stack([a, d, c], 1)]
    base = (len(rings) - 1) * SEGMENTS
    faces.append(np.stack([base + k, base + k1, np.full(SEGMENTS, last)], 1))
    faces = np.vstack(faces).astype(np.int32)
    p = vertices[faces]
    if np.einsum("ij,ij->i", p[:, 0], np.cross(p[:, 1], p[:, 2])).sum() < 0:
        faces = faces[:, ::-1].copy()
    # radius 1 m is too big for a head; the atlas only cares about shape
    vertices = vertices * 0.1 + np.array([0.0, 0.7, 0.0])
    sac = np.flatnonzero((np.linalg.norm(vertices - [0, 0.7, 0], axis=1) < 0.0985))
    return vertices, faces, sac


def _deep(vertices, faces):
    """(F,) bool: faces of the sac's bulb, well inside the outer sphere (radius 0.1)."""
    return (np.linalg.norm(vertices[faces] - [0, 0.7, 0], axis=2) < 0.08).all(1)


@pytest.fixture(scope="module")
def head():
    vertices, faces, sac = pocket_sphere()
    direction = (vertices - [0, 0.7, 0]) / np.linalg.norm(vertices - [0, 0.7, 0], axis=1, keepdims=True)
    face_mask = direction[:, 2] > 0.55              # a front cap, like the face oval, with the sac
    face_mask[sac] = True
    atlas = head_atlas(vertices, faces, face_mask, size=512, gutter_px=4)
    return vertices, faces, face_mask, sac, atlas


def test_atlas_welded_ids_rebuild_the_input_faces(head):
    vertices, faces, _, _, atlas = head
    assert atlas.faces.dtype == np.int32 and atlas.welded_ids.dtype == np.int32
    assert atlas.uvs.dtype == np.float32 and atlas.uvs.shape == (len(atlas.welded_ids), 2)
    np.testing.assert_array_equal(atlas.welded_ids[atlas.faces], faces)
    assert atlas.charts.shape == (len(faces),)
    # a UV vertex belongs to exactly one chart, and each source vertex appears once per chart
    owner = np.full(len(atlas.welded_ids), -1)
    for c in range(len(atlas.chart_names)):
        ids = np.unique(atlas.faces[atlas.charts == c])
        assert (owner[ids] == -1).all()
        owner[ids] = c
        assert len(np.unique(atlas.welded_ids[ids])) == len(ids)
    assert (owner >= 0).all()


def test_atlas_charts_are_one_to_one_and_inside_the_square(head):
    vertices, _, _, _, atlas = head
    assert np.isfinite(atlas.uvs).all() and atlas.uvs.min() >= 0 and atlas.uvs.max() <= 1
    report = atlas_report(vertices, atlas)
    assert report["flipped"] == 0
    assert report["overlap_texels"] == 0
    assert coverage(atlas).max() == 1


def test_atlas_face_chart_holds_at_least_half_the_texels(head):
    vertices, _, _, _, atlas = head
    report = atlas_report(vertices, atlas)
    assert report["face_share"] >= 0.5
    assert report["fill"] > 0.25


def test_atlas_face_chart_is_seamless_over_the_face(head):
    vertices, faces, face_mask, sac, atlas = head
    assert atlas.chart_names[0] == "face"
    in_sac = np.isin(faces, sac).all(1)
    outer_face = face_mask[faces].all(1) & ~in_sac
    # the outer face region (away from the sac opening) lies wholly in the face chart
    centre = vertices[faces].mean(1) - [0, 0.7, 0]
    away = outer_face & (centre[:, 2] / np.linalg.norm(centre, axis=1) < 0.97)
    assert (atlas.charts[away] == 0).all()


def test_atlas_pocket_is_its_own_small_chart(head):
    vertices, faces, _, sac, atlas = head
    names = atlas.chart_names
    pockets = [c for c, n in enumerate(names) if n.startswith(("mouth", "eye", "pocket"))]
    assert len(pockets) == 1
    deep = _deep(vertices, faces)
    assert (atlas.charts[deep] == pockets[0]).all()
    report = atlas_report(vertices, atlas)
    assert report["charts"][names[pockets[0]]]["uv_area"] < 0.1 * report["charts"]["face"]["uv_area"]


def test_atlas_back_seam_splits_the_head_at_the_midplane(head):
    vertices, faces, _, _, atlas = head
    names = atlas.chart_names
    left, right = names.index("head_left"), names.index("head_right")
    cx = vertices[faces].mean(1)[:, 0]
    assert (cx[atlas.charts == left] > 0).all() and (cx[atlas.charts == right] < 0).all()


def test_atlas_is_deterministic(head):
    vertices, faces, face_mask, _, atlas = head
    again = head_atlas(vertices.copy(), faces.copy(), face_mask.copy(), size=512, gutter_px=4)
    for a, b in ((atlas.uvs, again.uvs), (atlas.faces, again.faces),
                 (atlas.welded_ids, again.welded_ids), (atlas.charts, again.charts)):
        assert a.tobytes() == b.tobytes()
    assert atlas.chart_names == again.chart_names


def test_atlas_keeps_gutters_between_charts(head):
    _, _, _, _, atlas = head
    from scipy.ndimage import binary_dilation
    size = atlas.size
    chart_cov = []
    for c in range(len(atlas.chart_names)):
        sub = type(atlas)(atlas.welded_ids, atlas.faces[atlas.charts == c], atlas.uvs,
                          atlas.charts[atlas.charts == c], atlas.chart_names, size, atlas.gutter_px)
        chart_cov.append(binary_dilation(coverage(sub) > 0, iterations=atlas.gutter_px // 2 - 1)
                         if atlas.gutter_px >= 4 else coverage(sub) > 0)
    total = np.sum(chart_cov, axis=0)
    assert total.max() == 1


def test_atlas_mirror_lays_the_right_half_out_as_the_left_mirrored():
    vertices, faces, _ = pocket_sphere()
    # vertex k of ring r sits at angle 2 pi k / S; x -> -x maps it to angle pi - that
    ring = np.arange(len(vertices) - 2)
    r, k = ring // SEGMENTS, ring % SEGMENTS
    mirror = np.concatenate([r * SEGMENTS + (SEGMENTS // 2 - k) % SEGMENTS,
                             [len(vertices) - 2, len(vertices) - 1]])
    np.testing.assert_allclose(vertices[mirror] * [-1, 1, 1], vertices, atol=1e-12)
    face_mask = vertices[:, 2] > 0.055
    atlas = head_atlas(vertices, faces, face_mask, mirror=mirror, size=512)
    names = atlas.chart_names
    left = np.unique(atlas.faces[atlas.charts == names.index("head_left")])
    right = np.unique(atlas.faces[atlas.charts == names.index("head_right")])
    lu, ru = atlas.uvs[left].astype(float), atlas.uvs[right].astype(float)
    # same shape, u reversed: compare the charts' centred, u-flipped coordinates vertex by vertex
    lsrc, rsrc = atlas.welded_ids[left], atlas.welded_ids[right]
    pos = np.searchsorted(lsrc, mirror[rsrc])
    lc, rc = lu - lu.mean(0), ru - ru.mean(0)
    # (a pair turned a quarter together is mirrored in v instead of u)
    flip = [-1, 1] if np.abs(rc - lc[pos] * [-1, 1]).max() < np.abs(rc - lc[pos] * [1, -1]).max() else [1, -1]
    np.testing.assert_allclose(rc, lc[pos] * flip, atol=1e-5)
    assert atlas_report(vertices, atlas)["overlap_texels"] == 0


def test_find_pockets_finds_the_sac_only():
    vertices, faces, sac = pocket_sphere()
    pocket = find_pockets(vertices, faces)
    deep = _deep(vertices, faces)
    outer = vertices[faces][:, :, 2].min(1) < -0.01                 # the back of the sphere
    assert pocket[deep].all() and not pocket[outer].any()


@pytest.mark.parametrize("change, message", [
    (lambda v, f, m: (v[:, :2], f, m), "vertices"),
    (lambda v, f, m: (v, f + len(v), m), "faces"),
    (lambda v, f, m: (v, f, m[:-1]), "face_mask"),
    (lambda v, f, m: (v, f, np.zeros_like(m)), "face_mask"),
    (lambda v, f, m: (np.where(np.isnan(v), 0, v) * np.nan, f, m), "vertices"),
])
def test_atlas_rejects_bad_input_by_name(change, message):
    vertices, faces, _ = pocket_sphere()
    mask = vertices[:, 2] > 0.05
    v, f, m = change(vertices, faces, mask)
    with pytest.raises(InvalidInputError, match=message):
        head_atlas(v, f, m)
