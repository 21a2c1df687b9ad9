"""Checkpoints: saved atomically, loaded safely, checked against the model they belong to.

A checkpoint is one file written by :func:`torch.save` holding only tensors and plain
Python values (numbers, strings, lists, dicts). It is loaded with ``weights_only=True``,
so a file that tries to run code when unpickled is refused instead of executed.

Every checkpoint records the name of the model family and its config. Loading it for a
different model, or with a different config, raises :class:`CheckpointMismatchError`
that says which fields differ.

Training loops use :func:`save_training_state` every so often and
:func:`restore_training_state` at start-up, so an interrupted run (a closed laptop, a
Colab disconnect) resumes from its last checkpoint instead of starting over.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, corrupt or unsafe."""


class CheckpointMismatchError(CheckpointError):
    """A checkpoint was made for another model or another config."""


def config_to_dict(config: Any) -> dict[str, Any]:
    """A dataclass config (or a mapping) as a plain, JSON-like dict."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a dataclass instance or a mapping, got {type(config)}")
    # A JSON round trip turns tuples into lists, so saved and fresh configs compare equal.
    return json.loads(json.dumps(dict(config)))


def _to_half(obj: Any) -> Any:
    """Cast every floating-point tensor inside nested dicts/lists to float16."""
    if isinstance(obj, torch.Tensor):
        return obj.half() if obj.is_floating_point() else obj
    if isinstance(obj, Mapping):
        return {key: _to_half(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_half(value) for value in obj)
    return obj


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, Mapping):
        return {key: _to_cpu(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(value) for value in obj)
    return obj


def save_checkpoint(
    path: str | Path,
    *,
    model_name: str,
    config: Any,
    state: Mapping[str, Any],
    half: bool = False,
) -> Path:
    """Write ``state`` (state dicts, step counters, history...) to ``path`` atomically.

    The file is written to a temporary name in the same folder and renamed into place
    only when complete, so a crash mid-write never leaves a half-written checkpoint.
    ``half=True`` stores floating-point tensors in float16 (half the size on disk).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = _to_cpu(dict(state))
    payload = {
        "format_version": FORMAT_VERSION,
        "model_name": model_name,
        "config": config_to_dict(config),
        "state": _to_half(state) if half else state,
    }
    fd, tmp_name = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o644)  # mkstemp makes files private; checkpoints are shared
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(
    path: str | Path,
    *,
    model_name: str,
    config: Any | None = None,
    map_location: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Load a checkpoint safely and check it belongs to ``model_name`` (and ``config``).

    Returns the ``state`` mapping that was saved. Raises :class:`CheckpointError` for a
    missing, corrupt or unsafe file and :class:`CheckpointMismatchError` for a
    checkpoint of another model or config.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"No checkpoint at {path}. Train the model first (run the chapter in full mode), "
            "or check the path."
        )
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"Refusing to load {path}: it contains Python objects other than tensors and "
            "plain values, which could run arbitrary code. Only load checkpoints written "
            f"by book_utils.checkpoint.save_checkpoint. ({err})"
        ) from err
    except Exception as err:  # truncated zip, bad magic number, wrong file type...
        raise CheckpointError(
            f"Checkpoint {path} is corrupt or not a checkpoint ({type(err).__name__}: {err}). "
            "Delete it and train again (or fetch the checkpoint again)."
        ) from err

    if not isinstance(payload, dict) or payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} is not a book checkpoint (format version {FORMAT_VERSION} expected). "
            "Delete it and train again."
        )
    if payload["model_name"] != model_name:
        raise CheckpointMismatchError(
            f"{path} holds a '{payload['model_name']}' model, not '{model_name}'. "
            "Pick the checkpoint made for this model."
        )
    if config is not None:
        expected = config_to_dict(config)
        saved = payload["config"]
        if saved != expected:
            keys = sorted(set(saved) | set(expected))
            diffs = [
                f"{key}: checkpoint {saved.get(key, '<missing>')!r} vs now "
                f"{expected.get(key, '<missing>')!r}"
                for key in keys
                if saved.get(key, "<missing>") != expected.get(key, "<missing>")
            ]
            raise CheckpointMismatchError(
                f"{path} was made with another '{model_name}' config ("
                + "; ".join(diffs)
                + "). Use the config it was trained with, or retrain."
            )
    return payload["state"]


@dataclass
class TrainingState:
    """Where a training run stands: the next step to run, its history, anything else."""

    step: int = 0
    history: dict[str, list[float]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def save_training_state(
    path: str | Path,
    *,
    model_name: str,
    config: Any,
    modules: Mapping[str, nn.Module | torch.optim.Optimizer],
    training: TrainingState,
    half: bool = False,
) -> Path:
    """Save networks, optimisers, RNG state and progress so training can resume."""
    state: dict[str, Any] = {name: module.state_dict() for name, module in modules.items()}
    state["training"] = {
        "step": training.step,
        "history": training.history,
        "extra": training.extra,
        "torch_rng": torch.get_rng_state(),
    }
    return save_checkpoint(path, model_name=model_name, config=config, state=state, half=half)


def load_training_state(
    path: str | Path,
    *,
    model_name: str,
    config: Any,
    modules: Mapping[str, nn.Module | torch.optim.Optimizer],
    map_location: str | torch.device = "cpu",
    restore_rng: bool = True,
) -> TrainingState:
    """Load a training checkpoint into ``modules`` and return where training stands.

    Networks and optimisers get their saved state; with ``restore_rng`` the CPU random
    generator gets its saved state too (to resume training exactly; leave it off when
    only loading a finished model). Raises :class:`CheckpointError` if the file is
    missing or corrupt, :class:`CheckpointMismatchError` if it lacks one of ``modules``
    or belongs to another model or config.
    """
    state = load_checkpoint(path, model_name=model_name, config=config, map_location=map_location)
    missing = [name for name in modules if name not in state]
    if missing:
        raise CheckpointMismatchError(
            f"{path} has no state for {missing}; it was saved with parts {sorted(state)}."
        )
    for name, module in modules.items():
        module.load_state_dict(state[name])  # float16 values are copied into float32 weights
    training = state.get("training", {})
    if restore_rng and "torch_rng" in training:
        torch.set_rng_state(training["torch_rng"])
    return TrainingState(
        step=int(training.get("step", 0)),
        history={key: list(value) for key, value in training.get("history", {}).items()},
        extra=dict(training.get("extra", {})),
    )


def restore_training_state(
    path: str | Path,
    *,
    model_name: str,
    config: Any,
    modules: Mapping[str, nn.Module | torch.optim.Optimizer],
    map_location: str | torch.device = "cpu",
) -> TrainingState | None:
    """Resume: load a training checkpoint (RNG state included) if ``path`` exists, else None."""
    if not Path(path).exists():
        return None
    return load_training_state(
        path, model_name=model_name, config=config, modules=modules, map_location=map_location
    )
