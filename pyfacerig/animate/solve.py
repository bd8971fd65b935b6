"""Solvers for a take: head pose by similarity Procrustes, then weak-perspective and pinhole
Gauss-Newton; ARKit weights by box-constrained least squares on the avatar's landmark
deltas; and the One-Euro filter.  Pose and QP matrices are computed for all frames at once.

Frames are in the avatar's axes (metres, +X the subject's left, +Y up, +Z out of the face).
Detected landmarks are brought to a matching image frame: x right, y UP, z toward the camera,
all in pixels (MediaPipe's z is scaled like x).  The camera frame is x right, y up, the
camera looking along -z; a pinhole of focal length f at the image centre c projects a
camera-frame point P to π(P) = f (P_x, P_y) / (-P_z) + c.

**Expression model** (the head's rotation R and translation T known from the pose step):
landmark k of the avatar with weights w lands at

    p_k(w) ≈ π(R a_k + T) + A B_k w,        A = J R,

with a_k (3,) the neutral landmark, B_k (3, 52) its shape deltas and J (2, 3) the pinhole's
Jacobian at the face's centre (for a weak-perspective camera, A = s Π R).  The weights minimise

    Σ_k ω_k |p_k(w) - q_k|² + s² (Σ_j λ_j w_j² + Σ μ (w_i - w_j)²)     subject to 0 <= w_j <= 1,

with s² = tr(AᵀA)/2: a box-constrained quadratic program 1/2 wᵀ G w - bᵀ w with
G = Σ_ab P_ab H_ab + s² Λ, P = AᵀA, H_ab = Σ_k ω_k B_k[a]ᵀ B_k[b].
The nine 52×52 matrices H_ab are precomputed once per avatar, so forming G costs one
(9 × 2704) product per frame whatever the landmark count, and the QP is solved by an
active-set method warm-started from the previous frame (a handful of 52×52 solves per frame).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import lapack

__all__ = ["similarity_fit", "refine_weak_perspective", "perspective_start", "project", "projection_jacobian",
           "refine_perspective", "solve_box_qp", "ExpressionSolver", "rotation_to_angles", "OneEuroFilter"]


def similarity_fit(model: np.ndarray, observed: np.ndarray):
    """Least-squares similarity (Umeyama) per frame: observed ≈ s R model + t.

    model (..., K, 3) (broadcast against observed), observed (T, K, 3) or (K, 3).  Returns
    (s (T,), R (T, 3, 3) proper rotations, t (T, 3)) -- without the T axis for one frame.
    """
    observed = np.asarray(observed, np.float64)
    single = observed.ndim == 2
    observed = observed[None] if single else observed
    model = np.broadcast_to(np.asarray(model, np.float64), observed.shape)
    mu_m, mu_o = model.mean(axis=1), observed.mean(axis=1)
    dm, do = model - mu_m[:, None], observed - mu_o[:, None]
    cov = np.einsum("tki,tkj->tij", do, dm) / observed.shape[1]
    u, sigma, vt = np.linalg.svd(cov)
    d = np.sign(np.linalg.det(u @ vt))
    d[d == 0] = 1.0
    fix = np.stack([np.ones_like(d), np.ones_like(d), d], axis=1)           # (T, 3)
    rotation = (u * fix[:, None, :]) @ vt
    var_m = (dm ** 2).sum(axis=(1, 2)) / observed.shape[1]
    scale = (sigma * fix).sum(axis=1) / var_m
    offset = mu_o - scale[:, None] * np.einsum("tij,tj->ti", rotation, mu_m)
    return (scale[0], rotation[0], offset[0]) if single else (scale, rotation, offset)


def _skew(v: np.ndarray) -> np.ndarray:
    """(K, 3) vectors -> (K, 3, 3) cross-product matrices [v]x."""
    z = np.zeros(len(v))
    return np.stack([np.stack([z, -v[:, 2], v[:, 1]], -1), np.stack([v[:, 2], z, -v[:, 0]], -1),
                     np.stack([-v[:, 1], v[:, 0], z], -1)], -2)


def _exp_so3(w: np.ndarray) -> np.ndarray:
    """Rodrigues, per row: (T, 3) rotation vectors -> (T, 3, 3) rotations."""
    angle = np.sqrt((w * w).sum(axis=1))
    safe = np.where(angle > 1e-12, angle, 1.0)
    k = _skew(w / safe[:, None])
    sin = np.where(angle > 1e-12, np.sin(angle), 0.0)[:, None, None]
    cos = np.where(angle > 1e-12, 1 - np.cos(angle), 0.0)[:, None, None]
    return np.eye(3) + sin * k + cos * (k @ k)


def refine_weak_perspective(model: np.ndarray, observed_xy: np.ndarray, scale, rotation, offset_xy,
                            iterations: int = 3):
    """Gauss-Newton on the image-plane error of a weak-perspective camera, all frames at once.

    Minimises Σ_k |s Π R m_k + t - q_k|² over R (3 dof), s and t (2) per frame, from a 3-D
    Procrustes start.  Only x, y are used: MediaPipe's depth is a network's guess whose
    scale is not the image's, and fitting it biases yaw and pitch by degrees.
    model (T, K, 3); observed_xy (T, K, 2); scale (T,); rotation (T, 3, 3); offset_xy (T, 2).
    Returns (scale, rotation, offset_xy) of the same shapes.
    """
    model = np.asarray(model, np.float64)
    r = np.array(rotation, np.float64)
    s = np.array(scale, np.float64)
    t = np.array(offset_xy, np.float64)
    frames, count = model.shape[:2]
    skew = _skew(model.reshape(-1, 3)).reshape(frames, count, 3, 3)   # fixed over the iterations
    jac = np.zeros((frames, count, 2, 6))
    jac[:, :, 0, 4] = jac[:, :, 1, 5] = 1.0                             # d/dt
    for _ in range(iterations):
        turned = np.einsum("tij,tkj->tki", r, model)                    # R m_k
        residual = (s[:, None, None] * turned[:, :, :2] + t[:, None] - observed_xy).reshape(frames, -1)
        # d(s Π R exp([w]x) m)/dw at w = 0 = -s Π R [m]x
        jac[:, :, :, :3] = -s[:, None, None, None] * np.einsum("tij,tkjl->tkil", r[:, :2], skew)
        jac[:, :, :, 3] = turned[:, :, :2]
        flat = jac.reshape(frames, -1, 6)
        normal = np.einsum("tki,tkj->tij", flat, flat) + 1e-12 * np.eye(6)
        delta = _batched_spd_solve(normal, -np.einsum("tki,tk->ti", flat, residual))
        r = r @ _exp_so3(delta[:, :3])
        s = s + delta[:, 3]
        t = t + delta[:, 4:]
    return s, r, t


def perspective_start(scale, offset_xy, focal: float, centre) -> np.ndarray:
    """(T, 3) camera-frame translation of the model origin from a weak-perspective fit
    (image = s Π R m + t): the origin lies on the ray through t at depth focal / s.
    Camera frame: x right, y up, the camera looking along -z (depth = -z)."""
    s = np.asarray(scale, np.float64)
    t = np.asarray(offset_xy, np.float64)
    return np.stack([(t[:, 0] - centre[0]) / s, (t[:, 1] - centre[1]) / s, -focal / s], axis=1)


def project(points: np.ndarray, focal: float, centre) -> np.ndarray:
    """Pinhole projection of camera-frame points (..., 3) -> image points (..., 2), y up."""
    depth = -points[..., 2:3]
    return focal * points[..., :2] / depth + np.asarray(centre, np.float64)


def projection_jacobian(points: np.ndarray, focal: float) -> np.ndarray:
    """d project / d point (..., 2, 3) at camera-frame points (..., 3)."""
    depth = -points[..., 2]
    jac = np.zeros(points.shape[:-1] + (2, 3))
    jac[..., 0, 0] = jac[..., 1, 1] = focal / depth
    jac[..., 0, 2] = focal * points[..., 0] / depth ** 2
    jac[..., 1, 2] = focal * points[..., 1] / depth ** 2
    return jac


def refine_perspective(model: np.ndarray, observed_xy: np.ndarray, rotation, translation, focal: float, centre,
                       iterations: int = 5):
    """Gauss-Newton on the image-plane error of a pinhole camera, all frames at once.

    Minimises Σ_k |π(R m_k + T) - q_k|² over R and T per frame.  The weak-perspective model
    misreads a turned head: the near points (nose) are magnified, and a head that turns about
    the neck also slides off the optical axis and is seen obliquely; on a render at a 20°
    field of view both together read a 30° turn as 35-37°.
    model (T, K, 3); observed_xy (T, K, 2) (y up); rotation (T, 3, 3); translation (T, 3).
    Returns (rotation, translation, rms (T,) pixels).
    """
    model = np.asarray(model, np.float64)
    r = np.array(rotation, np.float64)
    t = np.array(translation, np.float64)
    frames = len(model)
    for _ in range(iterations):
        turned = model @ r.transpose(0, 2, 1)                           # R m_k  (T, K, 3)
        points = turned + t[:, None]
        residual = (project(points, focal, centre) - observed_xy).reshape(frames, -1, 1)
        jp = projection_jacobian(points, focal)                         # (T, K, 2, 3)
        # d(exp([w]x) R m)/dw at w = 0 = -[R m]x   (matmul: einsum is ~5x slower on these shapes)
        d_rot = -(jp @ _skew(turned.reshape(-1, 3)).reshape(turned.shape + (3,)))
        jac = np.concatenate([d_rot, jp], axis=-1).reshape(frames, -1, 6)
        jac_t = jac.transpose(0, 2, 1)
        normal = jac_t @ jac + 1e-9 * np.eye(6)
        delta = _batched_spd_solve(normal, -(jac_t @ residual)[..., 0])
        r = _exp_so3(delta[:, :3]) @ r
        t = t + delta[:, 3:]
    points = model @ r.transpose(0, 2, 1) + t[:, None]
    rms = np.sqrt(((project(points, focal, centre) - observed_xy) ** 2).sum(axis=-1).mean(axis=1))
    return r, t, rms


def _batched_spd_solve(matrices: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve (T, n, n) symmetric positive definite systems for (T, n) right-hand sides by an
    unrolled Cholesky over the batch (n is 6 here): numpy.linalg.solve's threaded LU costs
    ~2 ms per call on these small batches on a busy 2-core machine."""
    a = np.array(matrices, np.float64)
    n = a.shape[-1]
    low = np.zeros_like(a)
    for j in range(n):
        diagonal = a[:, j, j] - (low[:, j, :j] ** 2).sum(axis=1)
        low[:, j, j] = np.sqrt(np.maximum(diagonal, 1e-300))
        for i in range(j + 1, n):
            low[:, i, j] = (a[:, i, j] - (low[:, i, :j] * low[:, j, :j]).sum(axis=1)) / low[:, j, j]
    y = np.zeros_like(rhs, dtype=np.float64)
    for i in range(n):
        y[:, i] = (rhs[:, i] - (low[:, i, :i] * y[:, :i]).sum(axis=1)) / low[:, i, i]
    x = np.zeros_like(y)
    for i in reversed(range(n)):
        x[:, i] = (y[:, i] - (low[:, i + 1:, i] * x[:, i + 1:]).sum(axis=1)) / low[:, i, i]
    return x


def rotation_to_angles(rotation: np.ndarray) -> np.ndarray:
    """(3,) yaw, pitch, roll (radians) of R = Ry(yaw) Rx(pitch) Rz(roll) in the take's signs
    (pitch > 0 tips the face down, roll > 0 tilts the head toward the subject's right)."""
    r = np.asarray(rotation, np.float64)
    # Right-handed R = Ry(a) Rx(b) Rz(c): R[1,2] = -sin b, R[0,2] = cos b sin a, R[2,2] = cos b cos a,
    # R[1,0] = cos b sin c, R[1,1] = cos b cos c.  A positive b takes +Z toward -Y (face down) and a
    # positive c takes +Y toward -X (the subject's right): exactly the take's signs.
    b = np.arcsin(np.clip(-r[1, 2], -1.0, 1.0))
    a = np.arctan2(r[0, 2], r[2, 2])
    c = np.arctan2(r[1, 0], r[1, 1])
    return np.array([a, b, c])


def solve_box_qp(g: np.ndarray, b: np.ndarray, start: np.ndarray, lower: float = 0.0, upper: float = 1.0,
                 max_iterations: int = 60) -> np.ndarray:
    """argmin 1/2 wᵀ g w - bᵀ w  s.t. lower <= w <= upper, for symmetric positive definite g.

    Primal active set: variables at a bound whose gradient pushes outward stay fixed; the
    rest take a Newton step (one Cholesky-sized solve), shortened to stay in the box, and
    any variable that hits a bound joins the fixed set.  Exact (KKT) at convergence; from a
    warm start of the previous frame it usually converges in 1-3 steps.
    """
    w = np.minimum(np.maximum(np.asarray(start, np.float64), lower), upper)
    n = len(w)
    tolerance = 1e-10 * max(1.0, float(np.abs(b).max()))
    for _ in range(max_iterations):
        grad = g @ w - b
        at_lower, at_upper = w <= lower, w >= upper
        free = ~((at_lower & (grad >= 0)) | (at_upper & (grad <= 0)))
        while True:
            index = np.flatnonzero(free)
            if len(index) == 0:
                return w
            step = np.zeros(n)
            step[index] = _spd_solve(g.take(index, 0).take(index, 1), -grad[index])
            # A variable on a bound that the Newton step would push out of the box is held
            # there, and the step is recomputed without it.
            outward = (at_lower & (step < 0)) | (at_upper & (step > 0))
            if not outward.any():
                break
            free &= ~outward
        if np.abs(step).max() < 1e-12:
            return w
        # Projected full step first: it fixes many bounds at once and is usually a descent;
        # otherwise the longest step that stays inside the box (classic active set).
        target = w + step
        projected = np.minimum(np.maximum(target, lower), upper)
        change = projected - w
        if change @ (grad + 0.5 * (g @ change)) < 0 and not np.array_equal(projected, target):
            w = projected
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            room = np.where(step > 0, (upper - w) / step, np.where(step < 0, (lower - w) / step, np.inf))
        alpha = min(1.0, float(room.min()))
        w = np.minimum(np.maximum(w + alpha * step, lower), upper)
        if alpha >= 1.0:
            # Full Newton step: optimal if no fixed variable wants to come off its bound.
            grad = g @ w - b
            wrong = ((w <= lower) & (grad < -tolerance)) | ((w >= upper) & (grad > tolerance))
            if not wrong.any():
                return w
    return w


def _spd_solve(matrix: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    # LAPACK's Cholesky solve straight from scipy: numpy.linalg.solve goes through a threaded
    # LU that costs ~100x more on a busy 2-core machine for these 52x52 systems.
    _, x, info = lapack.dposv(matrix, rhs)
    if info != 0:  # not positive definite (cannot happen with a positive ridge): least squares
        x = np.linalg.lstsq(matrix, rhs, rcond=None)[0]
    return x


@dataclass
class ExpressionSolver:
    """Precomputed data for solving the 52 weights of one avatar from 2-D landmarks.

    neutral: (K, 3) avatar landmark positions at rest (metres, avatar axes).
    deltas: (52, K, 3) their shape deltas.
    landmark_weights: (K,) ω_k, how much each landmark counts.
    prior: (52,) λ_j, L2 pull toward 0 relative to the mean diagonal of G (shapes the
        landmarks cannot see get a large λ so they stay at 0).
    couplings: (i, j, μ) pairs: a prior μ (w_i - w_j)² (relative like λ) that ties two
        shapes that move together (the two eyes' gaze shapes).
    groups: (G, K) bool, landmark groups whose weight can be scaled per frame in
        :meth:`systems` (e.g. an iris centre while its lids are closing).
    """

    neutral: np.ndarray
    deltas: np.ndarray
    landmark_weights: np.ndarray
    prior: np.ndarray
    couplings: tuple = ()
    groups: np.ndarray | None = None

    def __post_init__(self):
        self.neutral = np.asarray(self.neutral, np.float64)
        deltas = np.asarray(self.deltas, np.float64)                     # (M, K, 3)
        self.count = deltas.shape[0]
        omega = np.asarray(self.landmark_weights, np.float64)
        self._basis = np.ascontiguousarray(deltas.transpose(1, 2, 0))    # (K, 3, M): B_k
        weighted = self._basis * omega[:, None, None]
        # H[a, b] = Σ_k ω_k B_k[a]ᵀ B_k[b]  (3, 3, M, M)
        self._h = np.einsum("kam,kbn->abmn", weighted, self._basis)
        self._weighted_flat = np.ascontiguousarray(weighted.reshape(-1, self.count))   # (3K, M)
        self._h9 = np.ascontiguousarray(self._h.reshape(9, -1))                        # (9, M*M)
        # Every frame's G and b are then one matrix product each over the whole take.
        groups = np.zeros((0, len(omega)), bool) if self.groups is None else np.asarray(self.groups, bool)
        self._groups = groups
        self._group_h9 = np.stack([np.einsum("kam,kbn->abmn", weighted[g], self._basis[g]).reshape(9, -1)
                                   for g in groups]) if len(groups) else np.zeros((0, 9, self.count ** 2))
        self._omega = omega
        # λ is relative to the typical curvature of the data term (an absolute L2 prior on
        # the weights, as in MAP with landmark noise): a shape whose landmark motion is small
        # next to the detector's noise is shrunk more than one that moves many points far.
        typical = np.trace(self._h[0, 0] + self._h[1, 1]) / self.count
        self._typical = typical
        ridge = np.diag(np.asarray(self.prior, np.float64) * typical)
        for i, j, mu in self.couplings:
            ridge[i, i] += mu * typical
            ridge[j, j] += mu * typical
            ridge[i, j] -= mu * typical
            ridge[j, i] -= mu * typical
        self._ridge = ridge

    def systems(self, observed_xy: np.ndarray, projection: np.ndarray, predicted: np.ndarray,
                group_scale: np.ndarray | None = None, extra_prior: np.ndarray | None = None):
        """The QP of every frame: (g (T, M, M), b (T, M)).

        observed_xy (T, K, 2) image points (y up); projection (T, 2, 3) the linear map from an
        avatar-space displacement to image pixels (s Π R for a weak-perspective camera, J R
        with the pinhole's Jacobian J at the face for a perspective one); predicted (T, K, 2)
        where the posed neutral landmarks project; group_scale (T, G) optional factor on each
        landmark group's weight in each frame; extra_prior (T, M) optional per-frame addition to λ.
        """
        a = np.asarray(projection, np.float64)                               # (T, 2, 3)
        frames = len(a)
        residual = np.asarray(observed_xy, np.float64) - np.asarray(predicted, np.float64)   # (T, K, 2)
        # Back to avatar axes: u_k = Aᵀ e_k, then b = Σ_k ω_k B_kᵀ u_k.
        lifted = np.einsum("tki,tij->tkj", residual, a)
        p = np.einsum("tia,tib->tab", a, a).reshape(frames, 9)             # Aᵀ A
        # The priors scale with the image size of the face (s² for A = s Π R), so that they
        # weigh the same against the data term at any distance from the camera.
        s2 = 0.5 * (p[:, 0] + p[:, 4] + p[:, 8])
        g = p @ self._h9
        if group_scale is not None and len(self._groups):
            factor = np.ones((frames, len(self._omega)))
            for k, members in enumerate(self._groups):
                factor[:, members] = group_scale[:, k:k + 1]
                # Remove the part of the group's curvature the frame does not trust.
                g -= (1.0 - group_scale[:, k:k + 1]) * (p @ self._group_h9[k])
            lifted = lifted * factor[:, :, None]
        b = lifted.reshape(frames, -1) @ self._weighted_flat
        g = g.reshape(frames, self.count, self.count)
        g += s2[:, None, None] * self._ridge
        if extra_prior is not None:
            diagonal = np.arange(self.count)
            g[:, diagonal, diagonal] += s2[:, None] * extra_prior * self._typical
        return g, b

    def solve(self, observed_xy, projection, predicted, start: np.ndarray, group_scale: np.ndarray | None = None,
              extra_prior: np.ndarray | None = None) -> np.ndarray:
        """(T, M) weights in [0, 1], frame by frame, each QP warm-started from the frame before
        (``start`` (M,) for the first).  Arguments as :meth:`systems`."""
        g, b = self.systems(observed_xy, projection, predicted, group_scale, extra_prior)
        weights = np.empty((len(b), self.count))
        previous = np.asarray(start, np.float64)
        for k in range(len(b)):
            previous = weights[k] = solve_box_qp(g[k], b[k], previous)
        return weights


class OneEuroFilter:
    """Casiez et al.'s One-Euro filter over (T, C) signals, vectorised across channels.

    A low-pass filter whose cut-off rises with the signal's speed: still signals are smoothed
    strongly (min_cutoff Hz), fast ones (a blink closing in two frames) pass with little lag
    (cutoff = min_cutoff + beta * |speed|).  min_cutoff, beta: scalars or (C,) per channel.
    """

    def __init__(self, fps: float, min_cutoff=1.0, beta=0.0, derivative_cutoff: float = 1.0):
        self.fps = float(fps)
        self.min_cutoff = np.asarray(min_cutoff, np.float64)
        self.beta = np.asarray(beta, np.float64)
        self.derivative_cutoff = float(derivative_cutoff)

    def _alpha(self, cutoff):
        tau = 1.0 / (2 * np.pi * cutoff)
        return 1.0 / (1.0 + tau * self.fps)

    def __call__(self, signal: np.ndarray) -> np.ndarray:
        x = np.asarray(signal, np.float64)
        out = np.empty_like(x)
        if len(x) == 0:
            return out
        out[0] = x[0]
        speed = np.zeros(x.shape[1:])
        a_d = self._alpha(self.derivative_cutoff)
        for k in range(1, len(x)):
            raw_speed = (x[k] - out[k - 1]) * self.fps
            speed = speed + a_d * (raw_speed - speed)
            alpha = self._alpha(self.min_cutoff + self.beta * np.abs(speed))
            out[k] = out[k - 1] + alpha * (x[k] - out[k - 1])
        return out
