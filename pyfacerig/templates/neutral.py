"""The neutral face shape, averaged from MediaPipe landmarks of real portraits.

Sources (all ship inside installed packages, nothing is downloaded):
  * scikit-image ``skimage.data.astronaut()`` -- Eileen Collins, NASA portrait (512x512);
  * matplotlib ``mpl-data/sample_data/grace_hopper.jpg`` -- Grace Hopper (512x600);
  * scikit-image ``skimage.data.lfw_subset()`` -- the first 100 images are 25x25 grey crops of
    faces from Labeled Faces in the Wild.  MediaPipe finds faces in them after upscaling, but
    at that resolution its landmarks lean on the model's shape prior, so the whole subset
    counts as ONE source (its mean) next to the two portraits.
No other face photographs ship in the environment (skimage's ``camera`` is a profile too
small for the detector; ``chelsea`` is a cat).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .topology import mirror_map

FLIP_TO_MODEL = np.array([1.0, -1.0, -1.0])   # image x right, y down, z away -> +X, +Y up, +Z toward viewer
IRIS_RIGHT_CENTRE, IRIS_LEFT_CENTRE = 468, 473   # subject's right / left iris centres
INTEROCULAR_METRES = 0.063                       # adult pupil distance, mean ~63 mm
LFW_FACE_COUNT = 100
LFW_UPSCALE = 8


def source_images() -> dict[str, np.ndarray]:
    """The portraits, as name -> list of (H, W, 3) uint8 RGB images."""
    import matplotlib
    from PIL import Image
    from skimage import data
    hopper = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    with Image.open(hopper) as im:
        hopper_rgb = np.asarray(im.convert("RGB"))
    lfw = data.lfw_subset()[:LFW_FACE_COUNT]
    lfw_rgb = []
    for face in lfw:
        grey = Image.fromarray(np.round(face * 255).astype(np.uint8))
        big = np.asarray(grey.resize((25 * LFW_UPSCALE,) * 2, Image.BICUBIC))
        lfw_rgb.append(np.repeat(big[:, :, None], 3, axis=2))
    return {"astronaut": [np.ascontiguousarray(data.astronaut())],
            "grace_hopper": [np.ascontiguousarray(hopper_rgb)],
            "lfw_subset": lfw_rgb}


def detect(image_rgb: np.ndarray, face_mesh=None) -> np.ndarray | None:
    """(478, 3) landmarks in model axes (pixel units, +Y up, +Z toward the camera), or None."""
    import mediapipe as mp
    own = face_mesh is None
    if own:
        face_mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1,
                                                    refine_landmarks=True)
    try:
        result = face_mesh.process(np.ascontiguousarray(image_rgb))
    finally:
        if own:
            face_mesh.close()
    if not result.multi_face_landmarks:
        return None
    h, w = image_rgb.shape[:2]
    pts = np.array([[p.x * w, p.y * h, p.z * w] for p in result.multi_face_landmarks[0].landmark])
    return pts * FLIP_TO_MODEL


def similarity_align(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Source points moved onto target by the least-squares similarity (Umeyama)."""
    mu_s, mu_t = source.mean(0), target.mean(0)
    s, t = source - mu_s, target - mu_t
    u, sig, vt = np.linalg.svd(t.T @ s)
    d = np.sign(np.linalg.det(u @ vt))
    fix = np.diag([1.0, 1.0, d])
    rot = u @ fix @ vt
    scale = np.trace(np.diag(sig) @ fix) / np.sum(s ** 2)
    return (scale * (rot @ s.T)).T + mu_t


def generalized_procrustes(shapes: list[np.ndarray], weights=None, iterations: int = 10) -> np.ndarray:
    """Weighted mean shape after aligning every shape to it by similarity transforms."""
    weights = np.ones(len(shapes)) if weights is None else np.asarray(weights, float)
    weights = weights / weights.sum()
    mean = shapes[0] - shapes[0].mean(0)
    for _ in range(iterations):
        aligned = [similarity_align(s, mean) for s in shapes]
        new = np.tensordot(weights, np.stack(aligned), axes=1)
        new -= new.mean(0)
        new /= np.sqrt(np.sum(new ** 2))
        mean = new
    return mean


def frontal_frame(points: np.ndarray) -> np.ndarray:
    """Rotate so the eyes lie along +X, the forehead-chin line along +Y, centred on the eyes."""
    x_axis = points[IRIS_LEFT_CENTRE] - points[IRIS_RIGHT_CENTRE]
    x_axis /= np.linalg.norm(x_axis)
    up = points[10] - points[152]                      # forehead top, chin
    z_axis = np.cross(x_axis, up)
    z_axis /= np.linalg.norm(z_axis)
    y_axis = np.cross(z_axis, x_axis)
    rot = np.stack([x_axis, y_axis, z_axis])
    centre = 0.5 * (points[IRIS_LEFT_CENTRE] + points[IRIS_RIGHT_CENTRE])
    return (points - centre) @ rot.T


def symmetrize(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exactly mirror-symmetric shape and the left/right landmark permutation.

    The permutation comes from matching the mirrored shape to itself; it must be an
    involution (a landmark's mirror's mirror is itself).  Before averaging a shape
    with its mirror image, the residual tilt between them is halved so the
    symmetry plane is x = 0.
    """
    from scipy.spatial.transform import Rotation
    perm = mirror_map(points)
    if not np.array_equal(perm[perm], np.arange(len(points))):
        raise RuntimeError("landmark mirror map is not an involution")
    for _ in range(3):
        mirrored = (points * [-1.0, 1.0, 1.0])[perm]
        centre = 0.5 * (points.mean(0) + mirrored.mean(0))
        u, _, vt = np.linalg.svd((mirrored - mirrored.mean(0)).T @ (points - points.mean(0)))
        d = np.sign(np.linalg.det(u @ vt))
        rot = u @ np.diag([1.0, 1.0, d]) @ vt           # maps points onto mirrored
        half = Rotation.from_matrix(rot).as_rotvec() * 0.5
        points = Rotation.from_rotvec(half).apply(points - centre)
        points[:, 0] -= 0.5 * (points[:, 0].mean() - (points * [-1, 1, 1])[perm][:, 0].mean())
    mirrored = (points * [-1.0, 1.0, 1.0])[perm]
    sym = 0.5 * (points + mirrored)
    on_plane = perm == np.arange(len(points))
    sym[on_plane, 0] = 0.0
    return sym, perm


# Inner lip contour pairs (upper, lower) from FACEMESH_LIPS, corner to corner.
INNER_UPPER_LIP = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
INNER_LOWER_LIP = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
MOUTH_CORNERS = (61, 291)                 # subject's right, left
NEUTRAL_LIP_SEAM = 0.0                   # closed lips touch: the inner-lip pairs coincide


def mouth_measures(points: np.ndarray) -> tuple[float, float]:
    """(lip gap, corner lift) of a frontal-frame shape, both as fractions of mouth width."""
    width = np.linalg.norm(points[MOUTH_CORNERS[1]] - points[MOUTH_CORNERS[0]])
    gap = points[13, 1] - points[14, 1]
    lift = points[list(MOUTH_CORNERS), 1].mean() - 0.5 * (points[13, 1] + points[14, 1])
    return gap / width, lift / width


def is_neutral_mouth(points: np.ndarray) -> bool:
    """Closed lips (gap < 5% of mouth width) and level corners (|lift| < 3%)."""
    gap, lift = mouth_measures(frontal_frame(points))
    return gap < 0.05 and abs(lift) < 0.03


def close_lips(points: np.ndarray, seam: float) -> np.ndarray:
    """Bring each inner-lip pair to a ``seam``-wide line (tapering to 0 at the corners)."""
    points = points.copy()
    n = len(INNER_UPPER_LIP)
    for k, (up, lo) in enumerate(zip(INNER_UPPER_LIP, INNER_LOWER_LIP)):
        if up == lo:
            continue
        mid = 0.5 * (points[up] + points[lo])
        half = 0.5 * seam * np.sin(np.pi * k / (n - 1))
        points[up] = mid + [0.0, half, 0.0]
        points[lo] = mid - [0.0, half, 0.0]
    return points


def build_neutral(detections: dict[str, list]) -> dict:
    """Average, symmetrise and scale the detected shapes into the neutral landmark set.

    detections: source name -> list of (478, 3) landmark arrays (None where no face).
    Sources whose mouth is not neutral (open or smiling) are left out of the mouth
    region, with a smooth blend so no crease appears where their weight changes.
    Returns landmarks (478, 3) in metres, the mirror permutation and a per-source report.
    """
    shapes, is_mouth_neutral, report = [], [], {}
    for name in sorted(detections):
        found = [d for d in detections[name] if d is not None]
        if not found:
            continue
        if name == "lfw_subset":
            # one pooled source; keep the faces with a neutral mouth only
            neutral = [d for d in found if is_neutral_mouth(d)]
            pooled = generalized_procrustes(neutral)
            shapes.append(pooled)
            is_mouth_neutral.append(True)
            report[name] = {"detected": len(found), "used": len(neutral)}
        else:
            shapes.append(found[0])
            is_mouth_neutral.append(is_neutral_mouth(found[0]))
            gap, lift = mouth_measures(frontal_frame(found[0]))
            report[name] = {"detected": 1, "mouth_gap_over_width": round(float(gap), 3),
                            "corner_lift_over_width": round(float(lift), 3),
                            "mouth_used": bool(is_mouth_neutral[-1])}
    reference = frontal_frame(generalized_procrustes(shapes))
    aligned = np.stack([frontal_frame(similarity_align(s, reference)) for s in shapes])
    # per-landmark source weights: expressive mouths are faded out around the mouth
    mouth_centre = reference[[13, 14]].mean(0)
    width = np.linalg.norm(reference[MOUTH_CORNERS[1]] - reference[MOUTH_CORNERS[0]])
    dist = np.linalg.norm((reference - mouth_centre)[:, :2], axis=1) / width
    mouth_weight = np.clip((1.6 - dist) / 0.6, 0.0, 1.0)          # 1 near the mouth, 0 beyond
    weights = np.stack([np.ones(len(reference)) if ok else 1.0 - mouth_weight
                        for ok in is_mouth_neutral])
    mean = np.einsum("sn,snd->nd", weights, aligned) / weights.sum(0)[:, None]
    mean = frontal_frame(mean)
    sym, perm = symmetrize(mean)
    sym = frontal_frame(sym)
    scale = INTEROCULAR_METRES / np.linalg.norm(sym[IRIS_LEFT_CENTRE] - sym[IRIS_RIGHT_CENTRE])
    sym *= scale
    sym = close_lips(sym, NEUTRAL_LIP_SEAM)
    sym = 0.5 * (sym + (sym * [-1.0, 1.0, 1.0])[perm])             # re-symmetrise after edits
    sym[perm == np.arange(len(sym)), 0] = 0.0
    return {"landmarks": sym, "mirror": perm, "sources": report}


def round_detections(detections: dict[str, list], decimals: int = 2) -> dict[str, list]:
    """Round pixel coordinates so tiny run-to-run float noise cannot change the asset."""
    return {k: [None if d is None else np.round(d, decimals) for d in v] for k, v in detections.items()}


def detect_all(images: dict[str, list]) -> dict[str, list]:
    import mediapipe as mp
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1,
                                         refine_landmarks=True) as face_mesh:
        return {k: [detect(im, face_mesh) for im in v] for k, v in images.items()}


DETECTIONS_KIND = "pyfacerig-source-landmarks"
DETECTIONS_PATH = Path(__file__).with_name("source_landmarks.frt")


def write_detections(detections: dict[str, list], path=DETECTIONS_PATH) -> None:
    """Commit MediaPipe's landmarks of the sources (rounded to 0.01 px).

    The template is rebuilt from this file, so regenerating it gives the same bytes on
    any machine, even where MediaPipe's float results differ in the last digits; a test
    re-runs MediaPipe and checks the committed landmarks still match the images.
    """
    from .asset import write
    detections = round_detections(detections)
    arrays, counts = {}, {}
    for name, found in detections.items():
        counts[name] = len(found)
        for k, d in enumerate(found):
            if d is not None:
                arrays[f"{name}/{k:03d}"] = np.round(d * 100).astype(np.int32)   # centipixels, exact
    write(path, {"sources": counts, "units": "1/100 pixel; x right, y up, z toward the camera"},
          arrays, kind=DETECTIONS_KIND)


def read_detections(path=DETECTIONS_PATH) -> dict[str, list]:
    from .asset import read
    header, arrays = read(path, kind=DETECTIONS_KIND)
    def pixels(key):
        return None if key not in arrays else arrays[key].astype(np.float64) / 100.0
    return {name: [pixels(f"{name}/{k:03d}") for k in range(count)]
            for name, count in header["sources"].items()}
