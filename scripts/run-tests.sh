#!/usr/bin/env bash
# Installs the stack (first run only) and runs the whole test suite on
# VREC_TEST_WORKERS pytest-xdist workers (default 2, CI's cores; 0 runs it in
# this process). Extra args go to pytest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$REPO_ROOT"
workers="${VREC_TEST_WORKERS:-2}"
if [[ "$workers" == 0 ]]; then
  exec python -m pytest "$@"
fi
# Units of work are files and shared pipeline runs (tests/scheduling.py).
exec python -m pytest -n "$workers" --dist loadgroup "$@"
