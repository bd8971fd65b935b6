"""engine_export: write meshes with morph targets, textures, skins and morph-weight clips as
glTF 2.0 (.glb/.gltf) and binary FBX 7.4 that game engines import as they are.

It knows nothing about faces: build an :class:`Asset` and call :func:`write_gltf` or
:func:`write_fbx`.  Every writer validates the whole asset first and raises
:class:`ExportError` (a ``ValueError``) before any byte is written.  See docs/engine_export.md.
"""
from .errors import ExportError
from .model import (AnimationClip, Asset, Material, Mesh, Primitive, Skeleton, Texture,
                    validate_asset)
from .presets import PRESETS, Preset
from .gltf import build_gltf, write_gltf
from .fbx import build_fbx, write_fbx

__all__ = [
    "AnimationClip", "Asset", "ExportError", "Material", "Mesh", "PRESETS", "Preset", "Primitive",
    "Skeleton", "Texture", "build_fbx", "build_gltf", "validate_asset", "write_fbx", "write_gltf",
]
