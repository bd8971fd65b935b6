"""Bind unskinned meshes to a root joint (used by presets with ``add_root_joint``)."""
from __future__ import annotations

import dataclasses

import numpy as np

from .errors import ExportError
from .model import Asset, Skeleton

ROOT_JOINT_NAME = "root"


def add_root_joint(asset: Asset) -> Asset:
    """Return a copy of ``asset`` in which every unskinned mesh is bound rigidly to joint 0.

    Without a skeleton, a single joint named ``root`` at the origin is created.  Unreal imports
    morph targets only on skeletal meshes, and a skin with one joint at identity changes no
    vertex position.
    """
    skel = asset.skeleton
    if skel is None:
        if any(m.name == ROOT_JOINT_NAME for m in asset.meshes):
            raise ExportError(f"meshes: a mesh is named {ROOT_JOINT_NAME!r}, the name of the root "
                              "joint this preset adds; rename the mesh")
        skel = Skeleton(joint_names=(ROOT_JOINT_NAME,), parents=np.array([-1]),
                        translations=np.zeros((1, 3)), rotations=np.array([[0.0, 0, 0, 1]]))
    meshes = []
    for mesh in asset.meshes:
        if mesh.primitives[0].joints is None:
            prims = []
            for p in mesh.primitives:
                n = len(p.positions)
                weights = np.zeros((n, 4), dtype=np.float32)
                weights[:, 0] = 1
                prims.append(dataclasses.replace(p, joints=np.zeros((n, 4), dtype=np.uint16),
                                                 joint_weights=weights))
            mesh = dataclasses.replace(mesh, primitives=prims)
        meshes.append(mesh)
    return dataclasses.replace(asset, meshes=meshes, skeleton=skel)
