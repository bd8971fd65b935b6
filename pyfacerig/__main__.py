"""``python -m pyfacerig``: the same command line as the ``pyfacerig`` console script."""
import sys

from .cli import main

sys.exit(main())
