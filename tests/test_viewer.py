"""`pyfacerig view`: the page in a real headless Chromium, offline, and its small server."""
import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import engine_export
from pyfacerig.build import _to_asset
from pyfacerig.viewer import STATIC_DIR, make_server, shape_groups
from test_cli import PACKAGE_PARENT, run_cli

JS = Path(__file__).parent / "js"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
BACKGROUND = np.array([0x3A, 0x3E, 0x45])    # the page's scene.background


@pytest.fixture(scope="module")
def asset_with_clip(built, tmp_path_factory):
    """The astronaut's avatar with a 2 s clip "talk": the jaw opens fully at 1 s and closes."""
    avatar, folder = built["astronaut"]
    names = list(avatar.shape_names)
    times = np.linspace(0.0, 2.0, 41)
    weights = np.zeros((times.size, len(names)), np.float32)
    weights[:, names.index("jawOpen")] = np.sin(np.pi * times / 2.0)
    weights[:, names.index("eyeBlinkLeft")] = weights[:, names.index("eyeBlinkRight")] = (np.abs(times - 1.5) < 0.1)
    asset = dataclasses.replace(_to_asset(avatar), animations=[engine_export.AnimationClip("talk", times, weights)])
    out = tmp_path_factory.mktemp("viewer") / "astronaut_talk.glb"
    engine_export.write_gltf(asset, out)
    shutil.copyfile(folder / "astronaut.json", out.with_suffix(".json"))
    return out


@pytest.fixture(scope="module")
def served(asset_with_clip):
    """`pyfacerig view ASSET` running as a user runs it; yields its URL."""
    env = dict(os.environ, PYTHONPATH=str(PACKAGE_PARENT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    server = subprocess.Popen([sys.executable, "-P", "-m", "pyfacerig.cli", "view", str(asset_with_clip)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = server.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert match, (line, server.stderr.read() if server.poll() is not None else "")
        yield match.group(0)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            assert server.wait(timeout=20) == 0
        finally:
            server.kill()


@pytest.fixture(scope="module")
def chromium_run(served, tmp_path_factory):
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"Chromium not found at {CHROMIUM} (.ci/run installs Debian's chromium)")
    shots = tmp_path_factory.mktemp("shots")
    run = subprocess.run(["node", str(JS / "viewer_check.mjs"), served, str(shots), "talk"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    (shots / "report.json").write_text(json.dumps(report, indent=1))      # for a look after a failure
    images = {name: np.asarray(Image.open(shots / f"{name}.png").convert("RGB"), np.int16)
              for name in ("neutral", "jawOpen", "clip")}
    return report, images, shots


def head_box(image):
    """(top, bottom, left, right) of the pixels that are not the page's background."""
    ys, xs = np.nonzero(np.abs(image - BACKGROUND).max(axis=2) > 12)
    return ys.min(), ys.max(), xs.min(), xs.max()


def changed_in_mouth_region(before, after):
    """(changed pixels, fraction of them in the head's mouth region, fraction in its upper 40 %).

    The mouth region: the lower half of the head's box on screen, its middle 70 %.
    """
    top, bottom, left, right = head_box(before)
    changed = np.abs(after - before).max(axis=2) > 16
    ys, xs = np.nonzero(changed)
    height, width = bottom - top, right - left
    in_mouth = (ys > top + 0.5 * height) & (np.abs(xs - (left + right) / 2) < 0.35 * width)
    upper = ys < top + 0.4 * height
    return changed.sum(), in_mouth.mean(), upper.mean()


def test_page_loads_offline_with_no_request_leaving_127_0_0_1(chromium_run):
    report, images, _ = chromium_run
    assert report["blocked"] == [] and report["errors"] == []
    top, bottom, left, right = head_box(images["neutral"])
    assert bottom - top > 200 and right - left > 100       # the head is drawn, framed, not a speck


def test_moving_the_jaw_open_slider_changes_the_mouth_region(chromium_run):
    _, images, _ = chromium_run
    count, in_mouth, upper = changed_in_mouth_region(images["neutral"], images["jawOpen"])
    assert count > 1500 and in_mouth > 0.9 and upper < 0.02      # the eyes and brows stay still


def test_playing_a_clip_animates_the_head(chromium_run):
    report, images, _ = chromium_run
    assert report["playing"]["clip"] == "talk" and not report["playing"]["paused"]
    assert report["playing"]["time"] > 0.2 and report["playing"]["frames"] >= report["playing"]["framesBefore"] + 3
    assert float(report["jawOpenSlider"]) == pytest.approx(1.0, abs=0.01)   # scrubbed to 1 s: jaw fully open
    count, in_mouth, _ = changed_in_mouth_region(images["neutral"], images["clip"])
    assert count > 1500 and in_mouth > 0.9


def test_page_has_a_slider_per_shape_in_arkit_groups_textures_and_figures(chromium_run, built):
    report, _, _ = chromium_run
    avatar, _ = built["astronaut"]
    assert sorted(report["sliders"]) == sorted(avatar.shape_names)
    assert report["groups"] == [["Eye left", 7], ["Eye right", 7], ["Jaw", 4], ["Mouth", 23], ["Brows", 5],
                                ["Cheeks", 3], ["Nose", 2], ["Tongue", 1]]
    skin = report["textures"][0]
    assert skin[0] == "skin" and skin[1] >= 512 and skin[1] == skin[2]
    assert "build timings" in report["figures"].lower() and "512 × 512 px" in report["figures"]


def test_shape_groups_follow_arkit_and_keep_unknown_names():
    groups = dict(shape_groups(["jawOpen", "eyeBlinkRight", "eyeBlinkLeft", "mouthSmileLeft", "custom"]))
    assert groups == {"Eye left": ["eyeBlinkLeft"], "Eye right": ["eyeBlinkRight"], "Jaw": ["jawOpen"],
                      "Mouth": ["mouthSmileLeft"], "Other": ["custom"]}


def test_three_js_ships_inside_the_package_with_its_licence():
    three = STATIC_DIR / "three"
    assert "MIT License" in (three / "LICENSE").read_text()
    version = json.loads((three / "package.json").read_text())["version"]
    assert version == json.loads((JS / "package.json").read_text())["dependencies"]["three"]
    for name in ("three.module.js", "three.core.js", "addons/loaders/GLTFLoader.js",
                 "addons/controls/OrbitControls.js"):
        assert (three / name).is_file(), name
    page = (STATIC_DIR / "index.html").read_text() + (STATIC_DIR / "viewer.js").read_text()
    assert "https://" not in page and "http://" not in page


def test_server_refuses_paths_outside_its_folder_and_serves_the_glb_textures(asset_with_clip):
    server = make_server(asset_with_clip)
    site = server.site
    server.server_close()
    assert site.route("/static/../../__init__.py") is None
    assert site.route("/static/three/../../__init__.py") is None
    kind, body = site.route("/api/texture/0")
    assert kind == "image/png" and body[:8] == b"\x89PNG\r\n\x1a\n"
    assert site.route("/asset.glb")[1] == asset_with_clip.read_bytes()
    assert site.info["clips"] == ["talk"]


def test_view_of_a_file_that_is_not_a_glb_is_a_clean_error(tmp_path, asset_with_clip):
    fbx = tmp_path / "npc.fbx"
    fbx.write_bytes(b"Kaydara FBX Binary  \x00")
    result = run_cli("view", fbx)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "not a binary glTF" in result.stderr and "--format glb" in result.stderr
    cut = tmp_path / "cut.glb"
    cut.write_bytes(asset_with_clip.read_bytes()[:5000])
    result = run_cli("view", cut)
    assert result.returncode == 1 and "truncated or corrupt" in result.stderr
