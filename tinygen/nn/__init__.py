"""Neural-network building blocks: ``Module``, ``Parameter``, layers, ``init``, ``functional``."""

from tinygen.nn import functional, init
from tinygen.nn.module import Module, Parameter
from tinygen.nn.modules import (
    ELU,
    LSTM,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    ConvTranspose2d,
    Dropout,
    Embedding,
    Flatten,
    Identity,
    LayerNorm,
    LeakyReLU,
    Linear,
    LogSoftmax,
    LSTMCell,
    MaxPool2d,
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
