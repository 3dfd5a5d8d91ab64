#!/usr/bin/env bash
# Set up (scripts/setup.sh), then run the whole test suite in parallel (pytest-xdist).
# Extra arguments go to pytest, e.g.  bash scripts/test.sh -m "not slow"  or  -k golden
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -n auto -q "$@"
