#!/usr/bin/env bash
# Developer build: compiles the C++ core and runtime into the source tree's
# pyfacerig/ so that `PYTHONPATH=$PWD python -m pytest` works without an install.
# Usage: tools/dev_build.sh [python]   (defaults to the python on PATH)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
py=${1:-python}
cmake -S "$here" -B "$here/build/dev" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DPYFACERIG_INPLACE=ON -DPython_EXECUTABLE="$(command -v "$py")" >/dev/null
cmake --build "$here/build/dev" -j 2
