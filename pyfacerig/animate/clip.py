"""Write a :class:`~pyfacerig.animate.take.Take` into an avatar as an animation clip.

``write_take(avatar.glb, take, out)`` adds one clip to a copy of the avatar:

* morph-weight curves for the face mesh, matched BY NAME (the take's ARKit names against the
  mesh's target names), so a take solved on one avatar plays on any other; targets the take
  does not name stay at 0;
* rotation curves for head and eye joints when the file has them (nodes named ``head``,
  ``eye_l``/``eye_left``/``LeftEye``, ``eye_r``/...; case-insensitive).  A take's rotations are
  in the avatar's frame, so each joint's curve is its rest rotation turned by the take's angle
  about the world axes at rest.  Without such joints only the morph curves are written.

``out`` ending in .glb: the avatar's own glb with the animation appended (everything else is
kept byte for byte in the JSON and buffer).  Ending in .fbx: the asset is rebuilt from the glb
and written by ``engine_export.write_fbx`` with a morph-weight clip (engine_export writes no
joint curves, so FBX carries no head/eye bone animation; the report says so).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

import engine_export

from ..errors import ExportError, InvalidInputError
from ._files import write_bytes_atomically
from .avatar_file import AvatarFile, load_avatar_glb, pack_glb
from .take import SHAPE_NAMES, Take

__all__ = ["write_take", "retarget_weights", "JOINT_NAMES", "head_rotation_matrices"]

#: Joint roles -> accepted node names (compared case-insensitively).
JOINT_NAMES = {
    "head": ("head",),
    "eye_left": ("eye_l", "eye_left", "lefteye", "eye.l", "left_eye"),
    "eye_right": ("eye_r", "eye_right", "righteye", "eye.r", "right_eye"),
}
_FLOAT = 5126


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
    # Positive pitch tips the face (+Z) down toward -Y.
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, s], -1), np.stack([z, -s, c], -1)], -2)


def _rot_z(a):
    c, s = np.cos(a), np.sin(a)
    z, o = np.zeros_like(a), np.ones_like(a)
    # Positive roll tilts the top of the head (+Y) toward -X (the subject's right).
    return np.stack([np.stack([c, s, z], -1), np.stack([-s, c, z], -1), np.stack([z, z, o], -1)], -2)


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


def _node_rotation(node: dict) -> np.ndarray:
    if node.get("matrix") is not None:
        m = np.asarray(node["matrix"], np.float64).reshape(4, 4).T[:3, :3]
        return m / np.linalg.norm(m, axis=0, keepdims=True)
    return _quat_to_matrix(node["rotation"]) if node.get("rotation") is not None else np.eye(3)


def _world_rotations(document: dict):
    nodes = document.get("nodes", [])
    parents = {c: p for p, node in enumerate(nodes) for c in (node.get("children") or [])}
    cache = {}

    def world(k):
        if k not in cache:
            local = _node_rotation(nodes[k])
            cache[k] = local if k not in parents else world(parents[k]) @ local
        return cache[k]

    return {k: world(k) for k in range(len(nodes))}, parents


def find_joints(avatar: AvatarFile) -> dict:
    """role -> node index of the head/eye joints present in the file."""
    lowered = {name.lower(): k for name, k in avatar.joints.items()}
    found = {}
    for role, names in JOINT_NAMES.items():
        for name in names:
            if name in lowered:
                found[role] = lowered[name]
                break
    return found


def joint_rotation_curves(avatar: AvatarFile, take: Take) -> dict:
    """node index -> (T, 4) local rotation quaternions (x, y, z, w) for the head/eye joints."""
    joints = find_joints(avatar)
    if not joints:
        return {}
    worlds, parents = _world_rotations(avatar.document)
    turns = {"head": head_rotation_matrices(*take.head_pose[:, :3].T),
             "eye_left": head_rotation_matrices(take.gaze[:, 0], take.gaze[:, 1]),
             "eye_right": head_rotation_matrices(take.gaze[:, 2], take.gaze[:, 3])}
    curves = {}
    for role, node in joints.items():
        rest_world = worlds[node]
        parent_world = worlds[parents[node]] if node in parents else np.eye(3)
        # World rotation while animated = turn @ rest_world (turns compose down the chain,
        # so an eye under the head follows it); local = parent_rest^-1 @ turn @ rest_world.
        local = parent_world.T[None] @ turns[role] @ rest_world[None]
        curves[node] = _matrix_to_quat(local).astype(np.float32)
    return curves


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


def _glb_bytes(avatar: AvatarFile, take: Take, clip_name: str) -> tuple[bytes, dict]:
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
    curves = joint_rotation_curves(avatar, take)
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
    primitives = [ee.Primitive(positions=p.positions, normals=p.normals, indices=p.indices, uvs=p.uvs,
                               material=p.material, target_positions=p.target_positions,
                               target_normals=p.target_normals)
                  for p in avatar.primitives]
    mesh = ee.Mesh(name=document["meshes"][avatar.mesh_index].get("name") or "face", primitives=primitives,
                   target_names=list(avatar.target_names))
    scenes = document.get("scenes") or [{}]
    return ee.Asset(meshes=[mesh], materials=materials, name=scenes[0].get("name") or "asset")


def _fbx_bytes(avatar: AvatarFile, take: Take, clip_name: str, preset: str) -> tuple[bytes, dict]:
    if avatar.document.get("skins"):
        raise ExportError(f"{avatar.path.name}: FBX export of a skinned avatar's take is not supported yet; "
                          f"write a .glb")
    asset = avatar_asset(avatar)
    weights, missing = retarget_weights(take, avatar.target_names)
    asset.animations = [engine_export.AnimationClip(clip_name, take.times, weights, mesh=0)]
    try:
        nodes = engine_export.build_fbx(asset, preset=preset)
        from engine_export import fbx_binary
        data = fbx_binary.encode_file(nodes)
    except ValueError as exc:  # engine_export.ExportError
        raise ExportError(str(exc)) from None
    joints = find_joints(avatar)
    report = {"clip": clip_name, "frames": take.frame_count, "fps": take.fps,
              "morph_targets": len(avatar.target_names), "shapes_not_on_avatar": missing,
              "animated_joints": [], "joints_not_animated": sorted(avatar.document["nodes"][n].get("name") for n in joints.values())}
    return data, report


def write_take(avatar_path, take: Take, out_path, clip_name: str = "take", preset: str = "unity") -> dict:
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
    out_path = Path(out_path)
    suffix = out_path.suffix.lower()
    if suffix not in (".glb", ".fbx"):
        raise ExportError(f"{str(out_path)!r}: the animated avatar must end in .glb or .fbx")
    avatar = load_avatar_glb(avatar_path)
    if suffix == ".glb":
        data, report = _glb_bytes(avatar, take, clip_name)
    else:
        data, report = _fbx_bytes(avatar, take, clip_name, preset)
    write_bytes_atomically(out_path, data)
    report["path"] = str(out_path)
    return report
