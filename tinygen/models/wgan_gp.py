"""WGAN-GP: a Wasserstein GAN whose critic is kept 1-Lipschitz by a gradient penalty.

Gulrajani, Ahmed, Arjovsky, Dumoulin and Courville, "Improved Training of Wasserstein
GANs" (NeurIPS 2017). The critic D scores images with an unbounded number; the
Kantorovich-Rubinstein duality makes ``E[D(real)] - E[D(fake)]``, maximised over
1-Lipschitz D, the Wasserstein-1 distance between the two distributions. The Lipschitz
constraint is asked for softly, at points between real and fake images::

    x_hat   = alpha * real + (1 - alpha) * fake,       alpha ~ U(0, 1), one per sample: (N, 1, 1, 1)
    penalty = mean_n (|| grad_x D(x_hat)_n ||_2 - 1)^2  the norm over ALL of a sample's C*H*W values
    loss_D  = mean D(fake) - mean D(real) + lambda * penalty          (lambda = 10)
    loss_G  = -mean D(G(z))

The penalty is a function of a gradient, so its own gradient with respect to the critic's
weights is a **second-order** derivative: ``tinygen.grad(D(x_hat).sum(), x_hat,
create_graph=True)`` records the backward pass itself (through conv, layer norm, leaky
ReLU and linear), and ``loss_D.backward()`` differentiates through it. No finite
difference and no hand-derived shortcut.

Two easy mistakes, avoided here: the norm is taken per sample over the flattened
gradient (a norm per pixel or per channel asks for another constraint), and alpha is drawn
per sample, shape (N, 1, 1, 1): an alpha per pixel would put x_hat off the segment between
real and fake, and one alpha for the whole batch puts every sample at the same fraction of
its segment. The
critic has **no batch norm**: it would make each sample's gradient depend on the others in
the batch, so the penalty would not constrain D's gradient at a point (the paper, Sec. 4,
suggests layer norm instead); the recipe refuses such a critic.

Schedule: ``n_critic = 5`` critic steps per generator step, each on its own batch. The
recipe counts critic steps in its state, so ``train_step`` still takes one batch and an
interrupted run resumes exactly. Adam(1e-4, betas=(0.5, 0.9)) as the paper's reference
MNIST code; the paper's Algorithm 1 uses beta1 = 0 (``--beta1 0``).
"""

import math

import tinygen
from tinygen.models import dcgan
from tinygen.models.gan import GANRecipe
from tinygen.models.recipe import Setting
from tinygen.nn.modules.normalization import _BatchNorm


def gradient_penalty(critic, real, fake, alpha=None):
    """``(penalty, norms)``: ``mean((|grad D(x_hat)| - 1)^2)`` and the per-sample norms ``(N,)``.

    ``x_hat = alpha * real + (1 - alpha) * fake`` with ``alpha`` ``(N, 1, ..., 1)`` drawn
    uniformly (or given); ``fake`` is detached, so the penalty trains the critic only. The
    returned penalty is differentiable with respect to the critic's weights (second order).
    """
    n = real.shape[0]
    if alpha is None:
        alpha = tinygen.rand(n, *([1] * (real.ndim - 1)), device=real.device, dtype=real.dtype)
    x_hat = (alpha * real + (1 - alpha) * fake.detach()).detach().requires_grad_()
    (grad,) = tinygen.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    # a sample whose gradient is exactly 0 gets a norm gradient of 0, as in PyTorch (sqrt's
    # slope at 0 is infinite, so it would make every weight's gradient NaN): tinygen.norm
    norms = tinygen.norm(grad.reshape(n, -1), dim=1)
    return ((norms - 1) ** 2).mean(), norms


def refuse_batch_norm(critic):
    """A ValueError if ``critic`` holds a batch norm (see the module docstring for why)."""
    for name, module in critic.named_modules():
        if isinstance(module, _BatchNorm):
            raise ValueError(
                f"WGAN-GP: the critic holds a batch norm ({name or 'the critic'}: {type(module).__name__}); "
                "it makes each sample's gradient penalty depend on the rest of the batch, so use "
                "--critic-norm layer or none (Gulrajani et al. 2017, Sec. 4)"
            )


def critic_step(G, D, opt_d, real, penalty_weight=10.0, z=None):
    """One critic update on ``real``; returns ``loss_c``, ``wasserstein`` (mean D(real) - mean D(fake))
    and ``penalty`` as floats."""
    if z is None:
        z = tinygen.randn(real.shape[0], G.nz, device=real.device, dtype=real.dtype)
    with tinygen.no_grad():
        fake = G(z)
    score_real, score_fake = D(real).mean(), D(fake).mean()
    penalty, _ = gradient_penalty(D, real, fake)
    loss = score_fake - score_real + penalty_weight * penalty
    opt_d.zero_grad()
    loss.backward()
    opt_d.step()
    return {"loss_c": loss.item(), "wasserstein": (score_real - score_fake).item(), "penalty": penalty.item()}


def generator_step(G, D, opt_g, batch, device, dtype):
    """One generator update, ``loss_G = -mean D(G(z))``; returns it as a float."""
    z = tinygen.randn(batch, G.nz, device=device, dtype=dtype)
    loss = -D(G(z)).mean()
    opt_g.zero_grad()
    loss.backward()
    opt_g.step()
    return loss.item()


class WGANGP(GANRecipe):
    """``tinygen train wgan-gp``: a DCGAN generator and a normless (or layer-normed) DCGAN critic."""

    name = "wgan-gp"
    summary = "WGAN-GP (Gulrajani et al. 2017): Wasserstein critic with a second-order gradient penalty"
    settings = {
        "nz": dcgan.DCGAN.settings["nz"],
        "ngf": dcgan.DCGAN.settings["ngf"],
        "ndf": Setting(64, "critic width", low=1),
        "critic_norm": Setting("layer", "the critic's norm: layer or none (batch is refused)", kind="choice",
                               choices=dcgan.NORMS),
        "n_critic": Setting(5, "critic steps (batches) per generator step", low=1),
        "penalty": Setting(10.0, "lambda, the gradient penalty's weight", kind="float"),
        "lr": Setting(1e-4, "Adam learning rate", kind="positive"),
        "beta1": Setting(0.5, "Adam beta1 (the paper's Algorithm 1 uses 0)", kind="fraction"),
        "beta2": Setting(0.9, "Adam beta2", kind="fraction"),
    }
    panels = (("critic loss", ("loss_c",)), ("Wasserstein estimate", ("wasserstein",)),
              ("gradient penalty", ("penalty",)), ("generator loss", ("loss_g",)))

    @classmethod
    def check_config(cls, config):
        if config["critic_norm"] == "batch":
            raise ValueError(
                "Run: critic_norm is 'batch': batch norm makes each sample's gradient penalty depend on the "
                "rest of the batch; use layer or none (Gulrajani et al. 2017, Sec. 4)"
            )

    def __init__(self, config, image_shape):
        super().__init__(config, image_shape)
        channels, image_size = image_shape[0], image_shape[1]
        self.G = dcgan.Generator(config["nz"], config["ngf"], channels, image_size)
        self.D = dcgan.Discriminator(config["ndf"], channels, image_size, norm=config["critic_norm"])
        refuse_batch_norm(self.D)
        self.G.apply(dcgan.init_weights)
        self.D.apply(dcgan.init_weights)
        betas = (config["beta1"], config["beta2"])
        self.opt_g = tinygen.optim.Adam(self.G.parameters(), lr=config["lr"], betas=betas)
        self.opt_d = tinygen.optim.Adam(self.D.parameters(), lr=config["lr"], betas=betas)
        self.modules = {"generator": self.G, "critic": self.D}
        self.optimizers = {"generator": self.opt_g, "critic": self.opt_d}
        self.critic_steps = 0
        self.loss_g = math.nan  # the latest generator step's loss (none before the first)

    def train_step(self, batch):
        real, _ = batch
        stats = critic_step(self.G, self.D, self.opt_d, real, self.config["penalty"])
        self.critic_steps += 1
        if self.critic_steps % self.config["n_critic"] == 0:
            self.loss_g = generator_step(self.G, self.D, self.opt_g, real.shape[0], real.device, real.dtype)
        return {**stats, "loss_g": self.loss_g}

    def state_dict(self):
        return {"critic_steps": self.critic_steps, "loss_g": self.loss_g}

    def load_state_dict(self, state):
        self.critic_steps, self.loss_g = int(state["critic_steps"]), float(state["loss_g"])

    sample_settings = dcgan.DCGAN.sample_settings
    sample = dcgan.DCGAN.sample
