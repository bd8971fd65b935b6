"""Exaggerated eyes (Pan et al. §3.2, Fig. 8): real portraits with the eyes enlarged by a known
warp.  The fitted model has to follow the enlarged eyes, not the template's or the original's."""
import cv2
import numpy as np
import pytest

from pyfacerig import fit
from pyfacerig.build import build
from pyfacerig.landmarks import LEFT_EYE_CONTOUR, RIGHT_EYE_CONTOUR, detect_landmarks

EYES = (np.array(RIGHT_EYE_CONTOUR), np.array(LEFT_EYE_CONTOUR))


def _magnification(r, radius, factor):
    """Smooth radial magnification: ``factor`` at the eye centre, 1 at ``radius`` and beyond."""
    t = np.clip(r / radius, 0.0, 1.0)
    return factor + (1.0 - factor) * (3 * t**2 - 2 * t**3)


def enlarge_eyes(image, points, factor):
    """Warp ``image`` so both eyes grow by ``factor`` about their contour centroids.

    Returns the warped image and a function mapping original pixel positions (K, 2) to their
    warped positions (the known ground truth of where each eye point went).
    """
    height, width = image.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
    map_x, map_y = xs.copy(), ys.copy()
    eyes = []
    for contour in EYES:
        centre = points[contour, :2].mean(axis=0)
        radius = 1.6 * np.linalg.norm(points[contour[0], :2] - points[contour[8], :2])
        dx, dy = xs - centre[0], ys - centre[1]
        r = np.hypot(dx, dy)
        inside = r < radius
        m = _magnification(r[inside], radius, factor)
        # Backward map: a warped pixel at distance r samples the original at r / m(r).
        map_x[inside] = centre[0] + dx[inside] / m
        map_y[inside] = centre[1] + dy[inside] / m
        eyes.append((centre, radius))
    warped = cv2.remap(image, (map_x - 0.5).astype(np.float32), (map_y - 0.5).astype(np.float32),
                       cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)

    def forward(xy):
        xy = np.array(xy, dtype=np.float64)
        for centre, radius in eyes:
            d = xy - centre
            r_in = np.linalg.norm(d, axis=1)
            r_out = np.where(r_in < radius, r_in, np.nan)
            # Invert r_in = r_out / m(r_out) (monotone) by bisection.
            lo, hi = np.zeros(len(xy)), np.full(len(xy), radius)
            for _ in range(60):
                mid = 0.5 * (lo + hi)
                below = mid / _magnification(mid, radius, factor) < r_in
                lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
            r_out = np.where(r_in < radius, lo, r_in)
            xy = centre + d * (r_out / np.maximum(r_in, 1e-12))[:, None]
        return xy

    return warped, forward


def fit_enlarged_eyes(image, template, factor):
    """Build ``image`` with its eyes enlarged by ``factor``.  Returns (detected points (478, 3),
    eye contour ids (32,), their warped truth (32, 2), the fitted contours projected (32, 2), IOD px)."""
    points = detect_landmarks(image).points
    warped, forward = enlarge_eyes(image, points, factor)
    ids = np.concatenate(EYES)
    truth = forward(points[ids, :2])
    avatar = build(warped, template=template)
    skin_ids = np.asarray(template.landmark_vertex_ids)[ids]
    fitted = fit.project(avatar.posed_skin[skin_ids].astype(np.float64), avatar.pose)
    return points, ids, truth, fitted, np.linalg.norm(points[33, :2] - points[263, :2])


def assert_fit_follows_enlarged_eyes(image, template, factor):
    """Build ``image`` with its eyes enlarged by ``factor``; the fitted eyes must follow the warp."""
    points, ids, truth, fine, iod = fit_enlarged_eyes(image, template, factor)

    def distance(xy, reference):
        return np.linalg.norm(xy - reference, axis=1).mean() / iod

    # The fitted eye contours lie nearer where the eyes went than where they were ...
    assert distance(fine, truth) < distance(fine, points[ids, :2])
    # ... and the eye openings grew by more than half as much as the warp made them grow.
    opened = np.mean([np.ptp(fine[k * 16:(k + 1) * 16, 1]) / np.ptp(points[eye, 1]) for k, eye in enumerate(EYES)])
    grown = np.mean([np.ptp(truth[k * 16:(k + 1) * 16, 1]) / np.ptp(points[eye, 1]) for k, eye in enumerate(EYES)])
    assert opened - 1 > 0.5 * (grown - 1), (opened, grown)


@pytest.mark.parametrize("factor", [1.3, 1.6])
@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_fit_follows_eyes_enlarged_by_a_known_warp(portraits, template, name, factor):
    assert_fit_follows_enlarged_eyes(portraits[name], template, factor)


def test_warp_ground_truth_moves_eye_points_outward_and_leaves_the_mouth(astronaut_rgb):
    points = detect_landmarks(astronaut_rgb).points
    _, forward = enlarge_eyes(astronaut_rgb, points, 1.5)
    eye = EYES[0]
    centre = points[eye, :2].mean(axis=0)
    moved = forward(points[eye, :2])
    assert np.all(np.linalg.norm(moved - centre, axis=1) > np.linalg.norm(points[eye, :2] - centre, axis=1))
    assert np.allclose(forward(points[[13, 14, 61, 291], :2]), points[[13, 14, 61, 291], :2])
