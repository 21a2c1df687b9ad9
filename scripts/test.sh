#!/usr/bin/env bash
# Set up .venv and run every test: lint, the book_utils unit tests, the .ipynb sync
# check, a site build in smoke mode that executes every chapter once (each chapter has
# its own test) and fails on any warning, and the built site opened in headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

# The browser test drives Debian's Chromium (playwright's own browser download is not
# used). Install it once, as root or through sudo, if it is missing.
if [ ! -x "${BOOK_CHROMIUM:-/usr/bin/chromium}" ]; then
    if command -v apt-get > /dev/null; then
        SUDO=""
        if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
        echo "Installing chromium and chromium-driver with apt-get (for the browser test)"
        if ! { $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
               $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
                   chromium chromium-driver > /dev/null; }; then
            echo "apt-get could not install Chromium: the browser test will fail." >&2
        fi
    else
        echo "No /usr/bin/chromium and no apt-get: the browser test will fail until Chromium" \
            "is installed (set BOOK_CHROMIUM to its path)." >&2
    fi
fi

bash scripts/setup.sh book,test
.venv/bin/ruff check .
BOOK_MODE=smoke .venv/bin/python -m pytest tests "$@"
