"""Training: data, StyleGAN2 generator, attribute classifier, directions, encoders.

Everything here is pure PyTorch (no Django, no torchvision). The demo recipe
(:mod:`inversion.training.recipe`) chains the steps into one command.
"""
