#!/usr/bin/env bash
# Set up .venv and run every test: lint, the book_utils unit tests, the .ipynb sync
# check, every chapter executed in smoke mode (nbval), and a site build that fails on
# any warning.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
BOOK_MODE=smoke .venv/bin/python -m pytest tests notebooks --nbval-lax --nbval-current-env "$@"
