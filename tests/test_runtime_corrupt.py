"""The .frig loader treats every file as hostile: each corruption is an error, never a crash.

Hand-crafted headers are re-sealed with a valid CRC-32 so the structural
validation itself is exercised, not only the checksum (docs/rig_format.md).
"""
import struct
import zlib

import numpy as np
import pytest

from pyfacerig.errors import RigFileError
from pyfacerig.runtime import Rig, build_rig_bytes

# Header field offsets (docs/rig_format.md).
VERSION, HEADER_SIZE, FILE_SIZE, FLAGS = 8, 12, 16, 24
VERTICES, SHAPES, BLOCK_SIZE, BLOCKS, ENTRIES = 28, 32, 36, 40, 44
NAMES_OFF, NAMES_SIZE, NEUTRAL_OFF, NORMALS_OFF = 48, 56, 64, 72
STARTS_OFF, SHAPES_OFF, DELTAS_OFF, NDELTAS_OFF = 80, 88, 96, 104
U32_MAX, U64_MAX = 2**32 - 1, 2**64 - 1


def small_rig_bytes(normals=True):
    """A 20-vertex (2 blocks), 3-shape rig with normals: about 2 KB."""
    rng = np.random.default_rng(0)
    neutral = rng.normal(size=(20, 3))
    deltas = rng.normal(size=(3, 20, 3))
    deltas[1, :16] = 0          # shape 1 moves only block 1
    if not normals:
        return build_rig_bytes(neutral, deltas, ["jawOpen", "eyeBlinkLeft", "tongueOut"])
    return build_rig_bytes(neutral, deltas, ["jawOpen", "eyeBlinkLeft", "tongueOut"],
                           normals=rng.normal(size=(20, 3)),
                           normal_deltas=rng.normal(size=(3, 20, 3)))


def u32(data, offset):
    return struct.unpack_from("<I", data, offset)[0]


def u64(data, offset):
    return struct.unpack_from("<Q", data, offset)[0]


def reseal(data):
    """Recompute the trailing CRC-32 so only the structural checks can reject the file."""
    body = bytes(data[:-4])
    return body + struct.pack("<I", zlib.crc32(body))


def patched(fmt, offset, value, data=None):
    data = bytearray(small_rig_bytes() if data is None else data)
    struct.pack_into(fmt, data, offset, value)
    return reseal(data)


def assert_rejected(data, match=None):
    with pytest.raises(RigFileError, match=match):
        Rig.from_bytes(data)


def test_the_small_rig_and_its_resealed_copy_load():
    data = small_rig_bytes()
    assert Rig.from_bytes(reseal(data)).to_bytes() == data


def test_truncation_at_every_offset_is_rejected():
    data = small_rig_bytes()
    for size in range(len(data)):
        assert_rejected(data[:size])


def test_truncated_file_on_disk_is_rejected(tmp_path):
    data = small_rig_bytes()
    path = tmp_path / "cut.frig"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(RigFileError, match="truncated"):
        Rig.load(path)


def test_trailing_garbage_is_rejected():
    assert_rejected(small_rig_bytes() + b"\0", "declared file size")


def test_random_byte_flips_are_rejected():
    data = small_rig_bytes()
    rng = np.random.default_rng(1)
    for _ in range(300):
        broken = bytearray(data)
        for offset in rng.choice(len(data), size=rng.integers(1, 4), replace=False):
            broken[offset] ^= int(rng.integers(1, 256))
        assert_rejected(bytes(broken))


def test_a_single_flipped_bit_fails_the_checksum():
    data = bytearray(small_rig_bytes())
    data[700] ^= 0x10
    assert_rejected(bytes(data), "checksum")


def test_an_empty_buffer_is_rejected():
    assert_rejected(b"", "truncated|not a rig file")


def test_another_format_is_not_a_rig_file():
    assert_rejected(b"glTF" + bytes(200), "not a rig file")


def test_a_future_version_is_refused():
    assert_rejected(patched("<I", VERSION, 2), "version 2")


@pytest.mark.parametrize("fmt, offset, value, message", [
    ("<I", HEADER_SIZE, 64, "header size 64"),
    ("<Q", FILE_SIZE, U64_MAX, "declares"),
    ("<I", FLAGS, 0x80, "unknown flags"),
    ("<I", VERTICES, 0, r"vertex count 0 not in"),
    ("<I", VERTICES, U32_MAX, "vertex count 4294967295"),
    ("<I", VERTICES, 19, "padding byte .* before neutral normals"),
    ("<I", VERTICES, 33, "do not match 33 vertices"),
    ("<I", SHAPES, U32_MAX, "shape count 4294967295 exceeds"),
    ("<I", SHAPES, 2, "entry count .* exceeds|name"),
    ("<I", BLOCK_SIZE, 8, "block size 8"),
    ("<I", BLOCKS, U32_MAX, "block count 4294967295"),
    ("<I", ENTRIES, U32_MAX, "entry count 4294967295 exceeds"),
    ("<I", ENTRIES, 7, "entry count 7 exceeds blocks x shapes = 6"),
    ("<I", ENTRIES, 5, "padding byte .* before position deltas"),
    ("<Q", NAMES_OFF, U64_MAX, "shape names offset 18446744073709551615, expected 128"),
    ("<Q", NAMES_OFF, 2**64 - 64, "shape names offset .* expected 128"),
    ("<Q", NAMES_OFF, 130, "shape names offset 130, expected 128"),
    ("<Q", NAMES_OFF, 0, "shape names offset 0, expected 128"),
    ("<Q", NAMES_SIZE, U64_MAX, "name table"),
    ("<Q", NAMES_SIZE, 767, "neutral positions offset 192, expected 896"),
    ("<Q", NEUTRAL_OFF, 2**40, "neutral positions offset .* expected 192"),
    ("<Q", NEUTRAL_OFF, 128, "neutral positions offset 128, expected 192"),
    ("<Q", NORMALS_OFF, 0, "neutral normals offset 0, expected 448"),
    ("<Q", STARTS_OFF, U64_MAX - 63, "block starts offset .* expected 704"),
    ("<Q", SHAPES_OFF, 128, "entry shapes offset 128, expected 768"),
    ("<Q", DELTAS_OFF, 2**63, "position deltas offset .* expected 832"),
    ("<Q", NDELTAS_OFF, 64 * 1000, "normal deltas offset .* expected 1984"),
])
def test_absurd_counts_and_offsets_with_valid_checksum_are_rejected(fmt, offset, value, message):
    assert_rejected(patched(fmt, offset, value), message)


def test_nonzero_reserved_header_bytes_are_rejected():
    assert_rejected(patched("<B", 120, 1), "reserved header byte 120")


def test_normal_sections_without_the_normals_flag_are_rejected():
    data = small_rig_bytes(normals=False)
    assert_rejected(patched("<Q", NORMALS_OFF, 640, data), "without the normals flag")


def test_a_block_index_that_does_not_start_at_zero_is_rejected():
    data = small_rig_bytes()
    assert_rejected(patched("<I", u64(data, STARTS_OFF), 1), "block starts run from 1")


def test_a_decreasing_block_index_is_rejected():
    data = small_rig_bytes()
    # Entries per block are [2, 3]: starts 0, 2, 5.  Make the middle one 9 (> entry count).
    assert_rejected(patched("<I", u64(data, STARTS_OFF) + 4, 9), "block 0 entries")


def test_an_entry_naming_a_shape_beyond_the_count_is_rejected():
    data = small_rig_bytes()
    assert_rejected(patched("<I", u64(data, SHAPES_OFF), 3), "names shape 3")


def test_a_shape_listed_twice_in_one_block_is_rejected():
    data = small_rig_bytes()
    first = u32(data, u64(data, SHAPES_OFF))
    assert_rejected(patched("<I", u64(data, SHAPES_OFF) + 4, first), "ascending")


@pytest.mark.parametrize("section", [NEUTRAL_OFF, NORMALS_OFF, DELTAS_OFF, NDELTAS_OFF])
def test_nan_or_infinite_values_are_rejected(section):
    data = small_rig_bytes()
    assert_rejected(patched("<f", u64(data, section) + 8, float("nan")), "NaN or infinite")
    assert_rejected(patched("<f", u64(data, section) + 8, float("-inf")), "NaN or infinite")


@pytest.mark.parametrize("section", [DELTAS_OFF, NDELTAS_OFF])
def test_nan_or_infinite_float16_deltas_are_rejected(section):
    rng = np.random.default_rng(2)
    data = build_rig_bytes(rng.normal(size=(20, 3)), rng.normal(size=(2, 20, 3)), ["a", "b"],
                           normals=rng.normal(size=(20, 3)), delta_precision="float16")
    assert Rig.from_bytes(data).shape_count == 2
    assert_rejected(patched("<H", u64(data, section) + 6, 0x7E00, data), "NaN or infinite")
    assert_rejected(patched("<H", u64(data, section) + 6, 0xFC00, data), "NaN or infinite")


def test_a_name_without_its_terminator_is_rejected():
    data = small_rig_bytes()
    names = u64(data, NAMES_OFF)
    end = names + u64(data, NAMES_SIZE) - 1
    assert_rejected(patched("<B", end, ord("x")), "shape name 2 is missing")


def test_an_empty_name_is_rejected():
    data = small_rig_bytes()
    assert_rejected(patched("<B", u64(data, NAMES_OFF), 0), "empty")
