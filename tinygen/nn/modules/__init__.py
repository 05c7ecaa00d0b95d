"""Layers as Modules: each holds its parameters and calls ``tinygen.nn.functional``."""

from tinygen.nn.modules.activation import ELU, LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Softplus, Tanh
from tinygen.nn.modules.container import ModuleDict, ModuleList, Sequential
from tinygen.nn.modules.conv import Conv2d, ConvTranspose2d
from tinygen.nn.modules.dropout import Dropout
from tinygen.nn.modules.flatten import Flatten, Unflatten
from tinygen.nn.modules.linear import Identity, Linear
from tinygen.nn.modules.rnn import LSTM, LSTMCell
