#!/usr/bin/env bash
# Set up .venv (with the site's MathJax), execute every chapter in full mode and render
# the site to _build/html.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh book
export BOOK_MODE="${BOOK_MODE:-full}"
.venv/bin/jupyter-book build . -W -n --keep-going
echo "The book is in _build/html/index.html"
