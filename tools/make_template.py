#!/usr/bin/env python
"""Regenerate pyfacerig's default face template from the real portraits in installed packages.

Usage: python tools/make_template.py [--contact-sheet] [output path]
Default output: pyfacerig/templates/default_template.frt (committed).  With --contact-sheet,
docs/contact_sheet.png is redrawn from the written template.  The sources are listed in
pyfacerig/templates/neutral.py; the method is described in docs/template.md.
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pyfacerig.templates import load  # noqa: E402
from pyfacerig.templates.generate import DEFAULT_PATH, write_default  # noqa: E402


def main(argv: list[str]) -> int:
    args = [a for a in argv[1:] if not a.startswith("--")]
    out = Path(args[0]) if args else DEFAULT_PATH
    path = write_default(out)
    print(f"wrote {path} ({path.stat().st_size} bytes)")
    if "--contact-sheet" in argv:
        from skimage import data
        from pyfacerig import render
        from pyfacerig.templates import contact_sheet
        from pyfacerig.templates.neutral import detect
        template = load(path)
        portrait = data.astronaut()
        texture = render.portrait_skin_texture(template, portrait, detect(portrait), 1024)
        sheet = contact_sheet.make(template, texture, ROOT / "docs" / "contact_sheet.png")
        print(f"wrote {sheet} ({sheet.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
