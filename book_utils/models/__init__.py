"""The networks of the book, one file per model family, and the registry of their classes.

A saved model's ``config.json`` names its class; :data:`MODEL_CLASSES` turns that name
back into the class and its config dataclass, so one loader rebuilds every model.
"""

from book_utils.models.classifier import ClassifierConfig, MnistClassifier
from book_utils.models.dcgan import DCGANConfig, DCGANDiscriminator, DCGANGenerator
from book_utils.models.mlp_gan import MLPDiscriminator, MLPGANConfig, MLPGenerator
from book_utils.models.pixelcnn import PixelCNN, PixelCNNConfig
from book_utils.models.realnvp import RealNVP, RealNVPConfig
from book_utils.models.sngan import SNGANConfig, SNGANDiscriminator, SNGANGenerator
from book_utils.models.toy_mlp import ToyDiscriminator, ToyGenerator, ToyMLPConfig
from book_utils.models.unet import DDPMUNet, FlowUNet, GuidedFlowUNet, UNetConfig
from book_utils.models.vae import VAE, VAEConfig

# class name -> (model class, its config dataclass). A new model family adds its line here.
MODEL_CLASSES = {
    cls.__name__: (cls, config)
    for cls, config in [
        (MLPGenerator, MLPGANConfig),
        (MLPDiscriminator, MLPGANConfig),
        (DCGANGenerator, DCGANConfig),
        (DCGANDiscriminator, DCGANConfig),
        (VAE, VAEConfig),
        (MnistClassifier, ClassifierConfig),
        (ToyGenerator, ToyMLPConfig),
        (ToyDiscriminator, ToyMLPConfig),
        (DDPMUNet, UNetConfig),
        (FlowUNet, UNetConfig),
        (PixelCNN, PixelCNNConfig),
        (RealNVP, RealNVPConfig),
        (SNGANGenerator, SNGANConfig),
        (SNGANDiscriminator, SNGANConfig),
        (GuidedFlowUNet, UNetConfig),
    ]
}

__all__ = ["MODEL_CLASSES"]
