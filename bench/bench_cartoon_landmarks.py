"""Time the cartoon landmark network per face against MediaPipe's face mesh (the baseline).

    PYTHONPATH=$PWD python bench/bench_cartoon_landmarks.py [--repeat 30]

On held-out renders (tests/test_cartoon_landmarks.py's set, upscaled 3x to 480 px) and the
drawn cartoons of tests/_cartoons.py: the median time of the network on a given face box
(``landmarks_in_box``: crop + every pass + the eye stage, the per-face cost issue #14 bounds at
20 ms), of one face-network pass, of the whole ``detect`` (MediaPipe's face detector for the box + the network), and
of MediaPipe's ``detect`` (face detector + face mesh), with the ratios.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from pyfacerig.cartoon_landmarks import CartoonLandmarkDetector, _box_of  # noqa: E402
from pyfacerig.cartoon_renders import HELD_OUT_LOOKS, Renderer  # noqa: E402
from pyfacerig.landmarks import default_detector  # noqa: E402
from pyfacerig.templates import load_default  # noqa: E402


def _median_ms(call, repeat: int) -> float:
    call()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    from _cartoons import make_cartoons

    renderer = Renderer(load_default())
    rng = np.random.default_rng(2026)
    images = []
    for k in range(4):
        sample = renderer.render(rng, HELD_OUT_LOOKS[k % len(HELD_OUT_LOOKS)], held_out_colours=True)
        images.append((f"render_{k}", cv2.resize(sample.image, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)))
    images += [(c.name, image) for image, c in make_cartoons(4)]

    network, mediapipe = CartoonLandmarkDetector(), default_detector()
    print(f"{'image':34s} {'net/face':>9s} {'1 pass':>7s} {'net+box':>8s} {'mediapipe':>10s} {'ratio':>6s}")
    per_face, ratios = [], []
    for name, image in images:
        faces = network.detect(image)
        if not faces:       # the face box detector found no face: nothing to time
            print(f"{name:34s} {'no face found':>9s}")
            continue
        box = _box_of(faces[0])
        face_ms = _median_ms(lambda: network.landmarks_in_box(image, box), args.repeat)
        pass_ms = _median_ms(lambda: network.run_crop(image, box), args.repeat)
        full_ms = _median_ms(lambda: network.detect(image), args.repeat)
        mp_ms = _median_ms(lambda: mediapipe.detect(image), args.repeat)
        per_face.append(face_ms)
        ratios.append(full_ms / mp_ms)
        print(f"{name:34s} {face_ms:8.2f}ms {pass_ms:6.2f}ms {full_ms:7.2f}ms {mp_ms:9.2f}ms {full_ms / mp_ms:6.2f}")
    print(f"median per face (network, {network.passes} passes): {statistics.median(per_face):.2f} ms; "
          f"detect vs MediaPipe detect: {statistics.median(ratios):.2f}x")


if __name__ == "__main__":
    main()
