"""Convert the book's single-file checkpoints (``book_utils/checkpoints/<name>.pt``, the format
before model folders) into model folders (``book_utils/checkpoints/<name>/``).

    python scripts/convert_checkpoints.py [--delete]

Each ``.pt`` file held ``{"model_name", "config", "state": {<part>: state_dict, "training":
{"step", "history", "extra"}}}``. The weights are copied as they are (they were already
stored in half precision, so they stay the same bit for bit) and the training record gets
named fields. The DCGAN file held two generators: the averaged one becomes ``dcgan/`` and
the last step's one ``dcgan_raw/``. The files are read with ``weights_only=True``. The
last ``.pt`` files are in the book's git history, before the commit that removed them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from book_utils.checkpoint import CHECKPOINT_DIR, Record, save_pretrained
from book_utils.models import MODEL_CLASSES

# file name -> [(part of the state, model class, folder name)]
FILES = {
    "mlp_gan.pt": [("G", "MLPGenerator", "mlp_gan")],
    "dcgan.pt": [("G", "DCGANGenerator", "dcgan"), ("G_raw", "DCGANGenerator", "dcgan_raw")],
    "mnist_classifier.pt": [("model", "MnistClassifier", "mnist_classifier")],
    **{
        f"{name}.pt": [("vae", "VAE", name)]
        for name in ["vae", "vae_2d", "vae_iwae"] + [f"vae_beta{b}" for b in "0p5 1 2 4 8".split()]
    },
}
FIGURES = ("test_ll", "test_ll_se", "test_ll_samples", "test_ll_images")


def record_of(state: dict) -> Record:
    """The training record of an old checkpoint's state, with named fields."""
    if "summary" in state:  # the classifier's file: a summary, no history
        summary = state["summary"]
        return Record(
            steps=summary["num_steps"],
            seconds=summary["seconds_this_run"],
            machine="2-core CPU",
            hyperparameters=state["train_config"],
            figures={"test_accuracy": summary["test_accuracy"]},
        )
    training = state["training"]
    extra = training["extra"]
    scores = {}
    if "probes" in extra:  # the DCGAN's FID, recorded during training
        scores = {
            "step": [float(s) for s in extra["probe_steps"]],
            "seconds": list(extra["probe_seconds"]),
            "fid": [probe["fid"] for probe in extra["probes"]],
        }
    return Record(
        steps=training["step"],
        seconds=extra["train_seconds"],
        machine=extra["device"],
        history=training["history"],
        snapshot_steps=list(extra["snapshot_steps"]),
        snapshots=list(extra["snapshots"]),
        scores=scores,
        figures={key: extra[key] for key in FIGURES if key in extra},
    )


def convert(path: Path) -> list[Path]:
    payload = torch.load(path, map_location="cpu", weights_only=True)
    state, folders = payload["state"], []
    for part, class_name, folder in FILES[path.name]:
        cls, config_cls = MODEL_CLASSES[class_name]
        config = config_cls(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in payload["config"].items()}
        )
        model = cls(config)
        model.load_state_dict(state[part])
        stored = {key: value.dtype for key, value in state[part].items()}
        if any(dtype == torch.float32 for dtype in stored.values()):
            raise SystemExit(f"{path}: {part} is not half precision, so would not stay bit for bit")
        folders.append(save_pretrained(model, CHECKPOINT_DIR / folder, record_of(state)))
    return folders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delete", action="store_true", help="remove each .pt file once converted")
    args = parser.parse_args()
    for name in FILES:
        path = CHECKPOINT_DIR / name
        if not path.exists():
            print(f"{path}: not there, skipped")
            continue
        for folder in convert(path):
            print(f"{path.name} -> {folder.relative_to(CHECKPOINT_DIR.parent)}/")
        if args.delete:
            path.unlink()


if __name__ == "__main__":
    main()
