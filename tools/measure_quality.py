"""Print the quality tables of docs/pipeline.md ("Quality"), measured afresh.

    python tools/measure_quality.py [--copies]

Landmark error per region (Pan et al. Table 1 protocol: the model's 68 iBUG points against
dlib's 68-point predictor, % of dlib's outer-corner inter-ocular distance) for the coarse and
the fine fit, on the two portraits inside installed packages and the four held-out portraits
of the face_recognition sdist (fetched by tests/_heldout.py); then, with ``--copies``, on
mirrored / rotated / rescaled / recompressed copies of the first two; then the enlarged-eye
check of tests/test_build_eyes.py (1.3x, 1.6x) and tests/test_build_big_eyes.py (1.8x) on all six
portraits.  Needs the test extras (dlib-bin,
face-recognition-models).  Every figure is deterministic, so the tables reproduce exactly.
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

REGIONS = ("eyes", "nose", "brows", "mouth", "contour")


def portraits() -> dict[str, np.ndarray]:
    import matplotlib
    from skimage import data
    from _heldout import PORTRAITS, ensure
    from pyfacerig.image_io import load_image
    out = {"astronaut": np.ascontiguousarray(data.astronaut()),
           "grace_hopper": load_image(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg")}
    paths = ensure()
    out.update({name: load_image(paths[name]) for name in PORTRAITS})
    return out


def copies(image: np.ndarray) -> dict[str, np.ndarray]:
    h, w = image.shape[:2]
    out = {"mirror": np.ascontiguousarray(image[:, ::-1])}
    for angle in (10, -10):
        m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        out[f"rot{angle:+d}"] = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    for scale in (0.6, 1.7):
        out[f"x{scale}"] = cv2.resize(image, None, fx=scale, fy=scale,
                                      interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=40)
    out["jpeg40"] = np.asarray(Image.open(buffer).convert("RGB"))
    return out


def landmark_rows(name: str, image: np.ndarray, template) -> list[str]:
    from pyfacerig.build import build
    from pyfacerig.evaluation import dlib_landmarks68, interocular_distance, landmark_error_by_region
    ref = dlib_landmarks68(image)
    avatar = build(image, template=template)
    coarse = landmark_error_by_region(avatar.landmarks68["coarse"], ref)
    fine = landmark_error_by_region(avatar.landmarks68["fine"], ref)
    losses = ", ".join(r for r in REGIONS if not fine[r] < coarse[r])
    cells = lambda e: " | ".join(f"{100 * e[k]:.2f}" for k in REGIONS + ("mean",))
    return [f"| {name} | {interocular_distance(ref):.0f} | coarse | {cells(coarse)} | |",
            f"| {name} | | fine | {cells(fine)} | {losses} |"]


def enlarged_row(name: str, image: np.ndarray, template, factor: float) -> str:
    from test_build_eyes import EYES, enlarge_eyes
    from pyfacerig import fit
    from pyfacerig.build import build
    from pyfacerig.eye_refine import iris_rule_strength
    from pyfacerig.landmarks import detect_landmarks
    points = detect_landmarks(image).points
    warped, forward = enlarge_eyes(image, points, factor)
    ids = np.concatenate(EYES)
    truth = forward(points[ids, :2])
    iod = np.linalg.norm(points[33, :2] - points[263, :2])
    cells = [f"{iris_rule_strength(detect_landmarks(warped).points):.2f}"]
    for refine in (True, False):
        avatar = build(warped, template=template, refine_eyes=refine)
        skin_ids = np.asarray(template.landmark_vertex_ids)[ids]
        fine = fit.project(avatar.posed_skin[skin_ids].astype(np.float64), avatar.pose)
        to_truth = np.linalg.norm(fine - truth, axis=1).mean() / iod
        to_original = np.linalg.norm(fine - points[ids, :2], axis=1).mean() / iod
        opened = np.mean([np.ptp(fine[k * 16:(k + 1) * 16, 1]) / np.ptp(points[e, 1]) for k, e in enumerate(EYES)])
        grown = np.mean([np.ptp(truth[k * 16:(k + 1) * 16, 1]) / np.ptp(points[e, 1]) for k, e in enumerate(EYES)])
        follows = to_truth < to_original and opened - 1 > 0.5 * (grown - 1)
        cells += [f"{100 * to_truth:.2f}", f"{100 * to_original:.2f}", f"{opened:.2f} / {grown:.2f}",
                  "follows" if follows else "FAILS"]
    return f"| {name} | {factor} | " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", action="store_true", help="also measure the 12 copies of the bundled portraits")
    args = parser.parse_args()
    from pyfacerig.templates import load_default
    template = load_default()
    images = portraits()

    print("| portrait | IOD px | stage | eyes | nose | brows | mouth | contour | mean | fine not better in |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, image in images.items():
        print("\n".join(landmark_rows(name, image, template)))
    if args.copies:
        print()
        print("| copy | IOD px | stage | eyes | nose | brows | mouth | contour | mean | fine not better in |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for name in ("astronaut", "grace_hopper"):
            for label, copy in copies(images[name]).items():
                print("\n".join(landmark_rows(f"{name}/{label}", copy, template)))
    print()
    print("| portrait | warp | iris rule strength | refined: to truth | to original | height growth, fitted / true "
          "| verdict | unrefined: to truth | to original | height growth | verdict |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, image in images.items():
        for factor in (1.3, 1.6, 1.8):
            print(enlarged_row(name, image, template, factor))


if __name__ == "__main__":
    main()
