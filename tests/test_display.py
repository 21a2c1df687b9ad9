"""show_source renders the package's real code."""

import pytest

from book_utils.display import show_source
from book_utils.losses import discriminator_loss, generator_loss_nonsaturating


def test_show_source_holds_the_code_and_its_objective_banner():
    text = show_source(discriminator_loss, generator_loss_nonsaturating).data
    assert text.startswith("```python\ndef discriminator_loss(")
    assert "# D: max_D  E_x[log D(x)] + E_z[log(1 - D(G(z)))]" in text
    assert "# G, non-saturating (a deviation from the minimax game)" in text
    assert text.rstrip().endswith("```")


def test_show_source_needs_something_to_show():
    with pytest.raises(ValueError):
        show_source()
