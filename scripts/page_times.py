"""Each page's execution time, read from a Jupyter Book build's log, slowest first.

    python scripts/page_times.py _build/build.log

Sphinx names each page as it starts reading it ("reading sources... [ 40%] chapters/05_..."),
and MyST-NB logs "Executed notebook in 12.34 seconds" once a notebook page has run.
scripts/build_book.sh prints this table at the end of every build.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

READING = re.compile(r"reading sources\.\.\. \[\s*\d+%\] (\S+)")
EXECUTED = re.compile(r"Executed notebook in ([\d.]+) seconds")


def page_times(log: str) -> dict[str, float]:
    """Seconds of execution of each notebook page named in the build log ``log``."""
    times, page = {}, None
    for line in re.sub(r"\x1b\[[0-9;]*m", "", log).splitlines():
        if match := READING.search(line):
            page = match.group(1)
        elif (match := EXECUTED.search(line)) and page is not None:
            times[page] = float(match.group(1))
    return times


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: python scripts/page_times.py BUILD_LOG")
    times = page_times(Path(sys.argv[1]).read_text(encoding="utf-8", errors="replace"))
    for page, seconds in sorted(times.items(), key=lambda item: -item[1]):
        print(f"{seconds:8.1f} s  {page}")
    print(f"{sum(times.values()):8.1f} s  all {len(times)} executed pages")


if __name__ == "__main__":
    main()
