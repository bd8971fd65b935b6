"""Copy the three.js files the viewer page needs from npm into pyfacerig/viewer/static/three.

    npm ci --prefix tests/js && python tools/refresh_viewer_js.py [--from tests/js/node_modules/three]

Copies build/three.module.js, build/three.core.js (to static/three/), the add-ons the page imports (GLTFLoader,
OrbitControls) and, following their relative imports, every add-on file they need, plus
three's LICENSE and package.json (for the version).  The version is the one tests/js pins.
"""
from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "pyfacerig" / "viewer" / "static" / "three"
ENTRY_POINTS = ("build/three.module.js", "examples/jsm/loaders/GLTFLoader.js",
                "examples/jsm/controls/OrbitControls.js")
RELATIVE_IMPORT = re.compile(r"""(?:from|import)\s*['"](\.{1,2}/[^'"]+)['"]""")


def needed_files(source: Path) -> list:
    """The entry points and every file reachable from them through relative imports."""
    todo, seen = list(ENTRY_POINTS), []
    while todo:
        relative = todo.pop()
        if relative in seen:
            continue
        seen.append(relative)
        text = (source / relative).read_text(encoding="utf-8")
        for target in RELATIVE_IMPORT.findall(text):
            resolved = (Path(relative).parent / target).as_posix()
            parts = []
            for part in resolved.split("/"):
                if part == "..":
                    parts.pop()
                elif part != ".":
                    parts.append(part)
            todo.append("/".join(parts))
    return sorted(seen)


def shipped_name(relative: str) -> str:
    """Where a file of the npm package goes: build/* at the top (a folder named "build" is
    git-ignored, and scikit-build-core leaves ignored files out of the wheel), examples/jsm/*
    under addons/ (the page's import map maps "three/addons/" there)."""
    if relative.startswith("build/"):
        return relative[len("build/"):]
    if relative.startswith("examples/jsm/"):
        return "addons/" + relative[len("examples/jsm/"):]
    return relative


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", default=str(ROOT / "tests" / "js" / "node_modules" / "three"))
    source = Path(parser.parse_args().source)
    if TARGET.exists():
        shutil.rmtree(TARGET)
    for relative in needed_files(source) + ["LICENSE", "package.json"]:
        target = TARGET / shipped_name(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / relative, target)
        print("copied", relative, "->", target.relative_to(ROOT))


if __name__ == "__main__":
    main()
