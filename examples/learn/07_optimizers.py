"""Chapter 7: SGD, momentum and Adam written out in NumPy, checked against tinygen.optim.

    python examples/learn/07_optimizers.py

Each update rule is a few lines on NumPy arrays. They are run beside ``tinygen.optim.SGD``
and ``Adam`` on the same ill-conditioned quadratic and must agree to rounding. Then: what
Adam's bias correction does at the first steps, how the three rules move on the quadratic,
and why a two-player game (``min_x max_y x*y``) wants a short memory, DCGAN's beta1 = 0.5.
The page is docs/learn/07-optimizers.md.
"""

import argparse
from pathlib import Path

import numpy as np

import tinygen
from tinygen.optim import SGD, Adam

SCALES = np.array([1.0, 50.0])  # f(p) = 0.5 * sum_i SCALES[i] * p[i]**2: condition number 50
START = np.array([-4.0, 1.5])
STEPS = 100
SETTINGS = {  # rule -> its hyperparameters on the quadratic
    "sgd": dict(lr=0.035),  # stable only for lr < 2/50
    "momentum": dict(lr=0.02, momentum=0.8),
    "adam": dict(lr=0.1, betas=(0.9, 0.999)),
}


# --- the three rules, on NumPy arrays; `state` is a dict the rule fills in ---------------------


def sgd_step(p, g, state, lr):
    """p = p - lr*g"""
    return p - lr * g


def momentum_step(p, g, state, lr, momentum):
    """v = mu*v + g (v = g on the first step);  p = p - lr*v   (PyTorch's form)"""
    state["v"] = g.copy() if "v" not in state else momentum * state["v"] + g
    return p - lr * state["v"]


def adam_step(p, g, state, lr, betas=(0.9, 0.999), eps=1e-8):
    """Adam with bias correction, at step t = 1, 2, ..."""
    b1, b2 = betas
    t = state["t"] = state.get("t", 0) + 1
    state["m"] = b1 * state.get("m", 0.0) + (1 - b1) * g
    state["v"] = b2 * state.get("v", 0.0) + (1 - b2) * g**2
    m_hat = state["m"] / (1 - b1**t)
    v_hat = state["v"] / (1 - b2**t)
    return p - lr * m_hat / (np.sqrt(v_hat) + eps)


RULES = {"sgd": sgd_step, "momentum": momentum_step, "adam": adam_step}


def quadratic(p):
    return 0.5 * np.sum(SCALES * p**2)


def run_numpy(rule, steps=STEPS, start=START):
    """The path of ``rule`` on the quadratic, with the gradient written by hand: dp = SCALES*p."""
    p, state, path = start.copy(), {}, [start.copy()]
    for _ in range(steps):
        p = RULES[rule](p, SCALES * p, state, **SETTINGS[rule])
        path.append(p)
    return np.array(path)


def run_tinygen(rule, steps=STEPS, start=START):
    """The same path with tinygen: the gradient from backward(), the update from tinygen.optim."""
    p = tinygen.tensor(start.copy(), requires_grad=True)
    scales = tinygen.tensor(SCALES)
    opt = Adam([p], **SETTINGS[rule]) if rule == "adam" else SGD([p], **SETTINGS[rule])
    path = [start.copy()]
    for _ in range(steps):
        loss = 0.5 * (scales * p * p).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        path.append(p.detach().numpy().copy())
    return np.array(path)


def bias_correction_table(g=1.0, betas=(0.9, 0.999), steps=3):
    """Rows (t, m, m_hat, v, v_hat, step/lr uncorrected, step/lr corrected) for a constant gradient."""
    b1, b2 = betas
    m = v = 0.0
    rows = []
    for t in range(1, steps + 1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        rows.append((t, m, m_hat, v, v_hat, m / np.sqrt(v), m_hat / np.sqrt(v_hat)))
    return rows


# --- the bilinear game min_x max_y x*y: equilibrium (0, 0) ------------------------------------


def play_bilinear(rule, steps, start=(1.0, 1.0), **settings):
    """Alternating updates: x steps down f = x*y (dx = y), then y steps up it with the new x.

    y maximises x*y, so it minimises -x*y, whose gradient is -x. Returns the path (steps+1, 2).
    """
    x, y = np.array(start[0]), np.array(start[1])
    state_x, state_y = {}, {}
    path = [(float(x), float(y))]
    for _ in range(steps):
        x = RULES[rule](x, y, state_x, **settings)
        y = RULES[rule](y, -x, state_y, **settings)
        path.append((float(x), float(y)))
    return np.array(path)


GAME = {  # name -> (rule, settings); each played for GAME_STEPS steps from (1, 1)
    "sgd": ("sgd", dict(lr=0.05)),
    "momentum 0.5": ("momentum", dict(lr=0.05, momentum=0.5)),
    "momentum 0.9": ("momentum", dict(lr=0.05, momentum=0.9)),
    "adam b1=0.9": ("adam", dict(lr=0.05, betas=(0.9, 0.999))),
    "adam b1=0.5": ("adam", dict(lr=0.05, betas=(0.5, 0.999))),
    "adam b1=0.0": ("adam", dict(lr=0.05, betas=(0.0, 0.999))),
}
GAME_STEPS = 1000


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/learn/07"), help="unused: no files written")
    parser.add_argument("--steps", type=int, default=STEPS, help="steps on the quadratic")
    parser.add_argument("--game-steps", type=int, default=GAME_STEPS, help="steps of the bilinear game")
    args = parser.parse_args(argv)

    print("1. NumPy rules vs tinygen.optim on f(p) = 0.5*(p0**2 + 50*p1**2), float64")
    for rule in RULES:
        ours, theirs = run_numpy(rule, args.steps), run_tinygen(rule, args.steps)
        gap = np.abs(ours - theirs).max()
        print(f"  {rule:9s} {SETTINGS[rule]}: max |numpy - tinygen| over {args.steps} steps = {gap:.1e}")
        assert gap < 1e-12, rule

    print("\n2. Adam's bias correction, constant gradient g = 1, betas = (0.9, 0.999)")
    print("   t      m   m_hat         v   v_hat   m/sqrt(v)   m_hat/sqrt(v_hat)")
    for t, m, m_hat, v, v_hat, raw, corrected in bias_correction_table():
        print(f"   {t}  {m:.3f}   {m_hat:.3f}  {v:.6f}   {v_hat:.3f}   {raw:9.3f}   {corrected:17.3f}")

    start = f"p = ({START[0]}, {START[1]}), f = {quadratic(START):.2f} at the start"
    print(f"\n3. f after {args.steps} steps from {start}")
    for rule in RULES:
        path = run_numpy(rule, args.steps)
        print(f"  {rule:9s} f = {quadratic(path[-1]):.2e}   p = ({path[-1][0]:+.4f}, {path[-1][1]:+.4f})")

    print("\n4. Averaging window of Adam's m: weight (1-b1)*b1**k on the gradient k steps old")
    for b1 in (0.9, 0.5):
        weights = ", ".join(f"{(1 - b1) * b1**k:.3f}" for k in range(5))
        print(f"  b1 = {b1}: window 1/(1-b1) = {1 / (1 - b1):.0f} steps, weights {weights}, ...")

    checkpoints = (args.game_steps // 10, args.game_steps // 2, args.game_steps)
    print("\n5. min_x max_y x*y, alternating updates from (1, 1): distance to (0, 0) = 1.414 at the start")
    print("  " + "".join(f"{'after ' + str(k):>12s}" for k in checkpoints) + "  steps")
    for name, (rule, settings) in GAME.items():
        path = play_bilinear(rule, args.game_steps, **settings)
        radius = np.hypot(path[:, 0], path[:, 1])
        print(f"  {name:13s}" + "".join(f"{radius[k]:12.3g}" for k in checkpoints))


def draw_figures(out):
    """07-optimizers.png: the three rules on the quadratic, and the bilinear game."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    xs, ys = np.meshgrid(np.linspace(-4.5, 1.5, 200), np.linspace(-2, 2, 200))
    left.contour(xs, ys, 0.5 * (SCALES[0] * xs**2 + SCALES[1] * ys**2), levels=12, colors="0.8")
    for rule, colour in zip(RULES, ("C0", "C1", "C2"), strict=True):
        path = run_numpy(rule, 40)
        left.plot(path[:, 0], path[:, 1], ".-", color=colour, ms=3, lw=1, label=f"{rule} {SETTINGS[rule]}")
    left.plot(0, 0, "k*")
    left.set(title="f = 0.5*(p0**2 + 50*p1**2), 40 steps", xlabel="p0", ylabel="p1")
    left.legend(fontsize=7, loc="lower right")

    for name, colour in (("adam b1=0.9", "C3"), ("adam b1=0.5", "C0"), ("sgd", "0.5")):
        rule, settings = GAME[name]
        path = play_bilinear(rule, 1000, **settings)
        right.plot(path[:, 0], path[:, 1], color=colour, lw=0.8, label=f"{name}, lr {settings['lr']}")
    right.plot(1, 1, "ko", ms=4)
    right.plot(0, 0, "k*")
    right.set(title="min_x max_y x*y, alternating, 1000 steps from (1, 1)", xlabel="x", ylabel="y")
    right.set_aspect("equal")
    right.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path = Path(out) / "07-optimizers.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return [path]


if __name__ == "__main__":
    main()
