"""Per-avatar skeleton calibration (Make-A-Character 2 §3.1.2) and linear blend skinning.

The template carries a head skeleton (root, neck, head, jaw, eye_l, eye_r) with skinning weights
(:class:`pyfacerig.templates.TemplateSkeleton`).  Every avatar has the template's topology, so
the weights carry over unchanged and only the joint positions are calibrated:

1. **Joints follow the personalised mesh.**  Each inner joint (root, neck, head) moves with the
   similarity (Procrustes) that takes its anchor vertices -- the skin vertices bound to it with
   weight >= 0.5 -- from the template to the avatar.  Seen as forward kinematics, this gives each
   joint j a rigid-plus-scale motion T_j, and linear blend skinning of the template with those
   motions, sum_j w_ij T_j(v_i), is MAC2's "current" mesh.
2. **Only the leaf joints are optimised.**
   - jaw: it starts where its parent (head) takes it, then moves by the translation d that
     minimises Eq. 2, sum_i |sum_j w_ij T_j(v_i) + w_i,jaw d - v_i^target|^2, in closed form
     d = sum_i w_i,jaw r_i / sum_i w_i,jaw^2 with r_i the residual before the step;
   - eye_l, eye_r: Eq. 5 ties each to what it overlaps, the centre of its eyeball, which is
     known exactly (the least-squares sphere through the avatar's eyeball vertices).
3. **The residual is a corrective on the neutral.**  What the calibrated skeleton does not
   explain, v^target - LBS(template), is MAC2's corrective blend shape applied to the neutral
   face.  We bind the skin in the avatar's own neutral, so the exported rest mesh *is* the
   template skinned by the calibrated skeleton plus that corrective, always at weight 1; it is
   not written as a 53rd morph target (the 52 ARKit names are the asset's contract).  Its size
   is reported (``Calibration.residual_mm``) as a measure of how much of the personalisation the
   bones carry.

Rest rotations are the identity (every joint frame is the asset frame), so a joint's local
translation is its offset from its parent.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InvalidInputError
from .fit import similarity_procrustes

__all__ = ["Calibration", "calibrate", "fit_sphere", "skin", "joint_world_matrices", "BONE_NAMES"]

#: File names of the joints per engine preset, in the template's joint order
#: (root, neck, head, jaw, eye_l, eye_r).  Unreal: the mannequin's neck_01/head plus jaw/eye_l/eye_r;
#: Unity: the names Unity's Humanoid avatar mapper matches (Neck, Head, Jaw, LeftEye, RightEye).
BONE_NAMES = {
    "unreal": ("root", "neck_01", "head", "jaw", "eye_l", "eye_r"),
    "unity": ("Root", "Neck", "Head", "Jaw", "LeftEye", "RightEye"),
}
#: Anchor vertices of an inner joint: skin vertices bound to it at least this much.
ANCHOR_WEIGHT = 0.5


@dataclass(frozen=True)
class Calibration:
    """An avatar's calibrated skeleton.

    joint_names, parents: as the template's.
    positions: (J, 3) float64 joint rest positions in the avatar's frame (metres); rest
        rotations are the identity.
    weights: part name -> (N, J) float32 skinning weights (the template's).
    residual_mm: {"inner": RMS, "after_jaw": RMS, "max": max} of |v^target - LBS(template)| over
        the skin vertices, in millimetres: with the inner joints' motions alone, then with the
        fitted jaw -- the corrective kept on the neutral (see the module docstring).
    jaw_shift_mm: how far the leaf fit moved the jaw from where its parent took it.
    """

    joint_names: tuple
    parents: np.ndarray
    positions: np.ndarray
    weights: dict
    residual_mm: dict
    jaw_shift_mm: float

    def local_translations(self) -> np.ndarray:
        """(J, 3) float64 each joint's offset from its parent (the root's from the origin)."""
        out = self.positions.copy()
        for j, p in enumerate(self.parents):
            if p >= 0:
                out[j] = self.positions[j] - self.positions[p]
        return out

    def as_dict(self) -> dict:
        """The sidecar's "skeleton" entry."""
        return {"joints": [{"name": n, "parent": None if p < 0 else self.joint_names[p],
                            "position": [round(float(v), 6) for v in x]}
                           for n, p, x in zip(self.joint_names, self.parents, self.positions)],
                "file_names": {preset: list(names) for preset, names in BONE_NAMES.items()},
                "residual_mm": {k: round(float(v), 3) for k, v in self.residual_mm.items()},
                "jaw_shift_mm": round(float(self.jaw_shift_mm), 3)}


def fit_sphere(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares sphere through points (K, 3): (centre (3,), radius)."""
    points = np.asarray(points, dtype=np.float64)
    a = np.column_stack([2.0 * points, np.ones(len(points))])
    x = np.linalg.lstsq(a, np.sum(points**2, axis=1), rcond=None)[0]
    return x[:3], float(np.sqrt(x[3] + x[:3] @ x[:3]))


def _motion(template_points, avatar_points):
    """Similarity (scale, R, t) with avatar ≈ s R template + t."""
    sim = similarity_procrustes(template_points, avatar_points)
    return float(sim.scale), np.asarray(sim.rotation, np.float64), np.asarray(sim.translation, np.float64)


def calibrate(template_skeleton, template_parts: dict, avatar_parts: dict) -> Calibration:
    """Calibrate the template's skeleton to an avatar (see the module docstring).

    template_skeleton: :class:`pyfacerig.templates.TemplateSkeleton`.
    template_parts, avatar_parts: part name -> (N, 3) neutral vertices (the template's and the
        avatar's, same topology; "skin", "eye_left", "eye_right" are required).
    """
    names = tuple(template_skeleton.joint_names)
    parents = np.asarray(template_skeleton.parents)
    weights = template_skeleton.weights
    for part in ("skin", "eye_left", "eye_right"):
        if part not in avatar_parts or part not in template_parts:
            raise InvalidInputError(f"skeleton calibration needs the {part!r} part")
        if np.shape(avatar_parts[part]) != np.shape(template_parts[part]):
            raise InvalidInputError(f"part {part!r}: avatar {np.shape(avatar_parts[part])} and template "
                                    f"{np.shape(template_parts[part])} vertices do not share one topology")
    source = np.asarray(template_parts["skin"], dtype=np.float64)
    target = np.asarray(avatar_parts["skin"], dtype=np.float64)
    w = np.asarray(weights["skin"], dtype=np.float64)
    rest = np.asarray(template_skeleton.positions, dtype=np.float64)
    positions = rest.copy()
    jaw, head = names.index("jaw"), names.index("head")
    leaves = {jaw, names.index("eye_l"), names.index("eye_r")}

    # 1. inner joints: the similarity of their anchors; a joint without anchors inherits its parent's.
    motions = [None] * len(names)
    for j in range(len(names)):
        anchors = np.flatnonzero(w[:, j] >= ANCHOR_WEIGHT)
        if j in leaves or len(anchors) < 4:
            motions[j] = motions[parents[j]] if parents[j] >= 0 else _motion(source, target)
        else:
            motions[j] = _motion(source[anchors], target[anchors])
        s, r, t = motions[j]
        positions[j] = s * r @ rest[j] + t

    def lbs(points, motions_):
        out = np.zeros_like(points)
        for j, (s, r, t) in enumerate(motions_):
            out += w[:, j:j + 1] * (s * points @ r.T + t)
        return out

    current = lbs(source, motions)
    residual = target - current
    inner_rms = float(np.sqrt(np.mean(np.sum(residual**2, axis=1))))

    # 2a. the jaw: Eq. 2 over its translation, closed form.
    wj = w[:, jaw]
    shift = (wj @ residual) / max(float(wj @ wj), 1e-12)
    positions[jaw] = positions[jaw] + shift
    residual = residual - wj[:, None] * shift
    # 2b. the eyes: Eq. 5, each joint on its eyeball's centre.
    for joint, part in (("eye_l", "eye_left"), ("eye_r", "eye_right")):
        positions[names.index(joint)] = fit_sphere(avatar_parts[part])[0]

    distance = np.linalg.norm(residual, axis=1)
    return Calibration(
        joint_names=names, parents=parents.astype(np.int32), positions=positions,
        weights={k: np.asarray(v, np.float32) for k, v in weights.items()},
        residual_mm={"inner": 1000 * inner_rms, "after_jaw": 1000 * float(np.sqrt(np.mean(distance**2))),
                     "max": 1000 * float(distance.max())},
        jaw_shift_mm=1000 * float(np.linalg.norm(shift)))


def joint_world_matrices(positions: np.ndarray, rotations: dict | None = None,
                         parents=None) -> np.ndarray:
    """(J, 4, 4) world matrices of a skeleton whose rest rotations are the identity.

    rotations: joint index -> (3, 3) local rotation about the joint (a pose); parents (J,)
    is required with rotations, so a rotation carries the joint's children along.
    """
    positions = np.asarray(positions, dtype=np.float64)
    world = np.zeros((len(positions), 4, 4))
    for j, p in enumerate(positions):
        local = np.eye(4)
        parent = -1 if parents is None else int(parents[j])
        local[:3, 3] = p if parent < 0 else p - positions[parent]
        if rotations and j in rotations:
            local[:3, :3] = rotations[j]
        world[j] = local if parent < 0 else world[parent] @ local
    return world


def skin(vertices: np.ndarray, weights: np.ndarray, positions: np.ndarray, parents,
         rotations: dict) -> np.ndarray:
    """Linear blend skinning of rest ``vertices`` (N, 3) with ``weights`` (N, J) to the pose that
    rotates joint j by ``rotations[j]`` (3, 3), in its parent's frame: (N, 3) float64."""
    rest = joint_world_matrices(positions)
    posed = joint_world_matrices(positions, rotations, parents)
    skinning = posed @ np.linalg.inv(rest)                        # (J, 4, 4)
    v = np.asarray(vertices, dtype=np.float64)
    moved = np.einsum("jab,nb->nja", skinning[:, :3, :3], v) + skinning[None, :, :3, 3]
    return np.einsum("nj,nja->na", np.asarray(weights, dtype=np.float64), moved)
