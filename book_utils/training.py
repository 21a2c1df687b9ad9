"""Saving and resuming a training run, and its record. The loop itself is in the chapters:

    run = Run("mlp_gan", {"model": config, "train": train_config}, G=G, D=D, opt_g=opt_g)
    for step in range(run.step, num_steps):
        run.log(step, train_step(next(batches)))  # keeps the scalars; stops at NaN or inf
        if (step + 1) % 500 == 0:
            run.save(step + 1)  # networks, optimisers, random state and record, atomically
    run.finish(G)  # the model folder book_utils/checkpoints/mlp_gan/

Stopped while it trains (Ctrl-C, or ``kill <pid>``: SIGINT or SIGTERM), a run finishes the
step under way, saves, and raises ``KeyboardInterrupt``; made again, it resumes from there.
A second signal stops it at once (from its last save).

Progress goes to ``<data root>/runs/<name>-<hash of the hyperparameters>/state.pt`` (or under
``$BOOK_RUNS_DIR``); smoke mode writes everything to a fresh temporary folder instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from book_utils.checkpoint import CHECKPOINT_DIR, Record, plain, save_pretrained, saved_models
from book_utils.data import default_data_root
from book_utils.files import atomic_write
from book_utils.runtime import describe_device, get_mode, retrain_names, retrain_requested


def _check_retrain_names() -> None:
    """Refuse a $BOOK_RETRAIN that names a model the book does not have (a typo would
    otherwise retrain nothing)."""
    names = retrain_names()
    if names is None:
        return
    models = set(saved_models(CHECKPOINT_DIR))
    unknown = names - models
    if unknown:
        raise ValueError(
            f"BOOK_RETRAIN names {', '.join(sorted(unknown))}, which is not a model in "
            f"{CHECKPOINT_DIR}: name some of {', '.join(sorted(models))}, or set it to 1 or 0"
        )


class Run:
    """Saves its ``parts`` (networks, optimisers: anything with a ``state_dict``) and, made
    again, restores them. ``done``: the finished model is there, to be loaded.

    ``root``, if given, holds both the saved progress (``root/runs/``) and the finished model
    folders (``root/<name>/``), in every run mode: for scripts that train outside the book.
    """

    stops_on_signal = True  # save and stop at the end of the step on SIGINT or SIGTERM
    quiet_after = 60.0  # seconds without a step after which a signal stops at once

    def __init__(
        self,
        name: str,
        hyperparameters: Any,
        retrain: bool | None = None,
        *,
        root: str | Path | None = None,
        **parts,
    ):
        self.name, self.parts, self.step, config = name, parts, 0, plain(hyperparameters)
        digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:8]
        if root is not None:
            runs, self.folder = Path(root) / "runs", Path(root) / name
        elif get_mode() == "smoke":
            runs = Path(tempfile.mkdtemp(prefix=f"{name}-"))
            self.folder = runs / name
        else:
            runs = Path(os.environ.get("BOOK_RUNS_DIR") or default_data_root()) / "runs"
            self.folder = CHECKPOINT_DIR / name
        self.state_path = runs / f"{name}-{digest}" / "state.pt"
        if root is None and get_mode() == "full":
            _check_retrain_names()
        self.done = self.folder.is_dir() and not retrain_requested(retrain, name)
        networks = [part for part in parts.values() if isinstance(part, nn.Module)]
        device = next(networks[0].parameters()).device if networks else "cpu"
        self.record = Record(machine=describe_device(device), hyperparameters=config)
        self._pending: list[tuple[int, Mapping]] = []  # (step, scalars) not yet recorded
        if not self.done and self.state_path.exists():
            self._restore()
            print(f"Resuming {name} from step {self.step:,} (saved in {self.state_path}).")
        self._seconds, self._clock, self._paused = self.record.seconds, time.perf_counter(), 0.0
        self._cpu_seconds, self._cpu_clock = self.record.cpu_seconds, time.process_time()
        self._cpu_paused = 0.0
        if not self.done and self.step == 0:  # so that a run stopped early restarts clean
            self.save(0)
        self._stop_signal, self._busy_since, self._handlers = None, time.perf_counter(), {}

    def __repr__(self) -> str:
        if self.done and self.folder.parent == CHECKPOINT_DIR:
            return f"{self.name}: loading the trained model book_utils/checkpoints/{self.name}/"
        if self.done:
            return f"{self.name}: loading the trained model {self.folder}"
        return f"{self.name}: training from step {self.step:,}, saving to {self.state_path}"

    def log(self, step: int, values: Mapping[str, torch.Tensor | float]) -> None:
        """Keep the scalars of ``step``; every 25 steps they are checked and their means kept."""
        self._pending.append((step, {k: torch.as_tensor(v).detach() for k, v in values.items()}))
        self._busy_since = time.perf_counter()
        if not self._handlers and self.stops_on_signal:  # from the first step on
            self._catch_stop_signals()
        if len(self._pending) >= 25:
            self._flush()
        if self._stop_signal is not None:
            self._stop_here(step + 1)

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        if pending:  # (steps, keys); float() waits for the GPU once, at the first value
            values = torch.tensor([[float(v) for v in logged.values()] for _, logged in pending])
            bad = (~values.isfinite()).nonzero().tolist()
            if bad:
                row, col = bad[0]
                step, key = pending[row][0], list(pending[0][1])[col]
                raise FloatingPointError(
                    f"Training diverged at step {step}: {key} is {values[row, col].item()}. The "
                    "last save is from before; a lower learning rate starts a new run from 0."
                )
            means = dict(zip(pending[0][1], values.mean(0).tolist(), strict=True))
            for key, value in {"step": pending[-1][0], **means}.items():
                self.record.history.setdefault(key, []).append(value)
            self.record.seconds = self._seconds + time.perf_counter() - self._clock - self._paused
            cpu = time.process_time() - self._cpu_clock - self._cpu_paused
            self.record.cpu_seconds = self._cpu_seconds + cpu

    def snapshot(
        self, step: int, images: Callable[[], torch.Tensor], **scores: Callable[[], float]
    ) -> None:
        """Record ``images()`` (a sample grid) and each named score at ``step``, once, with the
        training seconds so far; their own time is not counted as training."""
        if step in self.record.snapshot_steps:
            return
        self._flush()
        start, start_cpu = time.perf_counter(), time.process_time()
        self._busy_since = float("inf")  # a signal waits for the scores
        try:
            self.record.snapshot_steps.append(step)
            self.record.snapshots.append(images())
            if scores:
                measured = {"step": step, "seconds": self.record.seconds}
                for key, value in {**measured, **{k: f() for k, f in scores.items()}}.items():
                    self.record.scores.setdefault(key, []).append(float(value))
        finally:
            self._paused += time.perf_counter() - start
            self._cpu_paused += time.process_time() - start_cpu
            self._busy_since = time.perf_counter()
        if self._stop_signal is not None:
            self._stop_here(step)

    def _catch_stop_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # Python handles signals in its main thread only
        for number in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(number)
            if previous is not signal.SIG_IGN and previous is not None:
                self._handlers[number] = previous
                signal.signal(number, self._on_signal)

    def _release_signals(self) -> None:
        for number, previous in self._handlers.items():
            signal.signal(number, previous)
        self._handlers = {}

    def _on_signal(self, number: int, frame) -> None:
        quiet = time.perf_counter() - self._busy_since > self.quiet_after
        if self._stop_signal is None and not quiet:  # in the loop: stop after this step
            self._stop_signal = signal.Signals(number).name
            print(
                f"\n{self.name}: {self._stop_signal}; saving after this step, then stopping "
                "(send it again to stop at once, from the last save).",
                flush=True,
            )
            return
        previous = self._handlers.get(number, signal.SIG_DFL)
        self._release_signals()  # not training (or asked twice): what the signal did before
        if callable(previous):
            previous(number, frame)
        else:
            signal.raise_signal(number)

    def _stop_here(self, step: int) -> None:
        self.save(step)
        self._release_signals()
        name, self._stop_signal = self._stop_signal, None
        raise KeyboardInterrupt(
            f"{self.name} stopped by {name} and saved at step {step:,} in {self.state_path}; "
            "run the same code again to resume."
        )

    def save(self, step: int) -> None:
        """Save everything at ``step`` (the next step to run), atomically."""
        self._flush()
        self.step = self.record.steps = step
        state = {name: part.state_dict() for name, part in self.parts.items()}
        state["record"] = vars(self.record)
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
        state["rng"] = [torch.get_rng_state(), *cuda]
        atomic_write(self.state_path, lambda handle: torch.save(state, handle))

    def _restore(self) -> None:
        state = torch.load(self.state_path, map_location="cpu", weights_only=True)
        for name, part in self.parts.items():
            part.load_state_dict(state[name])
        self.record = Record(**state["record"])
        self.step = self.record.steps
        torch.set_rng_state(state["rng"][0])
        if state["rng"][1:] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"][1:])

    def finish(self, model: nn.Module, **more: nn.Module) -> Path:
        """Write ``model`` (and ``more``, each under its own name) as finished model folders
        with the run's record, and drop the saved progress."""
        self._release_signals()
        self._flush()
        if self.record.history:  # the last step trained, plus one
            self.record.steps = self.step = int(self.record.history["step"][-1]) + 1
        for name, part in {self.name: model, **more}.items():
            save_pretrained(part, self.folder.parent / name, self.record)
        self.state_path.unlink(missing_ok=True)
        return self.folder


def ema_with_warmup(decay: float, warmup: float = 10.0) -> Callable:
    """The ``multi_avg_fn`` of ``torch.optim.swa_utils.AveragedModel`` for an exponential
    moving average of the weights whose decay warms up: at the n-th update it is
    min(decay, (1 + n) / (warmup + n)), so that the average forgets its random start in
    tens of updates rather than in thousands, and averages over about 1 / (1 - decay)
    updates once n is large (the rule of TensorFlow's ExponentialMovingAverage when it is
    given the number of updates).

        ema = AveragedModel(model, multi_avg_fn=ema_with_warmup(0.9995))
    """
    if not 0.0 <= decay <= 1.0 or warmup < 1:
        raise ValueError(f"decay must be in [0, 1] and warmup >= 1, got {decay}, {warmup}")

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], n) -> None:
        n = float(n)  # updates so far (AveragedModel's n_averaged)
        d = min(decay, (1 + n) / (warmup + n))
        pairs = list(zip(averaged, current, strict=True))
        floats = [(a, c) for a, c in pairs if a.is_floating_point()]
        if floats:  # averaged <- d averaged + (1 - d) current
            torch._foreach_lerp_([a for a, _ in floats], [c for _, c in floats], 1 - d)
        for a, c in pairs:
            if not a.is_floating_point():  # counters (batch norm's): copied
                a.copy_(c)

    return update
