"""cnnlab: a config-driven experiment runner for image classification in PyTorch."""

__version__ = "0.1.0"
