"""Neural-network building blocks: ``Module``, ``Parameter``, layers, ``init``, ``functional``."""

from tinygen.nn import functional, init
from tinygen.nn.module import Module, Parameter
from tinygen.nn.modules import (
    ELU,
    LSTM,
    Conv2d,
    ConvTranspose2d,
    Dropout,
    Flatten,
    Identity,
    LeakyReLU,
    Linear,
    LogSoftmax,
    LSTMCell,
    ModuleDict,
    ModuleList,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Softplus,
    Tanh,
    Unflatten,
)
