"""Checkpoints: atomic save, safe load, refusing another model, resuming training."""

import dataclasses
import os
import pickle

import pytest
import torch
from torch import nn

from book_utils.checkpoint import (
    CheckpointError,
    CheckpointMismatchError,
    TrainingState,
    load_checkpoint,
    restore_training_state,
    save_checkpoint,
    save_training_state,
)


@dataclasses.dataclass(frozen=True)
class TinyConfig:
    width: int = 4
    sizes: tuple[int, ...] = (1, 2)


def test_round_trip_keeps_tensors_and_values(tmp_path):
    path = tmp_path / "ck.pt"
    net = nn.Linear(3, 4)
    save_checkpoint(
        path, model_name="tiny", config=TinyConfig(), state={"net": net.state_dict(), "step": 5}
    )
    state = load_checkpoint(path, model_name="tiny", config=TinyConfig())
    assert state["step"] == 5
    assert torch.equal(state["net"]["weight"], net.weight.detach())
    assert not list(tmp_path.glob("*.tmp")), "no temporary file is left behind"


def test_half_precision_halves_the_tensors(tmp_path):
    net = nn.Linear(64, 64)
    full = save_checkpoint(
        tmp_path / "a.pt", model_name="m", config={}, state={"net": net.state_dict()}
    )
    half = save_checkpoint(
        tmp_path / "b.pt", model_name="m", config={}, state={"net": net.state_dict()}, half=True
    )
    assert half.stat().st_size < 0.6 * full.stat().st_size
    state = load_checkpoint(half, model_name="m")
    assert state["net"]["weight"].dtype == torch.float16
    fresh = nn.Linear(64, 64)
    fresh.load_state_dict(state["net"])  # copies into float32 parameters
    assert torch.allclose(fresh.weight, net.weight, atol=1e-3)


def test_crash_mid_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "ck.pt"
    save_checkpoint(path, model_name="m", config={}, state={"step": 1})
    before = path.read_bytes()

    def exploding_save(obj, handle):
        handle.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", exploding_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, model_name="m", config={}, state={"step": 2})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt"]


class _Payload:
    """Unpickling this object would create a marker file: code execution."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_pickle_payload_is_refused_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save(
        {"format_version": 1, "model_name": "m", "config": {}, "state": _Payload(str(marker))}, path
    )
    with pytest.raises(CheckpointError, match="Refusing to load"):
        load_checkpoint(path, model_name="m")
    assert not marker.exists()
    # The same goes for a plain pickle file named like a checkpoint.
    plain = tmp_path / "plain.pt"
    plain.write_bytes(pickle.dumps(_Payload(str(marker))))
    with pytest.raises(CheckpointError):
        load_checkpoint(plain, model_name="m")
    assert not marker.exists()


def test_missing_and_corrupt_files_give_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="No checkpoint at .*Train the model first"):
        load_checkpoint(tmp_path / "nope.pt", model_name="m")
    path = tmp_path / "ck.pt"
    save_checkpoint(path, model_name="m", config={}, state={"w": torch.randn(100, 100)})
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="corrupt.*Delete it"):
        load_checkpoint(path, model_name="m")


def test_other_model_or_config_is_refused(tmp_path):
    path = tmp_path / "ck.pt"
    save_checkpoint(path, model_name="dcgan", config=TinyConfig(width=4), state={})
    with pytest.raises(CheckpointMismatchError, match="holds a 'dcgan' model, not 'vae'"):
        load_checkpoint(path, model_name="vae")
    with pytest.raises(CheckpointMismatchError, match="width: checkpoint 4 vs now 8"):
        load_checkpoint(path, model_name="dcgan", config=TinyConfig(width=8))
    # Tuples and lists compare equal after saving.
    load_checkpoint(path, model_name="dcgan", config=TinyConfig(width=4))


def _train(net, opt, steps, start=0):
    losses = []
    for _ in range(start, steps):
        x = torch.randn(16, 3)
        loss = (net(x) - x.sum(1, keepdim=True)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_interrupted_training_resumes_exactly(tmp_path):
    cfg = TinyConfig()
    # One run of 10 steps without interruption.
    torch.manual_seed(0)
    net_a = nn.Linear(3, 1)
    opt_a = torch.optim.Adam(net_a.parameters(), lr=0.01)
    losses_a = _train(net_a, opt_a, 10)

    # The same run stopped after 6 steps, then resumed in a fresh process-like state.
    path = tmp_path / "run.pt"
    torch.manual_seed(0)
    net_b = nn.Linear(3, 1)
    opt_b = torch.optim.Adam(net_b.parameters(), lr=0.01)
    first = _train(net_b, opt_b, 6)
    save_training_state(
        path,
        model_name="tiny",
        config=cfg,
        modules={"net": net_b, "opt": opt_b},
        training=TrainingState(step=6, history={"loss": first}),
    )
    torch.manual_seed(999)  # a new session starts with other random numbers
    net_c = nn.Linear(3, 1)
    opt_c = torch.optim.Adam(net_c.parameters(), lr=0.01)
    resumed = restore_training_state(
        path, model_name="tiny", config=cfg, modules={"net": net_c, "opt": opt_c}
    )
    assert resumed is not None and resumed.step == 6 and resumed.history["loss"] == first
    rest = _train(net_c, opt_c, 10, start=resumed.step)
    assert first + rest == pytest.approx(losses_a, rel=1e-6)
    assert torch.allclose(net_c.weight, net_a.weight)


def test_restore_without_a_file_starts_fresh(tmp_path):
    net = nn.Linear(2, 2)
    assert (
        restore_training_state(
            tmp_path / "none.pt", model_name="m", config={}, modules={"net": net}
        )
        is None
    )
