#!/usr/bin/env bash
# Create the benchmark-only venv with lifetimes 0.11.3 (never a dependency of clm).
# Usage: bash bench/lifetimes_env.sh [VENV_DIR]   (default bench/.venv-lifetimes, git-ignored)
set -euo pipefail
VENV="${1:-$(dirname "$0")/.venv-lifetimes}"
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet "lifetimes==0.11.3"
