"""show_source renders the package's real code."""

import inspect

import pytest

from book_utils.display import show_source
from book_utils.losses import discriminator_loss, generator_loss_nonsaturating


def test_show_source_holds_the_code_of_each_function():
    text = show_source(discriminator_loss, generator_loss_nonsaturating).data
    assert text.startswith("```python\ndef discriminator_loss(")
    assert text.endswith("\n```")
    for function in (discriminator_loss, generator_loss_nonsaturating):
        assert inspect.getsource(function).rstrip() in text


def test_show_source_needs_something_to_show():
    with pytest.raises(ValueError):
        show_source()
