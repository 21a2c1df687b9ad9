"""Plumbing for training the GANs of chapters 02 and 03: the parts that are not the lesson.

The training *step* (a D update, then a G update) is written in each chapter, where the
reader can change it. This module runs that step in a loop and takes care of the rest:

* :func:`plan_run` decides whether to load the finished checkpoint or to train;
* :func:`run_training` calls the step over shuffled minibatches, records its scalars
  (losses, D(x), D(G(z))) and fixed-noise sample grids, shows a progress bar, stops with
  a :class:`DivergenceError` at the first NaN or inf, and saves its state every so often
  so that an interrupted run resumes where it stopped;
* :func:`save_finished` and :func:`load_finished` write and read the compact finished
  checkpoint (half-precision weights plus the training history).

Where files go:

* finished checkpoints: ``book_utils/checkpoints/<name>.pt`` (committed with the book);
* progress of a run: ``runs/<name>-<hash of its hyperparameters>/last.pt`` in the book's
  folder (``$BOOK_RUNS_DIR`` overrides it); a new set of hyperparameters starts a new run.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from book_utils.checkpoint import (
    TrainingState,
    config_to_dict,
    load_training_state,
    restore_training_state,
    save_training_state,
)
from book_utils.data import default_data_root, from_signed_unit, iterate_minibatches
from book_utils.runtime import get_mode

__all__ = [
    "CHECKPOINT_DIR",
    "RETRAIN_ENV",
    "DivergenceError",
    "GANTrainConfig",
    "RunPlan",
    "check_finite",
    "default_runs_dir",
    "describe_device",
    "downsample_history",
    "finish_run",
    "load_finished",
    "plan_run",
    "retrain_requested",
    "run_training",
    "save_finished",
    "snapshot_images",
]

RETRAIN_ENV = "BOOK_RETRAIN"  # set to 1 to train even where a finished checkpoint exists
RUNS_ENV = "BOOK_RUNS_DIR"  # where runs save their progress (default: <book>/runs)
CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"

Module = nn.Module | torch.optim.Optimizer
StepFn = Callable[[torch.Tensor], Mapping[str, torch.Tensor | float]]


@dataclass(frozen=True)
class GANTrainConfig:
    num_steps: int = 10_000  # total training steps (one D update and one G update each)
    batch_size: int = 64  # real images per step (and as many fakes)
    lr_g: float = 2e-4  # Adam learning rate of G
    lr_d: float = 2e-4  # Adam learning rate of D
    betas: tuple[float, float] = (0.5, 0.999)  # Adam's (beta1, beta2); beta1 = 0.5 as in DCGAN
    seed: int = 0  # seeds the weights, the noise and the order of the minibatches


# --------------------------------------------------------------------------- divergence
class DivergenceError(RuntimeError):
    """A loss became NaN or infinite: training stopped instead of going on with garbage."""


def check_finite(step: int, **losses: float | torch.Tensor) -> None:
    """Raise :class:`DivergenceError` naming ``step`` and the loss if any value is NaN/inf."""
    for name, value in losses.items():
        value = float(value)
        if not math.isfinite(value):
            raise DivergenceError(
                f"Training diverged at step {step}: {name} is {value}. Try a lower learning "
                "rate (lr_g, lr_d) or a smaller batch of D updates, or go back to the last "
                "saved state: rerunning the training cell resumes from it."
            )


# --------------------------------------------------------------------------- load or train
def retrain_requested(retrain: bool | None = None) -> bool:
    """Whether to train even where a finished checkpoint exists.

    ``retrain`` if given, else ``$BOOK_RETRAIN``: ``1``/``true``/``yes`` or
    ``0``/``false``/``no``/unset.
    """
    if retrain is not None:
        return bool(retrain)
    value = os.environ.get(RETRAIN_ENV, "").strip().lower()
    if value in ("1", "true", "yes"):
        return True
    if value in ("", "0", "false", "no"):
        return False
    raise ValueError(f"{RETRAIN_ENV}={value!r}: set it to 1 (retrain) or 0 (load), or unset it")


def default_runs_dir() -> Path:
    """``$BOOK_RUNS_DIR``, else ``runs/`` in the book's folder, else under the data root."""
    env = os.environ.get(RUNS_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    book_root = Path(__file__).resolve().parent.parent
    if (book_root / "pyproject.toml").exists():  # book_utils lives in a copy of the book
        return book_root / "runs"
    return default_data_root() / "runs"


def config_hash(config: Any) -> str:
    """A short fingerprint of a config (a dataclass, or a mapping of plain values)."""
    text = json.dumps(config_to_dict(config), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class RunPlan:
    """What a chapter does about one model: load its finished checkpoint, or train it."""

    name: str  # the model's name, e.g. "mlp_gan"
    train: bool  # True: train (resuming a stopped run); False: load the finished checkpoint
    checkpoint: Path | None  # the finished checkpoint to load, or to write after training
    state_path: Path | None  # where training saves its progress and resumes from
    reason: str  # one sentence for the reader

    def __str__(self) -> str:
        return self.reason


def plan_run(
    name: str,
    run_config: Any,
    retrain: bool | None = None,
    checkpoint_dir: str | Path = CHECKPOINT_DIR,
    runs_dir: str | Path | None = None,
) -> RunPlan:
    """Decide between loading ``<checkpoint_dir>/<name>.pt`` and training.

    * smoke mode: train a few steps in a fresh temporary folder; the finished checkpoint is
      neither read nor written;
    * full mode, no retrain requested, checkpoint present: load it;
    * full mode otherwise: train (resuming from ``runs/<name>-<hash>/last.pt`` if a run with
      the same hyperparameters was stopped), then write the finished checkpoint.
    """
    checkpoint = Path(checkpoint_dir) / f"{name}.pt"
    if get_mode() == "smoke":
        folder = Path(tempfile.mkdtemp(prefix=f"{name}-smoke-"))
        reason = "Smoke mode: training a few steps; the finished checkpoint is left alone."
        return RunPlan(name, True, None, folder / "last.pt", reason)
    state_path = (
        Path(runs_dir or default_runs_dir()) / f"{name}-{config_hash(run_config)}" / "last.pt"
    )
    if retrain_requested(retrain):
        reason = f"Training (retrain requested); progress is saved in {state_path}."
        return RunPlan(name, True, checkpoint, state_path, reason)
    if checkpoint.exists():
        reason = f"Loading the finished checkpoint {checkpoint.name} (set RETRAIN = True to train)."
        return RunPlan(name, False, checkpoint, None, reason)
    reason = f"No finished checkpoint at {checkpoint}: training; progress is saved in {state_path}."
    return RunPlan(name, True, checkpoint, state_path, reason)


# --------------------------------------------------------------------------- the loop
@torch.no_grad()
def snapshot_images(G: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """G(z) for a fixed noise batch, as uint8 images (N, 28, 28), with G in eval mode."""
    was_training = G.training
    G.eval()
    try:
        device = next(G.parameters()).device
        return from_signed_unit(G(z.to(device)).float().cpu())  # (N, 28, 28) uint8
    finally:
        G.train(was_training)


def describe_device(device: torch.device | str) -> str:
    """A short name for the machine a run trains on, e.g. "CPU, 2 threads"."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "cpu":
        threads = torch.get_num_threads()
        return f"CPU, {threads} thread{'s' if threads > 1 else ''}"
    return device.type


@dataclass
class _Pending:
    """Scalars of recent steps, kept as tensors until the next flush (no sync per step)."""

    steps: list[int] = field(default_factory=list)
    values: list[Mapping[str, torch.Tensor | float]] = field(default_factory=list)

    def flush(self, history: dict[str, list[float]]) -> dict[str, float]:
        """Check every pending value, append it to ``history``; return the last step's values."""
        last: dict[str, float] = {}
        for step, values in zip(self.steps, self.values, strict=True):
            last = {key: float(value) for key, value in values.items()}
            check_finite(step, **last)
            history.setdefault("step", []).append(float(step))
            for key, value in last.items():
                history.setdefault(key, []).append(value)
        self.steps.clear()
        self.values.clear()
        return last


def _detach(value: torch.Tensor | float) -> torch.Tensor | float:
    return value.detach() if isinstance(value, torch.Tensor) else value


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The shuffling of epoch ``epoch``: a function of (seed, epoch) only, so a resumed run
    sees the same order of minibatches as an uninterrupted one."""
    return torch.Generator().manual_seed(seed * 100_003 + epoch)


def run_training(
    train_step: StepFn,
    x: torch.Tensor,
    *,
    num_steps: int,
    batch_size: int,
    seed: int = 0,
    state_path: str | Path | None = None,
    model_name: str = "",
    config: Any = None,
    modules: Mapping[str, Module] | None = None,
    snapshot: Callable[[], torch.Tensor] | None = None,
    probe: Callable[[], Mapping[str, float]] | None = None,
    snapshot_every: int = 0,
    save_every: int = 500,
    log_every: int = 25,
    desc: str = "training",
    progress: bool = True,
) -> TrainingState:
    """Run ``train_step(x_batch)`` for ``num_steps`` minibatches of the data set ``x``.

    ``train_step`` returns a dict of scalars (tensors or floats) that end up in the
    returned ``TrainingState.history``, one entry per step, with ``history["step"]``.
    ``snapshot()``, called every ``snapshot_every`` steps (and at steps 0 and num_steps),
    returns an image grid kept in ``extra["snapshots"]`` with ``extra["snapshot_steps"]``.
    ``probe()``, called at the same steps, returns named measurements of the model (a
    sample quality score, say), kept in ``extra["probes"]`` (one dict per call) with
    ``extra["probe_steps"]`` and ``extra["probe_seconds"]``, the training seconds so far.
    ``extra["train_seconds"]`` counts training only: time spent in ``snapshot`` and
    ``probe`` is left out, so steps per second and seconds-to-quality stay honest.

    With ``state_path`` (and ``model_name``, ``config``, ``modules``: the networks and
    optimisers to save), the state is saved every ``save_every`` steps, at the end, and
    when the run is interrupted (Ctrl-C, "interrupt kernel"); a later call with the same
    arguments resumes from the saved step instead of starting over. Minibatches are drawn
    from a shuffle that depends only on (seed, epoch), so a resumed run sees the same
    data in the same order as an uninterrupted one.
    """
    if num_steps < 0 or batch_size < 1 or len(x) < batch_size:
        raise ValueError(
            "need num_steps >= 0 and 1 <= batch_size <= len(x), "
            f"got {num_steps}, {batch_size}, {len(x)}"
        )
    if state_path is not None and (not model_name or config is None or not modules):
        raise ValueError("saving progress needs model_name, config and modules")
    training = None
    if state_path is not None:
        training = restore_training_state(
            state_path, model_name=model_name, config=config, modules=modules
        )
    if training is None:
        training = TrainingState(
            extra={"snapshots": [], "snapshot_steps": [], "train_seconds": 0.0}
        )
        if probe is not None:
            training.extra.update(probes=[], probe_steps=[], probe_seconds=[])
    elif progress and training.step < num_steps:
        print(f"Resuming from step {training.step} of {num_steps} ({state_path}).")
    extra = training.extra
    extra.setdefault("device", describe_device(x.device))

    if probe is not None and "probes" not in extra:
        raise ValueError(
            f"the saved run in {state_path} was made without a probe; train it afresh "
            "(delete the file, or retrain) to record probes"
        )
    paused = 0.0  # seconds spent in snapshot() and probe(), left out of train_seconds

    def take_snapshot() -> None:
        nonlocal paused
        start = time.perf_counter()
        if snapshot is not None and training.step not in extra["snapshot_steps"]:
            extra["snapshots"].append(snapshot())
            extra["snapshot_steps"].append(training.step)
        if probe is not None and training.step not in extra["probe_steps"]:
            extra["probes"].append({key: float(value) for key, value in probe().items()})
            extra["probe_steps"].append(training.step)
            extra["probe_seconds"].append(extra["train_seconds"])
        paused += time.perf_counter() - start

    def save() -> None:
        if state_path is not None:
            save_training_state(
                state_path, model_name=model_name, config=config, modules=modules, training=training
            )

    steps_per_epoch = len(x) // batch_size
    pending = _Pending()
    bar = tqdm(
        total=num_steps, initial=training.step, desc=desc, disable=not progress, mininterval=5.0
    )
    started = time.perf_counter()
    seconds_before = float(extra.get("train_seconds", 0.0))

    def flush() -> None:
        last = pending.flush(training.history)
        extra["train_seconds"] = seconds_before + time.perf_counter() - started - paused
        if last:
            bar.set_postfix({key: f"{value:.3g}" for key, value in last.items()}, refresh=False)

    try:
        if training.step == 0:
            take_snapshot()
        while training.step < num_steps:
            epoch, skip = divmod(training.step, steps_per_epoch)
            batches = iterate_minibatches(
                len(x), batch_size, generator=_epoch_generator(seed, epoch), device=x.device
            )
            # Resuming mid-epoch: skip the minibatches this epoch has already seen.
            for idx in itertools.islice(batches, skip, None):
                values = train_step(x[idx])
                pending.steps.append(training.step)
                pending.values.append({key: _detach(value) for key, value in values.items()})
                training.step += 1
                bar.update(1)
                step = training.step
                at_end = step == num_steps
                snap = snapshot_every > 0 and step % snapshot_every == 0
                if at_end or snap or step % log_every == 0 or step % save_every == 0:
                    flush()
                if snap or at_end:
                    take_snapshot()
                if at_end or step % save_every == 0:
                    save()
                if at_end:
                    break
    except KeyboardInterrupt:
        # Keep what was done: the next call resumes here. A diverged run is not saved.
        flush()
        save()
        bar.close()
        raise
    bar.close()
    flush()
    return training


# --------------------------------------------------------------------------- finished checkpoints
def downsample_history(history: Mapping[str, list[float]], max_points: int = 2000) -> dict:
    """Average every curve of ``history`` over consecutive windows, to at most max_points."""
    n = max((len(values) for values in history.values()), default=0)
    if n <= max_points:
        return {key: list(values) for key, values in history.items()}
    window = math.ceil(n / max_points)
    out = {}
    for key, values in history.items():
        t = torch.tensor(values, dtype=torch.float64)
        chunks = torch.split(t, window)
        out[key] = [float(chunk.mean()) for chunk in chunks]
    return out


def save_finished(
    path: str | Path,
    *,
    model_name: str,
    config: Any,
    modules: Mapping[str, nn.Module],
    training: TrainingState,
    max_points: int = 2000,
) -> Path:
    """Write the compact finished checkpoint: weights in float16, history, sample grids.

    ``config`` is the model's config (what :func:`load_finished` checks); the curves are
    averaged down to ``max_points`` points and the grids are stored as uint8.
    """
    extra = dict(training.extra)
    extra["snapshots"] = [torch.as_tensor(grid, dtype=torch.uint8) for grid in extra["snapshots"]]
    finished = TrainingState(
        step=training.step,
        history=downsample_history(training.history, max_points),
        extra=extra,
    )
    return save_training_state(
        path, model_name=model_name, config=config, modules=modules, training=finished, half=True
    )


def load_finished(
    path: str | Path,
    *,
    model_name: str,
    config: Any,
    modules: Mapping[str, nn.Module],
    map_location: str | torch.device = "cpu",
) -> TrainingState:
    """Load a finished checkpoint into ``modules`` (e.g. {"G": G}) and return its history.

    Raises ``CheckpointError`` if the file is missing or corrupt, and
    ``CheckpointMismatchError`` if it belongs to another model or config.
    """
    return load_training_state(
        path,
        model_name=model_name,
        config=config,
        modules=modules,
        map_location=map_location,
        restore_rng=False,  # loading a finished model must not reset the reader's RNG
    )


def finish_run(
    plan: RunPlan,
    *,
    model_name: str,
    config: Any,
    modules: Mapping[str, nn.Module],
    training: TrainingState,
) -> Path | None:
    """After training: write the finished checkpoint (if the plan has one), drop the run state.

    Returns the checkpoint's path, or None in smoke mode, where nothing is written.
    """
    if plan.checkpoint is None:
        return None
    path = save_finished(
        plan.checkpoint, model_name=model_name, config=config, modules=modules, training=training
    )
    if plan.state_path is not None:
        # The finished checkpoint holds everything; a later retrain starts from scratch.
        Path(plan.state_path).unlink(missing_ok=True)
    return path
