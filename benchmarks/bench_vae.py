"""Benchmark one VAE training step (forward, backward, Adam) and the importance weights against PyTorch.

The model is ``tinygen.models.vae.VAE`` with arch "mlp": 784-400-20, ReLU, a Bernoulli
decoder, float32. Two cases:

- ``train step b128``: ``vae.negative_elbo`` on a batch of 128 binarized 28x28 images (one
  reparameterized draw per image: the randn is part of the step), backward, then
  ``Adam(lr=1e-3)``. The torch column runs the same model (the same weights, copied in)
  and the same loss with ``torch.optim.Adam``; the numpy column writes the forward, the
  backward and Adam out by hand (the floor an engine built on NumPy can reach).
  Target: at most 1.2x PyTorch at 1 thread.
- ``log_weights k1000 x100``: ``vae.log_weights(model, x, 1000)`` under ``no_grad`` on 100
  images, the inner loop of ``vae.evaluate``: 100,000 latents drawn and decoded per call.
  The torch and numpy columns compute the same formula. Also printed as latents per second.

Before timing, one training step of each in float64 from the same weights and eps is
compared (the loss, and every parameter after the Adam step), and so are the log weights.

    .venv/bin/python benchmarks/bench_vae.py --threads 1
    .venv/bin/python benchmarks/bench_vae.py --threads 2
"""

import math

import numpy

import tinygen
from tinygen.models import vae
from tinygen.optim import Adam

try:
    from benchmarks import harness
except ImportError:  # run as a script: benchmarks/ is on sys.path
    import harness

torch = harness.torch

BATCH, LATENT, HIDDEN, SHAPE = 128, 20, 400, (1, 28, 28)
EVAL_IMAGES, EVAL_K = 100, 1000
LR, BETAS, ADAM_EPS = 1e-3, (0.9, 0.999), 1e-8
TARGET = 1.2  # tinygen / torch for the training step, at 1 thread
PARAMS = ("encoder.1.weight", "encoder.1.bias", "mu.weight", "mu.bias", "logvar.weight", "logvar.bias",
          "decoder.0.weight", "decoder.0.bias", "decoder.2.weight", "decoder.2.bias")


def images(n, seed):
    """``n`` 0/1 images (float32), binarized from random grey levels."""
    grey = numpy.random.default_rng(seed).integers(0, 256, (n, *SHAPE), dtype=numpy.uint8)
    return vae.binarize(grey, seed)


# ----------------------------------------------------------------------------- torch


def torch_vae():
    """``vae.VAE("mlp")`` in torch: the same nn.Sequential layout, so the same state_dict keys."""
    nn = torch.nn
    model = nn.Module()
    pixels = math.prod(SHAPE)
    model.encoder = nn.Sequential(nn.Flatten(), nn.Linear(pixels, HIDDEN), nn.ReLU())
    model.mu = nn.Linear(HIDDEN, LATENT)
    model.logvar = nn.Linear(HIDDEN, LATENT)
    model.decoder = nn.Sequential(nn.Linear(LATENT, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, pixels),
                                  nn.Unflatten(1, SHAPE))
    return model


def torch_negative_elbo(model, x, eps=None):
    """``vae.negative_elbo`` in torch (eps drawn here unless given)."""
    h = model.encoder(x)
    mu, logvar = model.mu(h), model.logvar(h)
    if eps is None:
        eps = torch.randn_like(mu)
    logits = model.decoder(mu + torch.exp(0.5 * logvar) * eps)
    batch = x.shape[0]
    recon = torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="sum") / batch
    kl = -0.5 * (1 + logvar - mu * mu - torch.exp(logvar)).sum() / batch
    return recon + kl


def torch_log_weights(model, x, k, eps=None):
    """``vae.log_weights`` in torch, the same formula."""
    h = model.encoder(x)
    mu, logvar = model.mu(h), model.logvar(h)
    n = mu.shape[0]
    if eps is None:
        eps = torch.randn(n, k, LATENT, dtype=mu.dtype)
    z = mu.unsqueeze(1) + torch.exp(0.5 * logvar).unsqueeze(1) * eps
    log_prior_over_q = -0.5 * (z * z - eps * eps - logvar.unsqueeze(1)).sum(2)
    logits = model.decoder(z.reshape(n * k, LATENT))
    x_k = x.unsqueeze(1).expand(n, k, *x.shape[1:]).reshape(n * k, *x.shape[1:])
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, x_k, reduction="none")
    return -bce.reshape(n, k, -1).sum(2) + log_prior_over_q


# ----------------------------------------------------------------------------- numpy by hand


class NumpyVAE:
    """The same VAE with its forward, backward and Adam written out in NumPy."""

    def __init__(self, state):
        self.p = {name: numpy.array(state[name]) for name in PARAMS}
        self.m = {name: numpy.zeros_like(v) for name, v in self.p.items()}
        self.v = {name: numpy.zeros_like(v) for name, v in self.p.items()}
        self.t = 0

    def encode(self, x):
        p = self.p
        a1 = x.reshape(len(x), -1) @ p["encoder.1.weight"].T + p["encoder.1.bias"]
        h = numpy.maximum(a1, 0)
        return a1, h, h @ p["mu.weight"].T + p["mu.bias"], h @ p["logvar.weight"].T + p["logvar.bias"]

    def decode(self, z):
        p = self.p
        a2 = z @ p["decoder.0.weight"].T + p["decoder.0.bias"]
        h2 = numpy.maximum(a2, 0)
        return a2, h2, h2 @ p["decoder.2.weight"].T + p["decoder.2.bias"]

    @staticmethod
    def bce(logits, x):
        return numpy.maximum(logits, 0) - logits * x + numpy.log1p(numpy.exp(-numpy.abs(logits)))

    def step(self, x, eps=None, rng=None):
        """One Adam step on the negative ELBO of ``x``; returns the loss."""
        p, n = self.p, len(x)
        flat = x.reshape(n, -1)
        a1, h, mu, logvar = self.encode(x)
        if eps is None:
            eps = rng.standard_normal(mu.shape, dtype=mu.dtype)
        std = numpy.exp(0.5 * logvar)
        z = mu + std * eps
        a2, h2, logits = self.decode(z)
        var = std * std
        loss = (self.bce(logits, flat).sum() - 0.5 * (1 + logvar - mu * mu - var).sum()) / n
        g = {}
        d_logits = (1 / (1 + numpy.exp(-logits)) - flat) / n
        g["decoder.2.weight"], g["decoder.2.bias"] = d_logits.T @ h2, d_logits.sum(0)
        d_a2 = (d_logits @ p["decoder.2.weight"]) * (a2 > 0)
        g["decoder.0.weight"], g["decoder.0.bias"] = d_a2.T @ z, d_a2.sum(0)
        d_z = d_a2 @ p["decoder.0.weight"]
        d_mu = d_z + mu / n
        d_logvar = d_z * eps * (0.5 * std) + 0.5 * (var - 1) / n
        g["mu.weight"], g["mu.bias"] = d_mu.T @ h, d_mu.sum(0)
        g["logvar.weight"], g["logvar.bias"] = d_logvar.T @ h, d_logvar.sum(0)
        d_a1 = (d_mu @ p["mu.weight"] + d_logvar @ p["logvar.weight"]) * (a1 > 0)
        g["encoder.1.weight"], g["encoder.1.bias"] = d_a1.T @ flat, d_a1.sum(0)
        self.t += 1
        (beta1, beta2), t = BETAS, self.t
        for name, grad in g.items():  # torch.optim.Adam's update, in place
            m, v = self.m[name], self.v[name]
            m *= beta1
            m += (1 - beta1) * grad
            v *= beta2
            v += (1 - beta2) * grad * grad
            denom = numpy.sqrt(v) / math.sqrt(1 - beta2**t) + ADAM_EPS
            p[name] -= (LR / (1 - beta1**t)) * m / denom
        return float(loss)

    def log_weights(self, x, k, eps=None, rng=None):
        n = len(x)
        _, _, mu, logvar = self.encode(x)
        if eps is None:
            eps = rng.standard_normal((n, k, LATENT), dtype=mu.dtype)
        z = mu[:, None] + numpy.exp(0.5 * logvar)[:, None] * eps
        log_prior_over_q = -0.5 * (z * z - eps * eps - logvar[:, None]).sum(2)
        logits = self.decode(z.reshape(n * k, LATENT))[2].reshape(n, k, -1)
        return -self.bce(logits, x.reshape(n, 1, -1)).sum(2) + log_prior_over_q


# ----------------------------------------------------------------------------- the three


class Setup:
    """The three models from the same weights (tinygen's default init), a batch and the eval images."""

    def __init__(self, dtype=numpy.float32, seed=0):
        tinygen.manual_seed(seed)
        self.model = vae.VAE("mlp", LATENT, (HIDDEN,), "relu").to(dtype)
        self.opt = Adam(self.model.parameters(), lr=LR, betas=BETAS, eps=ADAM_EPS)
        state = {name: value.numpy().copy() for name, value in self.model.state_dict().items()}
        self.numpy = NumpyVAE(state)
        self.rng = numpy.random.default_rng(seed)
        self.x_np = images(BATCH, seed + 1).astype(dtype)
        self.eval_np = images(EVAL_IMAGES, seed + 2).astype(dtype)
        self.x, self.eval_x = tinygen.tensor(self.x_np), tinygen.tensor(self.eval_np)
        if torch is not None:
            self.t_model = torch_vae().to(torch.from_numpy(numpy.zeros(0, dtype)).dtype)
            self.t_model.load_state_dict({k: torch.tensor(v) for k, v in state.items()})
            self.t_opt = torch.optim.Adam(self.t_model.parameters(), lr=LR, betas=BETAS, eps=ADAM_EPS)
            self.t_x, self.t_eval_x = torch.tensor(self.x_np), torch.tensor(self.eval_np)

    def tinygen_step(self):
        loss, _, _ = vae.negative_elbo(self.model, self.x)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return loss.item()

    def torch_step(self, eps=None):
        loss = torch_negative_elbo(self.t_model, self.t_x, eps)
        self.t_opt.zero_grad()
        loss.backward()
        self.t_opt.step()
        return loss.item()

    def numpy_step(self, eps=None):
        return self.numpy.step(self.x_np, eps, self.rng)

    def tinygen_log_weights(self):
        with tinygen.no_grad():
            return vae.log_weights(self.model, self.eval_x, EVAL_K).numpy()

    def torch_log_weights(self, eps=None):
        with torch.no_grad():
            return torch_log_weights(self.t_model, self.t_eval_x, EVAL_K, eps).numpy()

    def numpy_log_weights(self, eps=None):
        return self.numpy.log_weights(self.eval_np, EVAL_K, eps, self.rng)


def _relative(a, b):
    return float(numpy.abs(a - b).max() / numpy.abs(b).max())


def check():
    """One step of each in float64 from the same weights and eps, and the log weights of the same draws:
    the largest relative differences from tinygen. Exits when they disagree."""
    setup = Setup(numpy.float64)
    tinygen.manual_seed(7)
    eps = tinygen.randn(BATCH, LATENT, dtype=tinygen.float64).numpy()
    tinygen.manual_seed(7)  # negative_elbo draws the same eps
    ours = setup.tinygen_step()
    tinygen.manual_seed(8)
    eps_k = tinygen.randn(EVAL_IMAGES, 10, LATENT, dtype=tinygen.float64).numpy()
    tinygen.manual_seed(8)
    with tinygen.no_grad():
        log_w = vae.log_weights(setup.model, setup.eval_x, 10).numpy()
    after = {name: value.numpy() for name, value in setup.model.state_dict().items()}
    loss = setup.numpy_step(eps)
    others = {"numpy": (loss, setup.numpy.p, setup.numpy.log_weights(setup.eval_np, 10, eps_k))}
    if torch is not None:
        loss = setup.torch_step(torch.tensor(eps))
        with torch.no_grad():
            t_log_w = torch_log_weights(setup.t_model, setup.t_eval_x, 10, torch.tensor(eps_k)).numpy()
        others["torch"] = (loss, {k: v.numpy() for k, v in setup.t_model.state_dict().items()}, t_log_w)
    # every log_w above is of the weights after the step, the same on all sides
    lines, worst = [], 0.0
    for name, (loss, params, their_log_w) in others.items():
        loss_error = abs(ours - loss) / abs(loss)
        param_error = max(_relative(after[k], params[k]) for k in PARAMS)
        log_w_error = _relative(log_w, their_log_w)
        worst = max(worst, loss_error, param_error, log_w_error)
        lines.append(f"{name}: loss {loss_error:.1e}, parameters after the step {param_error:.1e}, "
                     f"log weights {log_w_error:.1e}")
    if worst > 1e-9:
        raise SystemExit("bench_vae: the implementations disagree (float64): " + "; ".join(lines))
    return "; ".join(lines)


# ----------------------------------------------------------------------------- main


def main():
    parser = harness.argument_parser(__doc__, repeat=30)
    parser.add_argument("--eval-repeat", type=int, default=5, help="timed samples of log_weights (default 5)")
    args = parser.parse_args()
    with harness.limit_threads(args.threads):
        harness.print_machine()
        print(f"threads: {args.threads}, float32, MLP VAE 784-{HIDDEN}-{LATENT}; train step batch {BATCH} "
              f"(median of {args.repeat}); log_weights k={EVAL_K} on {EVAL_IMAGES} images "
              f"(median of {args.eval_repeat})\n")
        print(f"agreement with tinygen, float64 (largest relative difference): {check()}")
        setup = Setup()
        steps = {"tinygen": setup.tinygen_step, "numpy": setup.numpy_step}
        weights = {"tinygen": setup.tinygen_log_weights, "numpy": setup.numpy_log_weights}
        if torch is not None:
            steps["torch"], weights["torch"] = setup.torch_step, setup.torch_log_weights
        t_step = harness.time_calls(steps, repeat=args.repeat)
        t_eval = harness.time_calls(weights, repeat=args.eval_repeat, rounds=min(5, args.eval_repeat),
                                    warmup=1, min_sample_time=0.0)
        print(harness.describe_other_load("after the run"))
    rows = [
        harness.Row(f"train step b{BATCH}", t_step["tinygen"], t_step.get("torch"), t_step["numpy"],
                    TARGET if args.threads == 1 else None),
        harness.Row(f"log_weights k{EVAL_K} x{EVAL_IMAGES}", t_eval["tinygen"], t_eval.get("torch"),
                    t_eval["numpy"]),
    ]
    print()
    harness.print_table(rows)
    latents = EVAL_K * EVAL_IMAGES
    rates = ", ".join(f"{name} {latents / timing.median:,.0f}" for name, timing in t_eval.items())
    print(f"\nlog_weights throughput, decoded latents per second: {rates}")
    if args.threads != 1:
        print(f"(the {TARGET}x target of the train step is for 1 thread)")


if __name__ == "__main__":
    main()
