"""Takes and the Live Link Face CSV: validation, exact columns, timecodes and round trips."""
import math

import numpy as np
import pytest

from pyfacerig.animate import Take, read_livelink_csv, write_livelink_csv
from pyfacerig.animate.livelink import (LIVELINK_HEADER, LIVELINK_SHAPE_COLUMNS, format_timecode,
                                        parse_timecode)
from pyfacerig.errors import ExportError, LiveLinkFormatError, TakeError
from pyfacerig.templates import ARKIT_SHAPE_NAMES


def random_take(frames=75, fps=30.0, seed=0):
    rng = np.random.default_rng(seed)
    return Take(rng.uniform(0, 1, (frames, 52)), rng.uniform(-0.6, 0.6, (frames, 6)),
                rng.uniform(-0.4, 0.4, (frames, 4)), fps, {"source": "test"})


# ----------------------------------------------------------------------------- Take
def test_take_stores_float32_arrays_of_the_documented_shapes():
    take = random_take(10)
    assert take.weights.shape == (10, 52) and take.weights.dtype == np.float32
    assert take.head_pose.shape == (10, 6) and take.gaze.shape == (10, 4)
    assert take.frame_count == 10 and take.times[3] == pytest.approx(0.1)
    assert take.weight("jawOpen").shape == (10,)


@pytest.mark.parametrize("field, value, message", [
    ("weights", np.zeros((5, 51)), r"weights: must have shape \(T, 52\)"),
    ("head_pose", np.zeros((4, 6)), "head_pose: has 4 frames but weights has 5"),
    ("gaze", np.zeros((5, 3)), r"gaze: must have shape \(T, 4\)"),
    ("weights", np.full((5, 52), np.nan), "weights: contains NaN"),
    ("weights", np.full((5, 52), 1.5), r"must lie in \[0, 1\]"),
    ("fps", 0.0, "fps: must be a positive"),
    ("fps", "fast", "fps: must be a number"),
])
def test_take_refuses_bad_fields_naming_them(field, value, message):
    fields = dict(weights=np.zeros((5, 52)), head_pose=np.zeros((5, 6)), gaze=np.zeros((5, 4)), fps=30.0)
    fields[field] = value
    with pytest.raises(TakeError, match=message):
        Take(**fields)


def test_take_refuses_an_empty_take():
    with pytest.raises(TakeError, match="no frames"):
        Take.neutral(0, 30)


# ----------------------------------------------------------------------------- CSV layout
def test_header_is_live_link_faces_exact_column_list(tmp_path):
    write_livelink_csv(random_take(3), tmp_path / "t.csv")
    header = (tmp_path / "t.csv").read_text().splitlines()[0]
    assert header.startswith("Timecode,BlendShapeCount,EyeBlinkLeft,EyeLookDownLeft,")
    # Live Link Face's order: Apple's, except JawRight/JawLeft and MouthRight/MouthLeft.
    assert ",JawForward,JawRight,JawLeft,JawOpen,MouthClose,MouthFunnel,MouthPucker,MouthRight,MouthLeft," in header
    assert header.endswith(",TongueOut,HeadYaw,HeadPitch,HeadRoll,LeftEyeYaw,LeftEyePitch,LeftEyeRoll,"
                           "RightEyeYaw,RightEyePitch,RightEyeRoll")
    assert len(header.split(",")) == 63
    assert sorted(c.lower() for c in LIVELINK_SHAPE_COLUMNS) == sorted(n.lower() for n in ARKIT_SHAPE_NAMES)


def test_rows_carry_the_timecode_the_count_61_and_the_weights_by_name(tmp_path):
    take = random_take(40)
    write_livelink_csv(take, tmp_path / "t.csv")
    rows = [line.split(",") for line in (tmp_path / "t.csv").read_text().splitlines()[1:]]
    assert [r[0] for r in rows[:2]] == ["00:00:00:00.000", "00:00:00:01.000"]
    assert rows[31][0] == "00:00:01:01.000"
    assert all(r[1] == "61" for r in rows)
    column = LIVELINK_HEADER.index("JawLeft")
    assert float(rows[7][column]) == pytest.approx(take.weight("jawLeft")[7], abs=1e-6)


def test_head_and_eye_angles_are_written_as_degrees_over_180(tmp_path):
    take = Take.neutral(2, 30)
    take.head_pose[:, 0] = math.radians(30)      # yaw 30 degrees
    take.gaze[:, 3] = math.radians(-9)            # right eye pitch
    write_livelink_csv(take, tmp_path / "t.csv")
    row = (tmp_path / "t.csv").read_text().splitlines()[1].split(",")
    assert float(row[LIVELINK_HEADER.index("HeadYaw")]) == pytest.approx(30 / 180)
    assert float(row[LIVELINK_HEADER.index("RightEyePitch")]) == pytest.approx(-9 / 180)
    assert float(row[LIVELINK_HEADER.index("LeftEyeRoll")]) == 0.0


@pytest.mark.parametrize("frame, fps, text", [
    (0, 30, "00:00:00:00.000"), (29, 30, "00:00:00:29.000"), (30, 30, "00:00:01:00.000"),
    (60 * 3600, 60, "01:00:00:00.000"), (45, 60, "00:00:00:45.000"), (1, 29.97, "00:00:00:01.001"),
])
def test_timecodes_are_hh_mm_ss_ff_mmm(frame, fps, text):
    assert format_timecode(frame, fps) == text


def test_timecodes_with_a_recording_clock_offset_parse():
    assert parse_timecode("14:03:52:28.207") == (14 * 3600 + 3 * 60 + 52, pytest.approx(28.207))
    with pytest.raises(LiveLinkFormatError, match="not a timecode"):
        parse_timecode("14:03:52")


# ----------------------------------------------------------------------------- round trip
@pytest.mark.parametrize("fps", [24.0, 25.0, 30.0, 60.0])
def test_csv_round_trip_gives_the_same_take_to_1e4(tmp_path, fps):
    take = random_take(int(2.5 * fps), fps)
    write_livelink_csv(take, tmp_path / "t.csv")
    back = read_livelink_csv(tmp_path / "t.csv")
    assert back.fps == fps
    np.testing.assert_allclose(back.weights, take.weights, atol=1e-4)
    np.testing.assert_allclose(back.head_pose[:, :3], take.head_pose[:, :3], atol=1e-4)
    np.testing.assert_allclose(back.gaze, take.gaze, atol=1e-4)
    assert not back.head_pose[:, 3:].any()        # the format has no head translation


def test_writing_the_same_take_twice_gives_identical_bytes(tmp_path):
    write_livelink_csv(random_take(), tmp_path / "a.csv")
    write_livelink_csv(random_take(), tmp_path / "b.csv")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_a_recorded_take_with_clock_timecode_and_blendshapecount_spelling_reads(tmp_path):
    take = random_take(70, 60.0)
    lines = (write_livelink_csv(take, tmp_path / "t.csv").read_text()).splitlines()
    # As the phone writes it: wall-clock timecode, "BlendshapeCount", CRLF line ends.
    lines[0] = lines[0].replace("BlendShapeCount", "BlendshapeCount")
    for k in range(1, len(lines)):
        frame = k - 1 + 50
        lines[k] = f"14:03:{52 + frame // 60:02d}:{frame % 60:02d}.207" + lines[k][len("00:00:00:00.000"):]
    (tmp_path / "rec.csv").write_text("\r\n".join(lines) + "\r\n")
    back = read_livelink_csv(tmp_path / "rec.csv")
    assert back.fps == 60 and back.frame_count == 70
    assert back.report["duration_s"] == pytest.approx(69 / 60)
    np.testing.assert_allclose(back.weights, take.weights, atol=1e-4)


# ----------------------------------------------------------------------------- bad CSVs
def _csv_with(tmp_path, edit):
    path = write_livelink_csv(random_take(5), tmp_path / "t.csv")
    lines = path.read_text().splitlines()
    edit(lines)
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("edit, message", [
    (lambda ls: ls.__setitem__(0, ls[0].replace(",TongueOut", "")), r"missing columns \['TongueOut'\]"),
    (lambda ls: ls.__setitem__(0, ls[0].replace("JawOpen", "MouthOpen")), r"unknown columns \['MouthOpen'\]"),
    (lambda ls: ls.__setitem__(0, ls[0].replace("JawOpen", "JawLeft")), "duplicate columns"),
    (lambda ls: ls.__setitem__(2, ls[2].rsplit(",", 1)[0]), "line 3: has 62 fields"),
    (lambda ls: ls.__setitem__(2, ls[2].replace(",61,", ",61,abc,", 1).rsplit(",", 1)[0]), "'abc' is not a number"),
    (lambda ls: ls.__setitem__(2, "bad" + ls[2][len("00:00:00:01.000"):]), "'bad' is not a timecode"),
    (lambda ls: ls.__setitem__(3, ls[1]), "line 4: timecode does not increase"),
    (lambda ls: ls.__setitem__(slice(1, None), []), "no frames"),
])
def test_a_csv_with_wrong_columns_or_rows_raises_a_typed_error(tmp_path, edit, message):
    with pytest.raises(LiveLinkFormatError, match=message):
        read_livelink_csv(_csv_with(tmp_path, edit))


def test_unreadable_csv_files_raise_typed_errors(tmp_path):
    with pytest.raises(LiveLinkFormatError, match="no such file"):
        read_livelink_csv(tmp_path / "missing.csv")
    (tmp_path / "binary.csv").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(LiveLinkFormatError, match="not a text"):
        read_livelink_csv(tmp_path / "binary.csv")
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(LiveLinkFormatError, match="is empty"):
        read_livelink_csv(tmp_path / "empty.csv")


def test_a_failed_write_leaves_no_file(tmp_path):
    with pytest.raises(ExportError, match="does not exist"):
        write_livelink_csv(random_take(), tmp_path / "missing" / "t.csv")
    assert list(tmp_path.iterdir()) == []
