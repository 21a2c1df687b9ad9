"""A small MNIST classifier: the feature extractor behind the book's sample metrics.

FID and its friends compare two sets of images in the feature space of a network trained
to recognise them. For natural images that network is Inception-v3 trained on ImageNet;
for MNIST digits a small convolutional classifier trained on MNIST sees what matters
(stroke shape and digit identity) far better than Inception, which never saw a digit.

Layout: two convolutional stages (each two 3x3 convolutions and a 2x2 max-pool), then a
128-wide fully connected layer whose activations are the *features*, then the 10 logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ClassifierConfig:
    channels: tuple[int, int] = (16, 32)  # width of the two convolutional stages
    feature_dim: int = 128  # size of the penultimate layer (the metric features)
    dropout: float = 0.3  # dropout before the last layer, during training only
    num_classes: int = 10


def conv_stage(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two 3x3 convolutions with batch norm and ReLU, then a 2x2 max-pool (halves H, W)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class MnistClassifier(nn.Module):
    """CNN on (B, 1, 28, 28) images in [-1, 1]; ``features`` gives the metric space."""

    def __init__(self, config: ClassifierConfig = ClassifierConfig()):
        super().__init__()
        self.config = config
        c1, c2 = config.channels
        self.stage1 = conv_stage(1, c1)  # (B, c1, 14, 14)
        self.stage2 = conv_stage(c1, c2)  # (B, c2, 7, 7)
        self.fc = nn.Linear(c2 * 7 * 7, config.feature_dim)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.feature_dim, config.num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer activations, (B, feature_dim)."""
        h = self.stage2(self.stage1(x))  # (B, c2, 7, 7)
        return torch.relu(self.fc(h.flatten(1)))  # (B, feature_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits, (B, num_classes)."""
        return self.head(self.dropout(self.features(x)))
