"""Read an avatar ``.glb`` written by :func:`pyfacerig.build` back into arrays.

The glb keeps every part's vertex order (glTF never welds or reorders), so the skin
primitive's morph targets are the avatar's own shape deltas at the template's vertex ids.
Parts are named by the JSON sidecar next to the glb (``"parts"``: the primitives in order);
without a sidecar the primitives get the template's part names in order (skin first).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pygltflib

from ..errors import ExportError, InvalidInputError
from ..templates import PART_NAMES

__all__ = ["AvatarFile", "AvatarPrimitive", "load_avatar_glb"]

_COMPONENTS = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}
_WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}


@dataclass
class AvatarPrimitive:
    """One primitive (avatar part) of the face mesh.

    positions (N, 3), normals (N, 3) float32; indices (F, 3) int64; uvs (N, 2) or None;
    target_positions / target_normals (M, N, 3) float32 deltas (normals None when absent);
    material: index into the file's materials or None.
    """

    name: str
    positions: np.ndarray
    normals: np.ndarray
    indices: np.ndarray
    uvs: np.ndarray | None
    target_positions: np.ndarray
    target_normals: np.ndarray | None
    material: int | None


@dataclass
class AvatarFile:
    """An avatar glb in memory: the pygltflib document, its binary chunk and the face mesh.

    mesh_index / node_index: the mesh with the ARKit morph targets and the node that shows it.
    target_names: that mesh's morph-target names (file order).
    primitives: its parts, in file order (``part("skin")`` finds one by name).
    joints: joint-like node names -> node index (every node that is not a mesh node).
    """

    path: Path
    gltf: pygltflib.GLTF2
    blob: bytes
    mesh_index: int
    node_index: int
    target_names: tuple
    primitives: list = field(default_factory=list)
    joints: dict = field(default_factory=dict)

    def part(self, name: str) -> AvatarPrimitive:
        for primitive in self.primitives:
            if primitive.name == name:
                return primitive
        raise InvalidInputError(f"{self.path.name}: the face mesh has no part named {name!r} "
                                f"(parts: {[p.name for p in self.primitives]})")

    def accessor(self, index: int) -> np.ndarray:
        return read_accessor(self.gltf, self.blob, index)

    def image_bytes(self, image_index: int) -> tuple[bytes, str]:
        image = self.gltf.images[image_index]
        view = self.gltf.bufferViews[image.bufferView]
        start = view.byteOffset or 0
        return bytes(self.blob[start:start + view.byteLength]), image.mimeType or "image/png"


def read_accessor(gltf: pygltflib.GLTF2, blob: bytes, index: int) -> np.ndarray:
    """The accessor's data as (count, width) (or (count,) for SCALAR), sparse entries applied."""
    acc = gltf.accessors[index]
    dtype = np.dtype(_COMPONENTS[acc.componentType])
    width = _WIDTH[acc.type]
    if acc.bufferView is None:
        data = np.zeros((acc.count, width), dtype)
    else:
        data = _view_array(gltf, blob, acc.bufferView, acc.byteOffset or 0, dtype, acc.count, width)
    if acc.sparse is not None and acc.sparse.count:
        sp = acc.sparse
        ids = _view_array(gltf, blob, sp.indices.bufferView, sp.indices.byteOffset or 0,
                          np.dtype(_COMPONENTS[sp.indices.componentType]), sp.count, 1)[:, 0]
        values = _view_array(gltf, blob, sp.values.bufferView, sp.values.byteOffset or 0, dtype, sp.count, width)
        data = data.copy()
        data[ids.astype(np.int64)] = values
    return data[:, 0] if width == 1 else data


def _view_array(gltf, blob, view_index, offset, dtype, count, width) -> np.ndarray:
    view = gltf.bufferViews[view_index]
    start = (view.byteOffset or 0) + offset
    stride = view.byteStride or dtype.itemsize * width
    if stride == dtype.itemsize * width:
        flat = np.frombuffer(blob, dtype=dtype, count=count * width, offset=start)
        return flat.reshape(count, width)
    rows = [np.frombuffer(blob, dtype=dtype, count=width, offset=start + k * stride) for k in range(count)]
    return np.stack(rows) if rows else np.zeros((0, width), dtype)


def load_avatar_glb(path) -> AvatarFile:
    """Read a pyfacerig avatar ``.glb``; raises InvalidInputError when it is not one."""
    path = Path(path)
    if path.suffix.lower() != ".glb":
        raise InvalidInputError(f"{str(path)!r}: the avatar must be a .glb written by pyfacerig build")
    if not path.is_file():
        raise InvalidInputError(f"{str(path)!r}: no such avatar file")
    try:
        gltf = pygltflib.GLTF2.load_binary(str(path))
        blob = gltf.binary_blob()
    except Exception as exc:  # pygltflib raises many kinds on corrupt input
        raise InvalidInputError(f"{str(path)!r}: not a readable .glb ({type(exc).__name__}: {exc})") from None
    if blob is None:
        raise InvalidInputError(f"{str(path)!r}: the .glb has no binary chunk")
    blob = bytes(blob)

    mesh_index = None
    for k, mesh in enumerate(gltf.meshes):
        names = (mesh.extras or {}).get("targetNames") if isinstance(mesh.extras, dict) else None
        if names and all(p.targets for p in mesh.primitives):
            mesh_index = k
            break
    if mesh_index is None:
        raise InvalidInputError(f"{str(path)!r}: no mesh with named morph targets (extras.targetNames)")
    nodes = [k for k, node in enumerate(gltf.nodes) if node.mesh == mesh_index]
    if not nodes:
        raise InvalidInputError(f"{str(path)!r}: the face mesh is not placed in the scene by any node")
    mesh = gltf.meshes[mesh_index]
    target_names = tuple(mesh.extras["targetNames"])
    part_names = _part_names(path, len(mesh.primitives))
    avatar = AvatarFile(path=path, gltf=gltf, blob=blob, mesh_index=mesh_index, node_index=nodes[0],
                        target_names=target_names)
    try:
        for name, prim in zip(part_names, mesh.primitives):
            attributes = prim.attributes
            positions = avatar.accessor(attributes.POSITION).astype(np.float32)
            normals = avatar.accessor(attributes.NORMAL).astype(np.float32)
            uvs = avatar.accessor(attributes.TEXCOORD_0).astype(np.float32) if attributes.TEXCOORD_0 is not None else None
            indices = avatar.accessor(prim.indices).astype(np.int64).reshape(-1, 3)
            if len(prim.targets) != len(target_names):
                raise InvalidInputError(f"{str(path)!r}: part {name!r} has {len(prim.targets)} targets, "
                                        f"the mesh names {len(target_names)}")
            deltas = np.stack([avatar.accessor(t["POSITION"] if isinstance(t, dict) else t.POSITION)
                               for t in prim.targets]).astype(np.float32)
            normal_ids = [t.get("NORMAL") if isinstance(t, dict) else t.NORMAL for t in prim.targets]
            normal_deltas = None
            if all(i is not None for i in normal_ids):
                normal_deltas = np.stack([avatar.accessor(i) for i in normal_ids]).astype(np.float32)
            avatar.primitives.append(AvatarPrimitive(name, positions, normals, indices, uvs, deltas,
                                                     normal_deltas, prim.material))
    except (IndexError, KeyError, ValueError, TypeError, AttributeError) as exc:
        if isinstance(exc, InvalidInputError):
            raise
        raise InvalidInputError(f"{str(path)!r}: damaged .glb ({type(exc).__name__}: {exc})") from None
    avatar.joints = {node.name: k for k, node in enumerate(gltf.nodes)
                     if node.mesh is None and node.name}
    return avatar


def _part_names(path: Path, count: int) -> list:
    sidecar = path.with_suffix(".json")
    if sidecar.is_file():
        try:
            parts = json.loads(sidecar.read_text("utf-8")).get("parts")
            names = [p["name"] for p in parts]
            if len(names) == count:
                return names
        except (ValueError, TypeError, KeyError, AttributeError):
            pass  # a foreign or damaged sidecar: fall back to the template's order
    names = list(PART_NAMES[:count])
    return names + [f"part{k}" for k in range(len(names), count)]
