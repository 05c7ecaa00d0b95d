"""Benchmark one WGAN-GP critic step (the double backward included, Adam) against the same step in PyTorch.

One call is ``tinygen.models.wgan_gp.critic_step``, the step the ``wgan-gp`` recipe takes on
every batch: draw z, ``fake = G(z)`` under no_grad (batch norm in training mode), score
``D(real)`` and ``D(fake)``, the gradient penalty (alpha per sample, ``x_hat``,
``grad_x D(x_hat)`` with ``create_graph=True``, the per-sample norm), ``loss = mean D(fake) -
mean D(real) + 10 * penalty``, its backward (through the recorded backward pass: a
second-order derivative) and Adam(1e-4, betas (0.5, 0.9)), float32. The torch column runs
the identical models (the same weights, copied in) and the identical step
(``torch_critic_step`` of ``benchmarks/gan_twins.py``, whose parity with the recipe
``tests/parity/test_gan_twins_parity.py`` checks) in the same process at the same thread
count, the two taking turns (``harness.time_calls``). There is no NumPy column: a
hand-written second-order backward would be a second autograd engine.

Case: Fashion-MNIST shapes, batch 64, 28x28x1, nz 100, ngf = ndf = 64, the layer-norm critic

    Conv (N, 64, 14, 14), LeakyReLU; Conv (N, 128, 7, 7) (no bias), LayerNorm([128, 7, 7]),
    LeakyReLU; Flatten, Linear (N, 1)

Before timing, one critic step of each in float64 with the same weights, z and alpha is
compared (the losses, and the parameters after the step). The second row is a breakdown:
the penalty alone, its forward (``gradient_penalty``: the critic's forward and the
``create_graph`` backward) and its backward (the double backward) on a fixed fake batch.

    .venv/bin/python benchmarks/bench_wgan_gp.py --threads 2
    .venv/bin/python benchmarks/bench_wgan_gp.py --threads 1
"""

import numpy

import tinygen
from tinygen.models import dcgan, wgan_gp
from tinygen.optim import Adam

try:
    from benchmarks import gan_twins, harness
except ImportError:  # run as a script: benchmarks/ is on sys.path
    import gan_twins
    import harness

torch = harness.torch

NZ, NF, BATCH, SIZE = 100, 64, 64, 28
LR, BETAS, PENALTY = 1e-4, (0.5, 0.9), 10.0  # the wgan-gp recipe's defaults
TARGET = 1.5


class Setup:
    """Both libraries' G, layer-norm critic and critic Adam, a batch of "real" images and a fixed fake one."""

    def __init__(self, dtype=numpy.float32, seed=0):
        tinygen.manual_seed(seed)
        self.G = dcgan.Generator(NZ, NF, 1, SIZE).apply(dcgan.init_weights).to(dtype)
        self.D = dcgan.Discriminator(NF, 1, SIZE, norm="layer").apply(dcgan.init_weights).to(dtype)
        self.opt_d = Adam(self.D.parameters(), lr=LR, betas=BETAS)
        rng = numpy.random.default_rng(seed)
        self.real = tinygen.tensor(rng.uniform(-1, 1, (BATCH, 1, SIZE, SIZE)).astype(dtype))
        self.fake = tinygen.tensor(rng.uniform(-1, 1, (BATCH, 1, SIZE, SIZE)).astype(dtype))
        if torch is not None:
            self.t_G = gan_twins.TorchGenerator(NZ, NF, 1, SIZE)
            self.t_D = gan_twins.TorchDiscriminator(NF, 1, SIZE, norm="layer")
            for ours, theirs in ((self.G, self.t_G), (self.D, self.t_D)):
                theirs.to(torch.from_numpy(numpy.zeros(0, dtype)).dtype)
                theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
            self.t_opt_d = torch.optim.Adam(self.t_D.parameters(), lr=LR, betas=BETAS)
            self.t_real = torch.tensor(self.real.numpy())
            self.t_fake = torch.tensor(self.fake.numpy())

    def tinygen_step(self):
        return wgan_gp.critic_step(self.G, self.D, self.opt_d, self.real, PENALTY)

    def torch_step(self, z=None, alpha=None):
        return gan_twins.torch_critic_step(self.t_G, self.t_D, self.t_opt_d, self.t_real, PENALTY, z=z,
                                           alpha=alpha)

    def tinygen_penalty(self):
        self.D.zero_grad()
        penalty, _ = wgan_gp.gradient_penalty(self.D, self.real, self.fake)
        penalty.backward()

    def torch_penalty(self):
        self.t_D.zero_grad()
        penalty, _ = gan_twins.torch_gradient_penalty(self.t_D, self.t_real, self.t_fake)
        penalty.backward()


def check():
    """One critic step of each library in float64 from the same weights, z and alpha: the largest
    relative difference of the losses, and the largest difference of the critic's parameters after
    the step. The parameters must agree as the parity tests ask (rtol 1e-10, atol 1e-12): an
    absolute floor, since Adam's first step moves a parameter by about lr * g / (|g| + eps), so a
    gradient entry near eps = 1e-8 (the layer norm's bias has some), summed in another order with
    2 threads, moves by a few 1e-13 (a 1e-9 fraction of lr = 1e-4)."""
    setup = Setup(dtype=numpy.float64)
    tinygen.manual_seed(1)  # critic_step draws z, then gradient_penalty draws alpha: replayed in torch
    z = tinygen.randn(BATCH, NZ, dtype=tinygen.float64)
    alpha = tinygen.rand(BATCH, 1, 1, 1, dtype=tinygen.float64)
    tinygen.manual_seed(1)
    ours = setup.tinygen_step()
    theirs = setup.torch_step(torch.tensor(z.numpy()), torch.tensor(alpha.numpy()))
    loss_error = max(abs(ours[k] - theirs[k]) / abs(theirs[k]) for k in ours)
    pairs = [(p.numpy(), t.detach().numpy()) for p, t in zip(setup.D.parameters(), setup.t_D.parameters(),
                                                                strict=True)]
    param_error = max(float(numpy.abs(p - t).max()) for p, t in pairs)
    close = all(numpy.allclose(p, t, rtol=1e-10, atol=1e-12) for p, t in pairs)
    if loss_error > 1e-9 or not close:
        raise SystemExit(
            f"bench_wgan_gp: tinygen and torch disagree (losses {loss_error:.1e}, params {param_error:.1e})"
        )
    return f"losses {loss_error:.1e} (relative), critic parameters after the step {param_error:.1e} (float64)"


def main():
    args = harness.argument_parser(__doc__, repeat=15).parse_args()
    with harness.limit_threads(args.threads):
        harness.print_machine()
        print(
            f"threads: {args.threads}, float32, batch {BATCH}, {SIZE}x{SIZE}x1, ndf {NF}, layer-norm critic, "
            f"one critic_step (penalty and its double backward, Adam), median of {args.repeat}\n"
        )
        setup = Setup()
        steps = {"tinygen": setup.tinygen_step}
        penalties = {"tinygen": setup.tinygen_penalty}
        if torch is not None:
            print(f"tinygen matches torch (largest differences): {check()}")
            steps["torch"] = setup.torch_step
            penalties["torch"] = setup.torch_penalty
        step = harness.time_calls(steps, repeat=args.repeat)
        penalty = harness.time_calls(penalties, repeat=args.repeat)
        rows = [
            harness.Row(f"critic step b{BATCH}", step["tinygen"], step.get("torch"), None, TARGET),
            harness.Row("  penalty fwd + double bwd", penalty["tinygen"], penalty.get("torch"), None, None),
        ]
        print(harness.describe_other_load("after the run"))
    print()
    harness.print_table(rows)


if __name__ == "__main__":
    main()
