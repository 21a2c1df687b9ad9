"""Train the MNIST classifier whose features the book's metrics use.

    BOOK_RETRAIN=1 python -m book_utils.metrics.train_classifier   # full budget, then save
    BOOK_MODE=smoke python -m book_utils.metrics.train_classifier     # a few steps, to try it

Writes the model folder ``book_utils/checkpoints/mnist_classifier/`` (half precision, about
half a MB) with the measured test accuracy in its record. Training saves its state every
500 steps (see :class:`book_utils.training.Run`) and resumes from it when restarted.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from book_utils.checkpoint import from_pretrained
from book_utils.data import load_mnist, minibatches, to_signed_unit
from book_utils.models.classifier import ClassifierConfig, MnistClassifier
from book_utils.runtime import budget, get_device, set_seed
from book_utils.training import Run


@dataclass(frozen=True)
class TrainConfig:
    num_epochs: int = 6  # passes over the 60,000 training images
    batch_size: int = 128
    lr: float = 2e-3  # peak learning rate of the one-cycle schedule
    weight_decay: float = 1e-4
    max_shift: int = 2  # random translation of up to this many pixels (augmentation)
    seed: int = 0


def random_shift(
    x: torch.Tensor, max_shift: int, generator: torch.Generator | None = None
) -> torch.Tensor:
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


def train(config: TrainConfig) -> Path | None:
    """Train (or resume), measure the test accuracy, and save the model folder."""
    device = get_device()
    set_seed(config.seed)
    mnist = load_mnist()
    x_train = to_signed_unit(mnist.x_train).to(device)  # (60000, 1, 28, 28)
    y_train = mnist.y_train.to(device)
    x_test = to_signed_unit(mnist.x_test).to(device)
    y_test = mnist.y_test.to(device)
    steps_per_epoch = len(x_train) // config.batch_size
    num_steps = budget(full=config.num_epochs * steps_per_epoch, smoke=5)

    model = MnistClassifier(ClassifierConfig()).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=num_steps)
    run = Run("mnist_classifier", config, model=model, opt=opt, schedule=schedule)
    print(run)
    if run.done:
        return None
    batches = minibatches(len(x_train), config.batch_size, config.seed, run.step, device)
    model.train()
    for step in tqdm(range(run.step, num_steps), initial=run.step, total=num_steps):
        idx = next(batches)
        loss = F.cross_entropy(model(random_shift(x_train[idx], config.max_shift)), y_train[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
        run.log(step, {"loss": loss.detach()})
        if (step + 1) % 500 == 0:
            run.save(step + 1)
    model.half().float()  # the model is stored in half precision: score what is stored
    run.record.figures["test_accuracy"] = accuracy(model, x_test, y_test)
    return run.finish(model)


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description="Train the book's MNIST classifier.").parse_args(argv)
    folder = train(TrainConfig())
    if folder is not None:
        model = from_pretrained(folder)
        print(f"test accuracy {model.record.figures['test_accuracy']:.4f}; saved {folder}")


if __name__ == "__main__":
    main()
