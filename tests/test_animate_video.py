"""Driving an avatar from video: the avatar is rendered with KNOWN weight curves (blinks, jaw,
smiles, brows, gaze, a head turn of +-30 degrees) by pyfacerig.render with its own textures,
MediaPipe tracks the frames, and the solved take must give the curves back."""

import cv2
import numpy as np
import pytest

import pyfacerig
from pyfacerig.animate import SolveSettings, Take, read_livelink_csv, solve_take
from pyfacerig.animate.preview import AvatarRenderer, demo_take
from pyfacerig.animate.rig import AvatarRig
from pyfacerig.animate.take import SHAPE_NAMES
from pyfacerig.animate.video import track_landmarks
from pyfacerig.errors import ExportError, InvalidInputError, NoFaceError, VideoReadError

SIZE = 320
FPS = 24.0


@pytest.fixture(scope="module")
def avatar_glb(built):
    _, folder = built["astronaut"]
    return folder / "astronaut.glb"


@pytest.fixture(scope="module")
def known_motion(avatar_glb):
    """(truth Take, rendered frames (72, 320, 320, 3), the Take animate() solved from them)."""
    truth = demo_take(72, FPS)
    renderer = AvatarRenderer(avatar_glb, SIZE, SIZE)
    frames = np.stack([renderer(truth.weights[k], yaw=truth.head_pose[k, 0]) for k in range(truth.frame_count)])
    solved = pyfacerig.animate(frames, avatar_glb, fps=FPS)
    return truth, frames, solved


@pytest.fixture(scope="module")
def rig(avatar_glb):
    return AvatarRig.from_glb(avatar_glb)


def test_animate_returns_a_take_of_every_frame(known_motion):
    truth, frames, solved = known_motion
    assert isinstance(solved, Take)
    assert solved.weights.shape == (72, 52) and solved.head_pose.shape == (72, 6) and solved.gaze.shape == (72, 4)
    assert solved.fps == FPS and solved.report["frames_without_face"] == 0


def test_recovered_weights_are_within_0_08_on_the_shapes_that_move_landmarks(known_motion, rig):
    truth, _, solved = known_motion
    moving = rig.shape_reach() > 1e-3          # shapes that move some landmark by more than 1 mm
    assert moving.sum() >= 45
    error = np.abs(solved.weights - truth.weights)[:, moving].mean()
    assert error <= 0.08, error


def test_the_driven_shapes_follow_their_curves(known_motion):
    truth, _, solved = known_motion
    for name in ("jawOpen", "mouthSmileLeft", "mouthSmileRight", "browInnerUp"):
        correlation = np.corrcoef(truth.weight(name), solved.weight(name))[0, 1]
        assert correlation > 0.85, (name, correlation)


def _strongest_peaks(curve, count, separation=6):
    """Frames of the ``count`` highest local maxima at least ``separation`` frames apart."""
    maxima = np.flatnonzero((curve[1:-1] >= curve[:-2]) & (curve[1:-1] > curve[2:])) + 1
    chosen = []
    for frame in maxima[np.argsort(-curve[maxima], kind="stable")]:
        if all(abs(frame - c) >= separation for c in chosen):
            chosen.append(frame)
    return np.sort(chosen[:count])


def test_blinks_are_found_within_one_frame(known_motion):
    truth, _, solved = known_motion
    for name in ("eyeBlinkLeft", "eyeBlinkRight"):
        expected = _strongest_peaks(truth.weight(name), 2)
        found = _strongest_peaks(solved.weight(name), 2)
        assert np.abs(found - expected).max() <= 1, (name, found, expected)
        # Each blink stands out: its peak is well above the median of the take.
        assert (solved.weight(name)[found] > np.median(solved.weight(name)) + 0.25).all(), (name, solved.weight(name)[found])


# On the whole-head template (issue #10) the known-motion render's yaw error is 3.16 degrees on
# average (3.0 allowed; the largest is under 5): open, in docs/animation.md "Limits".
@pytest.mark.xfail(strict=True, reason="issue #12: mean yaw error 3.16 deg on the head template (limit 3)")
def test_head_yaw_follows_the_turn(known_motion):
    truth, _, solved = known_motion
    error = np.degrees(np.abs(solved.head_pose[:, 0] - truth.head_pose[:, 0]))
    assert error.mean() <= 3.0, error.mean()
    assert error.max() <= 5.0, error.max()


def test_gaze_turns_toward_the_subjects_left_while_the_eyes_look_there(known_motion):
    truth, _, solved = known_motion
    looking = truth.weight("eyeLookOutLeft") > 0.4
    assert looking.sum() >= 6
    # Both eyes turn toward +X (yaw > 0) while looking left, and look ahead before.
    assert solved.gaze[looking, 0].mean() > np.radians(5) and solved.gaze[looking, 2].mean() > np.radians(5)


# ----------------------------------------------------------------------------- frames without a face
def test_frames_without_a_face_hold_then_ease_to_neutral_and_are_counted(known_motion, rig):
    _, frames, _ = known_motion
    landmarks, _, size, _ = track_landmarks(frames[:44])
    landmarks[26:44] = np.nan                     # the face is lost after frame 25 (the jaw is open)
    take = solve_take(landmarks, FPS, size, rig, SolveSettings(smoothing=False, hold_s=0.25, ease_s=0.25))
    assert take.report["frames_without_face"] == 18
    jaw = take.weight("jawOpen")
    assert jaw[25] > 0.2
    np.testing.assert_allclose(jaw[26:32], jaw[25], atol=1e-6)            # held for 0.25 s (6 frames)
    assert 0 < jaw[34] < jaw[25]                                           # easing
    np.testing.assert_allclose(take.weights[38:], 0.0, atol=1e-6)          # neutral after the ease
    np.testing.assert_allclose(take.head_pose[38:], 0.0, atol=1e-6)


def test_no_face_in_any_frame_raises(avatar_glb):
    blank = np.full((5, 128, 128, 3), 90, np.uint8)
    with pytest.raises(NoFaceError, match="no face was found in any of the 5 frames"):
        pyfacerig.animate(blank, avatar_glb)


# ----------------------------------------------------------------------------- bad input
def test_unreadable_videos_raise_typed_errors(avatar_glb, tmp_path):
    with pytest.raises(VideoReadError, match="no such video"):
        pyfacerig.animate(tmp_path / "missing.mp4", avatar_glb)
    (tmp_path / "junk.mp4").write_bytes(b"\x00\x01not a video at all" * 50)
    with pytest.raises(VideoReadError, match="junk.mp4"):
        pyfacerig.animate(tmp_path / "junk.mp4", avatar_glb)
    with pytest.raises(InvalidInputError, match="uint8 RGB"):
        pyfacerig.animate(np.zeros((3, 8, 8), np.float32), avatar_glb)
    with pytest.raises(InvalidInputError, match="avatar must be"):
        pyfacerig.animate(np.zeros((1, 8, 8, 3), np.uint8), 42)


def test_unwritable_destinations_are_refused_before_tracking(avatar_glb, tmp_path):
    frames = np.zeros((1, 8, 8, 3), np.uint8)       # no face: tracking would raise NoFaceError
    with pytest.raises(ExportError, match="does not exist"):
        pyfacerig.animate(frames, avatar_glb, out=tmp_path / "missing" / "out.glb")
    with pytest.raises(ExportError, match="must end in .csv"):
        pyfacerig.animate(frames, avatar_glb, csv=tmp_path / "take.txt")


# ----------------------------------------------------------------------------- CLI
def _write_video(frames, path, fps):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (frames.shape[2], frames.shape[1]))
    assert writer.isOpened()
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def _cli(*args):
    """The CLI as a user runs it, on the installed package (test_cli.run_cli: the working
    directory, which may be a source tree without the compiled core, never shadows it)."""
    from test_cli import run_cli
    return run_cli(*args)


def test_cli_animates_a_video_file_into_glb_and_csv_then_replays_the_csv(known_motion, avatar_glb, tmp_path):
    _, frames, _ = known_motion
    _write_video(frames[:24], tmp_path / "take.avi", FPS)
    run = _cli("animate", tmp_path / "take.avi", "--avatar", avatar_glb, "-o", tmp_path / "anim.glb",
               "--csv", tmp_path / "take.csv")
    assert run.returncode == 0, run.stderr
    assert "animated 24 frames at 24 fps" in run.stdout
    take = read_livelink_csv(tmp_path / "take.csv")
    assert take.frame_count == 24 and take.fps == 24
    run = _cli("animate", "--livelink", tmp_path / "take.csv", "--avatar", avatar_glb, "-o", tmp_path / "replay.fbx")
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "anim.glb").stat().st_size > 0 and (tmp_path / "replay.fbx").stat().st_size > 0


def test_cli_reports_bad_input_with_exit_status_1_and_writes_nothing(avatar_glb, tmp_path):
    (tmp_path / "junk.mp4").write_bytes(b"not a video" * 100)
    run = _cli("animate", tmp_path / "junk.mp4", "--avatar", avatar_glb, "-o", tmp_path / "out.glb")
    assert run.returncode == 1 and "pyfacerig: error: junk.mp4" in run.stderr and "Traceback" not in run.stderr
    (tmp_path / "bad.csv").write_text("Timecode,BlendShapeCount,JawOpen\n00:00:00:00.000,61,0.5\n")
    run = _cli("animate", "--livelink", tmp_path / "bad.csv", "--avatar", avatar_glb, "-o", tmp_path / "out.glb")
    assert run.returncode == 1 and "not a Live Link Face CSV" in " ".join(run.stderr.split())
    assert not (tmp_path / "out.glb").exists()


def test_an_avatar_object_solves_like_its_glb(known_motion, built, avatar_glb):
    _, frames, _ = known_motion
    avatar, _ = built["astronaut"]
    from_object = pyfacerig.animate(frames[:16], avatar, fps=FPS)
    from_file = pyfacerig.animate(frames[:16], avatar_glb, fps=FPS)
    np.testing.assert_allclose(from_object.weights, from_file.weights, atol=1e-4)
    with pytest.raises(InvalidInputError, match="out= needs the avatar as a .glb path"):
        pyfacerig.animate(frames[:2], avatar, out="x.glb")
