"""A small conv classifier: the judge of ``tinygen.metrics``' domain FID and class coverage.

No Inception weights can be had here, so sample quality is measured as the field does for
small data sets: in the penultimate features of a classifier trained on the real training
split (``tinygen train classifier``). Shapes for 28x28x1 with ``width = 32``::

    x         (N, 1, 28, 28), values in [-1, 1] (as a GAN's tanh output)
    Conv      (N, 32, 28, 28), 3x3 pad 1, ReLU, MaxPool 2 -> (N, 32, 14, 14)
    Conv      (N, 64, 14, 14), 3x3 pad 1, ReLU, MaxPool 2 -> (N, 64, 7, 7)
    Flatten, Linear (N, 128), ReLU                         <- features(x): the FID's space
    Linear    (N, classes) -> logits

Trained with cross-entropy and Adam (lr 1e-3, batch 128), three epochs reach 90.25% test
accuracy on Fashion-MNIST (seed 0; the figure is saved with it: benchmarks/RESULTS.md).
"""

import numpy

import tinygen
import tinygen.nn.functional as F
from tinygen import nn
from tinygen.errors import ShapeError
from tinygen.models.recipe import Recipe, Setting, check_count
from tinygen.optim import Adam


class ConvClassifier(nn.Module):
    """Images ``(N, C, S, S)`` (S divisible by 4) to class logits ``(N, classes)``; ``features`` gives
    the 128 (``hidden``) activations before the last layer."""

    def __init__(self, channels=1, image_size=28, classes=10, width=32, hidden=128):
        super().__init__()
        self.channels = check_count("ConvClassifier", "channels", channels)
        self.image_size = check_count("ConvClassifier", "image_size", image_size)
        if self.image_size % 4:
            raise ShapeError(f"ConvClassifier: image_size is {image_size}, expected a multiple of 4")
        self.classes = check_count("ConvClassifier", "classes", classes)
        w = check_count("ConvClassifier", "width", width)
        side = self.image_size // 4
        self.body = nn.Sequential(
            nn.Conv2d(self.channels, w, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(2 * w * side * side, hidden), nn.ReLU(),
        )
        self.head = nn.Linear(hidden, self.classes)

    def features(self, x):
        expected = (self.channels, self.image_size, self.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ShapeError(
                f"ConvClassifier: input has shape {tuple(x.shape)}, "
                f"expected (N, {', '.join(map(str, expected))})"
            )
        return self.body(x)

    def forward(self, x):
        return self.head(self.features(x))


def predict(model, images, batch_size=500):
    """``(features, logits)`` as NumPy arrays for a NumPy batch of images in [-1, 1], in eval mode."""
    was_training = model.training
    model.eval()
    device = model.head.weight.device
    features, logits = [], []
    with tinygen.no_grad():
        for start in range(0, len(images), batch_size):
            x = tinygen.tensor(numpy.asarray(images[start:start + batch_size], numpy.float32), device=device)
            h = model.features(x)
            features.append(h.numpy())
            logits.append(model.head(h).numpy())
    model.train(was_training)
    return numpy.concatenate(features), numpy.concatenate(logits)


def check_data_labels(data, classes):
    """A ValueError unless every label of ``data`` is in 0 .. classes-1."""
    if len(data.labels) and data.labels.max() >= classes:
        raise ValueError(
            f"Run: the {data.split} labels go up to {data.labels.max()}, "
            f"expected 0 .. classes-1 = {classes - 1}"
        )


def scaled(images):
    """uint8 images as float32 in [-1, 1], the range the classifier (and a tanh generator) uses."""
    return images.astype(numpy.float32) / 127.5 - 1.0


class Classifier(Recipe):
    """``tinygen train classifier``: the conv classifier above, cross-entropy, Adam; test accuracy
    at each epoch's end."""

    name = "classifier"
    summary = "conv classifier (the judge of the GANs' domain FID), images in [-1, 1]"
    settings = {
        "width": Setting(32, "channels of the first conv", low=1),
        "lr": Setting(1e-3, "Adam learning rate", kind="positive"),
        "classes": Setting(10, "number of classes (labels 0 .. classes-1)", low=1),
    }
    run_defaults = {"batch_size": 128, "sample_every": 0, "epochs": 3}
    eval_settings = {}
    value_range = (-1.0, 1.0)
    uses_test_split = True
    panels = (("cross-entropy", ("loss",)), ("batch accuracy", ("accuracy",)))
    metric_panels = (("test accuracy", ("accuracy",)), ("test cross-entropy", ("loss",)))
    eval_protocol = "grey levels scaled to [-1, 1]"

    def __init__(self, config, image_shape):
        super().__init__(config, image_shape)
        channels, image_size = image_shape[0], image_shape[1]
        self.net = ConvClassifier(channels, image_size, config["classes"], config["width"])
        self.opt = Adam(self.net.parameters(), lr=config["lr"])
        self.modules = {"classifier": self.net}
        self.optimizers = {"classifier": self.opt}

    def check_data(self, data):
        check_data_labels(data, self.config["classes"])

    def train_step(self, batch):
        x, labels = batch
        logits = self.net(x)
        loss = F.cross_entropy(logits, labels)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        accuracy = float((logits.numpy().argmax(1) == labels.numpy()).mean())
        return {"loss": loss.item(), "accuracy": accuracy}

    def evaluate(self, test, progress=False):
        _, logits = predict(self.net, scaled(test.images))
        shifted = logits - logits.max(1, keepdims=True)
        log_p = shifted - numpy.log(numpy.exp(shifted).sum(1, keepdims=True))
        loss = -log_p[numpy.arange(len(test)), test.labels].mean()
        return {"accuracy": float((logits.argmax(1) == test.labels).mean()), "loss": float(loss)}
