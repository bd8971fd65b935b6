"""Per-frame solvers: head pose by similarity Procrustes, ARKit weights by box-constrained
least squares on the avatar's own landmark deltas.

Frames are in the avatar's axes (metres, +X the subject's left, +Y up, +Z out of the face).
Detected landmarks are brought to a matching image frame: x right, y UP, z toward the camera,
all in pixels (MediaPipe's z is scaled like x).

**Expression model** (weak perspective, the head's scale s, rotation R and image offset t
known from the pose step): landmark k of the avatar with weights w lands at

    p_k(w) = Π (s R (a_k + B_k w)) + t,        Π = the x, y rows,

with a_k (3,) the neutral landmark and B_k (3, 52) its shape deltas.  The weights minimise

    Σ_k ω_k |p_k(w) - q_k|² + Σ_j λ_j w_j²     subject to 0 <= w_j <= 1,

a box-constrained quadratic program 1/2 wᵀ G w - bᵀ w with
G = s² Σ_ab P_ab H_ab + diag(λ), P = Rᵀ Πᵀ Π R, H_ab = Σ_k ω_k B_k[a]ᵀ B_k[b].
The nine 52×52 matrices H_ab are precomputed once per avatar, so forming G costs six
weighted sums whatever the landmark count, and the QP is solved by an active-set method
warm-started from the previous frame (a handful of 52×52 solves per frame).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import lapack

__all__ = ["similarity_fit", "refine_weak_perspective", "solve_box_qp", "ExpressionSolver", "rotation_to_angles", "OneEuroFilter"]


def similarity_fit(model: np.ndarray, observed: np.ndarray, weights: np.ndarray | None = None):
    """Least-squares similarity (Umeyama): observed ≈ s R model + t.

    model, observed (K, 3); weights (K,) >= 0 or None.  Returns (s, R (3, 3), t (3,)), R a
    proper rotation.
    """
    model = np.asarray(model, np.float64)
    observed = np.asarray(observed, np.float64)
    w = np.ones(len(model)) if weights is None else np.asarray(weights, np.float64)
    w = w / w.sum()
    mu_m, mu_o = w @ model, w @ observed
    dm, do = model - mu_m, observed - mu_o
    cov = (do * w[:, None]).T @ dm
    u, sigma, vt = np.linalg.svd(cov)
    d = np.sign(np.linalg.det(u @ vt)) or 1.0
    fix = np.array([1.0, 1.0, d])
    rotation = (u * fix) @ vt
    var_m = float(w @ (dm ** 2).sum(axis=1))
    scale = float((sigma * fix).sum() / var_m)
    return scale, rotation, mu_o - scale * rotation @ mu_m


def _skew(v: np.ndarray) -> np.ndarray:
    """(K, 3) vectors -> (K, 3, 3) cross-product matrices [v]x."""
    z = np.zeros(len(v))
    return np.stack([np.stack([z, -v[:, 2], v[:, 1]], -1), np.stack([v[:, 2], z, -v[:, 0]], -1),
                     np.stack([-v[:, 1], v[:, 0], z], -1)], -2)


def _exp_so3(w: np.ndarray) -> np.ndarray:
    angle = float(np.linalg.norm(w))
    if angle < 1e-12:
        return np.eye(3)
    k = _skew((w / angle)[None])[0]
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


def refine_weak_perspective(model: np.ndarray, observed_xy: np.ndarray, scale: float, rotation: np.ndarray,
                            offset_xy: np.ndarray, iterations: int = 3):
    """Gauss-Newton on the image-plane error of a weak-perspective camera.

    Minimises Σ_k |s Π R m_k + t - q_k|² over R (3 dof), s and t (2), from a 3-D Procrustes
    start.  Only x, y are used: MediaPipe's depth is a network's guess whose scale is not
    the image's, and fitting it biases yaw and pitch by degrees.
    model (K, 3); observed_xy (K, 2).  Returns (scale, R, offset_xy).
    """
    r = np.asarray(rotation, np.float64).copy()
    s, t = float(scale), np.asarray(offset_xy, np.float64).copy()
    for _ in range(iterations):
        turned = model @ r.T                                     # (K, 3) R m_k
        residual = (s * turned[:, :2] + t - observed_xy).reshape(-1)
        # d(s Π R exp([w]x) m)/dw at w = 0 = -s Π R [m]x
        d_rot = -s * np.einsum("ij,kjl->kil", r[:2], _skew(model))           # (K, 2, 3)
        jac = np.concatenate([d_rot, turned[:, :2, None], np.broadcast_to(np.eye(2), (len(model), 2, 2))],
                             axis=2).reshape(-1, 6)
        delta = _spd_solve(jac.T @ jac + 1e-12 * np.eye(6), -(jac.T @ residual))
        r = r @ _exp_so3(delta[:3])
        s += delta[3]
        t += delta[4:]
        if np.abs(delta).max() < 1e-9:
            break
    return s, r, t


def rotation_to_angles(rotation: np.ndarray) -> np.ndarray:
    """(3,) yaw, pitch, roll (radians) of R = Ry(yaw) Rx(pitch) Rz(roll) in the take's signs
    (pitch > 0 tips the face down, roll > 0 tilts the head toward the subject's right)."""
    r = np.asarray(rotation, np.float64)
    # Standard R = Ry(a) Rx(b) Rz(c): R[1,2] = -sin b, R[0,2] = cos b sin a, R[2,2] = cos b cos a,
    # R[1,0] = cos b sin c, R[1,1] = cos b cos c.  The take's pitch and roll are -b and -c.
    b = np.arcsin(np.clip(-r[1, 2], -1.0, 1.0))
    a = np.arctan2(r[0, 2], r[2, 2])
    c = np.arctan2(r[1, 0], r[1, 1])
    return np.array([a, -b, -c])


def solve_box_qp(g: np.ndarray, b: np.ndarray, start: np.ndarray, lower: float = 0.0, upper: float = 1.0,
                 max_iterations: int = 60) -> np.ndarray:
    """argmin 1/2 wᵀ g w - bᵀ w  s.t. lower <= w <= upper, for symmetric positive definite g.

    Primal active set: variables at a bound whose gradient pushes outward stay fixed; the
    rest take a Newton step (one Cholesky-sized solve), shortened to stay in the box, and
    any variable that hits a bound joins the fixed set.  Exact (KKT) at convergence; from a
    warm start of the previous frame it usually converges in 1-3 steps.
    """
    w = np.clip(np.asarray(start, np.float64), lower, upper)
    n = len(w)
    tolerance = 1e-10 * max(1.0, float(np.abs(b).max()))
    for _ in range(max_iterations):
        grad = g @ w - b
        free = ~(((w <= lower) & (grad >= 0)) | ((w >= upper) & (grad <= 0)))
        while True:
            if not free.any():
                return w
            step = np.zeros(n)
            step[free] = _spd_solve(g[np.ix_(free, free)], -grad[free])
            # A variable on a bound that the Newton step would push out of the box is held
            # there, and the step is recomputed without it.
            outward = ((w <= lower) & (step < 0)) | ((w >= upper) & (step > 0))
            if not outward.any():
                break
            free &= ~outward
        if np.abs(step).max() < 1e-12:
            return w
        # Projected full step first: it fixes many bounds at once and is usually a descent;
        # otherwise the longest step that stays inside the box (classic active set).
        projected = np.clip(w + step, lower, upper)
        change = projected - w
        if change @ (grad + 0.5 * (g @ change)) < 0 and not np.array_equal(projected, w + step):
            w = projected
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            room = np.where(step > 0, (upper - w) / step, np.where(step < 0, (lower - w) / step, np.inf))
        alpha = min(1.0, float(room.min()))
        w = np.clip(w + alpha * step, lower, upper)
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
    """

    neutral: np.ndarray
    deltas: np.ndarray
    landmark_weights: np.ndarray
    prior: np.ndarray

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
        self._omega = omega
        # λ is relative to the typical curvature of the data term (an absolute L2 prior on
        # the weights, as in MAP with landmark noise): a shape whose landmark motion is small
        # next to the detector's noise is shrunk more than one that moves many points far.
        typical = np.trace(self._h[0, 0] + self._h[1, 1]) / self.count
        self._ridge = np.asarray(self.prior, np.float64) * typical

    def solve(self, observed_xy: np.ndarray, scale: float, rotation: np.ndarray, offset_xy: np.ndarray,
              start: np.ndarray, neutral_offset: np.ndarray | None = None) -> np.ndarray:
        """(M,) weights in [0, 1] for image points ``observed_xy`` (K, 2) (y up).

        scale, rotation, offset_xy: the head's weak-perspective pose (pixels per metre, R,
        image offset).  start: warm start (M,).  neutral_offset: (K, 3) optional correction
        added to the neutral (a per-landmark calibration, avatar metres).
        """
        r = np.asarray(rotation, np.float64)
        neutral = self.neutral if neutral_offset is None else self.neutral + neutral_offset
        predicted = scale * neutral @ r[:2].T + offset_xy                   # (K, 2)
        residual = np.asarray(observed_xy, np.float64) - predicted
        # Bring the image residual back into avatar axes: u_k = Rᵀ Πᵀ e_k.
        lifted = residual @ r[:2]                                           # (K, 3)
        # einsum's own loops: BLAS would spread these small products over threads, which
        # costs more than it gains on a busy 2-core machine.
        b = scale * np.einsum("ij,i->j", self._weighted_flat, lifted.reshape(-1))
        p = r[:2].T @ r[:2]                                                 # Rᵀ Πᵀ Π R (3, 3)
        g = (scale * scale) * np.einsum("i,ij->j", p.reshape(-1), self._h9).reshape(self.count, self.count)
        g[np.diag_indices_from(g)] += (scale * scale) * self._ridge
        return solve_box_qp(g, b, start)

    def residual_in_avatar_axes(self, observed_xy, scale, rotation, offset_xy, weights) -> np.ndarray:
        """(K, 3) image residual of the posed model lifted to avatar axes, in metres."""
        r = np.asarray(rotation, np.float64)
        model = self.neutral + np.einsum("kam,m->ka", self._basis, weights)
        residual = np.asarray(observed_xy, np.float64) - (scale * model @ r[:2].T + offset_xy)
        return residual @ r[:2] / scale


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
