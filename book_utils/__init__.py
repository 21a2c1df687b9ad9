"""book_utils: the small, tested package that the chapters of the book import."""

from book_utils.runtime import (
    autocast,
    budget,
    get_device,
    get_mode,
    override,
    retrain_requested,
    set_seed,
)

__all__ = [
    "autocast",
    "budget",
    "get_device",
    "get_mode",
    "override",
    "retrain_requested",
    "set_seed",
]
