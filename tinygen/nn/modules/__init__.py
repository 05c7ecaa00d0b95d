"""Layers as Modules: each holds its parameters and calls ``tinygen.nn.functional``."""

from tinygen.nn.modules.activation import ELU, LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Softplus, Tanh
from tinygen.nn.modules.container import ModuleDict, ModuleList, Sequential
from tinygen.nn.modules.conv import Conv2d, ConvTranspose2d
from tinygen.nn.modules.dropout import Dropout
from tinygen.nn.modules.flatten import Flatten, Unflatten
from tinygen.nn.modules.linear import Identity, Linear
from tinygen.nn.modules.normalization import BatchNorm1d, BatchNorm2d, LayerNorm
from tinygen.nn.modules.pooling import AvgPool2d, MaxPool2d
from tinygen.nn.modules.rnn import LSTM, LSTMCell
from tinygen.nn.modules.sparse import Embedding
