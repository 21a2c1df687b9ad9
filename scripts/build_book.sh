#!/usr/bin/env bash
# Set up .venv (with the site's MathJax), execute every chapter in full mode and render
# the site to _build/html.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh book
export BOOK_MODE="${BOOK_MODE:-full}"
mkdir -p _build
# The log is kept in _build/build.log; the table at the end gives each page's time.
status=0
.venv/bin/jupyter-book build . -W -n --keep-going 2>&1 | tee _build/build.log || status=$?
echo "Seconds to execute each page:"
.venv/bin/python scripts/page_times.py _build/build.log
if [ "$status" -ne 0 ]; then exit "$status"; fi
echo "The book is in _build/html/index.html"
