#!/usr/bin/env bash
# Create the book's virtual environment in .venv (once) and install the book into it,
# with the extras named in the first argument (from pyproject.toml):
#   bash scripts/setup.sh             # book_utils alone
#   bash scripts/setup.sh book        # and what executes and builds the book (build_book.sh)
#   bash scripts/setup.sh book,test   # and what runs the tests (test.sh)
# Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

EXTRAS="${1:-}"
if [[ ! "$EXTRAS" =~ ^[a-z,]*$ ]]; then
    echo "usage: bash scripts/setup.sh [EXTRAS], e.g. book or book,test" >&2
    exit 2
fi
TARGET="."
if [ -n "$EXTRAS" ]; then TARGET=".[$EXTRAS]"; fi

PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
if [ ! -x .venv/bin/python ]; then
    echo "Creating .venv with $("$PYTHON" --version)"
    "$PYTHON" -m venv .venv
fi
# pip's output without its "is ignored" notes; a failed install stops the script.
pip_install() {
    .venv/bin/python -m pip install --quiet "$@" 2>&1 | { grep -v "is ignored" || true; }
}
pip_install --upgrade pip
# torch and torchvision first, as a pair, so pip never mixes incompatible builds.
pip_install "torch>=2.2" "torchvision>=0.17"
pip_install -e "$TARGET"
# The site's MathJax (a pinned copy from the npm registry, checked against its integrity
# hash), fetched once into the data folder so that the site typesets equations offline.
if [[ ",$EXTRAS," == *",book,"* ]]; then
    .venv/bin/python _ext/local_mathjax.py
fi
.venv/bin/python -c "import book_utils, torch, torchvision; print('book_utils ready: torch', torch.__version__, 'torchvision', torchvision.__version__)"
