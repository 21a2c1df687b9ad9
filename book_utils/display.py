"""Show the package's own code inside a chapter, so the page never holds a pasted copy."""

from __future__ import annotations

import inspect
from typing import Any

from IPython.display import Markdown


def show_source(*objects: Any) -> Markdown:
    """The source of functions or classes as a highlighted code block (notebook and site)."""
    if not objects:
        raise ValueError("show_source needs at least one function or class")
    blocks = [inspect.getsource(obj).rstrip() for obj in objects]
    return Markdown("```python\n" + "\n\n\n".join(blocks) + "\n```")
