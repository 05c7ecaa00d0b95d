"""Optimizers with PyTorch's names, defaults, update rules and ``state_dict`` layout."""

from tinygen.optim.adam import Adam
from tinygen.optim.optimizer import Optimizer
from tinygen.optim.sgd import SGD

__all__ = ["SGD", "Adam", "Optimizer"]
