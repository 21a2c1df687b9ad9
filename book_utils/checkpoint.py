"""A trained model is a folder: its config, its weights and the record of its training.

    book_utils/checkpoints/dcgan/
        config.json            {"class": "DCGANGenerator", "config": {"latent_dim": 64, ...}}
        model.safetensors      the weights (half precision)
        record.json            steps, seconds, machine, hyperparameters, curves, scores
        snapshots.safetensors  the sample grids recorded during training, if any

JSON and safetensors hold only values and tensors: reading them cannot run code.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import nn

from book_utils.files import atomic_write
from book_utils.models import MODEL_CLASSES

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"  # the book's trained models


class CheckpointError(RuntimeError):
    """A model folder is missing, incomplete, or does not fit the model it names."""


@dataclass
class Record:
    """How a model was trained: what a chapter plots and quotes about it."""

    steps: int = 0  # training steps taken
    seconds: float = 0.0  # training time, leaving out the time spent on snapshots and scores
    cpu_seconds: float = 0.0  # the process's CPU time in training, all its threads together
    machine: str = ""  # where it trained, e.g. "NVIDIA H200" or "CPU, 2 threads"
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    history: dict[str, list[float]] = field(default_factory=dict)  # scalars by step ("step")
    snapshot_steps: list[int] = field(default_factory=list)
    snapshots: list[torch.Tensor] = field(default_factory=list)  # uint8 grids (N, 28, 28)
    scores: dict[str, list[float]] = field(default_factory=dict)  # during training: "step", ...
    figures: dict[str, float] = field(default_factory=dict)  # measured after training


def plain(config: Any) -> dict[str, Any]:
    """A dataclass, or a mapping of them, as a JSON-ready dict (tuples become lists)."""
    return json.loads(json.dumps(config, default=dataclasses.asdict))


def _stored_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """``model``'s weights as a model folder stores them: on the CPU, floating point in half
    precision."""
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    return {k: v.half() if v.is_floating_point() else v for k, v in weights.items()}


def save_pretrained(model: nn.Module, folder: str | Path, record: Record | None = None) -> Path:
    """Write ``model`` (it has a ``config`` dataclass) and its record to ``folder``."""
    name, record, folder = type(model).__name__, record or Record(), Path(folder)
    if name not in MODEL_CLASSES:
        raise ValueError(f"{name} is not in book_utils.models.MODEL_CLASSES; add it there first")
    rest = {key: value for key, value in vars(record).items() if key != "snapshots"}
    files = {
        "config.json": json.dumps({"class": name, "config": plain(model.config)}).encode(),
        "model.safetensors": save(_stored_weights(model)),
        "record.json": json.dumps(rest).encode(),
    }
    if record.snapshots:  # (K, N, 28, 28) uint8
        files["snapshots.safetensors"] = save({"snapshots": torch.stack(record.snapshots).byte()})
    for file, data in files.items():
        atomic_write(folder / file, lambda handle, data=data: handle.write(data))
    return folder


def weights_digest(model: nn.Module) -> str:
    """12 hex digits of the SHA-256 of ``model``'s weights as :func:`save_pretrained` stores
    them (floating point in half precision): a model and its saved copy agree, and a record
    can name the exact network it was measured on."""
    digest = hashlib.sha256()
    for key, value in sorted(_stored_weights(model).items()):
        digest.update(key.encode())
        digest.update(str(tuple(value.shape)).encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:12]


def _read(path: Path) -> Any:
    if not path.is_file():
        raise CheckpointError(
            f"{path.parent} has no {path.name}: the folder is incomplete. Save the model "
            "again (run its chapter with RETRAIN = True) or restore the file."
        )
    try:
        return json.loads(path.read_text()) if path.suffix == ".json" else load_file(path)
    except (ValueError, SafetensorError, OSError) as err:
        raise CheckpointError(f"{path} is corrupt ({err}); restore it or save again") from err


def saved_models(folder: Path | None = None) -> list[str]:
    """The names of the models saved in ``folder`` (default :data:`CHECKPOINT_DIR`): its
    subfolders that hold a config.json, sorted."""
    folder = CHECKPOINT_DIR if folder is None else folder
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if (p / "config.json").is_file())


def from_pretrained(
    name_or_folder: str | Path,
    device: str | torch.device = "cpu",
    model_class: type[nn.Module] | None = None,
) -> nn.Module:
    """Rebuild a saved model in eval mode on ``device``, with its ``record``. A name without
    "/" is a folder of :data:`CHECKPOINT_DIR`; ``model_class`` is the class you expect."""
    folder = Path(name_or_folder)
    if isinstance(name_or_folder, str) and "/" not in name_or_folder:
        folder = CHECKPOINT_DIR / name_or_folder
    if not folder.is_dir():
        known = ", ".join(saved_models())
        raise CheckpointError(f"No saved model at {folder}. The book's models: {known}")
    saved, weights = _read(folder / "config.json"), _read(folder / "model.safetensors")
    cls, config_cls = MODEL_CLASSES.get(saved.get("class"), (None, None))
    if cls is None or (model_class is not None and cls is not model_class):
        wanted = model_class.__name__ if model_class else "model of the book"
        raise CheckpointError(f"{folder} holds a {saved.get('class')}, not a {wanted}")
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in saved["config"].items()}
    try:
        model = cls(config_cls(**fields))
        model.load_state_dict(weights)
    except (TypeError, RuntimeError) as err:
        raise CheckpointError(
            f"The weights in {folder} do not fit the config in its config.json ({err}). "
            "Both must come from one save_pretrained call: save the model again."
        ) from err
    model.record = Record(**_read(folder / "record.json"))
    if (folder / "snapshots.safetensors").exists():
        model.record.snapshots = list(_read(folder / "snapshots.safetensors")["snapshots"])
    return model.to(device).eval()


def trained_settings(model: nn.Module) -> dict[str, dict[str, Any]]:
    """The settings a loaded model was trained with, by group as its record holds them
    ("model", "train", "eval"). The "model" group is completed from the model's config: its
    config.json names every field of the network it holds, while a record written before a
    field existed lacks it. Where both name a field the record wins (a GAN's record holds D's
    settings, its config G's)."""
    settings = plain(model.record.hyperparameters)
    settings["model"] = plain(model.config) | settings.get("model", {})
    return settings


def settings_differences(model: nn.Module, settings: dict[str, Any]) -> dict[str, tuple]:
    """Where a loaded model's :func:`trained_settings` differ from ``settings`` (config
    dataclasses by group, e.g. {"model": UNetConfig(), "train": ...}), in the groups that
    ``settings`` names: {"group.key": (trained with, settings say)}. A field on one side
    only counts as different."""
    trained, wanted, differences = trained_settings(model), plain(settings), {}
    for group, values in wanted.items():
        had = trained.get(group, {})
        for key in [*values, *(key for key in had if key not in values)]:
            old, new = had.get(key, "not recorded"), values.get(key, "not set")
            if old != new:
                differences[f"{group}.{key}"] = (old, new)
    return differences


def print_differences(name: str, model: nn.Module, settings: dict[str, Any]) -> None:
    """Print where and how long ``model`` trained and each setting in which it differs from
    ``settings`` (a chapter's cell), so that a page always says which model it shows."""
    r = model.record
    if r.steps == 0 and "scoring_seconds" in r.figures:  # an evaluation-only run
        minutes = r.figures["scoring_seconds"] / 60
        print(f"{name}: not trained here; scored on {r.machine}, {minutes:,.1f} min")
    else:
        print(f"{name}: trained on {r.machine}, {r.steps:,} steps, {r.seconds / 60:,.1f} min")
    for key, (trained, wanted) in settings_differences(model, settings).items():
        print(f"  {key}: trained with {trained}, this chapter's cell says {wanted}")
