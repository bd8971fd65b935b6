"""The head skeleton, derived from MakeHuman's CC0 default rig (``rigs/standard/rig.default.json``).

MakeHuman defines every joint from the mesh: a bone's head is the centroid of a ``joint-*`` vertex
cube of base.obj ("CUBE"), the mean of a few vertices ("MEAN") or one vertex ("VERTEX"), so the
skeleton follows every shape of the body.  We keep the bones a head needs:

    root   the centre of the neck cap, where a body's collar meets the head
    neck   MakeHuman's neck01 (its three neck bones collapse into one, as Unreal's mannequin
           and Unity's Humanoid have one neck)
    head   head
    jaw    jaw (its head is the ``joint-mouth`` cube, the pivot the mouth opens about)
    eye_l, eye_r   the centres of our eyeballs (MakeHuman's eye.L/eye.R cubes sit there too)

Skinning weights come from ``weights.default.json``: each MakeHuman bone gives its weight to the
first of jaw, head or neck on its way up the hierarchy (lips and tongue bones hang under the jaw,
brows, lids and cheeks under the head); spine and clavicle bones give theirs to the root.  The eye
bones' weights on the lids go to the head, so turning an eye moves the eyeball and no skin.  The
weights are carried through the head's refinement operator S like every other per-vertex
attribute, then kept to the 4 largest and renormalised.
"""
from __future__ import annotations

import numpy as np

JOINT_NAMES: tuple[str, ...] = ("root", "neck", "head", "jaw", "eye_l", "eye_r")
PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 2, 2)
#: Which of our joints each rigid part is bound to (weight 1).
PART_JOINTS = {"eye_left": "eye_l", "eye_right": "eye_r", "teeth_upper": "head",
               "teeth_lower": "jaw", "tongue": "jaw"}
#: MakeHuman bones whose weight a bone below them passes on, nearest first.
_OWNERS = {"jaw": "jaw", "head": "head", "neck01": "neck", "neck02": "neck", "neck03": "neck"}
MAX_INFLUENCES = 4
WEIGHT_QUANTUM = 1e-4


def owner(rig: dict, bone: str) -> str:
    """Our joint that inherits MakeHuman ``bone``'s skinning weight."""
    b = bone
    while b:
        if b in _OWNERS:
            return _OWNERS[b]
        b = rig[b]["parent"]
    return "root"


def bone_head(rig: dict, bone: str, base) -> np.ndarray:
    """(3,) hm08 metres: the head of ``bone`` computed from the base mesh as MakeHuman does."""
    spec = rig[bone]["head"]
    strategy = spec["strategy"]
    if strategy == "CUBE":
        return base.vertices[base.group_vertices(spec["cube_name"])].mean(axis=0)
    if strategy == "MEAN":
        return base.vertices[np.asarray(spec["vertex_indices"])].mean(axis=0)
    if strategy == "VERTEX":
        return base.vertices[int(spec["vertex_index"])]
    raise ValueError(f"rig bone {bone!r}: unknown joint strategy {strategy!r}")


def base_weights(rig: dict, weights: dict, n_vertices: int) -> np.ndarray:
    """(V, J) weights of our joints on every base-mesh vertex (rows sum to 1 where weighted)."""
    out = np.zeros((n_vertices, len(JOINT_NAMES)))
    for bone in sorted(weights):
        pairs = weights[bone]
        if not pairs:
            continue
        j = JOINT_NAMES.index(owner(rig, bone))
        ids = np.array([p[0] for p in pairs], dtype=np.int64)
        np.add.at(out[:, j], ids, np.array([p[1] for p in pairs], dtype=np.float64))
    return out


def limit_influences(weights: np.ndarray, fallback: int) -> np.ndarray:
    """Keep each row's MAX_INFLUENCES largest weights, quantise, renormalise to sum 1.

    Rows without any weight go wholly to joint ``fallback``.  Ties keep the lower joint index
    (a stable sort), so the result is deterministic.
    """
    w = np.clip(np.asarray(weights, dtype=np.float64), 0.0, None)
    order = np.argsort(-w, axis=1, kind="stable")
    drop = order[:, MAX_INFLUENCES:]
    np.put_along_axis(w, drop, 0.0, axis=1)
    w = np.round(w / WEIGHT_QUANTUM) * WEIGHT_QUANTUM
    empty = w.sum(axis=1) <= 0
    w[empty] = 0.0
    w[empty, fallback] = 1.0
    return w / w.sum(axis=1, keepdims=True)


def head_skeleton(assets, source, origin: np.ndarray, eye_centres: np.ndarray,
                  parts: dict) -> tuple[dict, dict]:
    """The template's skeleton: (header entry, arrays).

    source: the :class:`pyfacerig.templates.generate.HeadSource` (base mesh and operator S);
    origin: the template frame's origin in hm08 metres; eye_centres (2, 3) in the template frame
    (row 0 the subject's left); parts: part name -> vertex count, for the rigid parts.
    """
    import json
    rig = json.loads(assets.read("mpfb2/rigs/standard/rig.default.json"))
    weights = json.loads(assets.read("mpfb2/rigs/standard/weights.default.json"))["weights"]
    base = source.base
    positions = np.zeros((len(JOINT_NAMES), 3))
    skin_neutral = source.vertices - origin
    positions[0] = skin_neutral[-1]                      # the neck cap's centre vertex
    positions[1] = bone_head(rig, "neck01", base) - origin
    positions[2] = bone_head(rig, "head", base) - origin
    positions[3] = bone_head(rig, "jaw", base) - origin
    positions[4], positions[5] = eye_centres[0], eye_centres[1]
    carried = source.carry(base_weights(rig, weights, len(base.vertices)))
    skin = limit_influences(carried, fallback=JOINT_NAMES.index("head"))
    arrays = {"skeleton/joint_positions": positions.astype(np.float32),
              "skin/joint_weights": skin.astype(np.float32)}
    header = {"joint_names": list(JOINT_NAMES), "parents": list(PARENTS),
              "part_joints": {name: PART_JOINTS[name] for name in parts},
              "source": "MakeHuman default rig (rig.default.json, weights.default.json), CC0 1.0"}
    return header, arrays
