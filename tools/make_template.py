#!/usr/bin/env python
"""Regenerate pyfacerig's default face template from the real portraits in installed packages.

Usage: python tools/make_template.py [output path]
Default output: pyfacerig/templates/default_template.frt (committed).  The sources are listed in
pyfacerig/templates/neutral.py; the method is described in docs/template.md.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyfacerig.templates.generate import DEFAULT_PATH, write_default  # noqa: E402


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_PATH
    path = write_default(out)
    print(f"wrote {path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
