"""The skin's mouth pocket stays inside the head (issue #10).

The skin is one closed surface; the mouth interior is a sac of it, hung from the lips 5 cm into
the head.  The fine fit used to swing that sac like a lever off the lips, and on obama3 it came
out under the jaw (a red patch below the jaw in Blender's side views), on Grace Hopper at
jawLeft and jawForward.  Two checks on all six portraits:

* geometry, at the neutral and at every shape at weight 1: each vertex of the sac proper (the
  pocket more than 10 mm from the lips, where the template keeps it 7-56 mm inside the skin)
  must lie inside the outer skin -- behind the nearest outer triangle that is not lip skin;
* sight, at the neutral: the skin alone, drawn double-sided from the sides and from below,
  must show no pocket triangle in front of the outer skin.

Not checked here: where the pocket meets the lips.  mouthClose is Apple's corrective for an open
jaw, so it is posed with jawOpen (alone it pushes the template's own lower mouth 9 mm up through
the lips); the mouthRoll shapes can tuck a lip into the sac (docs/pipeline.md, "The mouth pocket").
"""
import numpy as np
import pytest
from scipy.spatial import cKDTree

from pyfacerig import render
from test_build_closed_head import pocket_faces
from pyfacerig.templates import ARKIT_SHAPE_NAMES

PORTRAITS = ("astronaut", "grace_hopper", "obama", "obama2", "obama3", "biden")
#: The sac proper: pocket vertices this far (metres, in the template) from the lips.
FROM_LIPS = 0.010
#: Outer skin checked against: triangles within this distance (metres, in the template) of the
#: sac.  The deepest sac vertex is 56 mm from the nearest skin.
SURROUNDINGS = 0.065


def mouth_pocket_faces(template) -> np.ndarray:
    """(F,) bool: skin triangles of the mouth's pocket (no eye sockets)."""
    return pocket_faces(template, kinds=("mouth",))


@pytest.fixture(scope="module")
def sac(template):
    """(sac vertex ids, the outer skin's triangles around it (T, 3), (T,) bool: triangle touches
    the lips)."""
    skin = template.parts["skin"]
    faces = np.asarray(skin.faces, dtype=np.int64)
    pocket = mouth_pocket_faces(template)
    only_pocket = np.zeros(len(skin.vertices), bool)
    only_pocket[faces[pocket].ravel()] = True
    only_pocket[faces[~pocket].ravel()] = False
    lips = np.asarray(template.regions["lips"], dtype=bool)
    vertices = np.asarray(skin.vertices, dtype=np.float64)
    ids = np.flatnonzero(only_pocket)
    far, _ = cKDTree(vertices[lips]).query(vertices[ids])
    ids = ids[far > FROM_LIPS]
    outer = faces[~pocket]
    near, _ = cKDTree(vertices[ids]).query(vertices[outer].reshape(-1, 3), distance_upper_bound=SURROUNDINGS)
    outer = outer[np.isfinite(near).reshape(-1, 3).any(axis=1)]
    return ids, outer, lips[outer].any(axis=1)


def closest_on_triangles(p, a, b, c):
    """(M, 3) closest points to p on the triangles (a, b, c), each (M, 3) (Ericson's regions)."""
    ab, ac = b - a, c - a
    d1, d2 = np.einsum("ij,ij->i", ab, p - a), np.einsum("ij,ij->i", ac, p - a)
    d3, d4 = np.einsum("ij,ij->i", ab, p - b), np.einsum("ij,ij->i", ac, p - b)
    d5, d6 = np.einsum("ij,ij->i", ab, p - c), np.einsum("ij,ij->i", ac, p - c)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2
    safe = lambda x: np.where(x == 0, 1e-30, x)  # noqa: E731
    total = safe(va + vb + vc)
    out = a + ab * (vb / total)[:, None] + ac * (vc / total)[:, None]
    regions = [  # (where, point): edges, then corners, last wins
        ((vc <= 0) & (d1 >= 0) & (d3 <= 0), a + ab * (d1 / safe(d1 - d3))[:, None]),
        ((vb <= 0) & (d2 >= 0) & (d6 <= 0), a + ac * (d2 / safe(d2 - d6))[:, None]),
        ((va <= 0) & (d4 >= d3) & (d5 >= d6), b + (c - b) * ((d4 - d3) / safe(d4 - d3 + d5 - d6))[:, None]),
        ((d1 <= 0) & (d2 <= 0), a), ((d3 >= 0) & (d4 <= d3), b), ((d6 >= 0) & (d5 <= d6), c),
    ]
    for where, point in regions:
        out[where] = point[where]
    return out


def signed_distance(points, vertices, faces, candidates=8):
    """(M,) distance from each point to the surface, + outside, and (M,) the nearest triangle.

    The sign is the side of the nearest triangle's pseudo-normal (its own normal plus its
    corners' vertex normals), which is right at an edge or corner as well as on a face."""
    corners = vertices[faces]
    _, near = cKDTree(corners.sum(axis=1)).query(3.0 * points, k=candidates)
    tri = near.ravel()
    q = closest_on_triangles(np.repeat(points, candidates, axis=0), *(corners[tri, k] for k in range(3)))
    distance = np.linalg.norm(np.repeat(points, candidates, axis=0) - q, axis=1).reshape(len(points), candidates)
    best = distance.argmin(axis=1)
    rows = np.arange(len(points))
    nearest, closest = near[rows, best], q.reshape(len(points), candidates, 3)[rows, best]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    unit = normals / np.linalg.norm(normals, axis=1, keepdims=True)
    corner_ids = faces.T.ravel()
    vertex_normals = np.stack([np.bincount(corner_ids, np.tile(normals[:, c], 3), minlength=len(vertices))
                               for c in range(3)], axis=1)
    vertex_normals /= np.maximum(np.linalg.norm(vertex_normals, axis=1, keepdims=True), 1e-30)
    pseudo = unit[nearest] + vertex_normals[faces[nearest]].sum(axis=1)
    side = np.sign(np.einsum("ij,ij->i", points - closest, pseudo))
    return side * distance[rows, best], nearest


def poses(avatar, watched):
    """(name, skin vertices): the neutral, then each shape at weight 1 (mouthClose with jawOpen)
    that moves any of the ``watched`` vertex ids (the others give the neutral's answer)."""
    skin = avatar.parts["skin"]
    yield "neutral", skin.vertices
    moves = np.abs(skin.shape_deltas[:, watched]).max(axis=(1, 2)) > 0
    for k, name in enumerate(ARKIT_SHAPE_NAMES):
        weights = np.zeros(len(ARKIT_SHAPE_NAMES))
        weights[k] = 1.0
        if name == "mouthClose":
            weights[ARKIT_SHAPE_NAMES.index("jawOpen")] = 1.0
        if moves[weights > 0].any():
            yield name, skin.vertices + np.tensordot(weights, skin.shape_deltas, axes=1)


# Measured before the pocket followed the skin: obama3 had 34-44 sac vertices out at every pose
# (7.2-8.3 mm), Grace Hopper 2-3 at jawForward and jawLeft (0.5 and 0.9 mm).  Now the sac stays
# 2.5-4.9 mm inside at the closest pose of each portrait (docs/pipeline.md).
@pytest.mark.parametrize("name", PORTRAITS)
def test_the_mouth_sac_stays_inside_the_skin_at_every_shape(six_avatars, sac, name):
    ids, outer, lip_triangle = sac
    out = {}
    for pose, vertices in poses(six_avatars[name], np.union1d(ids, outer)):
        vertices = np.asarray(vertices, dtype=np.float64)
        distance, nearest = signed_distance(vertices[ids], vertices, outer)
        through = (distance > 0) & ~lip_triangle[nearest]
        if through.any():
            out[pose] = (int(through.sum()), round(1000 * float(distance[through].max()), 1))
    assert out == {}, f"sac vertices out (count, mm) by pose: {out}"


#: Views (yaw, pitch in degrees; pitch < 0 looks up from below) of the sides and the underside.
VIEWS = ((90, 0), (-90, 0), (0, -45), (40, -35), (-40, -35))
SIZE = 100
NOISE_PIXELS = 3


def pocket_in_front(vertices, faces, pocket, camera, size=SIZE) -> np.ndarray:
    """(size, size) bool: pixels where a pocket triangle is nearer than the outer skin that faces
    the camera there (through the mouth opening the outer skin seen is the inside of the head:
    back faces)."""
    def nearest(mesh_faces, double_sided=True):
        _, _, tri, bary = render.render_with_ids([render.Mesh(vertices, mesh_faces, double_sided=double_sided)],
                                                 camera, size, size)
        depth = np.full(tri.shape, np.inf)
        hit = tri >= 0
        depth[hit] = camera.view(np.einsum("kj,kjd->kd", bary[hit], vertices[mesh_faces[tri[hit]]]))[:, 2]
        return tri, depth
    tri, depth = nearest(faces)
    outer_tri, outer_depth = nearest(faces[~pocket])
    front_tri, _ = nearest(faces[~pocket], double_sided=False)
    shows = (tri >= 0) & pocket[np.maximum(tri, 0)]
    # half a millimetre: the lips' inner skin meets the outer lips along a seam
    return shows & (outer_tri >= 0) & (front_tri == outer_tri) & (depth < outer_depth - 5e-4)


# Measured before the pocket followed the skin: obama3 238 pixels (105 from its left side, 90 from
# below left, 43 from below), a patch under the left jaw; now at most 1 pixel on any portrait.
@pytest.mark.parametrize("name", PORTRAITS)
def test_no_mouth_pocket_shows_through_the_skin_from_the_side_or_below(six_avatars, template, name):
    avatar = six_avatars[name]
    vertices = np.asarray(avatar.parts["skin"].vertices, dtype=np.float64)
    faces = np.asarray(avatar.parts["skin"].faces, dtype=np.int64)
    pocket = mouth_pocket_faces(template)
    counts = []
    for yaw, pitch in VIEWS:
        camera = render.face_camera(avatar, yaw_deg=yaw, distance=0.75)
        camera.pitch_deg = pitch
        counts.append(int(np.count_nonzero(pocket_in_front(vertices, faces, pocket, camera))))
    assert sum(counts) <= NOISE_PIXELS, dict(zip(VIEWS, counts))
