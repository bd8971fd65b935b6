"""Strong cartoon eyes (issue #14, part 3): real portraits with both eyes enlarged 1.8x.

The same known warp as tests/test_build_eyes.py (1.3x, 1.6x), pushed to the size of strong
cartoon eyes.  Figures (tools/measure_quality.py, docs/pipeline.md "Quality", enlarged eyes):
with the eye refinement the fitted eye contours lie 2.18-2.72 % of the IOD from the warped
truth on all six real portraits and follow the warp; the eye openings grow 1.48-2.24x where
the warp grew them 1.67-1.76x (short on the two bundled portraits, past it on the held-out
four).  Without the refinement none of the six follows (docs).
"""
import numpy as np
import pytest

from _heldout import PORTRAITS
from test_build_eyes import EYES, assert_fit_follows_enlarged_eyes, fit_enlarged_eyes
from pyfacerig.image_io import load_image

FACTOR = 1.8


def enlarged_eye_figures(image, template, factor=FACTOR):
    """Build ``image`` with its eyes enlarged; return (distance of the fitted eye contours to the
    warped truth, to the original contours, both / IOD; fitted and true growth of the openings' height)."""
    points, ids, truth, fitted, iod = fit_enlarged_eyes(image, template, factor)
    to_truth = np.linalg.norm(fitted - truth, axis=1).mean() / iod
    to_original = np.linalg.norm(fitted - points[ids, :2], axis=1).mean() / iod
    heights = lambda xy: [np.ptp(xy[k * 16:(k + 1) * 16, 1]) / np.ptp(points[e, 1]) for k, e in enumerate(EYES)]  # noqa
    return to_truth, to_original, float(np.mean(heights(fitted))), float(np.mean(heights(truth)))


@pytest.fixture(scope="module")
def real_portraits(portraits, heldout_paths):
    return {**portraits, **{name: load_image(heldout_paths[name]) for name in PORTRAITS}}


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"] + list(PORTRAITS))
def test_fit_follows_eyes_enlarged_1_8x(real_portraits, template, name):
    assert_fit_follows_enlarged_eyes(real_portraits[name], template, FACTOR)


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"] + list(PORTRAITS))
def test_eyes_enlarged_1_8x_are_fitted_within_3_percent_of_the_iod(real_portraits, template, name):
    to_truth, to_original, opened, grown = enlarged_eye_figures(real_portraits[name], template)
    # Measured 2.18-2.72 %: a regression guard, and well inside what the fit does on the
    # original photos' eyes against dlib (1.5-2.5 %) plus the warp's size.
    assert to_truth < 0.03, to_truth
    assert to_truth < 0.75 * to_original, (to_truth, to_original)   # measured 0.34-0.70
    # The openings grow by 67-175 % of the true growth (the held-out four overshoot: the iris rule
    # sets the opening from the iris size, and their enlarged irises imply taller eyes than the
    # warp made).  Bounded, not exact.
    assert 0.6 * (grown - 1) < opened - 1 < 2.0 * (grown - 1), (opened, grown)
