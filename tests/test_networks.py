"""ONNX plumbing per stage, with tiny models built here by onnx.helper."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from pyfacerig.errors import InvalidInputError, ModelError
from pyfacerig.landmarks import detect_landmarks
from pyfacerig.networks import (FACE_PARSING_CLASSES, IMAGENET_MEAN, IMAGENET_STD, FaceParser,
                                LandmarkDetector, OnnxFaceParser, OnnxLandmarkDetector, OnnxStylizer,
                                Stylizer, default_providers)


def _model(nodes, inputs, outputs, initializers=()):
    graph = helper.make_graph(nodes, "tiny", inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _input(shape, elem=TensorProto.FLOAT, name="image"):
    return helper.make_tensor_value_info(name, elem, shape)


def _output(shape, name="out"):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _channel_parser(size=64, classes=19):
    """A 1x1 Conv whose classes 1, 2, 3 score the R, G, B channels: argmax = dominant channel."""
    weight = np.zeros((classes, 3, 1, 1), np.float32)
    bias = np.full(classes, -100.0, np.float32)
    for c in range(3):
        weight[c + 1, c, 0, 0] = 1.0
        bias[c + 1] = 0.0
    return _model([helper.make_node("Conv", ["image", "w", "b"], ["out"])],
                  [_input([1, 3, size, size])], [_output([1, classes, size, size])],
                  [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")])


def _negating_stylizer(shape=(1, 3, "h", "w")):
    return _model([helper.make_node("Neg", ["image"], ["out"])], [_input(list(shape))], [_output(list(shape))])


def _fixed_point_landmarker(points_px, size=32):
    """Outputs constant crop-pixel points (plus 0 x the input mean, so the graph uses its input)."""
    n = len(points_px)
    const = np.asarray(points_px, np.float32).reshape(1, n, 3)
    nodes = [helper.make_node("ReduceMean", ["image"], ["m"], keepdims=0),     # (), all axes
             helper.make_node("Mul", ["m", "zero"], ["z"]),
             helper.make_node("Add", ["pts", "z"], ["out"])]
    return _model(nodes, [_input([1, 3, size, size])], [_output([1, n, 3])],
                  [numpy_helper.from_array(const, "pts"), numpy_helper.from_array(np.float32(0), "zero")])


def test_cpu_provider_is_always_used_and_cuda_comes_first_when_present():
    providers = default_providers()
    assert providers[-1] == "CPUExecutionProvider"
    if "CUDAExecutionProvider" in providers:
        assert providers[0] == "CUDAExecutionProvider"


def test_onnx_classes_satisfy_their_interfaces(tmp_path):
    parser = OnnxFaceParser(_channel_parser())
    stylizer = OnnxStylizer(_negating_stylizer())
    detector = OnnxLandmarkDetector(_fixed_point_landmarker([(0, 0, 0)] * 478), face_boxes=lambda im: [])
    assert isinstance(parser, FaceParser)
    assert isinstance(stylizer, Stylizer)
    assert isinstance(detector, LandmarkDetector)


def test_face_parser_labels_follow_the_dominant_colour_at_image_size():
    image = np.zeros((90, 120, 3), np.uint8)
    image[:, :40] = (250, 10, 10)
    image[:, 40:80] = (10, 250, 10)
    image[:, 80:] = (10, 10, 250)
    labels = OnnxFaceParser(_channel_parser()).parse(image)
    assert labels.shape == (90, 120) and labels.dtype == np.uint8
    assert np.all(labels[:, 2:38] == 1) and np.all(labels[:, 42:78] == 2) and np.all(labels[:, 82:] == 3)


def test_face_parser_normalises_with_imagenet_statistics():
    # A grey equal to the ImageNet mean of the red channel normalises R to 0; G and B differ.
    grey = np.full((64, 64, 3), round(IMAGENET_MEAN[0] * 255), np.uint8)
    labels = OnnxFaceParser(_channel_parser()).parse(grey)
    normalised = (grey[0, 0] / 255.0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    assert np.all(labels == 1 + int(np.argmax(normalised)))


def test_face_parser_from_a_file_path(tmp_path):
    path = tmp_path / "parser.onnx"
    path.write_bytes(_channel_parser())
    assert OnnxFaceParser(path).parse(np.full((8, 8, 3), (0, 0, 255), np.uint8)).max() == 3


def test_parser_with_wrong_class_count_is_rejected_at_load():
    with pytest.raises(ModelError, match="19 class channels"):
        OnnxFaceParser(_channel_parser(classes=5))


def test_model_with_one_channel_input_is_rejected_at_load():
    model = _model([helper.make_node("Neg", ["image"], ["out"])], [_input([1, 1, 8, 8])], [_output([1, 1, 8, 8])])
    with pytest.raises(ModelError, match="3 \\(RGB\\) channels"):
        OnnxStylizer(model)


def test_model_with_integer_input_is_rejected_at_load():
    model = _model([helper.make_node("Cast", ["image"], ["out"], to=TensorProto.FLOAT)],
                   [_input([1, 3, 8, 8], elem=TensorProto.INT64)], [_output([1, 3, 8, 8])])
    with pytest.raises(ModelError, match="float32"):
        OnnxStylizer(model)


def test_model_with_nhwc_rank_3_input_is_rejected_at_load():
    model = _model([helper.make_node("Neg", ["image"], ["out"])], [_input([8, 8, 3])], [_output([8, 8, 3])])
    with pytest.raises(ModelError, match="rank 4"):
        OnnxStylizer(model)


def test_garbage_bytes_are_a_model_error():
    with pytest.raises(ModelError, match="cannot be loaded"):
        OnnxStylizer(b"\x00not an onnx protobuf at all\xff" * 10)


def test_missing_model_file_is_named(tmp_path):
    with pytest.raises(ModelError, match="not found.*absent.onnx"):
        OnnxFaceParser(tmp_path / "absent.onnx")


def test_stylizer_round_trips_normalisation_on_dynamic_sizes():
    # Neg in [-1, 1] space is colour inversion: 255 - x, within rounding.
    image = np.random.default_rng(0).integers(0, 256, size=(40, 56, 3), dtype=np.uint8)
    out = OnnxStylizer(_negating_stylizer()).stylize(image)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - (255 - image.astype(int))).max() <= 1


def test_stylizer_with_fixed_size_is_resized_back_to_the_image():
    image = np.full((50, 70, 3), 200, np.uint8)
    out = OnnxStylizer(_negating_stylizer((1, 3, 32, 32))).stylize(image)
    assert out.shape == (50, 70, 3)
    assert np.all(np.abs(out.astype(int) - 55) <= 1)


def test_stylizer_with_wrong_output_channels_is_rejected_at_load():
    model = _model([helper.make_node("ReduceMean", ["image"], ["out"], axes=[1], keepdims=1)],
                   [_input([1, 3, 8, 8])], [_output([1, 1, 8, 8])])
    with pytest.raises(ModelError, match=r"\(1, 3, H, W\)"):
        OnnxStylizer(model)


def test_onnx_models_reject_non_rgb_images():
    with pytest.raises(InvalidInputError, match="uint8"):
        OnnxStylizer(_negating_stylizer()).stylize(np.zeros((8, 8, 3), np.float32))


def test_landmark_crop_coordinates_map_back_to_image_pixels():
    # Box 100 px wide centred on (150, 120), crop_scale 2 -> crop side 200 px shown at 32 px.
    # Crop centre (16, 16) is the box centre; crop corner (0, 0) is (50, 20).
    points = [(16, 16, 4)] + [(0, 0, 0)] * 477
    detector = OnnxLandmarkDetector(_fixed_point_landmarker(points), crop_scale=2.0,
                                    face_boxes=lambda image: [(100, 70, 200, 170)])
    (face,) = detector.detect(np.zeros((300, 300, 3), np.uint8))
    assert face.shape == (478, 3)
    np.testing.assert_allclose(face[0], (150, 120, 4 * 200 / 32))
    np.testing.assert_allclose(face[1], (50, 20, 0))


def test_onnx_landmark_detector_drives_detect_landmarks(astronaut_rgb):
    # A real face box from MediaPipe, landmarks from the ONNX model: the plumbing end to end.
    rng = np.random.default_rng(1)
    points = np.column_stack([rng.uniform(10, 22, (478, 2)), np.zeros(478)])
    detector = OnnxLandmarkDetector(_fixed_point_landmarker(points))
    face = detect_landmarks(astronaut_rgb, detector=detector, min_interocular=1.0)
    x0, y0, x1, y1 = face.bbox
    assert 150 < (x0 + x1) / 2 < 300 and 50 < (y0 + y1) / 2 < 200     # around the astronaut's face


def test_landmark_model_with_wrong_point_count_is_rejected_at_load():
    with pytest.raises(ModelError, match="68 points"):
        OnnxLandmarkDetector(_fixed_point_landmarker([(0, 0, 0)] * 478), num_points=68)


def test_68_point_landmark_model_is_accepted_for_detect_but_not_for_reconstruction(astronaut_rgb):
    detector = OnnxLandmarkDetector(_fixed_point_landmarker([(16, 16, 0)] * 68), num_points=68,
                                    face_boxes=lambda image: [(180, 70, 270, 180)])
    assert detector.detect(astronaut_rgb)[0].shape == (68, 3)
    with pytest.raises(ModelError, match="478"):
        detect_landmarks(astronaut_rgb, detector=detector)


def test_parsing_classes_follow_celebamask_hq_order():
    assert len(FACE_PARSING_CLASSES) == 19
    assert FACE_PARSING_CLASSES[0] == "background" and FACE_PARSING_CLASSES[1] == "skin"
    assert FACE_PARSING_CLASSES[4:6] == ("l_eye", "r_eye") and FACE_PARSING_CLASSES[17] == "hair"
