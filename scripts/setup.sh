#!/usr/bin/env bash
# Create the book's virtual environment in .venv (once) and install the book into it.
# Used by scripts/build_book.sh and scripts/test.sh; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
if [ ! -x .venv/bin/python ]; then
    echo "Creating .venv with $("$PYTHON" --version)"
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip 2>&1 | grep -v "is ignored" || true
# torch and torchvision first, as a pair, so pip never mixes incompatible builds.
.venv/bin/python -m pip install --quiet "torch>=2.2" "torchvision>=0.17" 2>&1 | grep -v "is ignored" || true
.venv/bin/python -m pip install --quiet -e ".[test]" 2>&1 | grep -v "is ignored" || true
.venv/bin/python -c "import book_utils, torch, torchvision; print('book_utils ready: torch', torch.__version__, 'torchvision', torchvision.__version__)"
