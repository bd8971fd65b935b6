"""Stylization: the classical cartoon filter and the user's ONNX stylizer."""
import numpy as np
import pytest
from onnx import TensorProto, helper

from pyfacerig.errors import InvalidInputError, ModelError
from pyfacerig.image_io import load_image
from pyfacerig.landmarks import detect_landmarks
from pyfacerig.stylize import cartoon_filter, stylize


def _negating_model() -> bytes:
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 3, "h", "w"]) for n in ("image", "out")]
    graph = helper.make_graph([helper.make_node("Neg", ["image"], ["out"])], "neg", io[:1], io[1:])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def test_cartoon_keeps_size_and_type(astronaut_rgb):
    out = stylize(astronaut_rgb)
    assert out.shape == astronaut_rgb.shape and out.dtype == np.uint8


def test_cartoon_is_deterministic(astronaut_rgb):
    assert stylize(astronaut_rgb).tobytes() == stylize(astronaut_rgb.copy()).tobytes()


def test_cartoon_flattens_colours(astronaut_rgb):
    # Smoothing + banding: far fewer distinct colours than the photo.
    before = len(np.unique(astronaut_rgb.reshape(-1, 3), axis=0))
    after = len(np.unique(stylize(astronaut_rgb).reshape(-1, 3), axis=0))
    assert after < before / 10


def test_cartoon_draws_dark_outlines_on_the_face_features(astronaut_rgb):
    out = stylize(astronaut_rgb).astype(int)
    eyes = detect_landmarks(astronaut_rgb).points2d[[33, 263]]        # outer eye corners
    x0, x1 = int(eyes[:, 0].min()), int(eyes[:, 0].max())
    y = int(eyes[:, 1].mean())
    band = out[y - 6:y + 6, x0:x1].sum(axis=2)
    skin = out[y + 40:y + 52, x0:x1].sum(axis=2)                           # cheeks below the eyes
    assert band.min() < 0.5 * np.median(skin)


@pytest.mark.parametrize("portrait", ["astronaut", "grace_hopper"])
def test_the_face_is_still_found_in_the_same_place_after_stylization(portrait, astronaut_rgb, grace_hopper_path):
    image = astronaut_rgb if portrait == "astronaut" else load_image(grace_hopper_path)
    photo = detect_landmarks(image)
    cartoon = detect_landmarks(stylize(image))
    shift = np.linalg.norm(cartoon.points2d - photo.points2d, axis=1).mean()
    assert shift < 0.06 * photo.interocular


def test_large_images_are_filtered_at_a_working_size_and_returned_full_size(astronaut_rgb):
    big = np.ascontiguousarray(np.tile(astronaut_rgb, (3, 4, 1)))     # 1536 x 2048
    out = cartoon_filter(big, max_side=512)
    assert out.shape == big.shape


def test_onnx_stylizer_from_bytes_is_used_when_given():
    image = np.random.default_rng(0).integers(0, 256, size=(24, 32, 3), dtype=np.uint8)
    out = stylize(image, model=_negating_model())
    assert np.abs(out.astype(int) - (255 - image.astype(int))).max() <= 1


def test_stylizer_object_is_used_when_given():
    class Grey:
        def stylize(self, image):
            return np.repeat(image.mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2)

    image = np.random.default_rng(0).integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    out = stylize(image, model=Grey())
    assert np.all(out[:, :, 0] == out[:, :, 1])


def test_stylizer_returning_another_size_is_refused():
    class Half:
        def stylize(self, image):
            return image[::2, ::2]

    with pytest.raises(InvalidInputError, match="expected"):
        stylize(np.zeros((8, 8, 3), np.uint8), model=Half())


def test_bad_onnx_stylizer_is_a_model_error():
    with pytest.raises(ModelError):
        stylize(np.zeros((8, 8, 3), np.uint8), model=b"definitely not onnx")


def test_non_rgb_input_is_refused():
    with pytest.raises(InvalidInputError, match="uint8"):
        cartoon_filter(np.zeros((8, 8), np.uint8))
