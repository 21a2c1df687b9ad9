"""Train the MNIST classifier whose features the book's metrics use.

    python -m book_utils.metrics.train_classifier            # full budget, then save
    BOOK_MODE=smoke python -m book_utils.metrics.train_classifier --out /tmp/clf.pt

Writes the committed checkpoint ``book_utils/checkpoints/mnist_classifier.pt`` (half
precision, about 1 MB) with the measured test accuracy. Training saves its state after
every epoch under ``runs/mnist_classifier/`` and resumes from it when restarted.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from book_utils.checkpoint import (
    TrainingState,
    restore_training_state,
    save_checkpoint,
    save_training_state,
)
from book_utils.data import iterate_minibatches, load_mnist, to_signed_unit
from book_utils.metrics.features import CLASSIFIER_CHECKPOINT, CLASSIFIER_NAME
from book_utils.models.classifier import ClassifierConfig, MnistClassifier
from book_utils.runtime import budget, get_device, set_seed


@dataclass(frozen=True)
class TrainConfig:
    num_epochs: int = 6  # passes over the 60,000 training images
    batch_size: int = 128
    lr: float = 2e-3  # peak learning rate of the one-cycle schedule
    weight_decay: float = 1e-4
    max_shift: int = 2  # random translation of up to this many pixels (augmentation)
    seed: int = 0


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by a random whole number of pixels in [-max_shift, max_shift]."""
    n = x.shape[0]
    shifts = torch.randint(-max_shift, max_shift + 1, (n, 2), generator=generator)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, :, 2] = shifts.float() * 2 / x.shape[-1]  # grid units: 2 / width per pixel
    grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)
    # shift x + 1 so that the zeros padding becomes the background value -1
    return F.grid_sample(x + 1, grid, mode="nearest", align_corners=False) - 1


@torch.no_grad()
def accuracy(model: MnistClassifier, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of images classified correctly (eval mode)."""
    model.eval()
    correct = sum(
        (model(xb).argmax(1) == yb).sum().item()
        for xb, yb in zip(torch.split(x, 1000), torch.split(y, 1000), strict=True)
    )
    return correct / len(y)


def train(config: TrainConfig, out: Path, run_dir: Path) -> dict[str, float]:
    """Train (or resume), evaluate on the test set, and save the final checkpoint."""
    device = get_device()
    generator = set_seed(config.seed)
    mnist = load_mnist()
    x_train = to_signed_unit(mnist.x_train).to(device)  # (60000, 1, 28, 28)
    y_train = mnist.y_train.to(device)
    x_test = to_signed_unit(mnist.x_test).to(device)
    y_test = mnist.y_test.to(device)
    num_epochs = budget(full=config.num_epochs, smoke=1)
    steps_per_epoch = len(x_train) // config.batch_size
    num_steps = budget(full=num_epochs * steps_per_epoch, smoke=5)

    model = MnistClassifier(ClassifierConfig()).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=num_steps)
    modules = {"model": model, "opt": opt, "schedule": schedule}
    run_path = run_dir / "last.pt"
    state = restore_training_state(
        run_path, model_name=CLASSIFIER_NAME, config=config, modules=modules
    ) or TrainingState(history={"loss": []})
    if state.step:
        print(f"resuming from step {state.step} of {num_steps}")

    start = time.perf_counter()
    progress = tqdm(total=num_steps, initial=state.step, desc="classifier")
    while state.step < num_steps:
        model.train()
        for idx in iterate_minibatches(len(x_train), config.batch_size, generator=generator):
            idx = idx.to(device)
            x = random_shift(x_train[idx], config.max_shift, generator)
            loss = F.cross_entropy(model(x), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            schedule.step()
            state.history["loss"].append(loss.item())
            state.step += 1
            progress.update()
            if state.step >= num_steps:
                break
        save_training_state(
            run_path, model_name=CLASSIFIER_NAME, config=config, modules=modules, training=state
        )
    progress.close()
    model.half().float()  # the checkpoint is stored in half precision: score what is stored
    test_accuracy = accuracy(model, x_test, y_test)
    summary = {
        "test_accuracy": test_accuracy,
        "num_steps": num_steps,
        "seconds_this_run": time.perf_counter() - start,
    }
    save_checkpoint(
        out,
        model_name=CLASSIFIER_NAME,
        config=ClassifierConfig(),
        state={"model": model.state_dict(), "summary": summary, "train_config": vars(config)},
        half=True,
    )
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train the book's MNIST classifier.")
    parser.add_argument("--out", type=Path, default=CLASSIFIER_CHECKPOINT)
    parser.add_argument("--run-dir", type=Path, default=Path("runs/mnist_classifier"))
    args = parser.parse_args(argv)
    summary = train(TrainConfig(), args.out, args.run_dir)
    print(f"test accuracy {summary['test_accuracy']:.4f}; saved {args.out}")


if __name__ == "__main__":
    main()
