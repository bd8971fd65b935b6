"""Read an avatar ``.glb`` written by :func:`pyfacerig.build` back into arrays.

The glb keeps every part's vertex order (glTF never welds or reorders), so the skin
primitive's morph targets are the avatar's own shape deltas at the template's vertex ids.
Parts are named by the JSON sidecar next to the glb (``"parts"``: the primitives in order);
without a sidecar the primitives get the template's part names in order (skin first).
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ExportError, InvalidInputError
from ..templates import PART_NAMES

__all__ = ["AvatarFile", "AvatarPrimitive", "load_avatar_glb", "read_glb", "pack_glb", "read_accessor"]

_GLB_MAGIC, _JSON_CHUNK, _BIN_CHUNK = 0x46546C67, 0x4E4F534A, 0x004E4942


def read_glb(data: bytes, where: str = "glb") -> tuple[dict, bytes]:
    """(JSON document as a dict, binary chunk) of a GLB file's bytes.

    The JSON is parsed with the standard library: pygltflib's dataclass decoding takes
    seconds on an avatar's ~2,000 accessors, the json module milliseconds.
    """
    if len(data) < 20:
        raise InvalidInputError(f"{where}: not a readable .glb (only {len(data)} bytes)")
    magic, version, length = struct.unpack_from("<III", data, 0)
    if magic != _GLB_MAGIC or version != 2 or length > len(data):
        raise InvalidInputError(f"{where}: not a readable .glb (bad header)")
    offset, document, blob = 12, None, b""
    while offset + 8 <= length:
        chunk_length, chunk_type = struct.unpack_from("<II", data, offset)
        chunk = data[offset + 8:offset + 8 + chunk_length]
        if len(chunk) != chunk_length:
            raise InvalidInputError(f"{where}: not a readable .glb (truncated chunk)")
        if chunk_type == _JSON_CHUNK and document is None:
            try:
                document = json.loads(chunk.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                raise InvalidInputError(f"{where}: not a readable .glb (bad JSON chunk)") from None
        elif chunk_type == _BIN_CHUNK and not blob:
            blob = bytes(chunk)
        offset += 8 + chunk_length
    if not isinstance(document, dict):
        raise InvalidInputError(f"{where}: not a readable .glb (no JSON chunk)")
    return document, blob


def pack_glb(document: dict, blob: bytes) -> bytes:
    """GLB bytes of a JSON document and binary chunk (JSON padded with spaces, binary with zeros)."""
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 4)
    blob = bytes(blob) + b"\0" * (-len(blob) % 4)
    length = 12 + 8 + len(text) + (8 + len(blob) if blob else 0)
    out = [struct.pack("<III", _GLB_MAGIC, 2, length), struct.pack("<II", len(text), _JSON_CHUNK), text]
    if blob:
        out += [struct.pack("<II", len(blob), _BIN_CHUNK), blob]
    return b"".join(out)

_COMPONENTS = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}
_WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}


@dataclass
class AvatarPrimitive:
    """One primitive (avatar part) of the face mesh.

    positions (N, 3), normals (N, 3) float32; indices (F, 3) int64; uvs (N, 2) or None;
    target_positions / target_normals (M, N, 3) float32 deltas (normals None when absent);
    material: index into the file's materials or None;
    joints (N, 4) int64 indices into the skin's joints and joint_weights (N, 4) float32 (JOINTS_0 /
    WEIGHTS_0), or None when the part is not skinned.
    """

    name: str
    positions: np.ndarray
    normals: np.ndarray
    indices: np.ndarray
    uvs: np.ndarray | None
    target_positions: np.ndarray
    target_normals: np.ndarray | None
    material: int | None
    joints: np.ndarray | None = None
    joint_weights: np.ndarray | None = None


@dataclass
class AvatarFile:
    """An avatar glb in memory: its JSON document (dict), binary chunk and the face mesh.

    mesh_index / node_index: the mesh with the ARKit morph targets and the node that shows it.
    target_names: that mesh's morph-target names (file order).
    primitives: its parts, in file order (``part("skin")`` finds one by name).
    joints: joint-like node names -> node index (every named node without a mesh).
    skin_joints: the node indices of the face mesh's skin joints, in the skin's order (the
        indices the parts' ``joints`` refer to); empty when the mesh is not skinned.
    """

    path: Path
    document: dict
    blob: bytes
    mesh_index: int
    node_index: int
    target_names: tuple
    primitives: list = field(default_factory=list)
    joints: dict = field(default_factory=dict)
    skin_joints: list = field(default_factory=list)

    def part(self, name: str) -> AvatarPrimitive:
        for primitive in self.primitives:
            if primitive.name == name:
                return primitive
        raise InvalidInputError(f"{self.path.name}: the face mesh has no part named {name!r} "
                                f"(parts: {[p.name for p in self.primitives]})")

    def accessor(self, index: int) -> np.ndarray:
        return read_accessor(self.document, self.blob, index)

    def image_bytes(self, image_index: int) -> tuple[bytes, str]:
        image = self.document["images"][image_index]
        view = self.document["bufferViews"][image["bufferView"]]
        start = view.get("byteOffset", 0)
        return bytes(self.blob[start:start + view["byteLength"]]), image.get("mimeType", "image/png")


#: The most elements one accessor may declare: a hostile count must not allocate gigabytes.
MAX_ACCESSOR_COUNT = 50_000_000
_NORMALIZED_SCALE = {np.int8: 127.0, np.uint8: 255.0, np.int16: 32767.0, np.uint16: 65535.0}


def read_accessor(document: dict, blob, index: int) -> np.ndarray:
    """The accessor's data as (count, width) (or (count,) for SCALAR), sparse entries applied.

    blob: the binary chunk (bytes), or a list of every buffer's bytes (a .gltf with several
    buffers; each bufferView names its own).  Normalised integer accessors come back as floats
    (KHR_mesh_quantization).  Raises InvalidInputError when the accessor points outside its data.
    """
    acc = document["accessors"][index]
    if acc.get("componentType") not in _COMPONENTS or acc.get("type") not in _WIDTH:
        raise InvalidInputError(f"accessor {index}: unknown componentType/type {acc.get('componentType')}/{acc.get('type')}")
    dtype = np.dtype(_COMPONENTS[acc["componentType"]])
    width = _WIDTH[acc["type"]]
    count = acc["count"]
    if not isinstance(count, int) or not 0 <= count <= MAX_ACCESSOR_COUNT:
        raise InvalidInputError(f"accessor {index}: count {count!r} is not a sane element count")
    if acc.get("bufferView") is None:
        data = np.zeros((count, width), dtype)
    else:
        data = _view_array(document, blob, acc["bufferView"], acc.get("byteOffset", 0), dtype, count, width)
    sparse = acc.get("sparse")
    if sparse and sparse.get("count"):
        indices, values = sparse["indices"], sparse["values"]
        n_sparse = sparse["count"]
        if not isinstance(n_sparse, int) or not 0 < n_sparse <= count:
            raise InvalidInputError(f"accessor {index}: sparse count {n_sparse!r} exceeds its count {count}")
        ids = _view_array(document, blob, indices["bufferView"], indices.get("byteOffset", 0),
                          np.dtype(_COMPONENTS[indices["componentType"]]), n_sparse, 1)[:, 0]
        if ids.size and int(ids.max()) >= count:
            raise InvalidInputError(f"accessor {index}: sparse index {int(ids.max())} is past its count {count}")
        data = data.copy()
        data[ids.astype(np.int64)] = _view_array(document, blob, values["bufferView"], values.get("byteOffset", 0),
                                                 dtype, n_sparse, width)
    if acc.get("normalized") and dtype.type in _NORMALIZED_SCALE:
        data = np.maximum(data.astype(np.float32) / _NORMALIZED_SCALE[dtype.type], -1.0)
    return data[:, 0] if width == 1 else data


def _view_array(document, blob, view_index, offset, dtype, count, width) -> np.ndarray:
    view = document["bufferViews"][view_index]
    buffer = blob[view.get("buffer", 0)] if isinstance(blob, (list, tuple)) else blob
    start = view.get("byteOffset", 0) + offset
    stride = view.get("byteStride") or dtype.itemsize * width
    end = start + (stride * (count - 1) + dtype.itemsize * width if count else 0)
    if start < 0 or offset < 0 or end > view.get("byteOffset", 0) + view["byteLength"] or end > len(buffer):
        raise InvalidInputError(f"bufferView {view_index}: {count} elements from byte {start} run past its data")
    if stride == dtype.itemsize * width:
        return np.frombuffer(buffer, dtype=dtype, count=count * width, offset=start).reshape(count, width)
    rows = np.lib.stride_tricks.as_strided(np.frombuffer(buffer, dtype=np.uint8, offset=start),
                                           shape=(count, dtype.itemsize * width), strides=(stride, 1))
    return np.ascontiguousarray(rows).view(dtype).reshape(count, width)


def load_avatar_glb(path) -> AvatarFile:
    """Read a pyfacerig avatar ``.glb``; raises InvalidInputError when it is not one."""
    path = Path(path)
    if path.suffix.lower() != ".glb":
        raise InvalidInputError(f"{str(path)!r}: the avatar must be a .glb written by pyfacerig build")
    if not path.is_file():
        raise InvalidInputError(f"{str(path)!r}: no such avatar file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"{str(path)!r}: cannot read ({exc.strerror or exc})") from None
    document, blob = read_glb(data, repr(str(path)))
    try:
        return _avatar_from_document(path, document, blob)
    except InvalidInputError:
        raise
    except (IndexError, KeyError, ValueError, TypeError, AttributeError) as exc:
        raise InvalidInputError(f"{str(path)!r}: damaged .glb ({type(exc).__name__}: {exc})") from None


def _avatar_from_document(path: Path, document: dict, blob: bytes) -> AvatarFile:
    meshes = document.get("meshes", [])
    mesh_index = None
    for k, mesh in enumerate(meshes):
        names = (mesh.get("extras") or {}).get("targetNames")
        if names and all(p.get("targets") for p in mesh["primitives"]):
            mesh_index = k
            break
    if mesh_index is None:
        raise InvalidInputError(f"{str(path)!r}: no mesh with named morph targets (extras.targetNames)")
    nodes = document.get("nodes", [])
    placed = [k for k, node in enumerate(nodes) if node.get("mesh") == mesh_index]
    if not placed:
        raise InvalidInputError(f"{str(path)!r}: the face mesh is not placed in the scene by any node")
    mesh = meshes[mesh_index]
    target_names = tuple(mesh["extras"]["targetNames"])
    avatar = AvatarFile(path=path, document=document, blob=blob, mesh_index=mesh_index, node_index=placed[0],
                        target_names=target_names)
    for name, prim in zip(_part_names(path, len(mesh["primitives"])), mesh["primitives"]):
        attributes = prim["attributes"]
        positions = avatar.accessor(attributes["POSITION"]).astype(np.float32)
        normals = avatar.accessor(attributes["NORMAL"]).astype(np.float32)
        uvs = avatar.accessor(attributes["TEXCOORD_0"]).astype(np.float32) if "TEXCOORD_0" in attributes else None
        indices = avatar.accessor(prim["indices"]).astype(np.int64).reshape(-1, 3)
        if len(prim["targets"]) != len(target_names):
            raise InvalidInputError(f"{str(path)!r}: part {name!r} has {len(prim['targets'])} targets, "
                                    f"the mesh names {len(target_names)}")
        deltas = np.stack([avatar.accessor(t["POSITION"]) for t in prim["targets"]]).astype(np.float32)
        normal_deltas = None
        if all("NORMAL" in t for t in prim["targets"]):
            normal_deltas = np.stack([avatar.accessor(t["NORMAL"]) for t in prim["targets"]]).astype(np.float32)
        joints = weights = None
        if nodes[placed[0]].get("skin") is not None and "JOINTS_0" in attributes and "WEIGHTS_0" in attributes:
            joints = avatar.accessor(attributes["JOINTS_0"]).astype(np.int64)
            weights = avatar.accessor(attributes["WEIGHTS_0"]).astype(np.float32)
        avatar.primitives.append(AvatarPrimitive(name, positions, normals, indices, uvs, deltas, normal_deltas,
                                                 prim.get("material"), joints, weights))
    avatar.joints = {node["name"]: k for k, node in enumerate(nodes) if node.get("mesh") is None and node.get("name")}
    skin = nodes[placed[0]].get("skin")
    if skin is not None:
        avatar.skin_joints = [int(j) for j in document["skins"][skin]["joints"]]
        for primitive in avatar.primitives:
            if primitive.joints is not None and primitive.joints.size and \
                    not 0 <= primitive.joints.min() <= primitive.joints.max() < len(avatar.skin_joints):
                raise InvalidInputError(f"{str(path)!r}: part {primitive.name!r} names a joint outside its skin")
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
