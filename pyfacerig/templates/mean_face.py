"""Where MediaPipe puts the face oval and the brows on real faces, carried onto a head mesh.

Render-and-detect (:mod:`.render_detect`) reads most landmarks well off a plain grey head: the
eyes, nose and lips have edges and shading.  The face oval and the brows have neither there --
no jaw shadow, no hairline, no brow hair -- and MediaPipe guesses: on the MakeHuman head the
subject's left oval points landed beside the ear, 40 mm from the mirror image of the right
ones.  A fit then pulls the wrong skin onto the photo's jaw line and brows.

So those two groups are placed from MediaPipe's own average over real faces instead: its 3-D
face mesh detected on the 100 faces of scikit-image's LFW subset (``skimage.data.lfw_subset``,
shipped inside the scikit-image wheel), aligned by similarity, averaged and made symmetric.
That mean face is aligned to the head on the landmarks render-and-detect found well (all but
the oval and the brows' upper edges), and each of those takes a skin vertex there:

* an oval point the skin vertex nearest its 3-D position: at the jaw and the temples the oval
  is an outline, where the depth matters as much as the position across the face;
* a brow point the front-most skin under it along the view axis: brows lie on the front of the
  face, and MediaPipe's depths on 25-pixel faces are noisy.
"""
from __future__ import annotations

import numpy as np

from .._landmark_mirror import LANDMARK_MIRROR
from ..fit import similarity_procrustes
from ..landmark_quality import FACE_OVAL

N_FACE = 468
#: The brow landmarks placed from the mean face: the upper edge of each brow (where dlib's and
#: the iBUG brow points lie) without its tail.  The lower edge lies on the upper lid's fold on
#: the MakeHuman head and the tail over the temple: anchoring those folded the skin -- vertical
#: creases across every closed lid, a spike at the tail -- so they stay as detected.
BROWS = (293, 334, 296, 336, 63, 105, 66, 107)
#: The LFW subset's first 100 images are faces (the other 100 are not).
LFW_FACES = 100
#: The 25 px crops are enlarged before detection: MediaPipe finds nothing at their own size.
DETECT_SIZE = 256
#: A brow point takes the front-most skin vertex within this distance (metres) across the view axis.
BROW_RADIUS = 0.003


def lfw_mean_face() -> np.ndarray:
    """MediaPipe's mean face over the LFW subset: (468, 3), +Y up, +Z toward the viewer, in
    the first face's pixel scale, and mirror symmetric under ``LANDMARK_MIRROR``."""
    import cv2
    import mediapipe as mp
    from skimage.data import lfw_subset

    faces = []
    face_mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True)
    try:
        for crop in lfw_subset()[:LFW_FACES]:
            grey = cv2.resize(np.rint(crop * 255).astype(np.uint8), (DETECT_SIZE, DETECT_SIZE),
                              interpolation=cv2.INTER_CUBIC)
            result = face_mesh.process(np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2)))
            if result.multi_face_landmarks:
                points = result.multi_face_landmarks[0].landmark
                # image x right, y down, z smaller toward the camera -> +Y up, +Z toward the viewer
                faces.append([[p.x, -p.y, -p.z] for p in points[:N_FACE]])
    finally:
        face_mesh.close()
    if len(faces) < LFW_FACES // 2:
        raise RuntimeError(f"MediaPipe found only {len(faces)} faces in the LFW subset")
    faces = np.asarray(faces, dtype=np.float64) * DETECT_SIZE
    mean = faces[0]
    for _ in range(3):      # generalised Procrustes: align to the mean, average, repeat
        mean = np.mean([similarity_procrustes(f, mean).to_camera(f) for f in faces], axis=0)
    mirrored = mean[np.asarray(LANDMARK_MIRROR)[:N_FACE]] * [-1.0, 1.0, 1.0]
    return 0.5 * (mean + similarity_procrustes(mirrored, mean).to_camera(mirrored))


def place_oval_and_brows(vertices: np.ndarray, landmark_points: np.ndarray, allowed: np.ndarray,
                         mean_face: np.ndarray) -> dict[int, int]:
    """Skin vertices for the face oval and brow landmarks of one side of the face, from the mean face.

    vertices (N, 3) the head's skin (+Y up, facing +Z); landmark_points (468, 3) the landmarks
    render-and-detect found (the mean face is aligned to all but the oval and the brows);
    allowed (N,) bool, the skin a landmark may take (not the mouth interior, say).
    Returns {landmark: vertex} for every oval and brow landmark.
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    placed = sorted(set(FACE_OVAL) | set(BROWS))
    kept = np.setdiff1d(np.arange(N_FACE), placed)
    aligned = similarity_procrustes(mean_face[kept], np.asarray(landmark_points)[kept]).to_camera(mean_face)
    candidates = np.flatnonzero(allowed)
    out = {}
    for k in placed:
        if k in BROWS:
            across = np.linalg.norm(vertices[candidates, :2] - aligned[k, :2], axis=1)
            near = candidates[across < BROW_RADIUS]
            if len(near):
                out[k] = int(near[np.argmax(vertices[near, 2])])
                continue
        out[k] = int(candidates[np.argmin(np.linalg.norm(vertices[candidates] - aligned[k], axis=1))])
    return out
