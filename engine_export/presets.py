"""Engine presets: how an asset's axes and units are laid out per file format.

glTF is always Y-up, right-handed, in metres (the format says so; every glTF
importer converts to its engine).  The presets therefore change the FBX layout,
where engines read axes and units from GlobalSettings and behave best with their
native ones, and whether a root joint is added so that the mesh is a skinned one.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ExportError


@dataclass(frozen=True)
class Preset:
    name: str
    #: "Y": FBX written Y-up (Maya/Unity layout); "Z": Z-up, -Y front (3ds Max/Unreal/Blender layout).
    fbx_up_axis: str
    #: Centimetres per FBX unit: 100 writes metres, 1 writes centimetres (FBX's UnitScaleFactor).
    fbx_unit_cm: float
    #: Add a single joint named ``root`` (all vertices bound to it) when the asset has no skeleton,
    #: so the importer makes a skeletal mesh -- Unreal imports morph targets only on those.
    add_root_joint: bool

    def fbx_basis(self) -> np.ndarray:
        """(3, 3) matrix taking glTF metres (Y-up) to FBX file coordinates in file units."""
        scale = 100.0 / self.fbx_unit_cm
        if self.fbx_up_axis == "Y":
            return np.eye(3) * scale
        # Rotate +90 degrees about X: glTF +Y (up) -> +Z, glTF +Z (front) -> -Y.
        return np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]]) * scale


PRESETS = {
    # Unity: Y-up like glTF, metres (UnitScaleFactor 100), so "Convert Units" yields scale 1.
    "unity": Preset("unity", fbx_up_axis="Y", fbx_unit_cm=100.0, add_root_joint=False),
    # Unreal: Z-up centimetres (UnitScaleFactor 1), root joint so morphs import on a skeletal mesh;
    # centimetres also keep small morph deltas above Unreal's 0.015-unit import threshold.
    "unreal": Preset("unreal", fbx_up_axis="Z", fbx_unit_cm=1.0, add_root_joint=True),
}


def get_preset(preset) -> Preset:
    """Accept a preset name from :data:`PRESETS` or a :class:`Preset`."""
    if isinstance(preset, Preset):
        return preset
    if preset in PRESETS:
        return PRESETS[preset]
    raise ExportError(f"preset: {preset!r} is not one of {sorted(PRESETS)}")
