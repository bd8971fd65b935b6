"""pyfacerig.runtime: the C blendshape evaluator against a numpy reference (Pan et al., Eq. 13)."""
import os
import struct

import numpy as np
import pytest

from pyfacerig.errors import ExportError, InvalidInputError, RigFileError
from pyfacerig.runtime import Rig, build_rig_bytes, simd_supported

ARKIT_NAMES = (
    "eyeBlinkLeft eyeLookDownLeft eyeLookInLeft eyeLookOutLeft eyeLookUpLeft eyeSquintLeft "
    "eyeWideLeft eyeBlinkRight eyeLookDownRight eyeLookInRight eyeLookOutRight eyeLookUpRight "
    "eyeSquintRight eyeWideRight jawForward jawLeft jawRight jawOpen mouthClose mouthFunnel "
    "mouthPucker mouthLeft mouthRight mouthSmileLeft mouthSmileRight mouthFrownLeft "
    "mouthFrownRight mouthDimpleLeft mouthDimpleRight mouthStretchLeft mouthStretchRight "
    "mouthRollLower mouthRollUpper mouthShrugLower mouthShrugUpper mouthPressLeft "
    "mouthPressRight mouthLowerDownLeft mouthLowerDownRight mouthUpperUpLeft mouthUpperUpRight "
    "browDownLeft browDownRight browInnerUp browOuterUpLeft browOuterUpRight cheekPuff "
    "cheekSquintLeft cheekSquintRight noseSneerLeft noseSneerRight tongueOut").split()


def random_rig(seed, vertices, shapes, moved_fraction=1.0):
    """Neutral (N,3), deltas (M,N,3): each shape moves a random subset of vertices."""
    rng = np.random.default_rng(seed)
    neutral = rng.normal(scale=0.1, size=(vertices, 3))
    deltas = rng.normal(scale=0.01, size=(shapes, vertices, 3))
    deltas *= rng.random((shapes, vertices, 1)) < moved_fraction
    return neutral, deltas, [f"shape{i}" for i in range(shapes)]


def mixed_weights(seed, shapes):
    """Zeros, negatives and values above 1, as animation curves and solvers produce."""
    rng = np.random.default_rng(seed)
    w = rng.uniform(-1.5, 2.5, shapes)
    w[rng.random(shapes) < 0.3] = 0.0
    return w


def assert_equals_reference(result, neutral, deltas, weights, stored=np.float32):
    """Within float32 rounding: exact sum of the stored inputs, error <= (M+2) ulp of the terms."""
    n32 = neutral.astype(np.float32).astype(np.float64)
    d32 = deltas.astype(stored).astype(np.float64)
    w32 = np.asarray(weights, np.float32).astype(np.float64)
    reference = n32 + np.einsum("m,mnk->nk", w32, d32)
    magnitude = np.abs(n32) + np.einsum("m,mnk->nk", np.abs(w32), np.abs(d32))
    bound = (len(w32) + 2) * np.finfo(np.float32).eps * magnitude
    assert result.dtype == np.float32 and result.shape == reference.shape
    assert np.all(np.abs(result - reference) <= bound)


def header_entry_count(data):
    return struct.unpack_from("<I", data, 44)[0]


# -- evaluation ---------------------------------------------------------------

def test_dense_rig_matches_numpy_reference():
    neutral, deltas, names = random_rig(1, 1000, 20)
    weights = mixed_weights(2, 20)
    assert_equals_reference(Rig.from_arrays(neutral, deltas, names).evaluate(weights),
                            neutral, deltas, weights)


def test_sparse_rig_matches_numpy_reference():
    neutral, deltas, names = random_rig(3, 2003, 52, moved_fraction=0.05)
    weights = mixed_weights(4, 52)
    assert_equals_reference(Rig.from_arrays(neutral, deltas, names).evaluate(weights),
                            neutral, deltas, weights)


def test_region_sparse_rig_matches_numpy_reference():
    # Shapes that move contiguous index ranges (the layout real face meshes give).
    neutral, deltas, names = random_rig(5, 777, 9)
    for i in range(9):
        keep = np.zeros(777, bool)
        keep[37 * i: 37 * i + 150] = True
        deltas[i, ~keep] = 0
    weights = mixed_weights(6, 9)
    assert_equals_reference(Rig.from_arrays(neutral, deltas, names).evaluate(weights),
                            neutral, deltas, weights)


def test_all_zero_weights_return_the_neutral_exactly():
    neutral, deltas, names = random_rig(7, 100, 4)
    out = Rig.from_arrays(neutral, deltas, names).evaluate(np.zeros(4))
    assert np.array_equal(out, neutral.astype(np.float32))


def test_rig_without_shapes_evaluates_to_the_neutral():
    neutral = np.random.default_rng(8).normal(size=(33, 3))
    rig = Rig.from_arrays(neutral, np.zeros((0, 33, 3)), [])
    assert rig.shape_count == 0
    assert np.array_equal(rig.evaluate(np.zeros(0)), neutral.astype(np.float32))


@pytest.mark.parametrize("precision", ["float32", "float16"])
def test_every_available_simd_level_gives_the_scalar_result(precision):
    neutral, deltas, names = random_rig(9, 1234, 52, moved_fraction=0.3)
    deltas[:, :100] *= 1e-3    # below float16's normal range: subnormal halves
    weights = mixed_weights(10, 52)
    rig = Rig.from_arrays(neutral, deltas, names, delta_precision=precision)
    levels = simd_supported()
    rig.force_simd_level("scalar")
    scalar = rig.evaluate(weights)
    for level in levels:
        rig.force_simd_level(level)
        assert rig.simd_level == level
        result = rig.evaluate(weights)
        assert_equals_reference(result, neutral, deltas, weights, stored=np.dtype(precision))
        # FMA and mul+add differ by at most a rounding per term; nothing more.
        np.testing.assert_allclose(result, scalar, rtol=0, atol=1e-6)


def test_float16_deltas_match_the_reference_of_the_stored_halves():
    neutral, deltas, names = random_rig(33, 999, 52, moved_fraction=0.2)
    weights = mixed_weights(34, 52)
    rig = Rig.from_arrays(neutral, deltas, names, delta_precision="float16")
    assert_equals_reference(rig.evaluate(weights), neutral, deltas, weights, stored=np.float16)
    # ... which is the float32 result up to binary16 rounding of each delta (2**-11 relative).
    full = Rig.from_arrays(neutral, deltas, names).evaluate(weights)
    bound = 2.0**-11 * np.einsum("m,mnk->nk", np.abs(weights), np.abs(deltas)) + 1e-6
    assert np.all(np.abs(rig.evaluate(weights) - full) <= bound)


def test_float16_deltas_halve_the_stored_delta_bytes():
    neutral, deltas, names = random_rig(35, 640, 8)
    full = build_rig_bytes(neutral, deltas, names)
    half = build_rig_bytes(neutral, deltas, names, delta_precision="float16")
    assert len(full) - len(half) == 8 * 40 * 48 * 2     # 8 shapes x 40 blocks x 48 values x 2 B


def test_deltas_beyond_the_float16_range_are_refused_for_float16():
    neutral, deltas, names = random_rig(36, 10, 1)
    deltas[0, 0, 0] = 1e5
    with pytest.raises(InvalidInputError, match="beyond the float16 range"):
        Rig.from_arrays(neutral, deltas, names, delta_precision="float16")


def test_an_unknown_delta_precision_is_refused():
    neutral, deltas, names = random_rig(37, 10, 1)
    with pytest.raises(InvalidInputError, match="delta_precision"):
        Rig.from_arrays(neutral, deltas, names, delta_precision="int8")


def test_the_widest_simd_level_is_chosen_by_default():
    neutral, deltas, names = random_rig(11, 50, 2)
    assert Rig.from_arrays(neutral, deltas, names).simd_level == simd_supported()[-1]


def test_x86_builds_offer_sse2_and_the_scalar_fallback():
    import platform
    levels = simd_supported()
    assert "scalar" in levels
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert "sse2" in levels
    if platform.machine().lower() in ("aarch64", "arm64"):
        assert "neon" in levels


def test_forcing_an_unknown_simd_level_is_rejected():
    neutral, deltas, names = random_rig(12, 20, 1)
    with pytest.raises(InvalidInputError, match="unknown SIMD level"):
        Rig.from_arrays(neutral, deltas, names).force_simd_level("mmx")


def test_ranges_that_tile_the_mesh_equal_one_call():
    neutral, deltas, names = random_rig(13, 1001, 17, moved_fraction=0.4)
    weights = mixed_weights(14, 17)
    rig = Rig.from_arrays(neutral, deltas, names)
    whole = rig.evaluate(weights)
    tiled = np.full((1001, 3), np.nan, np.float32)
    cuts = [0, 1, 7, 16, 17, 100, 512, 999, 1001]
    for begin, end in zip(cuts[:-1], cuts[1:]):
        rig.evaluate_range(weights, begin, end, out=tiled)
    assert np.array_equal(tiled, whole)


def test_threads_evaluating_disjoint_ranges_equal_one_call():
    from concurrent.futures import ThreadPoolExecutor
    neutral, deltas, names = random_rig(39, 4000, 52, moved_fraction=0.2)
    weights = mixed_weights(40, 52)
    rig = Rig.from_arrays(neutral, deltas, names)
    out = np.zeros((4000, 3), np.float32)
    cuts = np.linspace(0, 4000, 9).astype(int)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: rig.evaluate_range(weights, int(cuts[i]), int(cuts[i + 1]), out=out),
                      range(8)))
    assert np.array_equal(out, rig.evaluate(weights))


def test_a_range_leaves_rows_outside_it_untouched():
    neutral, deltas, names = random_rig(15, 100, 3)
    rig = Rig.from_arrays(neutral, deltas, names)
    out = np.full((100, 3), -7.0, np.float32)
    rig.evaluate_range(np.ones(3), 21, 50, out=out)
    assert np.all(out[:21] == -7.0) and np.all(out[50:] == -7.0)
    assert np.array_equal(out[21:50], rig.evaluate(np.ones(3))[21:50])


def test_evaluate_writes_into_the_given_buffer():
    neutral, deltas, names = random_rig(16, 64, 2)
    rig = Rig.from_arrays(neutral, deltas, names)
    out = np.empty((64, 3), np.float32)
    assert rig.evaluate([0.5, -1.0], out=out) is out
    assert_equals_reference(out, neutral, deltas, [0.5, -1.0])


@pytest.mark.parametrize("precision", ["float32", "float16"])
def test_normals_are_blended_then_renormalised(precision):
    rng = np.random.default_rng(17)
    neutral, deltas, names = random_rig(18, 300, 6, moved_fraction=0.5)
    normals = rng.normal(size=(300, 3))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    normal_deltas = rng.normal(scale=0.2, size=(6, 300, 3)) * (rng.random((6, 300, 1)) < 0.5)
    weights = mixed_weights(19, 6)
    rig = Rig.from_arrays(neutral, deltas, names, normals=normals, normal_deltas=normal_deltas,
                          delta_precision=precision)
    positions, result = rig.evaluate_with_normals(weights)
    assert_equals_reference(positions, neutral, deltas, weights, stored=np.dtype(precision))
    blended = normals.astype(np.float32) + np.einsum(
        "m,mnk->nk", np.float32(weights), normal_deltas.astype(precision).astype(np.float32))
    expected = blended / np.linalg.norm(blended, axis=1, keepdims=True)
    np.testing.assert_allclose(result, expected, rtol=0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(result, axis=1), 1.0, atol=1e-6)


def test_normals_in_ranges_equal_one_call():
    rng = np.random.default_rng(20)
    neutral, deltas, names = random_rig(21, 70, 3)
    rig = Rig.from_arrays(neutral, deltas, names, normals=rng.normal(size=(70, 3)),
                          normal_deltas=rng.normal(size=(3, 70, 3)))
    _, whole = rig.evaluate_with_normals([1.0, 0.0, -0.25])
    tiled = np.zeros((70, 3), np.float32)
    for begin, end in [(0, 5), (5, 33), (33, 70)]:
        rig.evaluate_range([1.0, 0.0, -0.25], begin, end, normals_out=tiled)
    assert np.array_equal(tiled, whole)


def test_normals_from_a_rig_without_normals_are_refused():
    neutral, deltas, names = random_rig(22, 10, 1)
    with pytest.raises(InvalidInputError, match="without normals"):
        Rig.from_arrays(neutral, deltas, names).evaluate_with_normals([1.0])


# -- storage --------------------------------------------------------------------

def test_only_blocks_a_shape_moves_are_stored():
    neutral, deltas, names = random_rig(23, 160, 3)   # 10 blocks of 16 vertices
    deltas[:] = 0
    deltas[0, 5] = 0.1          # block 0
    deltas[1, 40:70] = 0.2      # blocks 2, 3, 4
    data = build_rig_bytes(neutral, deltas, names)
    assert header_entry_count(data) == 4
    assert len(data) < len(build_rig_bytes(*random_rig(23, 160, 3)))


def test_save_and_load_round_trip_byte_identical(tmp_path):
    neutral, deltas, _ = random_rig(24, 300, 52, moved_fraction=0.2)
    rig = Rig.from_arrays(neutral, deltas, ARKIT_NAMES)
    path = tmp_path / "face.frig"
    rig.save(path)
    loaded = Rig.load(path)
    assert loaded.names == tuple(ARKIT_NAMES)
    assert (loaded.vertex_count, loaded.shape_count) == (300, 52)
    assert path.read_bytes() == rig.to_bytes() == loaded.to_bytes()
    weights = mixed_weights(25, 52)
    assert np.array_equal(loaded.evaluate(weights), rig.evaluate(weights))


def test_same_arrays_give_byte_identical_files():
    neutral, deltas, names = random_rig(26, 90, 5, moved_fraction=0.5)
    assert build_rig_bytes(neutral, deltas, names) == build_rig_bytes(neutral, deltas, names)


def test_from_bytes_round_trips_unicode_names():
    neutral, deltas, _ = random_rig(27, 10, 2)
    rig = Rig.from_bytes(Rig.from_arrays(neutral, deltas, ["sourire", "clin d'œil"]).to_bytes())
    assert rig.names == ("sourire", "clin d'œil")


def test_save_over_an_existing_file_replaces_it(tmp_path):
    path = tmp_path / "face.frig"
    path.write_bytes(b"old contents")
    neutral, deltas, names = random_rig(28, 10, 1)
    Rig.from_arrays(neutral, deltas, names).save(path)
    assert Rig.load(path).vertex_count == 10
    assert os.listdir(tmp_path) == ["face.frig"]


def test_save_to_a_missing_folder_raises_and_leaves_nothing(tmp_path):
    neutral, deltas, names = random_rig(29, 10, 1)
    with pytest.raises(ExportError, match="cannot write rig file"):
        Rig.from_arrays(neutral, deltas, names).save(tmp_path / "no" / "face.frig")
    assert os.listdir(tmp_path) == []


def test_loading_a_missing_file_raises_rig_file_error(tmp_path):
    with pytest.raises(RigFileError, match="cannot open"):
        Rig.load(tmp_path / "absent.frig")


# -- bad arrays -------------------------------------------------------------------

@pytest.mark.parametrize("bad, message", [
    (dict(neutral=np.full((10, 3), np.nan)), "neutral contains NaN"),
    (dict(neutral=np.zeros((10, 2))), r"neutral has shape \(10, 2\)"),
    (dict(neutral=np.zeros((0, 3)), deltas=np.zeros((1, 0, 3))), "0 vertices"),
    (dict(deltas=np.zeros((2, 9, 3))), r"deltas has shape \(2, 9, 3\)"),
    (dict(deltas=np.full((2, 10, 3), np.inf)), "deltas contains NaN or infinite"),
    (dict(names=["a"]), "1 names for 2 shapes"),
    (dict(names=["a", "a"]), "not unique"),
    (dict(names=["a", ""]), "not a non-empty string"),
    (dict(names=["a", "b\0c"]), "contains NUL"),
    (dict(names="ab"), "not a single string"),
    (dict(normal_deltas=np.zeros((2, 10, 3))), "without neutral normals"),
    (dict(normals=np.zeros((9, 3))), r"normals has shape \(9, 3\)"),
])
def test_bad_arrays_raise_invalid_input(bad, message):
    args = dict(neutral=np.zeros((10, 3)), deltas=np.zeros((2, 10, 3)), names=["a", "b"])
    args.update(bad)
    with pytest.raises(InvalidInputError, match=message):
        Rig.from_arrays(**args)


@pytest.mark.parametrize("weights, message", [
    ([1.0], r"weights has shape \(1,\), expected \(3\)"),
    ([1.0, np.nan, 0.0], "weights contains NaN"),
    ([[1.0, 0.0, 0.0]], "weights has shape"),
    (["a", "b", "c"], "not a numeric array"),
])
def test_bad_weights_raise_invalid_input(weights, message):
    neutral, deltas, names = random_rig(30, 10, 3)
    with pytest.raises(InvalidInputError, match=message):
        Rig.from_arrays(neutral, deltas, names).evaluate(weights)


def test_nan_float32_weights_are_refused_by_the_c_side():
    neutral, deltas, names = random_rig(38, 10, 2)
    with pytest.raises(InvalidInputError, match="weight 1 \\(shape 'shape1'\\) is not finite"):
        Rig.from_arrays(neutral, deltas, names).evaluate(np.array([0.0, np.nan], np.float32))


@pytest.mark.parametrize("out", [
    np.zeros((10, 3), np.float64),
    np.zeros((11, 3), np.float32),
    np.zeros((3, 10), np.float32).T,
])
def test_unusable_output_buffers_raise_invalid_input(out):
    neutral, deltas, names = random_rig(31, 10, 1)
    with pytest.raises(InvalidInputError, match="writeable C-contiguous float32"):
        Rig.from_arrays(neutral, deltas, names).evaluate([1.0], out=out)


@pytest.mark.parametrize("begin, end", [(-1, 5), (5, 4), (0, 11)])
def test_ranges_outside_the_mesh_raise_invalid_input(begin, end):
    neutral, deltas, names = random_rig(32, 10, 1)
    with pytest.raises(InvalidInputError, match="vertex range"):
        Rig.from_arrays(neutral, deltas, names).evaluate_range([1.0], begin, end)
