"""Fitting the template to one face: coarse fit (Pan et al. §3.1) and fine fit (§3.2.2).

Frames
------
* **image**: pixels, x right, y down; a landmark's third coordinate is MediaPipe's relative
  depth in pixel units (smaller = nearer the camera).
* **camera**: the same pixels with y up and z toward the camera, so it is right-handed like
  the template.  The camera looks down -z and projects orthographically (Pan et al.'s Π of
  Eq. 4): image (u, v) = (x, -y).
* **world**: the template's frame, metres, +Y up, the face looking toward +Z.

A :class:`Pose` maps world to camera: ``camera = scale * R @ world + t``.

Coarse fit
----------
The paper regresses 3DMM coefficients with a CNN.  We have 468 dense 3D landmarks instead, so
the coarse fit is a small least-squares problem in two alternating steps:

1. *pose*: a weighted similarity Procrustes (Umeyama) of the template's landmark vertices onto
   the detected landmarks;
2. *overall shape*: a low-dimensional smooth displacement of the whole template -- an
   anisotropic scale about the face centre plus a few Gaussian radial-basis bumps centred on
   the facial parts -- solved by Tikhonov-regularised least squares.  Like a 3DMM it can only
   express broad changes (a wider face, a longer nose, a lower mouth), never individual
   landmark offsets; that is the fine fit's job.

Fine fit
--------
Laplacian deformation (Eq. 10) of the coarse mesh with every landmark vertex as an anchor.
The anchor's image x/y comes from the (eye-refined) detected landmark; its depth is the coarse
vertex's depth (Eq. 11), then it is mapped back to the world frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._cache import lookup, remember
from .errors import InvalidInputError

__all__ = [
    "Pose",
    "CoarseFit",
    "image_to_camera",
    "camera_to_image",
    "similarity_procrustes",
    "shape_basis",
    "coarse_fit",
    "refit_expression",
    "close_mouth",
    "fold_smoother",
    "anchor_spread",
    "pocket_follower",
    "fine_fit",
    "project",
]


@dataclass(frozen=True)
class Pose:
    """World-to-camera similarity: ``camera = scale * rotation @ world + translation``.

    rotation (3, 3) float64 proper rotation; translation (3,) float64 in pixels;
    scale float, pixels per metre.
    """

    rotation: np.ndarray
    translation: np.ndarray
    scale: float

    def to_camera(self, world: np.ndarray) -> np.ndarray:
        """(N, 3) world metres -> (N, 3) camera pixels."""
        return self.scale * world @ self.rotation.T + self.translation

    def to_world(self, camera: np.ndarray) -> np.ndarray:
        """(N, 3) camera pixels -> (N, 3) world metres (inverse of :meth:`to_camera`)."""
        return (camera - self.translation) @ self.rotation / self.scale

    def as_dict(self) -> dict:
        """JSON-friendly form for the sidecar."""
        return {
            "rotation": self.rotation.tolist(),
            "translation_px": self.translation.tolist(),
            "scale_px_per_m": float(self.scale),
        }


@dataclass(frozen=True)
class CoarseFit:
    """Result of :func:`coarse_fit`.

    pose: world-to-camera :class:`Pose`; vertices (N, 3) float64 world metres, the template
    after the smooth shape adjustment and, with an expression basis, the photo's expression
    (the posed fit, which is what the photo shows); shape_coefficients (P,) float64.
    neutral_vertices (N, 3): the same identity without the expression (equal to ``vertices``
    without an expression basis); expression_weights (E,) float64 in [0, 1] (empty without one).
    """

    pose: Pose
    vertices: np.ndarray
    shape_coefficients: np.ndarray
    neutral_vertices: np.ndarray = None
    expression_weights: np.ndarray = None


def _as_points(name: str, array, columns: int | tuple[int, ...] = 3) -> np.ndarray:
    """Validate an (N, columns) finite float array at a stage boundary."""
    points = np.asarray(array, dtype=np.float64)
    allowed = (columns,) if isinstance(columns, int) else columns
    if points.ndim != 2 or points.shape[1] not in allowed:
        raise InvalidInputError(f"{name} must have shape (N, {'|'.join(map(str, allowed))}), got {points.shape}")
    if not np.all(np.isfinite(points)):
        raise InvalidInputError(f"{name} contains NaN or infinite values")
    return points


def image_to_camera(points: np.ndarray) -> np.ndarray:
    """(N, 3) image-frame landmarks (x right, y down, z away) -> camera frame (y up, z toward)."""
    points = _as_points("points", points)
    return points * np.array([1.0, -1.0, -1.0])


def camera_to_image(points: np.ndarray) -> np.ndarray:
    """(N, 3) camera-frame points -> (N, 2) image pixels under orthographic projection (Eq. 4's Π)."""
    return np.stack([points[:, 0], -points[:, 1]], axis=1)


def project(world: np.ndarray, pose: Pose) -> np.ndarray:
    """(N, 3) world points -> (N, 2) image pixels: Π(sRv + t) with the image's y down (Eq. 12)."""
    return camera_to_image(pose.to_camera(np.asarray(world, dtype=np.float64)))


def similarity_procrustes(source: np.ndarray, target: np.ndarray, weights: np.ndarray | None = None) -> Pose:
    """Weighted least-squares similarity (Umeyama 1991) with ``target ≈ s R source + t``.

    source, target (K, 3); weights (K,) non-negative (default all ones).
    """
    source = _as_points("source", source)
    target = _as_points("target", target)
    if source.shape != target.shape:
        raise InvalidInputError(f"source {source.shape} and target {target.shape} differ in shape")
    w = np.ones(len(source)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (len(source),) or np.any(w < 0) or not np.isfinite(w).all() or w.sum() <= 0:
        raise InvalidInputError("weights must be (K,) finite, non-negative and not all zero")
    w = w / w.sum()
    mu_s = w @ source
    mu_t = w @ target
    xs = source - mu_s
    xt = target - mu_t
    covariance = (xt * w[:, None]).T @ xs
    u, sigma, vt = np.linalg.svd(covariance)
    # Keep a proper rotation: flip the weakest axis if the best orthogonal map is a reflection.
    d = np.ones(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[2] = -1.0
    rotation = u @ np.diag(d) @ vt
    variance = w @ np.sum(xs * xs, axis=1)
    if variance <= 0:
        raise InvalidInputError("source points are all identical")
    scale = float(np.sum(sigma * d) / variance)
    translation = mu_t - scale * rotation @ mu_s
    return Pose(rotation=rotation, translation=translation, scale=scale)


# Centres of the coarse shape modes, as MediaPipe landmark indices (the template's landmark
# vertices): parts a 3DMM identity basis moves as a whole.
_MODE_CENTRES = {
    "eye_left": (263, 362, 386, 374),
    "eye_right": (33, 133, 159, 145),
    "brow_left": (300, 293, 334),
    "brow_right": (70, 63, 105),
    "nose": (1, 4, 5),
    "nostrils": (98, 327, 2),
    "mouth": (13, 14, 78, 308),
    "chin": (152, 148, 377),
    "cheek_left": (280, 425),
    "cheek_right": (50, 205),
    "jaw_left": (361, 397),
    "jaw_right": (132, 172),
    "forehead": (10, 151),
}


#: Expression penalties of the joint fit (:func:`coarse_fit`), relative to each shape's motion
#: at the landmarks; tuned on the bundled and held-out portraits (docs/pipeline.md).
EXPRESSION_REGULARIZATION = 0.05
EXPRESSION_SPARSITY = 0.002
CLOSED_PAIR_STIFFNESS = 100.0
REFIT_REGULARIZATION = 0.01


def shape_basis(vertices: np.ndarray, landmark_vertex_ids: np.ndarray, radius: float | None = None) -> np.ndarray:
    """Smooth displacement modes of the template: (N, 3, P) float64, P = 3 + 3 * 13.

    The first three modes are an anisotropic scale about the landmark centroid (one per axis);
    the rest are x/y/z translations of Gaussian bumps centred on the parts in ``_MODE_CENTRES``
    with standard deviation ``radius`` (default: 12% of the face's landmark span).
    """
    vertices = _as_points("vertices", vertices)
    landmark_points = vertices[landmark_vertex_ids[:468]]
    centroid = landmark_points.mean(axis=0)
    if radius is None:
        radius = 0.12 * float(np.ptp(landmark_points[:, 1]))
    offsets = vertices - centroid
    modes = [np.zeros((len(vertices), 3)) for _ in range(3)]
    for axis in range(3):
        modes[axis][:, axis] = offsets[:, axis]
    for ids in _MODE_CENTRES.values():
        centre = landmark_points[list(ids)].mean(axis=0)
        bump = np.exp(-np.sum((vertices - centre) ** 2, axis=1) / (2.0 * radius**2))
        for axis in range(3):
            mode = np.zeros((len(vertices), 3))
            mode[:, axis] = bump
            modes.append(mode)
    return np.stack(modes, axis=2)


def face_size_of(vertices: np.ndarray, landmark_vertex_ids: np.ndarray) -> float:
    """Forehead-to-chin extent of the landmark vertices (the coarse fit's unit of length)."""
    return float(np.ptp(vertices[landmark_vertex_ids[:468]][:, 1]))


def _coarse_system(template_vertices, ids, w, regularization, identity_basis, expression_basis,
                   expression_regularization, expression_sparsity, closed_pairs):
    """What the coarse fit solves with that depends on the template alone (for a given landmark
    weighting): the landmark basis, the normal equations and their factorisations."""
    from scipy.linalg import cho_factor, cho_solve

    face_size = face_size_of(template_vertices, ids)

    if identity_basis is None:
        basis = shape_basis(template_vertices, ids)
        landmark_basis = basis[ids].reshape(468 * 3, -1)  # (1404, P)
        apply = lambda c: basis @ c                       # noqa: E731
        penalty = np.ones(landmark_basis.shape[1])
    else:
        identity_basis = np.asarray(identity_basis)
        if identity_basis.ndim != 3 or identity_basis.shape[1:] != template_vertices.shape:
            raise InvalidInputError(f"identity_basis must be (P, {len(template_vertices)}, 3), got {identity_basis.shape}")
        # Width and height scales of the whole head; its depth is left to the modifiers, since
        # MediaPipe's relative depth is too weak a cue to stretch a skull front to back.
        scales = (template_vertices - template_vertices[ids].mean(axis=0)) * [1.0, 1.0, 0.0]
        landmark_basis = np.concatenate([
            np.stack([np.eye(3)[a] * scales[ids][:, a:a + 1] for a in range(2)], axis=2),
            np.moveaxis(identity_basis[:, ids].astype(np.float64), 0, 2)], axis=2).reshape(468 * 3, -1)

        def apply(c):
            return scales[:, :2] * c[:2] @ np.eye(2, 3) + np.tensordot(c[2:].astype(np.float32), identity_basis, axes=1)

        # Penalise what a mode does to the whole head, not its coefficient: a modifier that
        # moves the unseen back of the skull a lot for a small change at the landmarks costs
        # in proportion, so the landmarks cannot reshape the skull.
        penalty = np.concatenate([np.mean(scales[:, :2] ** 2, axis=0),
                                  np.einsum("pnd,pnd->p", identity_basis, identity_basis, dtype=np.float64)
                                  / len(template_vertices)]) / face_size ** 2
    shape_count = landmark_basis.shape[1]
    penalty = regularization * penalty

    expression_count = 0
    if expression_basis is not None:
        expression_basis = np.asarray(expression_basis)
        if expression_basis.ndim != 3 or expression_basis.shape[1:] != template_vertices.shape:
            raise InvalidInputError(
                f"expression_basis must be (E, {len(template_vertices)}, 3), got {expression_basis.shape}")
        expression_count = len(expression_basis)
        expression_landmarks = np.moveaxis(expression_basis[:, ids].astype(np.float64), 0, 2).reshape(468 * 3, -1)
        landmark_basis = np.concatenate([landmark_basis, expression_landmarks], axis=1)
        # Each shape's mean squared landmark motion, in face-size units: the penalties are
        # relative to what the shape does at the landmarks, so a shape that barely moves them
        # (tongueOut, the eyes' look shapes) cannot drift to large weights unseen.
        motion = np.einsum("ik,ik->k", expression_landmarks, expression_landmarks) / (468 * face_size**2)
        motion = np.maximum(motion, 1e-4 * motion.max(initial=0.0) + 1e-12)
        penalty = np.concatenate([penalty, expression_regularization * motion])
        linear_penalty = np.concatenate([np.zeros(shape_count), expression_sparsity * np.sqrt(motion)])

    row_weights = np.repeat(np.sqrt(w), 3)
    a = landmark_basis * row_weights[:, None]
    # Normalise so the penalties are independent of the landmark count and metric scale.
    normal = a.T @ a / (face_size**2 * w.sum()) + np.diag(penalty)
    if closed_pairs is not None:
        pairs = np.asarray(closed_pairs, dtype=np.int64).reshape(-1, 2)
        by_landmark = landmark_basis.reshape(468, 3, -1)
        # Relative motion of each pair under each identity mode; a stiff quadratic penalty
        # (CLOSED_PAIR_STIFFNESS times the data term's unit) keeps it at zero.
        relative = (by_landmark[pairs[:, 0]] - by_landmark[pairs[:, 1]]).reshape(-1, landmark_basis.shape[1])
        relative[:, shape_count:] = 0.0
        normal += CLOSED_PAIR_STIFFNESS * relative.T @ relative / (face_size**2 * len(pairs))
    if expression_count:
        # Only the expression weights are bounded: eliminate the identity exactly (its block is
        # positive definite), leaving a small bounded problem in the E weights alone.
        identity_factor = cho_factor(normal[:shape_count, :shape_count])
        cross = cho_solve(identity_factor, normal[:shape_count, shape_count:])       # (P, E)
        reduced = normal[shape_count:, shape_count:] - normal[shape_count:, :shape_count] @ cross
    else:
        identity_factor = cross = reduced = linear_penalty = None
    return (face_size, a, row_weights, normal, shape_count, expression_count, linear_penalty, identity_factor,
            cross, reduced, apply)


#: The coarse fit's template-only systems, kept per template (read-only arrays) between builds.
_COARSE_SYSTEMS: dict = {}


def coarse_fit(
    template_vertices: np.ndarray,
    landmark_vertex_ids: np.ndarray,
    landmarks: np.ndarray,
    weights: np.ndarray | None = None,
    regularization: float | np.ndarray = 1.0,
    iterations: int = 3,
    identity_basis: np.ndarray | None = None,
    expression_basis: np.ndarray | None = None,
    expression_regularization: float = EXPRESSION_REGULARIZATION,
    expression_sparsity: float = EXPRESSION_SPARSITY,
    closed_pairs: np.ndarray | None = None,
) -> CoarseFit:
    """Fit pose, overall shape and (optionally) expression of the template to landmarks (§3.1).

    template_vertices (N, 3) world metres; landmark_vertex_ids (468,) int, the template vertex
    of each MediaPipe landmark; landmarks (>=468, 3) image frame (pixels, y down, MediaPipe
    relative depth); weights (468,) per-landmark weight (Eq. 4's ω_n, default ones).
    ``regularization`` is the Tikhonov weight on the shape coefficients (Eq. 6's role),
    relative to the data term measured in units of the face size: one number, or one per
    shape mode (with ``identity_basis``: the width and height scales, then the P modifiers).
    identity_basis (P, N, 3): the template's identity modifiers (Eq. 1's α_id basis).  With it
    the shape modes are the head's width and height scales plus these; without it, the three
    axis scales plus smooth Gaussian bumps on the facial parts (:func:`shape_basis`).
    expression_basis (E, N, 3): the template's expression deltas (Eq. 1's α_exp basis, the 52
    ARKit shapes), fitted jointly with the identity, each weight bounded to [0, 1].  Each
    weight pays ``expression_regularization`` times its squared landmark motion and
    ``expression_sparsity`` times its landmark motion (an L1 term: on a neutral face the
    weights stay at zero rather than picking up the detector's noise).
    closed_pairs (K, 2): landmark indices (into the 468) that touch at rest, such as the inner
    lips.  The identity may not move one of a pair against the other, so a photo's open mouth
    has to be read as expression and the rest pose keeps its lips closed.
    """
    template_vertices_in = template_vertices
    template_vertices = _as_points("template_vertices", template_vertices)
    landmarks = _as_points("landmarks", landmarks)
    ids = np.asarray(landmark_vertex_ids, dtype=np.int64)
    if ids.ndim != 1 or len(ids) < 468 or ids.min() < 0 or ids.max() >= len(template_vertices):
        raise InvalidInputError("landmark_vertex_ids must be (468,) indices into template_vertices")
    ids = ids[:468]
    if len(landmarks) < 468:
        raise InvalidInputError(f"need the 468 face-mesh landmarks, got {len(landmarks)}")
    target = image_to_camera(landmarks[:468])
    w = np.ones(468) if weights is None else np.asarray(weights, dtype=np.float64)
    # Cached per template: the key holds every other input the system depends on.
    key = (id(template_vertices_in), id(identity_basis), id(expression_basis), ids.tobytes(),
           np.asarray(regularization, dtype=np.float64).tobytes(), float(expression_regularization),
           float(expression_sparsity), None if closed_pairs is None else np.asarray(closed_pairs).tobytes())
    sources = (template_vertices_in, identity_basis, expression_basis)
    system = lookup(_COARSE_SYSTEMS, key, sources) if weights is None else None
    if system is None:
        system = _coarse_system(template_vertices, ids, w, regularization, identity_basis, expression_basis,
                                expression_regularization, expression_sparsity, closed_pairs)
        if weights is None:
            remember(_COARSE_SYSTEMS, key, sources, system, limit=4)
    (face_size, a, row_weights, normal, shape_count, expression_count, linear_penalty, identity_factor, cross,
     reduced, apply) = system
    if expression_count:
        from scipy.linalg import cho_solve
        expression_basis = np.asarray(expression_basis)
    coefficients = np.zeros(a.shape[1])
    vertices = template_vertices
    for _ in range(iterations):
        pose = similarity_procrustes(vertices[ids], target, w)
        # Residual in the world frame: where the landmarks would sit on an undistorted face.
        residual = (pose.to_world(target) - template_vertices[ids]).reshape(-1)
        rhs = a.T @ (residual * row_weights) / (face_size**2 * w.sum())
        if expression_count:
            rhs = rhs - 0.5 * linear_penalty
            identity_part = cho_solve(identity_factor, rhs[:shape_count])
            expression = _bounded_quadratic(reduced, rhs[shape_count:] - normal[shape_count:, :shape_count] @ identity_part,
                                            np.zeros(expression_count), np.ones(expression_count))
            coefficients = np.concatenate([identity_part - cross @ expression, expression])
        else:
            coefficients = np.linalg.solve(normal, rhs)
        neutral = template_vertices + apply(coefficients[:shape_count])
        vertices = neutral
        if expression_count:
            vertices = neutral + np.tensordot(coefficients[shape_count:].astype(np.float32), expression_basis, axes=1)
    pose = similarity_procrustes(vertices[ids], target, w)
    return CoarseFit(pose=pose, vertices=vertices, shape_coefficients=coefficients[:shape_count],
                     neutral_vertices=neutral, expression_weights=coefficients[shape_count:])


def _bounded_quadratic(hessian: np.ndarray, gradient_target: np.ndarray, lower: np.ndarray,
                       upper: np.ndarray) -> np.ndarray:
    """argmin ½ xᵀHx - bᵀx subject to lower <= x <= upper, for a positive definite H.

    Written as the bounded least-squares problem |Lᵀx - L⁻¹b|² (H = LLᵀ) and solved exactly by
    bounded-variable least squares, an active-set method: the result is the same every run.
    """
    from scipy.linalg import cholesky, solve_triangular
    from scipy.optimize import lsq_linear

    factor = cholesky(hessian, lower=True)
    rhs = solve_triangular(factor, gradient_target, lower=True)
    return lsq_linear(factor.T, rhs, bounds=(lower, upper), method="bvls").x


def refit_expression(
    posed_vertices: np.ndarray,
    neutral_vertices: np.ndarray,
    landmark_vertex_ids: np.ndarray,
    expression_basis: np.ndarray,
    weights: np.ndarray,
    refit: np.ndarray,
    regularization: float = REFIT_REGULARIZATION,
) -> np.ndarray:
    """Expression weights re-read from the fine fit: (E,) float64 in [0, 1].

    The coarse fit reads the expression through a regularised identity; the fine fit then
    matches every landmark, so what the coarse expression missed (the last few millimetres of
    an open mouth, the lift of a smile's corners) sits in the fine fit's displacement.  Here
    the weights flagged in ``refit`` (E,) bool are fitted again, with the identity held at
    ``neutral_vertices`` (N, 3), to the landmark offsets of ``posed_vertices`` (N, 3); the
    others keep their value from ``weights`` (E,).  ``regularization`` is relative to each
    shape's squared landmark motion, as in :func:`coarse_fit`.
    """
    ids = np.asarray(landmark_vertex_ids, dtype=np.int64)[:468]
    basis = np.moveaxis(np.asarray(expression_basis)[:, ids].astype(np.float64), 0, 2).reshape(468 * 3, -1)
    weights = np.asarray(weights, dtype=np.float64).copy()
    refit = np.asarray(refit, dtype=bool)
    face_size = face_size_of(neutral_vertices, ids)
    offsets = (posed_vertices[ids] - neutral_vertices[ids]).reshape(-1)
    fixed = ~refit
    target = offsets - basis[:, fixed] @ weights[fixed]
    a = basis[:, refit]
    motion = np.einsum("ik,ik->k", a, a) / (468 * face_size**2)
    hessian = a.T @ a / (468 * face_size**2) + np.diag(regularization * np.maximum(motion, 1e-12))
    rhs = a.T @ target / (468 * face_size**2)
    weights[refit] = _bounded_quadratic(hessian, rhs, np.zeros(refit.sum()), np.ones(refit.sum()))
    return weights


def close_mouth(
    vertices: np.ndarray,
    faces: np.ndarray,
    lip_pair_ids: np.ndarray,
    lip_offsets: np.ndarray,
    corner_ids: np.ndarray,
    corner_heights: np.ndarray,
    rest_vertices: np.ndarray,
    radius: float,
    upper_share: float = 0.3,
) -> np.ndarray:
    """Close the lips and level the mouth corners, smoothly, near the mouth only: (N, 3) float64.

    vertices (N, 3) world, +Y up; faces (F, 3); lip_pair_ids (K, 2) (upper, lower) vertex ids
    of the inner lips; lip_offsets (K, 3) the upper-minus-lower offset each pair has where the
    lips touch (the template's); corner_ids (C,) the mouth corners and corner_heights (C,)
    their rest heights above the line where the lips meet (the template's, to the face's
    scale); rest_vertices (N, 3) a closed-mouth version of the same face (the coarse fit's
    identity), which gives the height at which each pair meets.  So a laugh's low jaw and a
    smile's lifted corners go.  Across the face each pair meets ``upper_share`` of the way from the upper lip
    to the lower one, as a mouth opens mostly by the jaw.  The surface within ``radius`` metres
    of the lips follows by Laplacian deformation of its own shape; everything beyond stays.
    """
    from .geometry import LaplacianDeformer

    vertices = _as_points("vertices", vertices)
    rest_vertices = _as_points("rest_vertices", rest_vertices)
    faces = np.asarray(faces, dtype=np.int64)
    pairs = np.asarray(lip_pair_ids, dtype=np.int64).reshape(-1, 2)
    lip_offsets = np.asarray(lip_offsets, dtype=np.float64).reshape(-1, 3)
    corners = np.asarray(corner_ids, dtype=np.int64).reshape(-1)
    upper, lower = vertices[pairs[:, 0]], vertices[pairs[:, 1]]
    meet = upper + upper_share * (lower - upper)
    meet[:, 1] = 0.5 * (rest_vertices[pairs[:, 0], 1] + rest_vertices[pairs[:, 1], 1])
    lip_targets = np.concatenate([meet + 0.5 * lip_offsets, meet - 0.5 * lip_offsets])
    corner_targets = vertices[corners].copy()
    corner_targets[:, 1] = meet[:, 1].mean() + np.asarray(corner_heights, dtype=np.float64)
    centre = vertices[pairs.reshape(-1)].mean(axis=0)
    distance = np.linalg.norm(vertices - centre, axis=1)
    # A coarse head's landmark vertices can sit far apart: the patch always holds them.
    radius = max(radius, 1.2 * float(distance[np.concatenate([pairs.reshape(-1), corners])].max()))
    # Solve on the patch around the mouth only: a ring of fixed vertices bounds it.
    inside = distance < 1.25 * radius
    patch_faces = faces[inside[faces].all(axis=1)]
    used = np.unique(patch_faces)
    local = np.full(len(vertices), -1, dtype=np.int64)
    local[used] = np.arange(len(used))
    fixed = used[distance[used] >= radius]
    anchors = np.concatenate([pairs[:, 0], pairs[:, 1], corners, fixed])
    targets = np.concatenate([lip_targets, corner_targets, vertices[fixed]])
    deformer = LaplacianDeformer(vertices[used], local[patch_faces], local[anchors], weight=1000.0)
    result = vertices.copy()
    result[used] = deformer.solve(targets)
    return result


def fold_smoother(vertices: np.ndarray, radius: float, frozen: np.ndarray | None = None,
                  sides: np.ndarray | None = None):
    """(N, N) sparse row-stochastic matrix: a per-vertex field averaged over a ball in space.

    A Laplacian deformation works along the surface, so two sheets of skin that touch in space
    but are far apart on the mesh -- an upper lid tucked under the fold above it, a nostril's
    rim, the lips' inner skin -- move independently; the fine fit then pushes one sheet through
    the other and the intersection shows as a jagged ridge (and every blink opens it up again).
    Averaging the fit's *displacement* over a Gaussian ball of ``radius`` metres (sigma
    radius / 2) in the template makes sheets that touch move together, while a displacement
    that is smooth at that scale passes almost unchanged.  ``frozen`` (N,) bool: vertices kept
    out (they neither average nor are averaged); ``sides`` (N,) int: two vertices with different
    non-zero labels never mix (the upper and lower lip, which touch but must open apart).
    """
    import scipy.sparse as sp
    from scipy.spatial import cKDTree

    vertices = _as_points("vertices", vertices)
    count = len(vertices)
    pairs = cKDTree(vertices).query_pairs(radius, output_type="ndarray").reshape(-1, 2)
    keep = np.ones(len(pairs), bool)
    if frozen is not None:
        frozen = np.asarray(frozen, dtype=bool)
        keep &= ~(frozen[pairs[:, 0]] | frozen[pairs[:, 1]])
    if sides is not None:
        sides = np.asarray(sides)
        a, b = sides[pairs[:, 0]], sides[pairs[:, 1]]
        keep &= ~((a != b) & (a != 0) & (b != 0))
    pairs = pairs[keep]
    distance = np.linalg.norm(vertices[pairs[:, 0]] - vertices[pairs[:, 1]], axis=1)
    weight = np.exp(-0.5 * (distance / (0.5 * radius)) ** 2)
    rows = np.concatenate([pairs[:, 0], pairs[:, 1], np.arange(count)])
    cols = np.concatenate([pairs[:, 1], pairs[:, 0], np.arange(count)])
    values = np.concatenate([weight, weight, np.ones(count)])
    matrix = sp.csr_matrix((values, (rows, cols)), shape=(count, count))
    return (sp.diags(1.0 / np.asarray(matrix.sum(axis=1)).ravel()) @ matrix).tocsr()


def anchor_spread(vertices: np.ndarray, anchor_ids: np.ndarray, radius: float):
    """(N, K) sparse: spreads a correction given at K anchor vertices over the ball of
    ``radius`` metres around each, fading to zero at its edge.

    After :func:`fold_smoother` the anchors have lost a little of their motion (an enlarged
    eye's lid margin moves several millimetres more than the skin 4 mm away).  ``spread @
    errors`` puts it back: a Wendland-weighted mean of the nearby anchors' errors, so at an
    anchor it is about that anchor's error, and no anchor is overshot (an exact interpolation
    with the same kernel rang between the close-set nostril anchors).  Like the smoother it is
    a function of position in space, so sheets that touch get the same correction.
    """
    import scipy.sparse as sp
    from scipy.spatial import cKDTree

    vertices = _as_points("vertices", vertices)
    anchor_ids = np.asarray(anchor_ids, dtype=np.int64)
    near = cKDTree(vertices).sparse_distance_matrix(cKDTree(vertices[anchor_ids]), radius, output_type="coo_matrix")
    q = near.data / radius
    weight = (1.0 - q) ** 4 * (4.0 * q + 1.0)
    # an anchor's own vertex is at distance 0, which the sparse distance matrix leaves out
    rows = np.concatenate([near.row, anchor_ids])
    cols = np.concatenate([near.col, np.arange(len(anchor_ids))])
    matrix = sp.csr_matrix((np.concatenate([weight, np.ones(len(anchor_ids))]), (rows, cols)),
                           shape=(len(vertices), len(anchor_ids)))
    total = np.asarray(matrix.sum(axis=1)).ravel()
    return (sp.diags(1.0 / np.maximum(total, 1.0)) @ matrix).tocsr()


def pocket_follower(vertices: np.ndarray, faces: np.ndarray, pocket: np.ndarray, shell: float, reach: float,
                    blend: float):
    """(N, N) linear operator: a per-vertex field (N, 3) with the ``pocket`` (N,) bool vertices
    following the rest of the surface in space.

    The mouth interior is a sac of the skin hung from the lips, 5 cm deep into the head and
    joined to the rest of the surface only along the lips.  A Laplacian deformation carries
    the lips' motion down it like a lever: on obama3 a few degrees of turn at the lips swung
    the far end of the sac 15-19 mm sideways while the jaw skin 7 mm below it moved 3 mm, and
    the sac came out under the jaw.  So:

    * the sac's wall within ``shell`` metres of the rest of the surface takes the mean of the
      field over the surface near it in space: the vertices within ``reach`` metres beyond the
      nearest one, Wendland-weighted by how much farther they are (continuous in space);
    * near the opening it keeps its own field instead (the lips' motion, which the Laplacian
      carries well over a short way), blended by a smoothstep of the geodesic distance inside
      the pocket from its rim: its own at the rim, the surroundings' at ``blend`` metres;
    * the deeper sac is the harmonic interpolation of those values along the sac (umbrella
      weights, so it never overshoots them): a mean taken farther from the surface changes
      too fast with position there and turned triangles over.

    Other rows are the identity.  Made once per template; applying it costs a sparse product
    and one solve with a factorisation made here.
    """
    import scipy.sparse as sp
    from scipy.sparse.csgraph import dijkstra
    from scipy.sparse.linalg import LinearOperator, splu
    from scipy.spatial import cKDTree

    vertices = _as_points("vertices", vertices)
    faces = np.asarray(faces, dtype=np.int64)
    pocket = np.asarray(pocket, dtype=bool)
    count = len(vertices)
    inside, outside = np.flatnonzero(pocket), np.flatnonzero(~pocket)
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    rim = np.unique(edges[pocket[edges[:, 0]] & ~pocket[edges[:, 1]], 0])
    if len(rim) == 0:
        return sp.identity(count, format="csr")
    inner = edges[pocket[edges].all(axis=1)]
    lengths = np.linalg.norm(vertices[inner[:, 0]] - vertices[inner[:, 1]], axis=1)
    graph = sp.csr_matrix((lengths, (inner[:, 0], inner[:, 1])), shape=(count, count))
    depth = dijkstra(graph, directed=False, indices=rim, min_only=True)[inside]
    q = np.clip(depth / blend, 0.0, 1.0)
    follow = q * q * (3.0 - 2.0 * q)
    tree = cKDTree(vertices[outside])
    nearest, _ = tree.query(vertices[inside])
    wall = nearest <= shell
    # The wall: (1 - follow) * own + follow * the mean of the surroundings.
    found = tree.query_ball_point(vertices[inside[wall]], nearest[wall] + reach, return_sorted=True)
    rows = np.repeat(np.arange(int(wall.sum())), [len(f) for f in found])
    cols = np.concatenate([np.asarray(f, dtype=np.int64) for f in found])
    s = np.clip((np.linalg.norm(vertices[outside[cols]] - vertices[inside[wall][rows]], axis=1)
                 - nearest[wall][rows]) / reach, 0.0, 1.0)
    weight = (1.0 - s) ** 4 * (4.0 * s + 1.0)
    weight *= follow[wall][rows] / np.bincount(rows, weights=weight, minlength=int(wall.sum()))[rows]
    own = np.ones(count)
    own[inside[wall]] = 1.0 - follow[wall]
    own[inside[~wall]] = 0.0
    known = sp.csr_matrix((np.concatenate([weight, own]),
                           (np.concatenate([inside[wall][rows], np.arange(count)]),
                            np.concatenate([outside[cols], np.arange(count)]))), shape=(count, count))
    # The deep sac: umbrella Laplacian rows of the free vertices, the wall's values as boundary.
    free = inside[~wall]
    if len(free) == 0:
        return known
    adjacency = sp.csr_matrix((np.ones(len(inner)), (inner[:, 0], inner[:, 1])), shape=(count, count))
    adjacency = ((adjacency + adjacency.T) > 0).astype(np.float64).tocsr()
    block = adjacency[free]
    # The tiny extra diagonal keeps a part of the sac that no wall vertex bounds (not met in the
    # default template) from making the system singular: such a part stays where it was.
    laplacian = sp.diags((1.0 + 1e-9) * np.asarray(block.sum(axis=1)).ravel() + 1e-12) - block[:, free]
    solver = splu(laplacian.tocsc())
    boundary = block @ sp.diags((~np.isin(np.arange(count), free)).astype(np.float64))

    def apply(field):
        field = np.asarray(field, dtype=np.float64)
        flat = field.reshape(count, -1)
        out = known @ flat
        out[free] = solver.solve(boundary @ out)
        return out.reshape(field.shape)

    return LinearOperator((count, count), matvec=apply, matmat=apply, dtype=np.float64)


def fine_fit(
    coarse_vertices: np.ndarray,
    faces: np.ndarray,
    pose: Pose,
    anchor_ids: np.ndarray,
    anchor_pixels: np.ndarray,
    anchor_weight: float = 100.0,
    rotation_aware: bool = True,
    fixed_ids: np.ndarray | None = None,
) -> np.ndarray:
    """Laplacian fine fit (§3.2.2, Eq. 10-11): move the anchor vertices onto the landmarks.

    coarse_vertices (N, 3) world metres; faces (F, 3) int; anchor_ids (K,) vertex indices;
    anchor_pixels (K, 2) image pixels of the detected (eye-refined) landmarks; anchor_weight
    is Eq. 10's λ.  ``rotation_aware`` lets each vertex's Laplacian coordinate turn with its
    one-ring (the core's local/global refinement; docs/geometry.md recommends it after a
    similarity alignment, which the coarse fit provides).  fixed_ids (M,) vertex indices, not
    among the anchors, held at their coarse positions with the same weight: the part of a whole
    head no landmark sees (the back of the skull, the neck down to its collar), which the
    Laplacian would otherwise swing about the face as a lever.  Returns (N, 3) world metres.
    """
    from .geometry import LaplacianDeformer

    coarse_vertices = _as_points("coarse_vertices", coarse_vertices)
    anchor_pixels = _as_points("anchor_pixels", anchor_pixels, columns=(2, 3))[:, :2]
    anchor_ids = np.asarray(anchor_ids, dtype=np.int64)
    if anchor_ids.shape != (len(anchor_pixels),):
        raise InvalidInputError(f"anchor_ids {anchor_ids.shape} and anchor_pixels {anchor_pixels.shape} do not match")
    coarse_camera = pose.to_camera(coarse_vertices[anchor_ids])
    # Eq. 11: the anchor keeps the depth of its coarse vertex; x/y come from the image.
    anchor_camera = np.column_stack([anchor_pixels[:, 0], -anchor_pixels[:, 1], coarse_camera[:, 2]])
    targets = pose.to_world(anchor_camera)
    if fixed_ids is not None and len(fixed_ids):
        fixed_ids = np.asarray(fixed_ids, dtype=np.int64)
        if np.isin(fixed_ids, anchor_ids).any():
            raise InvalidInputError("fixed_ids and anchor_ids overlap")
        anchor_ids = np.concatenate([anchor_ids, fixed_ids])
        targets = np.concatenate([targets, coarse_vertices[fixed_ids]])
    deformer = LaplacianDeformer(coarse_vertices, np.asarray(faces), anchor_ids, weight=anchor_weight,
                                 rotation_aware=rotation_aware)
    return deformer.solve(targets)
