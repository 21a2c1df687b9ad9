"""Run modes, seeding, device choice and the mixed-precision context."""

import pytest
import torch

from book_utils import autocast, budget, get_device, get_mode, set_seed


def test_mode_defaults_to_full(monkeypatch):
    monkeypatch.delenv("BOOK_MODE", raising=False)
    assert get_mode() == "full"
    assert budget(full=1000, smoke=3) == 1000


def test_smoke_mode_picks_smoke_budget(monkeypatch):
    monkeypatch.setenv("BOOK_MODE", "smoke")
    assert get_mode() == "smoke"
    assert budget(full=1000, smoke=3) == 3


def test_unknown_mode_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("BOOK_MODE", "fast")
    with pytest.raises(ValueError, match="BOOK_MODE='fast'.*full.*smoke"):
        get_mode()


def test_same_seed_same_cpu_numbers():
    set_seed(123)
    a = torch.randn(5), torch.rand(3)
    gen_a = set_seed(123)
    b = torch.randn(5), torch.rand(3)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    # The returned generator is seeded too, independently of the global one.
    x = torch.randn(4, generator=gen_a)
    y = torch.randn(4, generator=set_seed(123))
    assert torch.equal(x, y)
    set_seed(124)
    assert not torch.equal(torch.randn(5), a[0])


def test_same_seed_same_training_step():
    def one_step(seed: int) -> torch.Tensor:
        set_seed(seed)
        net = torch.nn.Linear(3, 2)
        opt = torch.optim.Adam(net.parameters(), lr=0.1)
        loss = net(torch.randn(8, 3)).pow(2).mean()
        loss.backward()
        opt.step()
        return net.weight.detach().clone()

    assert torch.equal(one_step(7), one_step(7))


def test_bad_seed_rejected():
    with pytest.raises(ValueError, match="non-negative int"):
        set_seed(-1)


def test_device_is_cpu_here_and_can_be_overridden(monkeypatch):
    monkeypatch.delenv("BOOK_DEVICE", raising=False)
    if not torch.cuda.is_available():
        assert get_device().type in {"cpu", "mps"}
    monkeypatch.setenv("BOOK_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")
    assert get_device("meta") == torch.device("meta")


def test_autocast_is_a_no_op_on_cpu():
    a = torch.randn(4, 4)
    with autocast("cpu"):
        out = a @ a
    assert out.dtype == torch.float32
    assert torch.equal(out, a @ a)
