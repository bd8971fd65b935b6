"""Image input: every layout a portrait can arrive in becomes upright (H, W, 3) uint8 RGB."""
import io

import numpy as np
import pytest
from PIL import Image

from pyfacerig.errors import ImageReadError, InvalidInputError
from pyfacerig.image_io import detection_image, load_image


def _encode(pil: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    pil.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def test_path_to_the_real_portrait_gives_rgb_uint8(grace_hopper_path):
    image = load_image(grace_hopper_path)
    assert image.shape == (600, 512, 3) and image.dtype == np.uint8
    assert image.flags.c_contiguous


def test_str_path_and_bytes_give_the_same_pixels(grace_hopper_path):
    from_path = load_image(str(grace_hopper_path))
    from_bytes = load_image(grace_hopper_path.read_bytes())
    np.testing.assert_array_equal(from_path, from_bytes)


def test_exif_orientation_is_applied(astronaut_rgb):
    # Orientation 6 = "rotate 90 degrees clockwise to display": the stored pixels are
    # the upright picture turned counter-clockwise.
    upright = astronaut_rgb[:, :400]            # 512 high, 400 wide
    stored = np.rot90(upright, k=1)             # counter-clockwise: 400 high, 512 wide
    exif = Image.Exif()
    exif[0x0112] = 6
    data = _encode(Image.fromarray(np.ascontiguousarray(stored)), "JPEG", quality=95, exif=exif.tobytes())
    image = load_image(data)
    assert image.shape == upright.shape
    assert np.abs(image.astype(int) - upright.astype(int)).mean() < 3.0


def test_grayscale_array_becomes_three_equal_channels():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    image = load_image(gray)
    assert image.shape == (3, 4, 3)
    for channel in range(3):
        np.testing.assert_array_equal(image[:, :, channel], gray)


def test_grayscale_file_becomes_rgb(astronaut_rgb):
    data = _encode(Image.fromarray(astronaut_rgb).convert("L"), "PNG")
    image = load_image(data)
    assert image.shape == (512, 512, 3)
    np.testing.assert_array_equal(image[:, :, 0], image[:, :, 2])


def test_rgba_is_composited_on_white():
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[0, 0] = (10, 20, 30, 255)   # opaque
    rgba[0, 1] = (10, 20, 30, 0)     # fully transparent
    rgba[1, 0] = (0, 0, 0, 128)      # half-transparent black
    image = load_image(rgba)
    assert tuple(image[0, 0]) == (10, 20, 30)
    assert tuple(image[0, 1]) == (255, 255, 255)
    assert tuple(image[1, 0]) == (127, 127, 127)


def test_rgba_png_file_is_composited_on_white():
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., 3] = 0
    image = load_image(_encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert np.all(image == 255)


def test_16bit_png_is_scaled_to_8_bits():
    values = np.array([[0, 257, 65535], [32896, 1000, 65280]], dtype=np.uint16)
    data = _encode(Image.fromarray(values), "PNG")
    image = load_image(data)
    np.testing.assert_array_equal(image[:, :, 0], [[0, 1, 255], [128, 4, 254]])


def test_uint16_array_is_scaled_to_8_bits():
    image = load_image(np.full((2, 2, 3), 65535, dtype=np.uint16))
    assert image.dtype == np.uint8 and np.all(image == 255)


def test_float_array_in_unit_range_is_scaled():
    image = load_image(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
    np.testing.assert_array_equal(image[0, :, 1], [0, 128, 255])


def test_returned_array_does_not_alias_the_callers(astronaut_rgb):
    image = load_image(astronaut_rgb)
    assert not np.shares_memory(image, astronaut_rgb)


def test_corrupt_bytes_raise_image_read_error(grace_hopper_path):
    data = grace_hopper_path.read_bytes()
    with pytest.raises(ImageReadError, match="corrupt or truncated"):
        load_image(data[: len(data) // 3])


def test_bytes_that_are_not_an_image_raise_image_read_error():
    with pytest.raises(ImageReadError, match="not an image format"):
        load_image(b"this is a text file, not a photo")


def test_missing_file_names_the_path(tmp_path):
    missing = tmp_path / "nobody.jpg"
    with pytest.raises(ImageReadError, match="not found.*nobody.jpg"):
        load_image(missing)


def test_empty_file_is_rejected(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty"):
        load_image(empty)


def test_directory_is_rejected(tmp_path):
    with pytest.raises(ImageReadError, match="directory"):
        load_image(tmp_path)


def test_empty_array_is_an_invalid_input():
    with pytest.raises(InvalidInputError, match="empty"):
        load_image(np.zeros((0, 5, 3), dtype=np.uint8))


def test_nan_in_float_array_is_an_invalid_input():
    image = np.full((4, 4, 3), 0.5)
    image[1, 2, 0] = np.nan
    with pytest.raises(InvalidInputError, match="NaN"):
        load_image(image)


def test_float_array_outside_unit_range_is_rejected():
    with pytest.raises(ImageReadError, match=r"\[0, 1\]"):
        load_image(np.full((2, 2, 3), 255.0))


def test_unsupported_dtype_is_named():
    with pytest.raises(ImageReadError, match="int64"):
        load_image(np.zeros((2, 2, 3), dtype=np.int64))


def test_unsupported_shape_is_named():
    with pytest.raises(ImageReadError, match=r"\(2, 2, 2\)"):
        load_image(np.zeros((2, 2, 2), dtype=np.uint8))


def test_unsupported_source_type_is_named():
    with pytest.raises(ImageReadError, match="list"):
        load_image([[1, 2], [3, 4]])


def test_detection_image_limits_the_longer_side(grace_hopper_path):
    image = load_image(grace_hopper_path)          # 600 x 512
    small, scale = detection_image(image, max_side=300)
    assert small.shape[:2] == (300, 256)
    assert scale == pytest.approx(0.5)


def test_detection_image_keeps_small_images_unchanged(astronaut_rgb):
    small, scale = detection_image(astronaut_rgb, max_side=1024)
    assert small is astronaut_rgb and scale == 1.0


def test_decompression_bomb_header_is_refused_before_decoding():
    # A valid PNG header claiming 100000 x 100000 pixels (10 gigapixels) with no real data.
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    with pytest.raises(ImageReadError, match="too large"):
        load_image(png)
