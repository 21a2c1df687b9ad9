"""The training plumbing: divergence detection, resuming, load-or-train, finished checkpoints."""

import time

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.animation import FuncAnimation  # noqa: E402
from torch import nn  # noqa: E402

from book_utils.animation import animate_grids  # noqa: E402
from book_utils.checkpoint import CheckpointMismatchError  # noqa: E402
from book_utils.training import (  # noqa: E402
    RETRAIN_ENV,
    DivergenceError,
    RunPlan,
    check_finite,
    downsample_history,
    finish_run,
    load_finished,
    plan_run,
    retrain_requested,
    run_training,
    save_finished,
)

CONFIG = {"width": 3}
N, BATCH = 12, 3  # 4 steps per epoch


class Recorder:
    """A train_step on a tiny linear model that records which examples each step saw."""

    def __init__(self, interrupt_at: int | None = None, error_at: int | None = None):
        torch.manual_seed(0)
        self.model = nn.Linear(1, 1)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.001, momentum=0.9)
        self.seen: list[list[float]] = []
        self.calls = 0
        self.interrupt_at, self.error_at = interrupt_at, error_at

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.calls == self.interrupt_at:
            raise KeyboardInterrupt
        if self.calls == self.error_at:
            raise RuntimeError("the machine went away")
        self.calls += 1
        self.seen.append(x.flatten().tolist())
        noise = torch.randn(len(x), 1)  # draws from the global generator, like z ~ N(0, I)
        loss = ((self.model(x + noise) - 1) ** 2).mean()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return {"loss": loss.detach()}

    def modules(self):
        return {"model": self.model, "opt": self.opt}


def data() -> torch.Tensor:
    return torch.arange(N, dtype=torch.float32).unsqueeze(1)  # (12, 1): example i is i


def train(rec: Recorder, path, num_steps: int = 10, save_every: int = 4):
    return run_training(
        rec,
        data(),
        num_steps=num_steps,
        batch_size=BATCH,
        seed=1,
        state_path=path,
        model_name="toy",
        config=CONFIG,
        modules=rec.modules(),
        save_every=save_every,
        progress=False,
    )


# --------------------------------------------------------------------------- divergence
def test_check_finite_names_the_step_and_the_loss():
    check_finite(3, loss_d=0.7, loss_g=torch.tensor(1.2))
    with pytest.raises(DivergenceError, match=r"step 41: loss_g is nan.*lower learning rate"):
        check_finite(41, loss_d=0.7, loss_g=float("nan"))
    with pytest.raises(DivergenceError, match="step 5: loss_d is inf"):
        check_finite(5, loss_d=torch.tensor(float("inf")))


def test_training_stops_at_the_first_non_finite_loss(tmp_path):
    def step(x):
        value = float("nan") if step.calls == 6 else 1.0
        step.calls += 1
        return {"loss_d": torch.tensor(0.5), "loss_g": torch.tensor(value)}

    step.calls = 0
    rec = Recorder()
    with pytest.raises(DivergenceError, match="step 6: loss_g is nan"):
        run_training(
            step,
            data(),
            num_steps=40,
            batch_size=BATCH,
            state_path=tmp_path / "last.pt",
            model_name="toy",
            config=CONFIG,
            modules=rec.modules(),
            log_every=25,
            save_every=100,
            progress=False,
        )
    assert step.calls <= 25, "checked at the latest at the next log point"
    assert not (tmp_path / "last.pt").exists(), "a diverged run saves nothing"


# --------------------------------------------------------------------------- resuming
def test_interrupted_run_resumes_without_repeating_steps(tmp_path):
    reference = Recorder()
    done = train(reference, tmp_path / "ref.pt")
    assert done.step == 10 and len(reference.seen) == 10
    assert done.history["step"] == [float(s) for s in range(10)]

    path = tmp_path / "last.pt"
    first = Recorder(interrupt_at=6)
    with pytest.raises(KeyboardInterrupt):
        train(first, path)
    second = Recorder()  # a fresh process: new weights, restored from the file
    resumed = train(second, path)
    assert len(first.seen) == 6 and len(second.seen) == 4, "steps 0-5, then 6-9"
    assert first.seen + second.seen == reference.seen, "same minibatches, same order"
    assert resumed.history == done.history
    assert torch.equal(second.model.weight, reference.model.weight)


def test_crash_resumes_from_last_save_without_repeating_finished_epochs(tmp_path):
    path = tmp_path / "last.pt"
    first = Recorder(error_at=10)  # dies in step 10, in epoch 2; last save after step 8
    with pytest.raises(RuntimeError, match="went away"):
        train(first, path, num_steps=12)
    second = Recorder()
    resumed = train(second, path, num_steps=12)
    assert len(second.seen) == 4, "only epoch 2 (steps 8-11) runs again"
    assert resumed.step == 12
    reference = Recorder()
    train(reference, tmp_path / "ref.pt", num_steps=12)
    assert first.seen[:8] + second.seen == reference.seen
    # Every example is seen once per epoch.
    for epoch in range(3):
        batch = sum(reference.seen[4 * epoch : 4 * epoch + 4], [])
        assert sorted(batch) == [float(i) for i in range(N)]


def test_a_finished_run_does_not_train_again(tmp_path):
    path = tmp_path / "last.pt"
    train(Recorder(), path)
    again = Recorder()
    state = train(again, path)
    assert again.seen == [] and state.step == 10


def test_snapshots_at_start_every_k_steps_and_end():
    rec = Recorder()
    state = run_training(
        rec,
        data(),
        num_steps=10,
        batch_size=BATCH,
        snapshot=lambda: torch.zeros(2, 28, 28),
        snapshot_every=4,
        progress=False,
    )
    assert state.extra["snapshot_steps"] == [0, 4, 8, 10]
    assert len(state.extra["snapshots"]) == 4


def test_probes_are_recorded_with_training_seconds_that_leave_out_their_own_time():
    rec = Recorder()

    def probe():
        time.sleep(0.05)  # an evaluation that costs time, which must not count as training
        return {"weight": rec.model.weight.item(), "calls": torch.tensor(float(rec.calls))}

    state = run_training(
        rec,
        data(),
        num_steps=10,
        batch_size=BATCH,
        probe=probe,
        snapshot_every=4,
        progress=False,
    )
    extra = state.extra
    assert extra["probe_steps"] == [0, 4, 8, 10]
    assert [p["calls"] for p in extra["probes"]] == [0.0, 4.0, 8.0, 10.0]
    assert all(isinstance(p["weight"], float) for p in extra["probes"])
    assert extra["probes"][-1]["weight"] == pytest.approx(rec.model.weight.item())
    seconds = extra["probe_seconds"]
    assert seconds[0] == 0.0 and seconds == sorted(seconds)
    assert extra["train_seconds"] < 0.15, "four probes slept 0.2 s; none of it is training"


def test_probes_continue_across_a_resume_and_old_runs_without_them_are_refused(tmp_path):
    def run(rec, path, with_probe=True):
        return run_training(
            rec,
            data(),
            num_steps=10,
            batch_size=BATCH,
            state_path=path,
            model_name="toy",
            config=CONFIG,
            modules=rec.modules(),
            probe=(lambda: {"calls": float(rec.calls)}) if with_probe else None,
            snapshot_every=4,
            save_every=2,
            progress=False,
        )

    path = tmp_path / "last.pt"
    with pytest.raises(KeyboardInterrupt):
        run(Recorder(interrupt_at=6), path)
    resumed = run(Recorder(), path)
    assert resumed.extra["probe_steps"] == [0, 4, 8, 10]
    assert [p["calls"] for p in resumed.extra["probes"]] == [0.0, 4.0, 2.0, 4.0]
    old = tmp_path / "old.pt"
    with pytest.raises(KeyboardInterrupt):
        run(Recorder(interrupt_at=6), old, with_probe=False)
    with pytest.raises(ValueError, match="without a probe"):
        run(Recorder(), old)


# --------------------------------------------------------------------------- load or train
def test_retrain_switch(monkeypatch):
    monkeypatch.delenv(RETRAIN_ENV, raising=False)
    assert retrain_requested() is False
    monkeypatch.setenv(RETRAIN_ENV, "1")
    assert retrain_requested() is True
    assert retrain_requested(False) is False, "the argument wins over the environment"
    monkeypatch.setenv(RETRAIN_ENV, "maybe")
    with pytest.raises(ValueError, match="BOOK_RETRAIN"):
        retrain_requested()


def test_plan_loads_the_finished_checkpoint_in_full_mode(tmp_path, monkeypatch):
    monkeypatch.setenv("BOOK_MODE", "full")
    monkeypatch.delenv(RETRAIN_ENV, raising=False)
    (tmp_path / "gan.pt").write_bytes(b"x")
    plan = plan_run("gan", CONFIG, checkpoint_dir=tmp_path, runs_dir=tmp_path / "runs")
    assert isinstance(plan, RunPlan)
    assert not plan.train and plan.checkpoint == tmp_path / "gan.pt"
    assert "Loading" in str(plan)


def test_plan_trains_when_asked_or_when_nothing_is_there(tmp_path, monkeypatch):
    monkeypatch.setenv("BOOK_MODE", "full")
    (tmp_path / "gan.pt").write_bytes(b"x")
    monkeypatch.setenv(RETRAIN_ENV, "1")
    plan = plan_run("gan", CONFIG, checkpoint_dir=tmp_path, runs_dir=tmp_path / "runs")
    assert plan.train and plan.checkpoint == tmp_path / "gan.pt"
    assert plan.state_path.parent.parent == tmp_path / "runs"
    assert plan.state_path.parent.name.startswith("gan-")
    monkeypatch.delenv(RETRAIN_ENV)
    plan = plan_run("other", CONFIG, checkpoint_dir=tmp_path, runs_dir=tmp_path / "runs")
    assert plan.train and "No finished checkpoint" in plan.reason
    # New hyperparameters, new run folder: a stopped run is resumed only with its own config.
    changed = plan_run("other", {"width": 4}, checkpoint_dir=tmp_path, runs_dir=tmp_path / "r")
    assert changed.state_path.parent.name != plan.state_path.parent.name


def test_smoke_mode_never_touches_the_finished_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("BOOK_MODE", "smoke")
    monkeypatch.setenv(RETRAIN_ENV, "1")
    (tmp_path / "gan.pt").write_bytes(b"committed")
    plan = plan_run("gan", CONFIG, checkpoint_dir=tmp_path, runs_dir=tmp_path / "runs")
    assert plan.train and plan.checkpoint is None
    assert tmp_path not in plan.state_path.parents
    rec = Recorder()
    state = train(rec, plan.state_path, num_steps=2)
    net = {"model": rec.model}
    assert finish_run(plan, model_name="toy", config=CONFIG, modules=net, training=state) is None
    assert (tmp_path / "gan.pt").read_bytes() == b"committed"


# --------------------------------------------------------------------------- finished checkpoints
def test_finished_checkpoint_round_trip(tmp_path):
    rec = Recorder()
    state = run_training(
        rec,
        data(),
        num_steps=30,
        batch_size=BATCH,
        snapshot=lambda: torch.full((4, 28, 28), 7),
        snapshot_every=10,
        progress=False,
    )
    path = save_finished(
        tmp_path / "toy.pt",
        model_name="toy",
        config=CONFIG,
        modules={"model": rec.model},
        training=state,
        max_points=8,
    )
    fresh = nn.Linear(1, 1)
    loaded = load_finished(path, model_name="toy", config=CONFIG, modules={"model": fresh})
    assert torch.allclose(fresh.weight, rec.model.weight, atol=1e-3)  # stored in float16
    assert fresh.weight.dtype == torch.float32
    assert loaded.step == 30 and len(loaded.history["loss"]) <= 8
    assert loaded.extra["snapshot_steps"] == [0, 10, 20, 30]
    assert all(g.dtype == torch.uint8 for g in loaded.extra["snapshots"])
    with pytest.raises(CheckpointMismatchError, match="holds a 'toy' model"):
        load_finished(path, model_name="other", config=CONFIG, modules={"model": fresh})


def test_finish_run_writes_the_checkpoint_and_drops_the_run_state(tmp_path):
    state_path = tmp_path / "runs" / "last.pt"
    rec = Recorder()
    state = train(rec, state_path, num_steps=4)
    assert state_path.exists()
    plan = RunPlan("toy", True, tmp_path / "toy.pt", state_path, "test")
    net = {"model": rec.model}
    path = finish_run(plan, model_name="toy", config=CONFIG, modules=net, training=state)
    assert path == tmp_path / "toy.pt" and path.exists() and not state_path.exists()


def test_downsample_history_averages_windows():
    history = {"step": [float(i) for i in range(10)], "loss": [1.0] * 5 + [3.0] * 5}
    out = downsample_history(history, max_points=2)
    assert out == {"step": [2.0, 7.0], "loss": [1.0, 3.0]}
    assert downsample_history(history, max_points=100) == history


def test_animate_grids_makes_an_animation():
    grids = [torch.randint(0, 256, (4, 28, 28), dtype=torch.uint8) for _ in range(3)]
    anim = animate_grids(grids, ["a", "b", "c"], nrow=2)
    assert isinstance(anim, FuncAnimation)
    html = anim.to_jshtml()
    assert "<img" in html or "data:image/png" in html
    with pytest.raises(ValueError, match="labels"):
        animate_grids(grids, ["a"])
