"""The pixel conversions between bytes, [0, 1] and [-1, 1]: exact, and strict about input."""

import pytest
import torch

from book_utils.data import (
    binarize,
    from_signed_unit,
    from_unit,
    signed_to_unit,
    to_signed_unit,
    to_unit,
    unit_to_signed,
)

ALL_BYTES = (torch.arange(4 * 28 * 28) % 256).to(torch.uint8).reshape(4, 28, 28)


def test_signed_unit_round_trip():
    x_signed = to_signed_unit(ALL_BYTES)
    assert x_signed.shape == (4, 1, 28, 28) and x_signed.dtype == torch.float32
    assert x_signed.min() == -1.0 and x_signed.max() == 1.0
    assert torch.equal(from_signed_unit(x_signed), ALL_BYTES)

    out_of_range = torch.tensor([-3.0, -1.0, 0.0, 1.0, 3.0]).reshape(5, 1, 1, 1)
    assert from_signed_unit(out_of_range).flatten().tolist() == [0, 0, 128, 255, 255]
    with pytest.raises(TypeError):
        to_signed_unit(ALL_BYTES.float())
    with pytest.raises(ValueError):
        from_signed_unit(torch.zeros(2, 3, 28, 28))


def test_unit_round_trip():
    p = to_unit(ALL_BYTES)
    assert p.shape == (4, 1, 28, 28) and p.dtype == torch.float32
    assert p.min() == 0.0 and p.max() == 1.0
    assert torch.equal(from_unit(p), ALL_BYTES)

    out_of_range = torch.tensor([-0.5, 0.0, 0.5, 1.0, 1.5]).reshape(5, 1, 1, 1)
    assert from_unit(out_of_range).flatten().tolist() == [0, 0, 128, 255, 255]
    with pytest.raises(TypeError, match="uint8"):
        to_unit(ALL_BYTES.float())
    with pytest.raises(ValueError, match="one channel"):
        from_unit(torch.zeros(2, 3, 28, 28))


def test_the_two_float_ranges_agree():
    x_signed, p = to_signed_unit(ALL_BYTES), to_unit(ALL_BYTES)
    assert torch.equal(unit_to_signed(p), x_signed)  # exactly: what the metrics rely on
    torch.testing.assert_close(signed_to_unit(x_signed), p)
    with pytest.raises(TypeError):
        signed_to_unit(ALL_BYTES)
    with pytest.raises(TypeError):
        unit_to_signed(ALL_BYTES)


def test_a_channel_axis_is_added_only_where_missing():
    rgb = torch.zeros(2, 3, 8, 8, dtype=torch.uint8)
    assert to_unit(rgb).shape == (2, 3, 8, 8)
    assert to_signed_unit(rgb).shape == (2, 3, 8, 8)
    assert to_unit(ALL_BYTES.unsqueeze(1)).shape == (4, 1, 28, 28)


def test_binarize_refuses_bytes():
    with pytest.raises(TypeError, match="to_unit"):
        binarize(ALL_BYTES)
    x = binarize(to_unit(ALL_BYTES), generator=torch.Generator().manual_seed(0))
    assert set(x.unique().tolist()) <= {0.0, 1.0}
