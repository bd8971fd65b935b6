"""The plain data model engine_export writes, and its validation.

An :class:`Asset` holds meshes, materials, an optional skeleton and optional
morph-weight clips.  Everything is numpy arrays and strings; nothing here knows
about faces.  Coordinates are glTF's: metres, right-handed, +Y up.  UVs use
glTF's convention (origin at the image's top-left).

:func:`validate_asset` checks everything a writer relies on, so writers can
assume a valid asset and nothing is written for a bad one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

import numpy as np

from .errors import ExportError

#: A unit normal may be off by this much in length (float32 data from other tools).
NORMAL_LENGTH_TOLERANCE = 1e-3
#: Joint weights of a vertex must sum to 1 within this (the glTF validator's own bound is 2e-3 per weight).
WEIGHT_SUM_TOLERANCE = 1e-3

ALPHA_MODES = ("OPAQUE", "MASK", "BLEND")
IMAGE_MIME_TYPES = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff"}


@dataclass
class Texture:
    """An encoded image embedded in the file: PNG or JPEG bytes, never a path."""
    name: str
    data: bytes
    mime_type: str = "image/png"  # "image/png" or "image/jpeg"


@dataclass
class Material:
    """Metallic-roughness material; ``base_color_texture`` is multiplied by ``base_color_factor``."""
    name: str
    base_color_factor: Sequence[float] = (1.0, 1.0, 1.0, 1.0)  # linear RGBA in [0, 1]
    base_color_texture: Optional[Texture] = None
    metallic: float = 0.0
    roughness: float = 0.5
    double_sided: bool = False
    alpha_mode: str = "OPAQUE"  # "OPAQUE", "MASK" or "BLEND"
    alpha_cutoff: float = 0.5  # used only by "MASK"


@dataclass
class Primitive:
    """One triangle list with one material; the morph targets follow :attr:`Mesh.target_names`.

    positions          (N, 3) float32, metres
    normals            (N, 3) float32, unit length
    uvs                (N, 2) float32 or None, origin top-left of the image
    indices            (F, 3) integer, counter-clockwise seen from outside
    target_positions   (M, N, 3) float32 position deltas, M = len(mesh.target_names)
    target_normals     (M, N, 3) float32 normal deltas, or None (then no normal morphs are written)
    joints             (N, 4) integer joint indices into Asset.skeleton, or None (unskinned)
    joint_weights      (N, 4) float32 weights summing to 1 per vertex, or None
    """
    positions: np.ndarray
    normals: np.ndarray
    indices: np.ndarray
    uvs: Optional[np.ndarray] = None
    material: Optional[int] = None
    target_positions: Optional[np.ndarray] = None
    target_normals: Optional[np.ndarray] = None
    joints: Optional[np.ndarray] = None
    joint_weights: Optional[np.ndarray] = None


@dataclass
class Mesh:
    """Several primitives that share one list of morph target names (same order in every primitive)."""
    name: str
    primitives: list
    target_names: Sequence[str] = ()
    default_weights: Optional[Sequence[float]] = None  # (M,), zeros when None


@dataclass
class Skeleton:
    """Joints in parent-before-child order with their rest (bind) pose as local TRS.

    parents        (J,) int, -1 for a root, otherwise an index smaller than the joint's own
    translations   (J, 3) float, metres, relative to the parent
    rotations      (J, 4) float unit quaternions (x, y, z, w), relative to the parent
    scales         (J, 3) float or None (ones)
    The inverse bind matrices are the inverses of the joints' world rest matrices:
    the mesh is bound in the pose it is given in.
    """
    joint_names: Sequence[str]
    parents: np.ndarray
    translations: np.ndarray
    rotations: np.ndarray
    scales: Optional[np.ndarray] = None


@dataclass
class AnimationClip:
    """Morph weights of one mesh over time, and optionally joint rotations, linearly interpolated.

    times            (T,) float seconds, strictly increasing, T >= 1
    weights          (T, M) float, M = len(asset.meshes[mesh].target_names); 1.0 is the full shape
    joint_rotations  joint name -> (T, 4) unit quaternions (x, y, z, w): the joint's local
                     rotation relative to its parent at each key, in the glTF frame -- what
                     replaces ``Skeleton.rotations`` of that joint while the clip plays.  The
                     joint's translation and scale stay at rest.  Needs ``asset.skeleton``.
    """
    name: str
    times: np.ndarray
    weights: np.ndarray
    mesh: int = 0
    joint_rotations: Optional[Mapping[str, np.ndarray]] = None


@dataclass
class Asset:
    meshes: list
    materials: list = field(default_factory=list)
    skeleton: Optional[Skeleton] = None
    animations: list = field(default_factory=list)
    name: str = "asset"


# --------------------------------------------------------------------------- validation

def _fail(where: str, problem: str):
    raise ExportError(f"{where}: {problem}")


def check_name(name, where: str, *, ascii_only: bool = False) -> None:
    """Names are non-empty strings without control characters.

    With ``ascii_only`` (FBX) they must also be printable ASCII without ':' --
    FBX joins a name and its class with NUL/0x01, and importers (Maya, Unreal)
    treat text before ':' as a namespace and strip it.
    """
    if not isinstance(name, str) or not name:
        _fail(where, f"name must be a non-empty string, got {name!r}")
    if name != name.strip():
        _fail(where, f"name {name!r} has leading or trailing whitespace")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        _fail(where, f"name {name!r} contains a control character")
    if ascii_only:
        bad = [c for c in name if not (0x20 <= ord(c) < 0x7F) or c == ":"]
        if bad:
            _fail(where, f"name {name!r} cannot be carried by FBX (character {bad[0]!r}; "
                         "allowed: printable ASCII without ':')")


def _check_unique(names, where: str) -> None:
    seen = set()
    for n in names:
        if n in seen:
            _fail(where, f"duplicate name {n!r}")
        seen.add(n)


def _array(value, where: str, shape: tuple, *, integer: bool = False) -> np.ndarray:
    """Return ``value`` as an array of ``shape`` (None = any size), finite; or raise."""
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        _fail(where, f"not an array ({exc})")
    if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape)):
        want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        _fail(where, f"shape {arr.shape} does not match {want}")
    if integer:
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            _fail(where, f"must be integers, got {arr.dtype}")
    else:
        if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
            _fail(where, f"must be numbers, got {arr.dtype}")
        if not np.all(np.isfinite(arr)):
            _fail(where, "contains NaN or infinity")
        # Values that overflow float32 would become inf in the file.
        if arr.size and np.abs(arr).max() > 1e30:
            _fail(where, "contains values too large for float32")
    return arr


def _check_image(texture: Texture, where: str) -> None:
    check_name(texture.name, where)
    if texture.mime_type not in IMAGE_MIME_TYPES:
        _fail(where, f"mime_type {texture.mime_type!r} is not one of {sorted(IMAGE_MIME_TYPES)}")
    if not isinstance(texture.data, (bytes, bytearray)) or not texture.data:
        _fail(where, "data must be non-empty bytes")
    if not bytes(texture.data).startswith(IMAGE_MIME_TYPES[texture.mime_type]):
        _fail(where, f"data is not a {texture.mime_type} file (wrong signature)")


def _check_material(mat: Material, where: str) -> None:
    check_name(mat.name, where)
    factor = _array(mat.base_color_factor, f"{where}.base_color_factor", (4,))
    if np.any(factor < 0) or np.any(factor > 1):
        _fail(f"{where}.base_color_factor", "values must lie in [0, 1]")
    for attr in ("metallic", "roughness", "alpha_cutoff"):
        v = getattr(mat, attr)
        if not isinstance(v, (int, float)) or not np.isfinite(v) or not 0 <= v <= 1:
            _fail(f"{where}.{attr}", f"must be a number in [0, 1], got {v!r}")
    if mat.alpha_mode not in ALPHA_MODES:
        _fail(f"{where}.alpha_mode", f"{mat.alpha_mode!r} is not one of {ALPHA_MODES}")
    if mat.base_color_texture is not None:
        _check_image(mat.base_color_texture, f"{where}.base_color_texture")


def _check_primitive(prim: Primitive, where: str, n_targets: int, n_materials: int,
                     n_joints: int) -> None:
    pos = _array(prim.positions, f"{where}.positions", (None, 3))
    n = pos.shape[0]
    if n == 0:
        _fail(f"{where}.positions", "has no vertices")
    nrm = _array(prim.normals, f"{where}.normals", (n, 3))
    length = np.linalg.norm(nrm.astype(np.float64), axis=1)
    if np.any(np.abs(length - 1.0) > NORMAL_LENGTH_TOLERANCE):
        i = int(np.argmax(np.abs(length - 1.0)))
        _fail(f"{where}.normals", f"normal {i} has length {length[i]:.6g}, not 1")
    idx = _array(prim.indices, f"{where}.indices", (None, 3), integer=True)
    if idx.shape[0] == 0:
        _fail(f"{where}.indices", "has no triangles")
    if idx.min() < 0 or idx.max() >= n:
        _fail(f"{where}.indices", f"index out of range [0, {n}) (min {idx.min()}, max {idx.max()})")
    degenerate = (idx[:, 0] == idx[:, 1]) | (idx[:, 1] == idx[:, 2]) | (idx[:, 0] == idx[:, 2])
    if np.any(degenerate):
        _fail(f"{where}.indices", f"triangle {int(np.argmax(degenerate))} repeats a vertex")
    if prim.uvs is not None:
        _array(prim.uvs, f"{where}.uvs", (n, 2))
    if prim.material is not None:
        if not isinstance(prim.material, (int, np.integer)) or not 0 <= prim.material < n_materials:
            _fail(f"{where}.material", f"{prim.material!r} is not an index into {n_materials} materials")
    if n_targets:
        if prim.target_positions is None:
            _fail(f"{where}.target_positions", f"missing, the mesh has {n_targets} target names")
        _array(prim.target_positions, f"{where}.target_positions", (n_targets, n, 3))
        if prim.target_normals is not None:
            _array(prim.target_normals, f"{where}.target_normals", (n_targets, n, 3))
    else:
        for attr in ("target_positions", "target_normals"):
            arr = getattr(prim, attr)
            if arr is not None and np.asarray(arr).shape[:1] != (0,):
                _fail(f"{where}.{attr}", "has targets but the mesh has no target names "
                                         "(the target count differs between mesh and primitive)")
    if (prim.joints is None) != (prim.joint_weights is None):
        _fail(where, "joints and joint_weights must be given together")
    if prim.joints is not None:
        if n_joints == 0:
            _fail(f"{where}.joints", "given but the asset has no skeleton")
        j = _array(prim.joints, f"{where}.joints", (n, 4), integer=True)
        w = _array(prim.joint_weights, f"{where}.joint_weights", (n, 4))
        if j.min() < 0 or j.max() >= n_joints:
            _fail(f"{where}.joints", f"joint index out of range [0, {n_joints})")
        if np.any(w < 0):
            _fail(f"{where}.joint_weights", "weights must not be negative")
        used = np.where(w > 0, j, -1 - np.arange(4))  # unused slots get distinct dummies
        srt = np.sort(used, axis=1)
        if np.any(srt[:, 1:] == srt[:, :-1]):
            i = int(np.argmax(np.any(srt[:, 1:] == srt[:, :-1], axis=1)))
            _fail(f"{where}.joints", f"vertex {i} names the same joint twice with non-zero weight")
        sums = w.astype(np.float64).sum(axis=1)
        if np.any(np.abs(sums - 1.0) > WEIGHT_SUM_TOLERANCE):
            i = int(np.argmax(np.abs(sums - 1.0)))
            _fail(f"{where}.joint_weights", f"weights of vertex {i} sum to {sums[i]:.6g}, not 1")


def _check_skeleton(skel: Skeleton, where: str, ascii_only: bool) -> int:
    if isinstance(skel.joint_names, (str, bytes)):
        _fail(f"{where}.joint_names", "must be a sequence of names, not one string")
    names = list(skel.joint_names)
    if not names:
        _fail(where, "has no joints")
    for i, n in enumerate(names):
        check_name(n, f"{where}.joint_names[{i}]", ascii_only=ascii_only)
    _check_unique(names, f"{where}.joint_names")
    j = len(names)
    parents = _array(skel.parents, f"{where}.parents", (j,), integer=True)
    for i, p in enumerate(parents):
        if p != -1 and not 0 <= p < i:
            _fail(f"{where}.parents", f"joint {i} has parent {p}; parents must come before children "
                                      "(-1 for a root)")
    _array(skel.translations, f"{where}.translations", (j, 3))
    q = _array(skel.rotations, f"{where}.rotations", (j, 4))
    if np.any(np.abs(np.linalg.norm(q.astype(np.float64), axis=1) - 1) > 1e-4):
        _fail(f"{where}.rotations", "quaternions must have unit length")
    if skel.scales is not None:
        s = _array(skel.scales, f"{where}.scales", (j, 3))
        if np.any(np.abs(s) < 1e-8):
            _fail(f"{where}.scales", "a zero scale makes the bind pose singular")
    return j


def validate_asset(asset: Asset, *, ascii_names: bool = False) -> None:
    """Raise :class:`ExportError` naming the first problem found; return None for a valid asset.

    ``ascii_names`` applies FBX's stricter naming rule (see :func:`check_name`).
    """
    if not isinstance(asset, Asset):
        _fail("asset", f"expected engine_export.Asset, got {type(asset).__name__}")
    check_name(asset.name, "asset.name", ascii_only=ascii_names)
    for i, mat in enumerate(asset.materials):
        if not isinstance(mat, Material):
            _fail(f"materials[{i}]", f"expected Material, got {type(mat).__name__}")
        _check_material(mat, f"materials[{i}] ({getattr(mat, 'name', '?')})")
        if mat.base_color_texture is not None:
            check_name(mat.base_color_texture.name, f"materials[{i}].base_color_texture.name",
                       ascii_only=ascii_names)
        check_name(mat.name, f"materials[{i}].name", ascii_only=ascii_names)
    _check_unique([m.name for m in asset.materials], "materials")
    # FBX (and Blender on import) identify embedded images by file name: one name, one image.
    images = {}
    for m in asset.materials:
        tex = m.base_color_texture
        if tex is not None and images.setdefault(tex.name, bytes(tex.data)) != bytes(tex.data):
            _fail("materials", f"two different textures are both named {tex.name!r}")
    n_joints = 0
    if asset.skeleton is not None:
        n_joints = _check_skeleton(asset.skeleton, "skeleton", ascii_names)
    if not asset.meshes:
        _fail("asset.meshes", "the asset has no meshes")
    for mi, mesh in enumerate(asset.meshes):
        where = f"meshes[{mi}] ({getattr(mesh, 'name', '?')})"
        if not isinstance(mesh, Mesh):
            _fail(f"meshes[{mi}]", f"expected Mesh, got {type(mesh).__name__}")
        check_name(mesh.name, where, ascii_only=ascii_names)
        if isinstance(mesh.target_names, (str, bytes)):
            _fail(f"{where}.target_names", "must be a sequence of names, not one string")
        names = list(mesh.target_names)
        for ti, tn in enumerate(names):
            check_name(tn, f"{where}.target_names[{ti}]", ascii_only=ascii_names)
        _check_unique(names, f"{where}.target_names")
        if mesh.default_weights is not None:
            _array(mesh.default_weights, f"{where}.default_weights", (len(names),))
        if not mesh.primitives:
            _fail(where, "has no primitives")
        skinned = {p.joints is not None for p in mesh.primitives}
        if len(skinned) > 1:
            _fail(where, "some primitives are skinned and some are not")
        for pi, prim in enumerate(mesh.primitives):
            if not isinstance(prim, Primitive):
                _fail(f"{where}.primitives[{pi}]", f"expected Primitive, got {type(prim).__name__}")
            _check_primitive(prim, f"{where}.primitives[{pi}]", len(names),
                             len(asset.materials), n_joints)
            if (prim.material is not None and prim.uvs is None
                    and asset.materials[prim.material].base_color_texture is not None):
                _fail(f"{where}.primitives[{pi}].uvs", "missing, but the material has a texture")
        if sum(len(np.asarray(p.positions)) for p in mesh.primitives) >= 2**31:
            _fail(where, "too many vertices")
    _check_unique([m.name for m in asset.meshes], "meshes")
    if ascii_names and asset.skeleton is not None:
        # FBX models (meshes and joints) share one namespace in every importer we know.
        _check_unique([m.name for m in asset.meshes] + list(asset.skeleton.joint_names),
                      "mesh and joint names")
    for ci, clip in enumerate(asset.animations):
        where = f"animations[{ci}] ({getattr(clip, 'name', '?')})"
        if not isinstance(clip, AnimationClip):
            _fail(f"animations[{ci}]", f"expected AnimationClip, got {type(clip).__name__}")
        check_name(clip.name, where, ascii_only=ascii_names)
        if not isinstance(clip.mesh, (int, np.integer)) or not 0 <= clip.mesh < len(asset.meshes):
            _fail(f"{where}.mesh", f"{clip.mesh!r} is not an index into {len(asset.meshes)} meshes")
        m = len(asset.meshes[clip.mesh].target_names)
        if m == 0:
            _fail(where, "animates a mesh without morph targets")
        times = _array(clip.times, f"{where}.times", (None,))
        if times.shape[0] == 0:
            _fail(f"{where}.times", "has no keys")
        if np.any(times < 0) or np.any(np.diff(times.astype(np.float64)) <= 0):
            _fail(f"{where}.times", "must be non-negative and strictly increasing")
        # float32 is what both formats keep; keys must stay distinct after rounding.
        if np.any(np.diff(times.astype(np.float32)) <= 0):
            _fail(f"{where}.times", "keys collapse when rounded to float32")
        _array(clip.weights, f"{where}.weights", (times.shape[0], m))
        for joint, quats in (clip.joint_rotations or {}).items():
            if asset.skeleton is None or joint not in list(asset.skeleton.joint_names):
                _fail(f"{where}.joint_rotations", f"{joint!r} is not a joint of the asset's skeleton")
            q = _array(quats, f"{where}.joint_rotations[{joint!r}]", (times.shape[0], 4))
            if np.any(np.abs(np.linalg.norm(q.astype(np.float64), axis=1) - 1) > 1e-3):
                _fail(f"{where}.joint_rotations[{joint!r}]", "quaternions must have unit length")
    _check_unique([c.name for c in asset.animations], "animations")


# --------------------------------------------------------------------------- helpers for writers

def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """(…, 4) unit quaternions (x, y, z, w) -> (…, 3, 3) rotation matrices."""
    q = np.asarray(q, dtype=np.float64)
    x, y, z, w = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    m = np.empty(q.shape[:-1] + (3, 3))
    m[..., 0, 0] = 1 - 2 * (y * y + z * z)
    m[..., 0, 1] = 2 * (x * y - z * w)
    m[..., 0, 2] = 2 * (x * z + y * w)
    m[..., 1, 0] = 2 * (x * y + z * w)
    m[..., 1, 1] = 1 - 2 * (x * x + z * z)
    m[..., 1, 2] = 2 * (y * z - x * w)
    m[..., 2, 0] = 2 * (x * z - y * w)
    m[..., 2, 1] = 2 * (y * z + x * w)
    m[..., 2, 2] = 1 - 2 * (x * x + y * y)
    return m


def joint_local_matrices(skel: Skeleton) -> np.ndarray:
    """(J, 4, 4) float64 local rest matrices T * R * S."""
    j = len(skel.joint_names)
    s = np.ones((j, 3)) if skel.scales is None else np.asarray(skel.scales, dtype=np.float64)
    m = np.zeros((j, 4, 4))
    m[:, :3, :3] = quat_to_matrix(skel.rotations) * s[:, None, :]
    m[:, :3, 3] = np.asarray(skel.translations, dtype=np.float64)
    m[:, 3, 3] = 1
    return m


def joint_world_matrices(skel: Skeleton) -> np.ndarray:
    """(J, 4, 4) float64 world rest matrices (parents come first, so one pass suffices)."""
    local = joint_local_matrices(skel)
    world = np.empty_like(local)
    for i, p in enumerate(np.asarray(skel.parents)):
        world[i] = local[i] if p < 0 else world[p] @ local[i]
    return world
