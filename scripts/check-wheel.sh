#!/usr/bin/env bash
# Builds the package as a wheel, installs it with its pinned dependencies into
# a clean virtual environment outside the checkout, and runs the installed
# `vrec` from a directory where the source tree cannot be imported: catches
# packaging gaps (package data, the benchmarks package, entry points).
#
#   scripts/check-wheel.sh [WORKDIR]    (default: a new temporary directory)
#
# Needs the same Python 3.10 as bootstrap.sh and the package registry for the
# first install (about 5 minutes); the MovieLens-100K run takes a few more.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$REPO_ROOT/scripts/bootstrap.sh"
WORKDIR="${1:-$(mktemp -d)}"
mkdir -p "$WORKDIR/wheels" "$WORKDIR/run"

echo "==> Building the wheel into $WORKDIR/wheels"
python -m pip wheel --quiet --no-deps --wheel-dir "$WORKDIR/wheels" "$REPO_ROOT"
WHEEL="$(ls "$WORKDIR"/wheels/vrec-*.whl)"

echo "==> Installing $(basename "$WHEEL") into a clean venv"
"$PYTHON" -m venv "$WORKDIR/venv"
"$WORKDIR/venv/bin/python" -m pip install --quiet "$WHEEL"

# Run from a directory with no project packages in it, so only the installed
# wheel can be imported; the real data is found through VREC_DATA_DIR.
cd "$WORKDIR/run"
export VREC_DATA_DIR="${VREC_DATA_DIR:-$REPO_ROOT/../shared/data}"
VREC="$WORKDIR/venv/bin/vrec"
"$VREC" --help > /dev/null
"$VREC" benchmark --help > /dev/null
"$VREC" run --dataset movielens-100k --workspace "$WORKDIR/run/workspace" --no-demo
echo "==> The installed wheel runs: vrec --help, vrec benchmark --help, vrec run --no-demo"
