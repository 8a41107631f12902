#!/usr/bin/env bash
# Creates (or reuses) the project's Python 3.10 virtual environment and
# installs the pinned stack into it. Sourced by run-main.sh and run-tests.sh.
#
#   VREC_PYTHON  interpreter to build the venv with (default: a Python 3.10)
#   VREC_VENV    where the venv lives (default: <repo>/.venv)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VREC_VENV:-$REPO_ROOT/.venv}"

find_python() {
  if [[ -n "${VREC_PYTHON:-}" ]]; then
    echo "$VREC_PYTHON"; return
  fi
  local candidate
  for candidate in python3.10 /root/.pyenv/versions/3.10.*/bin/python3.10 \
                   "$HOME"/.pyenv/versions/3.10.*/bin/python3.10 \
                   /usr/bin/python3.10 /usr/local/bin/python3.10; do
    if command -v "$candidate" >/dev/null 2>&1; then
      command -v "$candidate"; return
    fi
  done
  if command -v pyenv >/dev/null 2>&1 && PYENV_VERSION=3.10.13 pyenv which python3.10 >/dev/null 2>&1; then
    PYENV_VERSION=3.10.13 pyenv which python3.10; return
  fi
}

PYTHON="$(find_python || true)"
if [[ -z "$PYTHON" ]]; then
  echo "error: Python 3.10 not found. TFX 1.16 needs Python 3.9 or 3.10." >&2
  echo "Install it (e.g. 'pyenv install 3.10.13') or set VREC_PYTHON=/path/to/python3.10." >&2
  exit 2
fi
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info[:2] in ((3, 9), (3, 10)) else 1)'; then
  echo "error: $PYTHON is $("$PYTHON" --version 2>&1); TFX 1.16 needs Python 3.9 or 3.10." >&2
  exit 2
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "==> Creating virtual environment $VENV with $("$PYTHON" --version 2>&1)"
  "$PYTHON" -m venv "$VENV"
fi

# A dropped connection must not fail a fresh install: the TensorFlow wheel
# alone is 590 MB. pip resumes a cut download (options as environment
# variables, which a pip too old to know them ignores), and a failed install
# is tried again; wheels already downloaded come from pip's cache.
export PIP_RETRIES="${PIP_RETRIES:-10}"
export PIP_RESUME_RETRIES="${PIP_RESUME_RETRIES:-50}"
pip_install() {
  local attempt
  for attempt in 1 2 3; do
    if "$VENV/bin/python" -m pip install --quiet "$@"; then
      return 0
    fi
    echo "==> pip install $* failed (attempt $attempt of 3)" >&2
    [[ $attempt -lt 3 ]] && sleep 15
  done
  return 1
}

# uv installs the same set as pip (requirements-lock.txt constrains both),
# downloading and unpacking in parallel: the whole bootstrap of a fresh venv
# with empty caches takes 67 s against pip's 255 s on this project's 2-core
# machine. Bytecode is compiled at install, as pip does: where
# PYTHONDONTWRITEBYTECODE is set (as on that machine), nothing compiles it
# later, and every process importing TensorFlow and TFX then took 31 s
# instead of 12. pip stays the fallback, e.g. where only pip's own
# configuration reaches a package index.
UV_VERSION=0.13.9
STACK=(-r "$REPO_ROOT/requirements.txt" -r "$REPO_ROOT/requirements-dev.txt"
       -c "$REPO_ROOT/requirements-lock.txt")
uv_install() {
  "$VENV/bin/python" -m uv pip install --quiet --compile-bytecode \
    --python "$VENV/bin/python" "$@"
}

# Reinstall only when the pins or setup.py change, so re-runs start at once.
STAMP="$VENV/.vrec-installed"
WANT="$(cat "$REPO_ROOT"/requirements*.txt "$REPO_ROOT/setup.py" | sha256sum | cut -d' ' -f1)"
if [[ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]]; then
  echo "==> Installing the pinned stack into $VENV (first run: one to two minutes)"
  pip_install --upgrade pip
  if ! { pip_install "uv==$UV_VERSION" && uv_install "${STACK[@]}"; }; then
    echo "==> uv could not install the stack; installing it with pip (about 5 minutes)" >&2
    pip_install "${STACK[@]}"
  fi
  pip_install --no-deps -e "$REPO_ROOT"
  echo "$WANT" > "$STAMP"
fi

# The history-store tests start their own redis-server (serving/testing_redis.py).
# Debian's package, installed once when missing and when this shell may (root,
# apt-get); otherwise those tests skip, or fail under CI=true, naming it.
install_redis_server() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    redis-server >/dev/null 2>&1
}
if ! command -v redis-server >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]] \
    && command -v apt-get >/dev/null 2>&1; then
  echo "==> Installing Debian's redis-server for the history-store tests"
  if ! install_redis_server; then
    # A fresh machine may have no package lists yet.
    apt-get update -qq >/dev/null 2>&1 && install_redis_server \
      || echo "==> Could not install redis-server; its tests will say so" >&2
  fi
fi

# TFRS needs Keras 2; every process the stack starts inherits this.
export TF_USE_LEGACY_KERAS=1
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
export PYTHONWARNINGS="${PYTHONWARNINGS:-ignore::FutureWarning,ignore::DeprecationWarning}"
export PATH="$VENV/bin:$PATH"
