"""Personalised rig: the template's 52 expressions moved onto the fitted face (Pan et al. §3.3).

Skin
    Deformation transfer (Eq. 14-16) carries each template expression's per-triangle
    deformation onto the fitted neutral.  Deformation gradients are not rotation covariant,
    so the template is first aligned to the fitted face by a similarity (Procrustes over all
    skin vertices) and its shapes are carried along with that similarity.

Eyes, mouth cavity, teeth, tongue
    These parts are not in the skin mesh, so they follow it:

    * each eyeball by a similarity re-fitted to its eye opening: translated with the eye
      contour's centroid and uniformly scaled by the opening's size change, then slid so its
      iris sits on the detected iris landmark; it stays a sphere and ``eyeLook*`` still
      rotate it about its (new) centre;
    * the mouth parts by one affine map estimated from the lip and chin vertices around the
      mouth (least squares, pulled toward a pure similarity so it stays well conditioned).

    A part's expression deltas are mapped by the linear part of its transform, so e.g. the
    lower teeth still follow ``jawOpen`` in proportion to the new mouth.
"""
from __future__ import annotations

import numpy as np

from .errors import InvalidInputError
from .fit import similarity_procrustes

__all__ = [
    "transfer_skin_shapes",
    "eye_similarity",
    "mouth_affine",
    "follow_parts",
    "EYE_CONTOURS",
    "MOUTH_REGION",
]

# MediaPipe eye contours (subject's left, subject's right), as landmark ids.
EYE_CONTOURS = {
    "eye_left": np.array([263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249]),
    "eye_right": np.array([33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7]),
}
# Lips (outer and inner), the chin and the nose base: what the mouth interior hangs from.
MOUTH_REGION = np.array([
    61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185,
    78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191,
    152, 148, 176, 149, 377, 400, 378, 199, 175, 2, 98, 327, 164, 57, 287, 43, 273, 106, 335,
])


def transfer_skin_shapes(template_vertices: np.ndarray, template_deltas: np.ndarray,
                         fitted_vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Template skin expressions -> fitted skin expressions: (52, N, 3) float32 deltas.

    template_vertices, fitted_vertices (N, 3) world metres on the same topology;
    template_deltas (M, N, 3); faces (F, 3).  Shapes that do not move the skin stay zero
    without a solve.
    """
    from .geometry import DeformationTransfer

    template_vertices = np.asarray(template_vertices, dtype=np.float64)
    fitted_vertices = np.asarray(fitted_vertices, dtype=np.float64)
    template_deltas = np.asarray(template_deltas, dtype=np.float64)
    if template_vertices.shape != fitted_vertices.shape or template_deltas.shape[1:] != template_vertices.shape:
        raise InvalidInputError(
            f"template {template_vertices.shape}, deltas {template_deltas.shape} and fitted "
            f"{fitted_vertices.shape} vertices do not share one topology")
    # Align the template to the fitted face: DT compares deformation gradients in one frame.
    alignment = similarity_procrustes(template_vertices, fitted_vertices)
    aligned = alignment.to_camera(template_vertices)
    linear = alignment.scale * alignment.rotation
    moving = np.flatnonzero(np.abs(template_deltas).reshape(len(template_deltas), -1).max(axis=1) > 0)
    result = np.zeros(template_deltas.shape, dtype=np.float32)
    if len(moving) == 0:
        return result
    source_shapes = aligned[None] + template_deltas[moving] @ linear.T
    transfer = DeformationTransfer(aligned, fitted_vertices, np.asarray(faces))
    target_shapes = transfer.transfer(source_shapes)
    result[moving] = (target_shapes - fitted_vertices[None]).astype(np.float32)
    return result


def eye_similarity(template_contour: np.ndarray, fitted_contour: np.ndarray) -> tuple[float, np.ndarray]:
    """Uniform scale and translation taking a template eye opening to the fitted one.

    template_contour, fitted_contour (K, 3).  Returns (scale, translation (3,)) such that a
    template point p maps to ``scale * (p - c_t) + c_f`` with c the contour centroids; the
    translation returned is ``c_f - scale * c_t``.
    """
    centre_t = template_contour.mean(axis=0)
    centre_f = fitted_contour.mean(axis=0)
    # Size of the opening in the face plane (x, y): depth is the least reliable coordinate.
    spread_t = np.sqrt(np.mean(np.sum((template_contour - centre_t)[:, :2] ** 2, axis=1)))
    spread_f = np.sqrt(np.mean(np.sum((fitted_contour - centre_f)[:, :2] ** 2, axis=1)))
    scale = float(spread_f / spread_t)
    return scale, centre_f - scale * centre_t


def mouth_affine(template_points: np.ndarray, fitted_points: np.ndarray, stiffness: float = 0.1):
    """Affine map (A (3, 3), b (3,)) with ``fitted ≈ A @ template + b`` around the mouth.

    Least squares, regularised toward the best similarity ``s R`` with weight ``stiffness``
    (relative to the data term in units of the region's size) so nearly planar point sets
    cannot collapse the depth axis.
    """
    similarity = similarity_procrustes(template_points, fitted_points)
    prior = similarity.scale * similarity.rotation
    centre_t = template_points.mean(axis=0)
    centre_f = fitted_points.mean(axis=0)
    x = template_points - centre_t
    y = fitted_points - centre_f
    size2 = np.mean(np.sum(x * x, axis=1))
    lam = stiffness * len(x) * size2
    # min |X A^T - Y|^2 + lam |A - prior|^2  ->  A^T = (X^T X + lam I)^-1 (X^T Y + lam prior^T)
    a_t = np.linalg.solve(x.T @ x + lam * np.eye(3), x.T @ y + lam * prior.T)
    a = a_t.T
    return a, centre_f - a @ centre_t


def follow_parts(template, fitted_skin: np.ndarray, pose=None, iris_pixels: dict | None = None,
                 max_iris_shift: float = 0.3) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Neutral vertices and deltas of every non-skin part, following the fitted skin.

    template: a :class:`pyfacerig.templates.FaceTemplate`; fitted_skin (N_skin, 3) world.
    pose, iris_pixels: optional fitted :class:`pyfacerig.fit.Pose` and {"eye_left": (2,),
    "eye_right": (2,)} image pixels of the iris centres (MediaPipe 473 and 468).  With them,
    each eyeball is also slid across the view axis so the centre of its iris (the front pole,
    the template eyes look toward +Z) lands on the detected iris, at most ``max_iris_shift``
    eyeball radii.
    Returns name -> (vertices (N, 3) float64, shape_deltas (52, N, 3) float32).
    """
    skin = template.parts["skin"]
    ids = np.asarray(template.landmark_vertex_ids, dtype=np.int64)
    centres = {"eye_left": np.asarray(template.eye_centers[0], dtype=np.float64),
               "eye_right": np.asarray(template.eye_centers[1], dtype=np.float64)}
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in ("eye_left", "eye_right"):
        part = template.parts[name]
        contour = ids[EYE_CONTOURS[name]]
        scale, translation = eye_similarity(skin.vertices[contour], fitted_skin[contour])
        if pose is not None and iris_pixels is not None and name in iris_pixels:
            front = scale * (centres[name] + [0.0, 0.0, template.eye_radius]) + translation
            depth = pose.to_camera(front[None])[0, 2]
            x, y = np.asarray(iris_pixels[name], dtype=np.float64)[:2]
            shift = pose.to_world(np.array([[x, -y, depth]]))[0] - front
            limit = max_iris_shift * scale * template.eye_radius
            length = float(np.linalg.norm(shift))
            if length > limit:
                shift *= limit / length
            translation = translation + shift
        vertices = scale * part.vertices + translation
        out[name] = (vertices, (scale * part.shape_deltas).astype(np.float32))
    mouth = ids[MOUTH_REGION]
    a, b = mouth_affine(skin.vertices[mouth], fitted_skin[mouth])
    for name in template.parts:
        if name in ("skin", "eye_left", "eye_right"):
            continue
        part = template.parts[name]
        out[name] = (part.vertices @ a.T + b, (part.shape_deltas @ a.T.astype(np.float32)).astype(np.float32))
    return out
