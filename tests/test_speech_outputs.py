"""Lip-sync outputs: ``pyfacerig speak`` / ``pyfacerig say`` write the clip into the avatar, the
Live Link Face CSV and the viseme sidecar; the CSV round-trips; Blender plays the clip with
the lips shut on a p/b/m and the jaw open on a vowel."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import _speech_truth as truth
import test_animate_clip
from pyfacerig import speak
from pyfacerig.animate import read_livelink_csv, write_livelink_csv
from pyfacerig.animate.speech import write_speech
from pyfacerig.animate.speech.visemes import BILABIALS, OPEN_VOWELS, VISEME_NAMES
from pyfacerig.cli import main
from pyfacerig.errors import ExportError, PyFaceRigError
from pyfacerig.templates import ARKIT_SHAPE_NAMES

pytestmark = pytest.mark.skipif(not truth.available(), reason="libespeak-ng.so.1 (Debian espeak-ng) is not installed")
LINE = "Bob bought a big map of Moab."


@pytest.fixture(scope="module")
def avatar_glb(built):
    _, folder = built["astronaut"]
    return folder / "astronaut.glb"


@pytest.fixture(scope="module")
def said(avatar_glb, tmp_path_factory):
    """`pyfacerig say` run once: (exit code, output folder)."""
    folder = tmp_path_factory.mktemp("say")
    code = main(["say", LINE, "--avatar", str(avatar_glb), "-o", str(folder / "line.glb"),
                 "--csv", str(folder / "line.csv")])
    return code, folder


def test_say_writes_the_wav_the_clip_the_sidecar_and_the_csv(said):
    code, folder = said
    assert code == 0
    assert sorted(p.name for p in folder.iterdir()) == ["line.csv", "line.glb", "line.json", "line.wav"]
    sidecar = json.loads((folder / "line.json").read_text())
    assert sidecar["visemes"] == list(VISEME_NAMES) and sidecar["fps"] == 60.0
    curves = np.array(sidecar["curves"])
    assert curves.shape == (15, sidecar["frames"])
    assert sidecar["method"] == "forced"
    assert [w[0] for w in sidecar["words"]] == ["bob", "bought", "a", "big", "map", "of", "moab"]


def test_speak_on_the_wav_reproduces_the_take_and_the_csv_round_trips(said, avatar_glb, tmp_path):
    _, folder = said
    take = speak(folder / "line.wav", avatar_glb, text=LINE)
    back = read_livelink_csv(folder / "line.csv")
    assert back.frame_count == take.frame_count and back.fps == pytest.approx(60.0)
    assert np.abs(back.weights - take.weights).max() <= 1e-4
    # and once more through our own write
    write_livelink_csv(back, tmp_path / "again.csv")
    assert np.abs(read_livelink_csv(tmp_path / "again.csv").weights - take.weights).max() <= 1e-4


def test_speak_cli_without_transcript_notes_the_recognition(said, avatar_glb, tmp_path, capfd):
    _, folder = said
    code = main(["speak", str(folder / "line.wav"), "--avatar", str(avatar_glb), "-o", str(tmp_path / "r.fbx"),
                 "--fps", "30"])
    assert code == 0
    assert "no transcript" in capfd.readouterr().err
    sidecar = json.loads((tmp_path / "r.json").read_text())
    assert sidecar["method"] == "recognised" and sidecar["fps"] == 30.0
    assert (tmp_path / "r.fbx").stat().st_size > 100_000


def test_bad_audio_fails_the_cli_and_writes_nothing(avatar_glb, tmp_path, capfd):
    (tmp_path / "noise.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    code = main(["speak", str(tmp_path / "noise.wav"), "--avatar", str(avatar_glb), "-o", str(tmp_path / "o.glb"),
                 "--csv", str(tmp_path / "o.csv")])
    assert code == 1
    assert "unreadable WAV" in capfd.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["noise.wav"]


def test_a_failing_writer_leaves_no_output_behind(said, avatar_glb, tmp_path):
    _, folder = said
    take = speak(folder / "line.wav", avatar_glb, text=LINE)
    with pytest.raises(ExportError):
        write_speech(take, avatar_glb, tmp_path / "o.glb", csv_path=tmp_path / "missing" / "o.csv")
    with pytest.raises(PyFaceRigError):
        write_speech(take, tmp_path / "not_there.glb", tmp_path / "o.glb", csv_path=tmp_path / "o.csv")
    assert list(tmp_path.iterdir()) == []


def test_blender_plays_the_speech_clip_with_closed_lips_and_open_vowels(said, tmp_path):
    _, folder = said
    sidecar = json.loads((folder / "line.json").read_text())
    blender_fps = 24.0       # the glTF importer keeps Blender's default scene rate; checked below

    def frames_inside(kinds):
        return [f for p, s, e in sidecar["phones"] if p in kinds
                for f in range(int(s * blender_fps), int(e * blender_fps) + 2) if s <= f / blender_fps < e]
    closures, vowels = frames_inside(BILABIALS), frames_inside(OPEN_VOWELS)
    assert len(closures) >= 4 and len(vowels) >= 4
    shapes = ["jawOpen", "mouthClose", "mouthPressLeft", "mouthFunnel"]
    frames = sorted(set(closures + vowels))
    spec = json.dumps({"paths": [str(folder / "line.glb")], "shapes": shapes, "frames": frames})
    run = subprocess.run([sys.executable, str(Path(test_animate_clip.__file__)), spec],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads([ln for ln in run.stdout.splitlines() if ln.startswith("RESULT ")][-1][7:])
    played = seen[str(folder / "line.glb")]
    assert played["fps"] == pytest.approx(blender_fps)
    assert len(played["fcurves"]) == 52
    take = read_livelink_csv(folder / "line.csv")
    for frame in frames:
        t = frame / blender_fps            # Blender's glTF importer puts time 0 on frame 0
        for name in shapes:
            expected = np.interp(t, take.times, take.weights[:, ARKIT_SHAPE_NAMES.index(name)])
            assert played["values"][str(frame)][name] == pytest.approx(expected, abs=1e-3), (frame, name)
    # What Blender shows: lips shut on every p/b/m frame (the avatar's own inner-lip gap at the
    # weights it plays, within 1 mm), the jaw open on the vowels.  The rest pose's lips already
    # touch (issue #11), so how much mouthClose that takes depends on the avatar, not a fixed floor.
    from pyfacerig.animate.speech.pipeline import avatar_lips
    lips = avatar_lips(folder / "line.glb")
    at = np.array([[np.interp(f / blender_fps, take.times, take.weights[:, k]) for k in range(52)] for f in closures])
    assert np.abs(lips.gap(at)).max() < 1e-3
    assert max(played["values"][str(f)]["jawOpen"] for f in closures) <= 0.08
    assert max(played["values"][str(f)]["jawOpen"] for f in vowels) >= 0.3


def test_the_same_line_gives_byte_identical_files(said, avatar_glb, tmp_path):
    _, folder = said
    contents = []
    for _ in range(2):
        take = speak(folder / "line.wav", avatar_glb, text=LINE)
        paths = write_speech(take, avatar_glb, tmp_path / "o.glb", csv_path=tmp_path / "o.csv")
        contents.append([paths[k].read_bytes() for k in ("asset", "sidecar", "csv")])
    assert contents[0] == contents[1]


def test_say_with_a_bad_avatar_or_destination_writes_nothing(avatar_glb, tmp_path, capfd):
    (tmp_path / "fake.glb").write_bytes(b"not a glb")
    assert main(["say", "Hello there.", "--avatar", str(tmp_path / "fake.glb"), "-o", str(tmp_path / "o.glb")]) == 1
    assert main(["say", "Hello there.", "--avatar", str(avatar_glb), "-o", str(tmp_path / "o.glb"),
                 "--csv", str(tmp_path / "nowhere" / "o.csv")]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake.glb"]
    assert "pyfacerig: error: say:" in capfd.readouterr().err
