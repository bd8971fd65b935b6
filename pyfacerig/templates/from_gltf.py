"""A template from any head given as glTF 2.0 with ARKit-named morph targets (a studio's own head).

``tools/make_template.py --gltf HEAD.glb -o OUT.frt`` calls :func:`write_template`.  The head is
read as glTF says a file is laid out (metres, +Y up, the face toward +Z); what becomes what:

* **skin**: the mesh whose morph targets carry the most ARKit names (ties: the most vertices),
  all its primitives merged.  Its vertices split at UV seams are welded back by position (and
  equal morph deltas, so touching lips stay apart) for the fits; the file's own UVs become the
  avatar's texture atlas.
* **eyes, teeth, tongue**: by node or mesh name (``eye``, ``teeth``/``tooth``, ``tongue``; eyelash,
  brow, lid, cornea, tear and occlusion meshes are not eyes).  Left and right eyes, upper and
  lower teeth are told apart by geometry (side of the midplane, connected pieces above or below
  the mouth), so one mesh holding both is fine.  The eyes become our UV-mapped eyeballs fitted
  to the file's eyes (a least-squares sphere each) and follow their morph motion rigidly; teeth
  and tongue are kept as given with their own morph deltas.  Eyes are required (build() paints
  the iris on them); teeth and tongue are optional.  Every other mesh is ignored, with a note.
* **the 52 shapes**: names are matched exactly first, then ignoring case and ``_``/``-``/``.``, with
  a ``_L``/``_R`` suffix read as Left/Right (``EyeBlink_L`` is ``eyeBlinkLeft``).  Missing names ->
  :class:`~pyfacerig.errors.TemplateSourceError` listing them; extra names are ignored with a note.
* **landmarks**: render-and-detect (:mod:`.render_detect`), as for the default template.  A
  first frontal pass (plain skin) finds the lips and the mouth opening; the full eight-view pass
  then renders red lips and keeps landmarks off the mouth interior.
* **regions** from the landmarks: lips, the mouth interior (skin that no outside view of the
  neutral head sees, more than 4 mm from any skin one does, between nose and chin, in front of
  the ears), the face oval, the scalp (a hairline as for the default template; the ears, found
  as the skin beside the ear canal's level, stay skin).
* No identity modifiers: the coarse fit uses its generic shape modes (``fit.shape_basis``).

Nothing is written unless every step succeeds (:func:`.asset.write` is atomic).
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

from ..errors import InvalidInputError, TemplateSourceError
from ..landmarks import ibug68_nearest_landmarks
from . import ARKIT_SHAPE_NAMES, asset, generate, parts, render_detect

#: The most bytes a head file may have (a hostile file must not exhaust memory).
MAX_FILE_BYTES = 512 * 1024 * 1024
#: Extensions a file may *require* that we read correctly (others change what the data means).
READABLE_EXTENSIONS = {"KHR_mesh_quantization", "KHR_materials_unlit", "KHR_materials_emissive_strength",
                       "KHR_materials_ior", "KHR_materials_specular", "KHR_materials_transmission"}
#: Plausible head height (skin's vertical extent) in metres; outside it the units are wrong.
HEAD_HEIGHT_RANGE = (0.12, 1.0)
WELD_QUANTUM = 1e-7          # metres: UV-seam copies of one vertex coincide to this
#: MediaPipe's face oval and lip contours, each an ordered loop.
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152,
             148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
OUTER_LIP = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146)
INNER_LIP = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95)
NOT_EYES = ("lash", "brow", "lid", "cornea", "tear", "occlusion", "shadow", "wet", "highlight", "socket")
OPEN_MOUTH_WEIGHT = 0.45     # jawOpen weight of the open-mouth detection renders (as the default)


@dataclass
class GltfMesh:
    """One mesh instance of the scene in world space (metres): its primitives merged."""

    name: str                      # "node name / mesh name"
    positions: np.ndarray          # (N, 3) float64
    faces: np.ndarray              # (F, 3) int64
    uvs: np.ndarray | None         # (N, 2) or None
    targets: dict                  # raw morph-target name -> (N, 3) float64 world deltas
    target_order: list = field(default_factory=list)


# ----------------------------------------------------------------------------- reading glTF
def _fail(message: str, missing=()) -> TemplateSourceError:
    return TemplateSourceError(message, missing)


def read_document(path: Path) -> tuple[dict, list]:
    """(JSON document, list of buffers' bytes) of a .glb or .gltf (buffers beside it or data: URIs)."""
    from ..animate.avatar_file import read_glb
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise _fail(f"{path}: {size} bytes is more than a head file may have ({MAX_FILE_BYTES})")
        data = path.read_bytes()
    except OSError as exc:
        raise _fail(f"{path}: cannot read ({exc.strerror or exc})") from None
    if data[:4] == b"glTF":
        try:
            document, blob = read_glb(data, str(path))
        except InvalidInputError as exc:
            raise _fail(str(exc)) from None
    else:
        try:
            document = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise _fail(f"{path}: neither a .glb nor glTF JSON") from None
        blob = b""
    if not isinstance(document, dict) or str(document.get("asset", {}).get("version", "")).split(".")[0] != "2":
        raise _fail(f"{path}: not a glTF 2.0 document (asset.version must be 2.x)")
    required = set(document.get("extensionsRequired", [])) - READABLE_EXTENSIONS
    if required:
        raise _fail(f"{path}: requires glTF extensions this reader does not decode: {sorted(required)} "
                    f"(export without mesh compression)")
    buffers = []
    for k, buffer in enumerate(document.get("buffers", [])):
        uri = buffer.get("uri")
        if uri is None:
            content = blob
        elif uri.startswith("data:"):
            try:
                content = base64.b64decode(uri.split(",", 1)[1], validate=True)
            except (IndexError, ValueError):
                raise _fail(f"{path}: buffer {k} has a damaged data: URI") from None
        else:
            if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", uri) or uri.startswith(("/", "\\")):
                raise _fail(f"{path}: buffer {k} points outside the file's folder ({uri!r}); nothing is fetched")
            target = (path.parent / uri.replace("%20", " ")).resolve()
            if path.parent.resolve() not in target.parents:
                raise _fail(f"{path}: buffer {k} points outside the file's folder ({uri!r})")
            try:
                content = target.read_bytes()
            except OSError as exc:
                raise _fail(f"{path}: buffer {k} ({uri}) cannot be read ({exc.strerror or exc})") from None
        if len(content) < buffer.get("byteLength", 0):
            raise _fail(f"{path}: buffer {k} has {len(content)} bytes, it declares {buffer.get('byteLength')}")
        buffers.append(content)
    return document, buffers


def _local_matrix(node: dict) -> np.ndarray:
    if "matrix" in node:
        m = np.asarray(node["matrix"], dtype=np.float64)
        if m.shape != (16,):
            raise ValueError("a node matrix must have 16 numbers")
        return m.reshape(4, 4).T                    # glTF stores column-major
    x, y, z, w = np.asarray(node.get("rotation", (0.0, 0.0, 0.0, 1.0)), dtype=np.float64)
    rotation = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                         [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                         [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
    out = np.eye(4)
    out[:3, :3] = rotation * np.asarray(node.get("scale", (1.0, 1.0, 1.0)), dtype=np.float64)
    out[:3, 3] = node.get("translation", (0.0, 0.0, 0.0))
    return out


def _instances(document: dict) -> list[tuple[int, int, np.ndarray]]:
    """(node index, mesh index, world matrix) of every mesh in the default scene."""
    nodes = document.get("nodes", [])
    scenes = document.get("scenes")
    if scenes:
        roots = list(scenes[document.get("scene", 0)].get("nodes", []))
    else:                                   # no scene: every node no other node parents
        children = {c for node in nodes for c in node.get("children", [])}
        roots = [k for k in range(len(nodes)) if k not in children]
    out, seen = [], set()
    stack = [(r, np.eye(4)) for r in reversed(roots)]
    while stack:
        k, parent = stack.pop()
        if k in seen:
            raise ValueError(f"node {k} is reached twice (a cycle or a shared child)")
        seen.add(k)
        world = parent @ _local_matrix(nodes[k])
        if nodes[k].get("mesh") is not None:
            out.append((k, nodes[k]["mesh"], world))
        stack += [(c, world) for c in reversed(nodes[k].get("children", []))]
    return out


def _target_names(mesh: dict) -> list:
    names = (mesh.get("extras") or {}).get("targetNames")
    if not names and mesh.get("primitives"):
        names = (mesh["primitives"][0].get("extras") or {}).get("targetNames")
    return [str(n) for n in names] if isinstance(names, list) else []


def read_meshes(path: Path) -> list[GltfMesh]:
    """Every mesh instance of the file's scene, in world space (metres), primitives merged."""
    from ..animate.avatar_file import read_accessor
    document, buffers = read_document(path)
    out = []
    try:
        instances = _instances(document)
        for node_index, mesh_index, world in instances:
            mesh = document["meshes"][mesh_index]
            names = _target_names(mesh)
            linear, shift = world[:3, :3], world[:3, 3]
            if not np.isfinite(world).all() or abs(np.linalg.det(linear)) < 1e-18:
                raise ValueError(f"node {node_index}'s transform is singular or not finite")
            positions, faces, uvs, targets, offset = [], [], [], [], 0
            for prim in mesh["primitives"]:
                if prim.get("mode", 4) != 4:
                    raise ValueError(f"mesh {mesh_index}: primitive mode {prim.get('mode')} (only triangles are read)")
                attributes = prim["attributes"]
                p = read_accessor(document, buffers, attributes["POSITION"]).astype(np.float64)
                if p.ndim != 2 or p.shape[1] != 3:
                    raise ValueError(f"mesh {mesh_index}: POSITION is not VEC3")
                if prim.get("indices") is None:
                    idx = np.arange(len(p))
                else:
                    idx = read_accessor(document, buffers, prim["indices"]).astype(np.int64).ravel()
                if len(idx) % 3 or (len(idx) and (idx.min() < 0 or idx.max() >= len(p))):
                    raise ValueError(f"mesh {mesh_index}: indices are not triangles over its {len(p)} vertices")
                uv = None
                if "TEXCOORD_0" in attributes:
                    uv = read_accessor(document, buffers, attributes["TEXCOORD_0"]).astype(np.float64)
                    if uv.shape != (len(p), 2):
                        raise ValueError(f"mesh {mesh_index}: TEXCOORD_0 does not match POSITION")
                prim_targets = prim.get("targets", [])
                if names and len(prim_targets) != len(names):
                    raise ValueError(f"mesh {mesh_index}: {len(prim_targets)} morph targets, {len(names)} names")
                deltas = []
                for t in prim_targets:
                    d = (np.zeros_like(p) if t.get("POSITION") is None
                         else read_accessor(document, buffers, t["POSITION"]).astype(np.float64))
                    if d.shape != p.shape:
                        raise ValueError(f"mesh {mesh_index}: a morph target does not match POSITION")
                    deltas.append(d @ linear.T)
                positions.append(p @ linear.T + shift)
                faces.append(idx.reshape(-1, 3) + offset)
                uvs.append(uv)
                targets.append(deltas)
                offset += len(p)
            if not positions:
                continue
            merged_uv = None if any(u is None for u in uvs) else np.concatenate(uvs)
            target_dict = {}
            if names and all(len(t) == len(names) for t in targets):
                for j, name in enumerate(names):
                    target_dict[name] = np.concatenate([t[j] for t in targets])
            label = f"{document['nodes'][node_index].get('name', '')} / {mesh.get('name', '')}"
            all_positions = np.concatenate(positions)
            if not np.isfinite(all_positions).all() or any(not np.isfinite(d).all() for d in target_dict.values()):
                raise ValueError(f"mesh {label!r} has positions or morph deltas that are not finite")
            out.append(GltfMesh(label, all_positions, np.concatenate(faces), merged_uv, target_dict, names))
    except TemplateSourceError:
        raise
    except InvalidInputError as exc:
        raise _fail(f"{path}: damaged glTF ({exc})") from None
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise _fail(f"{path}: damaged glTF ({type(exc).__name__}: {exc})") from None
    if not out:
        raise _fail(f"{path}: the scene holds no mesh")
    return out


# ----------------------------------------------------------------------------- shape names
def _name_key(name: str) -> str:
    m = re.match(r"^(.*?)[_.\-\s]([LlRr])$", name)
    if m:
        name = m.group(1) + ("Left" if m.group(2) in "Ll" else "Right")
    return re.sub(r"[_.\-\s]", "", name).lower()


_ARKIT_KEYS = {_name_key(n): n for n in ARKIT_SHAPE_NAMES}


def match_shape_names(names) -> tuple[dict, list]:
    """ARKit name -> the file's target name, and the file's names that match none (ignored).

    Exact names win; otherwise a name matches when it equals an ARKit name ignoring case and
    separators, with a trailing ``_L``/``_R`` read as Left/Right.  Two names for one shape are
    refused as ambiguous (TemplateSourceError)."""
    found, extra = {}, []
    for name in names:
        if name in ARKIT_SHAPE_NAMES:
            found.setdefault(name, []).insert(0, name)
    for name in names:
        if name in ARKIT_SHAPE_NAMES:
            continue
        arkit = _ARKIT_KEYS.get(_name_key(name))
        if arkit is None:
            extra.append(name)
        elif arkit not in found:
            found[arkit] = [name]
        else:
            found[arkit].append(name)
    ambiguous = {k: v for k, v in found.items() if len(v) > 1 and v[0] != k}
    if ambiguous:
        raise _fail(f"morph targets name the same ARKit shape twice: {ambiguous}")
    extra += [n for k, v in found.items() for n in v[1:]]       # an exact name beats its variants
    return {k: v[0] for k, v in found.items()}, extra


# ----------------------------------------------------------------------------- classification
@dataclass
class HeadParts:
    skin: GltfMesh
    eyes: list
    teeth: list
    tongue: list
    ignored: list


def classify(meshes: list[GltfMesh]) -> HeadParts:
    def kind(mesh):
        name = mesh.name.lower()
        if "tongue" in name:
            return "tongue"
        if "teeth" in name or "tooth" in name:
            return "teeth"
        if "eye" in name and not any(word in name for word in NOT_EYES):
            return "eye"
        return None
    candidates = [m for m in meshes if kind(m) is None and m.targets]
    if not candidates:
        raise _fail("no mesh has named morph targets (mesh.extras.targetNames): the skin cannot be found",
                    ARKIT_SHAPE_NAMES)
    score = lambda m: (len(match_shape_names(m.target_order)[0]), len(m.positions))   # noqa: E731
    skin = max(candidates, key=score)
    return HeadParts(skin=skin, eyes=[m for m in meshes if kind(m) == "eye"],
                     teeth=[m for m in meshes if kind(m) == "teeth"],
                     tongue=[m for m in meshes if kind(m) == "tongue"],
                     ignored=[m.name for m in meshes if m is not skin and kind(m) is None])


def _deltas(mesh: GltfMesh, mapping_of_mesh: dict | None = None) -> np.ndarray:
    """(52, N, 3) the mesh's deltas in ARKit order; zeros for shapes it does not carry."""
    mapping = mapping_of_mesh if mapping_of_mesh is not None else match_shape_names(mesh.target_order)[0]
    out = np.zeros((len(ARKIT_SHAPE_NAMES), len(mesh.positions), 3))
    for s, name in enumerate(ARKIT_SHAPE_NAMES):
        if name in mapping:
            out[s] = mesh.targets[mapping[name]]
    return out


def _weld(positions: np.ndarray, deltas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weld vertices equal in position and every delta: (first copy of each welded vertex, welded id of each vertex)."""
    key = np.round(np.concatenate([positions[:, None, :], np.moveaxis(deltas, 0, 1)], axis=1)
                   .reshape(len(positions), -1) / WELD_QUANTUM).astype(np.int64)
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first)                    # welded vertices in the file's order
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return first[order], rank[inverse.ravel()]


def _components(faces: np.ndarray, count: int) -> np.ndarray:
    from scipy.sparse.csgraph import connected_components
    rows = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2]])
    cols = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0]])
    graph = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(count, count))
    return connected_components(graph, directed=False)[1]


# ----------------------------------------------------------------------------- regions
def _inside(points2d: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """(N,) bool: points inside a closed polygon (K, 2), by the even-odd rule."""
    x, y = points2d[:, :1], points2d[:, 1:2]
    a, b = polygon, np.roll(polygon, -1, axis=0)
    crosses = (a[:, 1] > y) != (b[:, 1] > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = a[:, 0] + (y - a[:, 1]) * (b[:, 0] - a[:, 0]) / (b[:, 1] - a[:, 1])
    return (np.count_nonzero(crosses & (x < x_cross), axis=1) % 2) == 1


def _regions(vertices, faces, open_vertices, points, open_points, interior) -> dict:
    """face, lips, mouth_interior and ears masks (N,) from the landmarks (neutral and open mouth)
    and the hidden interior (:func:`_interior`)."""
    n = len(vertices)
    oval = points[list(FACE_OVAL)]
    face = _inside(vertices[:, :2], oval[:, :2]) & (vertices[:, 2] > oval[:, 2].min() - 0.005)
    inner = open_points[list(INNER_LIP)]
    outer = open_points[list(OUTER_LIP)]
    lip_front = inner[:, 2].mean()
    in_outer = _inside(open_vertices[:, :2], outer[:, :2])
    in_inner = _inside(open_vertices[:, :2], inner[:, :2])
    front_facing = open_vertices[:, 2] > min(outer[:, 2].min(), lip_front) - 0.006
    # the mouth interior: the hidden pocket behind the mouth (not the eye sockets or nostrils)
    width = np.linalg.norm(points[61] - points[291])
    mouth = interior & (vertices[:, 1] < points[2, 1]) & (vertices[:, 1] > points[152, 1] - 0.01) \
        & (np.abs(vertices[:, 0] - 0.5 * (points[61, 0] + points[291, 0])) < width) \
        & (vertices[:, 2] > max(points[234, 2], points[454, 2]))          # in front of the ears, not the nape
    lips = in_outer & ~in_inner & front_facing & ~mouth
    # the ears: skin beside the ear-canal level, outside the face's side landmarks (234, 454)
    ears = np.zeros(n, bool)
    for k in (234, 454):
        side = points[k]
        lateral = np.sign(side[0]) * vertices[:, 0] > abs(side[0]) - 0.002
        ears |= lateral & (vertices[:, 1] < side[1] + 0.05) & (vertices[:, 1] > side[1] - 0.04) & (vertices[:, 2] > side[2] - 0.045) \
            & (vertices[:, 2] < side[2] + 0.015)
    return {"face": face, "lips": lips, "mouth_interior": mouth, "ears": ears}


def _interior(vertices, faces, eye_meshes, target, depth: float = 0.004) -> np.ndarray:
    """(N,) bool: skin that no outside view of the neutral head sees and that lies more than
    ``depth`` from any skin that one does: the mouth's pocket, the back of the eye sockets, deep
    nostrils.  Landmarks must not land there (the open-mouth renders look into the mouth)."""
    from .. import render
    seen = np.zeros(len(faces), bool)
    skin = render.Mesh(vertices, faces, vertex_colors=np.tile(generate.SKIN_RGB, (len(vertices), 1)))
    for yaw in (-70, -45, -20, 0, 20, 45, 70):
        for pitch in (-30, 0, 30):
            camera = render.Camera(target=np.asarray(target, float), distance=0.7, yaw_deg=yaw, pitch_deg=pitch,
                                   fov_deg=25.0)
            _, mesh_id, triangle, _ = render.render_with_ids([skin] + list(eye_meshes), camera, 384, 384)
            seen[triangle[mesh_id == 0]] = True
    visible = np.zeros(len(vertices), bool)
    visible[faces[seen].ravel()] = True
    if not visible.any():
        return np.zeros(len(vertices), bool)
    distance, _ = cKDTree(vertices[visible]).query(vertices)
    return distance > depth


def _jaw_pivot(vertices: np.ndarray, jaw: np.ndarray) -> np.ndarray:
    """A point on jawOpen's rotation axis (taken along +X): each moved point and its image are
    equidistant from the axis, 2 d.(p - c) + |d|^2 = 0 in the YZ plane, linear in c."""
    size = np.linalg.norm(jaw, axis=1)
    moved = size > 0.5 * size.max()
    d, p = jaw[moved][:, 1:], vertices[moved][:, 1:]
    rhs = np.einsum("ij,ij->i", d, p) + 0.5 * np.einsum("ij,ij->i", d, d)
    c = np.linalg.lstsq(d, rhs, rcond=None)[0]
    return np.array([0.0, c[0], c[1]])


# ----------------------------------------------------------------------------- the template
def _eyes(meshes: list[GltfMesh]):
    """Each eye as (rest points (K, 3), deltas (52, K, 3)), subject's left (+X) first."""
    if not meshes:
        raise _fail("no eyes: the head needs eyeball meshes named with 'eye' (e.g. Eye_L, Eye_R)")
    points = np.concatenate([m.positions for m in meshes])
    deltas = np.concatenate([_deltas(m) for m in meshes], axis=1)
    centre_x = np.median(points[:, 0])
    out = []
    for side in (points[:, 0] > centre_x, points[:, 0] <= centre_x):
        if side.sum() < 8:
            raise _fail("the eye meshes do not hold two eyeballs, one each side of the face")
        out.append((points[side], deltas[:, side]))
    return out


def _part_from_mesh(mesh: GltfMesh, origin: np.ndarray, keep: np.ndarray | None = None):
    vertices, deltas, faces, uvs = mesh.positions - origin, _deltas(mesh), mesh.faces, mesh.uvs
    if keep is not None:
        lookup = np.full(len(vertices), -1, np.int64)
        lookup[keep] = np.arange(len(keep))
        faces = lookup[faces[np.isin(faces, keep).all(axis=1)]]
        vertices, deltas = vertices[keep], deltas[:, keep]
        uvs = None if uvs is None else uvs[keep]
    if uvs is None:
        uvs = generate._planar_uvs(vertices)
    return (vertices, faces, np.clip(uvs, 0.0, 1.0)), deltas


def _teeth(meshes: list[GltfMesh], origin: np.ndarray, mouth_y: float) -> dict:
    """teeth_upper / teeth_lower from the teeth meshes: by name if named so, else by connected pieces."""
    out = {}
    for mesh in meshes:
        name = mesh.name.lower()
        if re.search(r"upper|top|(^|[^a-z])up", name):
            out.setdefault("teeth_upper", []).append(_part_from_mesh(mesh, origin))
            continue
        if re.search(r"lower|bottom|(^|[^a-z])low", name):
            out.setdefault("teeth_lower", []).append(_part_from_mesh(mesh, origin))
            continue
        labels = _components(mesh.faces, len(mesh.positions))
        for label in np.unique(labels):
            keep = np.flatnonzero(labels == label)
            y = mesh.positions[keep, 1].mean() - origin[1]
            out.setdefault("teeth_upper" if y > mouth_y else "teeth_lower", []).append(_part_from_mesh(mesh, origin, keep))
    return {k: _merge(v) for k, v in out.items()}


def _merge(pieces):
    verts, faces, uvs, deltas, offset = [], [], [], [], 0
    for (v, f, u), d in pieces:
        verts.append(v)
        faces.append(f + offset)
        uvs.append(u)
        deltas.append(d)
        offset += len(v)
    return (np.concatenate(verts), np.concatenate(faces), np.concatenate(uvs)), np.concatenate(deltas, axis=1)


def make_template(path) -> tuple[dict, dict]:
    """(header, arrays) for :func:`.asset.write` of the head in the glTF file ``path``."""
    path = Path(path)
    meshes = read_meshes(path)
    head = classify(meshes)
    skin_mesh = head.skin
    mapping, extra = match_shape_names(skin_mesh.target_order)
    missing = [n for n in ARKIT_SHAPE_NAMES if n not in mapping]
    if missing:
        raise _fail(f"{path}: the skin mesh {skin_mesh.name!r} lacks {len(missing)} of the 52 ARKit shapes: "
                    f"{', '.join(missing)}", missing)
    notes = []
    if extra:
        notes.append(f"ignored {len(extra)} morph targets that are not ARKit shapes: {', '.join(extra[:20])}"
                     + (" ..." if len(extra) > 20 else ""))
    renamed = {k: v for k, v in mapping.items() if k != v}
    if renamed:
        notes.append(f"read {len(renamed)} morph targets under Apple's spelling (e.g. {next(iter(renamed.values()))!r})")
    if head.ignored:
        notes.append(f"ignored meshes that are neither skin, eyes, teeth nor tongue: {', '.join(head.ignored)}")
    if skin_mesh.uvs is None:
        raise _fail(f"{path}: the skin mesh {skin_mesh.name!r} has no TEXCOORD_0; the avatar's texture needs UVs")
    if (skin_mesh.uvs < -1e-3).any() or (skin_mesh.uvs > 1 + 1e-3).any():
        raise _fail(f"{path}: the skin's UVs leave the unit square (tiles or UDIMs); one 0..1 atlas is needed")
    skin_deltas_split = _deltas(skin_mesh, mapping)

    # Weld the UV-seam copies: geometry (fits, transfer) on welded vertices, files on the file's own.
    first, welded_of = _weld(skin_mesh.positions, skin_deltas_split)
    faces = welded_of[skin_mesh.faces]
    a, b, c = (skin_mesh.positions[skin_mesh.faces[:, k]] for k in range(3))
    area = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
    good = (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2]) & (area > 1e-12)
    if (~good).any():
        notes.append(f"dropped {int((~good).sum())} degenerate skin triangles")
    if good.sum() < 100:
        raise _fail(f"{path}: the skin mesh {skin_mesh.name!r} has {int(good.sum())} usable triangles; not a head")
    faces, uv_faces = faces[good], skin_mesh.faces[good]
    used_uv = np.unique(uv_faces)                 # drop vertices no triangle uses
    uv_lookup = np.full(len(skin_mesh.positions), -1, np.int64)
    uv_lookup[used_uv] = np.arange(len(used_uv))
    uv_faces, uv_welded = uv_lookup[uv_faces], welded_of[used_uv]
    used = np.unique(faces)
    lookup = np.full(len(first), -1, np.int64)
    lookup[used] = np.arange(len(used))
    faces, uv_welded, first = lookup[faces], lookup[uv_welded], first[used]
    world = skin_mesh.positions[first]
    skin_deltas = skin_deltas_split[:, first]
    height = float(np.ptp(world[:, 1]))
    if not HEAD_HEIGHT_RANGE[0] <= height <= HEAD_HEIGHT_RANGE[1]:
        raise _fail(f"{path}: the skin is {height:.4g} m tall; a head is {HEAD_HEIGHT_RANGE[0]}-{HEAD_HEIGHT_RANGE[1]} m "
                    f"(glTF is in metres: scale the export or its root node)")

    # Eyes: our eyeballs on spheres fitted to the file's eyes; the frame's origin between them.
    eyes = _eyes(head.eyes)
    fits = [generate.fit_sphere(points) for points, _ in eyes]
    origin = 0.5 * (fits[0][0] + fits[1][0])
    eye_radius = 0.5 * (fits[0][1] + fits[1][1])
    if not 0.005 < eye_radius < 0.03:
        raise _fail(f"{path}: the eye meshes fit spheres of radius {eye_radius * 1000:.1f} mm; not eyeballs")
    centres = np.stack([fits[0][0], fits[1][0]]) - origin
    vertices = world - origin
    part_meshes, part_deltas = {}, {}
    for k, name in enumerate(("eye_left", "eye_right")):
        v, f, uv = parts.eyeball(centres[k], eye_radius)
        part_meshes[name] = (v, f, uv)
        part_deltas[name] = generate.follow_rigidly(eyes[k][0] - origin, eyes[k][1], v)

    jaw = ARKIT_SHAPE_NAMES.index("jawOpen")
    open_mouth = vertices + OPEN_MOUTH_WEIGHT * skin_deltas[jaw]
    target = np.array([0.0, -0.035, vertices[:, 2].max() - 0.02])
    eye_meshes = generate.eye_render_meshes(part_meshes, eye_radius)
    interior = _interior(vertices, faces, eye_meshes, target)
    try:
        # pass 1, plain skin, front only: where the lips and the mouth opening are
        plain = np.tile(generate.SKIN_RGB, (len(vertices), 1))
        rough = render_detect.find_landmarks(vertices, faces, plain, open_mouth, eye_meshes, target,
                                             views=(render_detect.View(0), render_detect.View(0, open_mouth=True)),
                                             excluded_faces=interior[faces].all(axis=1))
        regions = _regions(vertices, faces, open_mouth, rough.points(vertices, faces), rough.points(open_mouth, faces),
                           interior)
        # pass 2: red lips, eight views, no landmark on the mouth interior
        lips = regions["lips"].astype(float)
        colours = generate.SKIN_RGB * (1.0 - lips[:, None]) + generate.LIP_RGB * lips[:, None]
        found = render_detect.find_landmarks(vertices, faces, colours, open_mouth, eye_meshes, target,
                                             excluded_faces=interior[faces].all(axis=1))
    except RuntimeError as exc:
        raise _fail(f"{path}: {exc}; the head must face +Z with +Y up (glTF's convention) and show a face") from None
    points = found.points(vertices, faces)
    regions = _regions(vertices, faces, open_mouth, points, found.points(open_mouth, faces), interior)
    landmark_ids = render_detect.landmark_vertex_ids(vertices, faces, found, [open_mouth], candidates=24)

    mouth_y = float(points[13, 1] + points[14, 1]) / 2.0
    part_meshes_teeth = _teeth(head.teeth, origin, mouth_y)
    for name, (mesh, deltas) in part_meshes_teeth.items():
        part_meshes[name], part_deltas[name] = mesh, deltas
    if head.tongue:
        part_meshes["tongue"], part_deltas["tongue"] = _merge([_part_from_mesh(m, origin) for m in head.tongue])
    for name in ("teeth_upper", "teeth_lower", "tongue"):
        if name not in part_meshes:
            notes.append(f"no {name.replace('_', ' ')} in the file: the avatar has none")

    mirror_distance, mirror = cKDTree(vertices).query(vertices * [-1.0, 1.0, 1.0])
    order = [n for n in ("skin", "eye_left", "eye_right", "teeth_upper", "teeth_lower", "tongue")
             if n == "skin" or n in part_meshes]
    all_parts = {"skin": (vertices, faces, None)} | part_meshes
    all_deltas = {"skin": skin_deltas} | part_deltas
    arrays, part_info = {}, {}
    for name in order:
        verts, part_faces, uvs = all_parts[name]
        offsets, ids, values = asset.sparse_deltas(all_deltas[name])
        arrays[f"{name}/vertices"] = generate.quantize(verts).astype(np.float32)
        arrays[f"{name}/faces"] = np.asarray(part_faces, np.int32)
        if uvs is not None:
            arrays[f"{name}/uvs"] = np.clip(uvs, 0.0, 1.0).astype(np.float32)
        arrays[f"{name}/delta_offsets"], arrays[f"{name}/delta_ids"], arrays[f"{name}/delta_values"] = offsets, ids, values
        part_info[name] = {"material": generate.MATERIALS[name], "vertex_count": len(verts), "face_count": len(part_faces)}
    arrays["skin/uvs"] = np.clip(skin_mesh.uvs[used_uv], 0.0, 1.0).astype(np.float32)
    arrays["skin/uv_welded_ids"] = uv_welded.astype(np.int32)
    arrays["skin/uv_faces"] = uv_faces.astype(np.int32)
    charts = _components(uv_faces, len(used_uv))[uv_faces[:, 0]]
    arrays["skin/uv_charts"] = np.unique(charts, return_inverse=True)[1].astype(np.int32)
    arrays["skin_mirror"] = mirror.astype(np.int32)
    arrays["landmark_vertex_ids"] = landmark_ids.astype(np.int32)
    arrays["landmark_triangles"] = found.triangles.astype(np.int32)
    arrays["landmark_barycentrics"] = found.barycentrics.astype(np.float32)
    for name in ("face", "lips", "mouth_interior"):
        arrays[f"regions/{name}"] = np.packbits(regions[name].astype(np.uint8))
    arrays["regions/scalp"] = np.packbits(generate.scalp_region(vertices, points, regions["ears"].astype(float))
                                          .astype(np.uint8))
    landmarks = np.vstack([points, generate.iris_landmarks(centres, eye_radius)]).astype(np.float32).astype(np.float64)
    arrays["landmarks"] = landmarks.astype(np.float32)
    arrays["eye_centers"] = centres.astype(np.float32)
    arrays["jaw_pivot"] = _jaw_pivot(vertices, skin_deltas[jaw]).astype(np.float32)
    frontal = np.column_stack([landmarks[:468, 0], -landmarks[:468, 1]])
    arrays["landmarks68_vertex_ids"] = landmark_ids[ibug68_nearest_landmarks(frontal)].astype(np.int32)
    notes.append(f"skin: {len(vertices)} vertices ({len(used_uv)} with UV seams split), {len(faces)} triangles; "
                 f"mirror map worst {mirror_distance.max() * 1000:.2f} mm")
    header = {
        "shape_names": list(ARKIT_SHAPE_NAMES),
        "parts": part_info,
        "part_order": order,
        **generate.eye_and_measure_header(landmarks, eye_radius),
        "identity_modifiers": [],
        "neck_cap_first": None,
        "atlas_charts": [f"chart{k}" for k in range(int(arrays["skin/uv_charts"].max()) + 1)],
        "landmark_views": found.views.astype(int).tolist(),
        "notes": notes,
        "sources": {"mesh": f"{path.name} (glTF, sha256 {hashlib.sha256(path.read_bytes()).hexdigest()})",
                    "expressions": f"{path.name}'s ARKit-named morph targets"},
    }
    return header, arrays


def write_template(path, out) -> list[str]:
    """Make the template of the glTF head ``path`` and write it to ``out`` (atomically); returns the notes."""
    header, arrays = make_template(path)
    asset.write(out, header, arrays)
    return header["notes"]
