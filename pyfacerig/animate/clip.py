"""Write a :class:`~pyfacerig.animate.take.Take` into an avatar as an animation clip.

``write_take(avatar.glb, take, out)`` adds one clip to a copy of the avatar:

* morph-weight curves for the face mesh, matched BY NAME (the take's ARKit names against the
  mesh's target names), so a take solved on one avatar plays on any other; targets the take
  does not name stay at 0;
* rotation curves for the neck, head and eye joints when the file has them, found by node name
  (case-insensitive): both presets' bones (Unreal ``neck_01``/``head``/``eye_l``/``eye_r``, Unity
  ``Neck``/``Head``/``LeftEye``/``RightEye``) and a few common spellings.  The head's world
  rotation is the take's; a neck above it takes :data:`NECK_SHARE` of that rotation and the head
  the rest; each eye turns by the head's rotation times its gaze.  Rotations are composed with
  each joint's rest rotation, so any rest pose works.  Without such joints only the morph curves
  are written.

``out`` ending in .glb: the avatar's own glb with the animation appended (everything else is
kept byte for byte in the JSON and buffer).  Ending in .fbx: the asset -- with the skin and its
skeleton when the glb has them -- is rebuilt from the glb and written by ``engine_export`` with
the clip as morph curves and Lcl Rotation curves on the same joints, in the preset's axes.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

import engine_export

from ..errors import ExportError, InvalidInputError
from ._files import write_bytes_atomically
from .avatar_file import AvatarFile, load_avatar_glb, pack_glb
from .take import SHAPE_NAMES, Take

__all__ = ["write_take", "retarget_weights", "JOINT_NAMES", "NECK_SHARE", "head_rotation_matrices"]

#: Joint roles -> accepted node names (compared case-insensitively).
JOINT_NAMES = {
    "neck": ("neck_01", "neck"),
    "head": ("head",),
    "eye_left": ("eye_l", "eye_left", "lefteye", "eye.l", "left_eye"),
    "eye_right": ("eye_r", "eye_right", "righteye", "eye.r", "right_eye"),
}
_FLOAT = 5126
#: Share of the head's rotation the neck joint takes when the file has one (the head takes the
#: rest, so its world rotation is the take's).  Roughly how the cervical spine splits a turn
#: between its lower joints and the head's own (atlas/axis); it spreads the twist over the neck's
#: skin instead of folding it all at the head joint.
NECK_SHARE = 0.4


def retarget_weights(take: Take, target_names) -> tuple[np.ndarray, list]:
    """(T, M) float32 weights for a mesh whose targets are ``target_names``, matched by name.

    Returns the weights and the names of the take's shapes the mesh does not have.
    """
    index = {name: k for k, name in enumerate(SHAPE_NAMES)}
    out = np.zeros((take.frame_count, len(target_names)), np.float32)
    for m, name in enumerate(target_names):
        if name in index:
            out[:, m] = take.weights[:, index[name]]
    missing = [n for n in SHAPE_NAMES if n not in set(target_names)]
    return out, missing


def _rot_y(a):
    c, s = np.cos(a), np.sin(a)
    z, o = np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def _rot_x(a):
    c, s = np.cos(a), np.sin(a)
    z, o = np.zeros_like(a), np.ones_like(a)
    # Right-handed about +X: positive pitch takes the face (+Z) down toward -Y.
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def _rot_z(a):
    c, s = np.cos(a), np.sin(a)
    z, o = np.zeros_like(a), np.ones_like(a)
    # Right-handed about +Z: positive roll takes the top of the head (+Y) toward -X (the subject's right).
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


def head_rotation_matrices(yaw, pitch, roll=None) -> np.ndarray:
    """(T, 3, 3) R = Ry(yaw) Rx(pitch) Rz(roll) with the take's sign conventions."""
    yaw = np.asarray(yaw, np.float64)
    pitch = np.asarray(pitch, np.float64)
    roll = np.zeros_like(yaw) if roll is None else np.asarray(roll, np.float64)
    return _rot_y(yaw) @ _rot_x(pitch) @ _rot_z(roll)


def _quat_to_matrix(q) -> np.ndarray:
    x, y, z, w = q
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def _matrix_to_quat(m: np.ndarray) -> np.ndarray:
    """(T, 3, 3) rotation matrices -> (T, 4) unit quaternions x, y, z, w with w >= 0."""
    m = np.asarray(m, np.float64)
    w = np.sqrt(np.maximum(0.0, 1 + m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2])) / 2
    x = np.sqrt(np.maximum(0.0, 1 + m[:, 0, 0] - m[:, 1, 1] - m[:, 2, 2])) / 2
    y = np.sqrt(np.maximum(0.0, 1 - m[:, 0, 0] + m[:, 1, 1] - m[:, 2, 2])) / 2
    z = np.sqrt(np.maximum(0.0, 1 - m[:, 0, 0] - m[:, 1, 1] + m[:, 2, 2])) / 2
    x = np.copysign(x, m[:, 2, 1] - m[:, 1, 2])
    y = np.copysign(y, m[:, 0, 2] - m[:, 2, 0])
    z = np.copysign(z, m[:, 1, 0] - m[:, 0, 1])
    q = np.stack([x, y, z, w], 1)
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def _node_matrix(node: dict) -> np.ndarray:
    """(4, 4) local matrix of a glTF node (``matrix``, or T * R * S)."""
    if node.get("matrix") is not None:
        return np.asarray(node["matrix"], np.float64).reshape(4, 4).T
    m = np.eye(4)
    m[:3, :3] = _quat_to_matrix(node["rotation"]) if node.get("rotation") is not None else np.eye(3)
    m[:3, :3] = m[:3, :3] * np.asarray(node.get("scale", (1.0, 1.0, 1.0)), np.float64)[None]
    m[:3, 3] = node.get("translation", (0.0, 0.0, 0.0))
    return m


def _world_matrices(document: dict):
    """({node: (4, 4) world rest matrix}, {child: parent})."""
    nodes = document.get("nodes", [])
    parents = {c: p for p, node in enumerate(nodes) for c in (node.get("children") or [])}
    cache = {}

    def world(k):
        if k not in cache:
            local = _node_matrix(nodes[k])
            cache[k] = local if k not in parents else world(parents[k]) @ local
        return cache[k]

    return {k: world(k) for k in range(len(nodes))}, parents


def _rotation_part(matrix: np.ndarray) -> np.ndarray:
    """The rotation of a (4, 4) or (3, 3) rotation-times-scale matrix (columns normalised)."""
    m = np.asarray(matrix, np.float64)[:3, :3]
    return m / np.linalg.norm(m, axis=0, keepdims=True)


def find_joints(avatar: AvatarFile) -> dict:
    """role -> node index of the neck/head/eye joints present in the file (matched by name)."""
    lowered = {name.lower(): k for name, k in avatar.joints.items()}
    found = {}
    for role, names in JOINT_NAMES.items():
        for name in names:
            if name in lowered:
                found[role] = lowered[name]
                break
    return found


def _fraction_of(rotations: np.ndarray, share: float) -> np.ndarray:
    """(T, 3, 3) rotations by ``share`` of each rotation's angle about the same axis (R^share)."""
    q = _matrix_to_quat(rotations).astype(np.float64)          # w >= 0: the short way round
    sin_half = np.linalg.norm(q[:, :3], axis=1)
    angle = 2 * np.arctan2(sin_half, q[:, 3])
    axis = np.divide(q[:, :3], sin_half[:, None], out=np.zeros_like(q[:, :3]), where=sin_half[:, None] > 1e-12)
    part = np.concatenate([axis * np.sin(share * angle / 2)[:, None], np.cos(share * angle / 2)[:, None]], 1)
    return np.stack([_quat_to_matrix(v) for v in part])


def _is_ancestor(ancestor: int, node: int, parents: dict) -> bool:
    while node in parents:
        node = parents[node]
        if node == ancestor:
            return True
    return False


def joint_turns(avatar: AvatarFile, take: Take, neck_share: float = NECK_SHARE) -> dict:
    """node index -> (T, 3, 3) world turn of each neck/head/eye joint the file has.

    The head's turn is the take's R = Ry(yaw) Rx(pitch) Rz(roll).  When a neck joint is the
    head's ancestor it takes ``neck_share`` of that rotation (same axis, that share of the angle)
    and the head the rest, so the head still ends up turned by exactly R.  An eye's turn is the
    head's turn times its gaze (the take's gaze is relative to the head).
    """
    joints = find_joints(avatar)
    _, parents = _world_matrices(avatar.document)
    head_turn = head_rotation_matrices(*take.head_pose[:, :3].T)
    turns = {}
    if "head" in joints:
        turns[joints["head"]] = head_turn
        if "neck" in joints and _is_ancestor(joints["neck"], joints["head"], parents) and neck_share > 0:
            turns[joints["neck"]] = _fraction_of(head_turn, neck_share)
    else:
        head_turn = np.broadcast_to(np.eye(3), head_turn.shape)   # no head joint: the eyes turn alone
    for role, (yaw, pitch) in (("eye_left", (0, 1)), ("eye_right", (2, 3))):
        if role in joints:
            turns[joints[role]] = head_turn @ head_rotation_matrices(take.gaze[:, yaw], take.gaze[:, pitch])
    return turns


def joint_rotation_curves(avatar: AvatarFile, take: Take, neck_share: float = NECK_SHARE) -> dict:
    """node index -> (T, 4) local rotation quaternions (x, y, z, w) of the neck/head/eye joints.

    Each animated joint's world rotation is its turn (:func:`joint_turns`, about the world axes)
    times its world rest rotation; its local curve is that relative to its parent's animated
    world rotation.  So curves compose down the chain, whatever the rest rotations are.
    Joints stored as a ``matrix`` cannot be animated in glTF and are left out.
    """
    nodes = avatar.document.get("nodes", [])
    turns = {n: t for n, t in joint_turns(avatar, take, neck_share).items() if nodes[n].get("matrix") is None}
    if not turns:
        return {}
    worlds, parents = _world_matrices(avatar.document)
    frames = take.frame_count
    animated = {}

    def world(k):   # (T, 3, 3) animated world rotation of node k
        if k not in animated:
            if k in turns:
                animated[k] = turns[k] @ _rotation_part(worlds[k])[None]
            elif k in parents:
                animated[k] = world(parents[k]) @ _rotation_part(_node_matrix(nodes[k]))[None]
            else:
                animated[k] = np.broadcast_to(_rotation_part(worlds[k]), (frames, 3, 3))
        return animated[k]

    curves = {}
    for node in sorted(turns):
        parent = world(parents[node]) if node in parents else np.broadcast_to(np.eye(3), (frames, 3, 3))
        local = np.swapaxes(parent, 1, 2) @ world(node)
        curves[node] = _continuous(_matrix_to_quat(local)).astype(np.float32)
    return curves


def _continuous(quats: np.ndarray) -> np.ndarray:
    """(T, 4) quaternions with each key's sign chosen nearest the previous key's: q and -q are
    one rotation, and a sign flip between keys would send a linear (slerp) interpolation the
    long way round in readers that do not pick the short arc themselves."""
    out = np.array(quats, np.float64)
    flips = np.cumsum(np.einsum("ij,ij->i", out[1:], out[:-1]) < 0) % 2
    out[1:][flips == 1] *= -1
    return out


class _Appender:
    """Appends float accessors (one bufferView each, 4-byte aligned) to the glb's one buffer."""

    def __init__(self, avatar: AvatarFile):
        self.document = avatar.document
        self.blob = bytearray(avatar.blob)

    def accessor(self, array: np.ndarray, kind: str, bounds: bool = False) -> int:
        array = np.ascontiguousarray(array, dtype=np.float32)
        self.blob += b"\0" * (-len(self.blob) % 4)
        data = array.tobytes()
        views = self.document.setdefault("bufferViews", [])
        views.append({"buffer": 0, "byteOffset": len(self.blob), "byteLength": len(data)})
        self.blob += data
        accessor = {"bufferView": len(views) - 1, "componentType": _FLOAT, "count": len(array), "type": kind}
        if bounds:
            flat = array.reshape(len(array), -1)
            accessor["min"] = [float(v) for v in flat.min(0)]
            accessor["max"] = [float(v) for v in flat.max(0)]
        accessors = self.document.setdefault("accessors", [])
        accessors.append(accessor)
        return len(accessors) - 1

    def finish(self) -> bytes:
        self.blob += b"\0" * (-len(self.blob) % 4)
        self.document["buffers"][0]["byteLength"] = len(self.blob)
        return bytes(self.blob)


def _glb_bytes(avatar: AvatarFile, take: Take, clip_name: str, neck_share: float) -> tuple[bytes, dict]:
    document = avatar.document
    animations = document.setdefault("animations", [])
    if any(a.get("name") == clip_name for a in animations):
        raise ExportError(f"{avatar.path.name}: already has an animation named {clip_name!r}; "
                          f"choose another clip name")
    if not document.get("buffers"):
        raise ExportError(f"{avatar.path.name}: has no binary buffer to add the clip to")
    weights, missing = retarget_weights(take, avatar.target_names)
    appender = _Appender(avatar)
    times = appender.accessor(take.times.astype(np.float32), "SCALAR", bounds=True)
    samplers = [{"input": times, "output": appender.accessor(weights.reshape(-1), "SCALAR"), "interpolation": "LINEAR"}]
    channels = [{"sampler": 0, "target": {"node": avatar.node_index, "path": "weights"}}]
    curves = joint_rotation_curves(avatar, take, neck_share)
    for node, quats in sorted(curves.items()):
        samplers.append({"input": times, "output": appender.accessor(quats, "VEC4"), "interpolation": "LINEAR"})
        channels.append({"sampler": len(samplers) - 1, "target": {"node": node, "path": "rotation"}})
    animations.append({"name": clip_name, "samplers": samplers, "channels": channels})
    blob = appender.finish()
    nodes = document.get("nodes", [])
    report = {"clip": clip_name, "frames": take.frame_count, "fps": take.fps,
              "morph_targets": len(avatar.target_names), "shapes_not_on_avatar": missing,
              "animated_joints": [nodes[n].get("name") for n in sorted(curves)]}
    return pack_glb(document, blob), report


def avatar_asset(avatar: AvatarFile) -> "engine_export.Asset":
    """The avatar glb rebuilt as an engine_export Asset (meshes, materials, textures)."""
    ee = engine_export
    document = avatar.document
    materials = []
    for k, mat in enumerate(document.get("materials", [])):
        pbr = mat.get("pbrMetallicRoughness") or {}
        texture = None
        if pbr.get("baseColorTexture") is not None:
            source = document["textures"][pbr["baseColorTexture"]["index"]]["source"]
            data, mime = avatar.image_bytes(source)
            texture = ee.Texture(name=document["images"][source].get("name") or mat.get("name") or f"texture{k}",
                                 data=data, mime_type=mime)
        materials.append(ee.Material(
            name=mat.get("name") or f"material{k}", base_color_texture=texture,
            base_color_factor=tuple(pbr.get("baseColorFactor", (1.0, 1.0, 1.0, 1.0))),
            metallic=pbr.get("metallicFactor", 1.0), roughness=pbr.get("roughnessFactor", 1.0),
            double_sided=bool(mat.get("doubleSided", False))))
    skeleton, order = _skin_skeleton(avatar)
    primitives = []
    for p in avatar.primitives:
        joints = weights = None
        if skeleton is not None and p.joints is not None:
            # Unused influence slots may hold any index; point them at joint 0.
            joints = np.where(p.joint_weights > 0, order[p.joints], 0).astype(np.uint16)
            weights = p.joint_weights.astype(np.float64)
            weights = weights / np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
        primitives.append(ee.Primitive(positions=p.positions, normals=p.normals, indices=p.indices, uvs=p.uvs,
                                       material=p.material, target_positions=p.target_positions,
                                       target_normals=p.target_normals, joints=joints, joint_weights=weights))
    mesh = ee.Mesh(name=document["meshes"][avatar.mesh_index].get("name") or "face", primitives=primitives,
                   target_names=list(avatar.target_names))
    scenes = document.get("scenes") or [{}]
    return ee.Asset(meshes=[mesh], materials=materials, skeleton=skeleton, name=scenes[0].get("name") or "asset")


def _skin_skeleton(avatar: AvatarFile):
    """(engine_export Skeleton of the face mesh's skin, or None; (J,) int array taking the skin's
    joint index to the Skeleton's).  Joints are ordered parents first; each joint's local rest
    transform is taken from the world matrices, so nodes between joints (an armature object)
    are folded in."""
    if not avatar.skin_joints:
        return None, None
    nodes = avatar.document["nodes"]
    worlds, parents = _world_matrices(avatar.document)
    skin = avatar.skin_joints
    in_skin = set(skin)

    def joint_parent(k):
        while k in parents:
            k = parents[k]
            if k in in_skin:
                return k
        return None

    def depth(k):
        p = joint_parent(k)
        return 0 if p is None else 1 + depth(p)

    ordered = sorted(skin, key=lambda k: (depth(k), skin.index(k)))
    position = {k: i for i, k in enumerate(ordered)}
    translations, rotations, scales, parent_ids = [], [], [], []
    for k in ordered:
        p = joint_parent(k)
        local = worlds[k] if p is None else np.linalg.inv(worlds[p]) @ worlds[k]
        scale = np.linalg.norm(local[:3, :3], axis=0)
        translations.append(local[:3, 3])
        rotations.append(_matrix_to_quat((local[:3, :3] / scale)[None])[0])
        scales.append(scale)
        parent_ids.append(-1 if p is None else position[p])
    scales = np.array(scales)
    skeleton = engine_export.Skeleton(
        joint_names=[nodes[k].get("name") or f"joint{k}" for k in ordered], parents=np.array(parent_ids),
        translations=np.array(translations), rotations=np.array(rotations),
        scales=None if np.allclose(scales, 1, atol=1e-6) else scales)
    return skeleton, np.array([position[k] for k in skin])


def _fbx_bytes(avatar: AvatarFile, take: Take, clip_name: str, preset: str,
               neck_share: float) -> tuple[bytes, dict]:
    asset = avatar_asset(avatar)
    weights, missing = retarget_weights(take, avatar.target_names)
    nodes = avatar.document["nodes"]
    joint_names = set(asset.skeleton.joint_names) if asset.skeleton is not None else set()
    curves = {nodes[n].get("name"): q for n, q in joint_rotation_curves(avatar, take, neck_share).items()}
    animated = {name: q for name, q in curves.items() if name in joint_names}
    asset.animations = [engine_export.AnimationClip(clip_name, take.times, weights, mesh=0,
                                                    joint_rotations=animated or None)]
    try:
        from engine_export import fbx_binary
        data = fbx_binary.encode_file(engine_export.build_fbx(asset, preset=preset))
    except ValueError as exc:  # engine_export.ExportError
        raise ExportError(str(exc)) from None
    found = sorted(nodes[n].get("name") for n in find_joints(avatar).values())
    report = {"clip": clip_name, "frames": take.frame_count, "fps": take.fps,
              "morph_targets": len(avatar.target_names), "shapes_not_on_avatar": missing,
              "animated_joints": [n for n in asset.skeleton.joint_names if n in animated] if animated else [],
              "joints_not_animated": [n for n in found if n not in animated]}
    return data, report


def write_take(avatar_path, take: Take, out_path, clip_name: str = "take", preset: str = "unity",
               neck_share: float = NECK_SHARE) -> dict:
    """Write ``avatar_path`` (a pyfacerig .glb) with ``take`` as clip ``clip_name`` to ``out_path``.

    out_path ending in .glb: glTF with morph-weight curves and head/eye joint rotation curves
    (where those joints exist).  Ending in .fbx: binary FBX (``preset`` "unity" or "unreal")
    with morph-weight curves.  The file appears atomically.  Returns a report dict: clip name,
    frames, fps, shapes the avatar lacks, animated joints.
    """
    if not isinstance(take, Take):
        raise InvalidInputError(f"write_take: expected a Take, got {type(take).__name__}")
    if not isinstance(clip_name, str) or not clip_name.strip() or clip_name != clip_name.strip():
        raise InvalidInputError(f"write_take: clip name must be a non-empty name without surrounding spaces, "
                                f"got {clip_name!r}")
    try:
        neck_share = float(neck_share)
    except (TypeError, ValueError):
        raise InvalidInputError(f"write_take: neck_share must be a number in [0, 1], got {neck_share!r}") from None
    if not 0.0 <= neck_share <= 1.0:
        raise InvalidInputError(f"write_take: neck_share must be a number in [0, 1], got {neck_share!r}")
    out_path = Path(out_path)
    suffix = out_path.suffix.lower()
    if suffix not in (".glb", ".fbx"):
        raise ExportError(f"{str(out_path)!r}: the animated avatar must end in .glb or .fbx")
    avatar = load_avatar_glb(avatar_path)
    if suffix == ".glb":
        data, report = _glb_bytes(avatar, take, clip_name, neck_share)
    else:
        data, report = _fbx_bytes(avatar, take, clip_name, preset, neck_share)
    write_bytes_atomically(out_path, data)
    report["path"] = str(out_path)
    return report
