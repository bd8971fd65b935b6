"""Finding MediaPipe's face-mesh landmarks on any head mesh by rendering it and detecting them.

A head mesh carries no landmarks of its own.  We render it (pyfacerig.render, vertex colours
with red lips and our textured eyeballs) from a few views, run MediaPipe's face mesh on each
picture, and read back which triangle and barycentric point is under every detected landmark.
Each landmark's views are combined (the observation nearest the per-landmark median), giving a
point on the surface as (triangle, barycentrics).

Closed lips hide the inner lip contour: seen from the front, MediaPipe's upper and lower inner
lip points land on the same pixel.  So the inner-lip landmarks are read from renders with the
mouth opened by the head's own ``jawOpen`` shape; the (triangle, barycentric) pair found there
names the same material point on the neutral mesh, on the correct lip.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree

from .. import render

N_FACE = 468
#: How far (pixels at the render size) a landmark that falls on an eyeball may move to reach skin.
SNAP_PIXELS = 8
#: MediaPipe's inner-lip contour (FACEMESH_LIPS inner ring): read with the mouth open.
INNER_LIP = np.array([78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308,
                      191, 80, 81, 82, 13, 312, 311, 310, 415])


@dataclass(frozen=True)
class View:
    """One render: camera yaw and pitch in degrees, and the shape weights posing the head."""

    yaw_deg: float
    pitch_deg: float = 0.0
    open_mouth: bool = False


DEFAULT_VIEWS = (View(0), View(18), View(-18), View(0, 10), View(0, -10),
                 View(0, open_mouth=True), View(15, open_mouth=True), View(-15, open_mouth=True))


@dataclass(frozen=True)
class SurfaceLandmarks:
    """triangles (468,) int; barycentrics (468, 3); views (468,) how many renders saw each point."""

    triangles: np.ndarray
    barycentrics: np.ndarray
    views: np.ndarray

    def points(self, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
        """(468, 3) landmark positions on a mesh of the same topology (any pose)."""
        return np.einsum("kj,kjd->kd", self.barycentrics, vertices[faces[self.triangles]])


def _detect(image: np.ndarray, face_mesh) -> np.ndarray | None:
    result = face_mesh.process(np.ascontiguousarray(image))
    if not result.multi_face_landmarks:
        return None
    h, w = image.shape[:2]
    return np.array([[p.x * w, p.y * h] for p in result.multi_face_landmarks[0].landmark])


def find_landmarks(vertices: np.ndarray, faces: np.ndarray, colours: np.ndarray, open_mouth_vertices: np.ndarray,
                   eye_meshes: list, target: np.ndarray, distance: float = 0.7, size: int = 768,
                   views=DEFAULT_VIEWS, excluded_faces: np.ndarray | None = None) -> SurfaceLandmarks:
    """Locate the 468 face-mesh landmarks on a head.

    vertices (N, 3) neutral skin, faces (F, 3), colours (N, 3) 0..255; open_mouth_vertices (N, 3)
    the skin with the mouth opened (e.g. jawOpen 0.4); eye_meshes: extra render.Mesh (eyeballs)
    drawn but never hit-tested; target (3,) the point the cameras look at; excluded_faces (F,)
    bool, skin triangles no landmark may sit on (the mouth interior: seen through the open
    mouth, an inner-lip point would otherwise land on the back of the throat).  A landmark
    detected over an eyeball or an excluded triangle takes the nearest allowed skin pixel.
    Raises RuntimeError if MediaPipe finds no face in the frontal views.
    """
    import mediapipe as mp

    observations = [[] for _ in range(N_FACE)]      # (triangle, barycentrics, neutral point)
    face_mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True)
    try:
        for view in views:
            skin_now = open_mouth_vertices if view.open_mouth else vertices
            meshes = [render.Mesh(skin_now, faces, vertex_colors=colours)] + list(eye_meshes)
            camera = render.Camera(target=np.asarray(target, float), distance=distance, yaw_deg=view.yaw_deg,
                                   pitch_deg=view.pitch_deg, fov_deg=20.0)
            image, mesh_id, triangle, bary = render.render_with_ids(meshes, camera, size, size)
            pixels = _detect(image, face_mesh)
            if pixels is None:
                if view.yaw_deg == 0 and view.pitch_deg == 0:
                    raise RuntimeError(f"MediaPipe finds no face in the render of view {view}")
                continue
            wanted = np.isin(np.arange(N_FACE), INNER_LIP) if view.open_mouth else ~np.isin(np.arange(N_FACE), INNER_LIP)
            xy = np.clip(np.round(pixels[:N_FACE]).astype(int), 0, size - 1)
            allowed = mesh_id == 0
            if excluded_faces is not None:
                allowed &= ~np.asarray(excluded_faces)[np.maximum(triangle, 0)]
            skin_pixels = np.argwhere(allowed)
            for k in np.flatnonzero(wanted):
                x, y = xy[k]
                if not allowed[y, x]:
                    # a lid-margin point detected on the eyeball, or an inner-lip point seen through
                    # the open mouth: take the nearest allowed skin pixel
                    d2 = np.sum((skin_pixels - [y, x]) ** 2, axis=1)
                    nearest = int(np.argmin(d2))
                    if d2[nearest] > SNAP_PIXELS**2:
                        continue
                    y, x = skin_pixels[nearest]
                t = int(triangle[y, x])
                b = bary[y, x].copy()
                observations[k].append((t, b, b @ vertices[faces[t]]))
    finally:
        face_mesh.close()
    triangles = np.zeros(N_FACE, np.int64)
    barycentrics = np.zeros((N_FACE, 3))
    counts = np.zeros(N_FACE, np.int64)
    for k, obs in enumerate(observations):
        if not obs:
            raise RuntimeError(f"landmark {k} was not found on the head in any view")
        points = np.array([o[2] for o in obs])
        best = int(np.argmin(np.linalg.norm(points - np.median(points, axis=0), axis=1)))
        triangles[k], barycentrics[k], counts[k] = obs[best][0], obs[best][1], len(obs)
    return SurfaceLandmarks(triangles, barycentrics, counts)


def mirror_side(landmarks: SurfaceLandmarks, faces: np.ndarray, vertex_mirror: np.ndarray,
                landmark_mirror: np.ndarray, kept: np.ndarray) -> SurfaceLandmarks:
    """The landmarks of a mirror-symmetric head made symmetric: each landmark not ``kept`` becomes
    the mirror image of its partner (``landmark_mirror``, an involution on 0..467).

    faces (F, 3); vertex_mirror (N,) the vertex at each vertex's mirror image; kept (468,) bool,
    True for the side to keep and for the midline.  MediaPipe's guesses on a plain render are not
    symmetric (a point may land a few millimetres off the lid margin on one side only), and a fit
    then treats the two eyes of one face differently.
    """
    faces = np.asarray(faces, dtype=np.int64)
    vertex_mirror = np.asarray(vertex_mirror, dtype=np.int64)
    face_of = {tuple(sorted(f)): i for i, f in enumerate(faces.tolist())}
    triangles = landmarks.triangles.copy()
    barycentrics = landmarks.barycentrics.copy()
    views = landmarks.views.copy()
    for k in np.flatnonzero(~np.asarray(kept, bool)):
        partner = int(landmark_mirror[k])
        corners = vertex_mirror[faces[landmarks.triangles[partner]]]
        mirrored = face_of.get(tuple(sorted(corners.tolist())))
        if mirrored is None:
            raise ValueError(f"landmark {partner}'s triangle has no mirror image on the mesh")
        # the weights follow the corners into the mirrored triangle's own order
        order = [int(np.flatnonzero(faces[mirrored] == c)[0]) for c in corners]
        triangles[k] = mirrored
        barycentrics[k] = 0.0
        barycentrics[k, order] = landmarks.barycentrics[partner]
        views[k] = landmarks.views[partner]
    return SurfaceLandmarks(triangles, barycentrics, views)


def at_vertices(landmarks: SurfaceLandmarks, faces: np.ndarray, placed: dict[int, int]) -> SurfaceLandmarks:
    """``landmarks`` with the landmarks in ``placed`` ({landmark: vertex}) moved onto those
    vertices (the lowest-numbered triangle using the vertex, with one-hot barycentrics)."""
    faces = np.asarray(faces, dtype=np.int64)
    triangles = landmarks.triangles.copy()
    barycentrics = landmarks.barycentrics.copy()
    for k, vertex in placed.items():
        t = int(np.flatnonzero((faces == vertex).any(axis=1))[0])
        triangles[k] = t
        barycentrics[k] = (faces[t] == vertex).astype(np.float64)
    return SurfaceLandmarks(triangles, barycentrics, landmarks.views)


def landmark_vertex_ids(vertices: np.ndarray, faces: np.ndarray, landmarks: SurfaceLandmarks,
                        posed: list[np.ndarray] = (), candidates: int = 12) -> np.ndarray:
    """A distinct skin vertex for every landmark: (468,) int64.

    The solvers anchor vertices, so each landmark gets the nearest vertex no other landmark
    took (an optimal assignment over each landmark's ``candidates`` nearest vertices).
    Distances are summed over the neutral and every mesh in ``posed`` (e.g. the open mouth),
    so an inner-lip landmark takes a vertex of its own lip, not the coincident one of the
    other lip.
    """
    meshes = [np.asarray(vertices)] + [np.asarray(p) for p in posed]
    points = [landmarks.points(m, faces) for m in meshes]
    tree = cKDTree(vertices)
    _, near = tree.query(points[0], k=candidates)
    pool = np.unique(near)
    cost = np.zeros((N_FACE, len(pool)))
    for m, p in zip(meshes, points):
        cost += np.linalg.norm(p[:, None, :] - m[pool][None, :, :], axis=2) ** 2
    allowed = np.zeros_like(cost, bool)
    for k in range(N_FACE):
        allowed[k, np.searchsorted(pool, near[k])] = True
    cost[~allowed] = 1e6
    rows, cols = linear_sum_assignment(cost)
    ids = np.empty(N_FACE, np.int64)
    ids[rows] = pool[cols]
    return ids
