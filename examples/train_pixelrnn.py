"""Train a PixelRNN on binarized Fashion-MNIST with tinygen: the whole training loop, in one screen.

    python examples/train_pixelrnn.py --limit 1600 --hidden 8                 # 15 seconds on 1 core
    python examples/train_pixelrnn.py --arch diagonal-bilstm --limit 6400     # the paper's best layer, ~5 min

The `tinygen train pixelrnn` command runs the same loop with checkpoints, resume, a progress
bar and plots (tinygen/trainer.py). Here every step is spelled out. The model is van den
Oord, Kalchbrenner and Kavukcuoglu, "Pixel Recurrent Neural Networks" (ICML 2016):

1. The factorisation (the paper's eq. 1). Read the D = 28*28 pixels row by row; then, exactly,

       p(x) = p(x_1) p(x_2 | x_1) ... p(x_D | x_1 .. x_{D-1}) = prod_i p(x_i | x_<i).

   The network outputs one Bernoulli logit per pixel, the parameter of p(x_i = 1 | x_<i), for
   all pixels at once, so -log p(x) = sum_i BCE(logit_i, x_i) is exact: no bound, no sampling.
2. Causality makes it so: the logit of pixel i must not depend on pixels i, i+1, ... The first
   layer is a 7x7 convolution with mask A (it sees only the pixels above and to the left),
   the later ones use mask B (they may also see their own position, whose features already
   depend only on earlier pixels), and the LSTMs read the rows above (Row LSTM) or the
   pixels above and to the left (Diagonal BiLSTM; its right-to-left half is shifted one row
   down so that it too sees only rows above).
3. Sampling is the factorisation run forwards: draw x_1, then x_2 given x_1, ... one pixel
   at a time, D steps (pixelrnn.sample caches what each step computed; see its docstring).

The derivations and pictures are in docs/pixelrnn.md.
"""

import argparse
import time
from pathlib import Path

import tinygen
import tinygen.nn.functional as F
from tinygen.data import DataLoader, load_dataset, save_image
from tinygen.models import pixelrnn


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--arch", default="row-lstm", choices=pixelrnn.ARCHITECTURES)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=16, help="LSTM state size h")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--limit", type=int, default=0, help="use the first N training images (0: all)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--grid", type=int, default=16, help="samples drawn at each epoch's end")
    parser.add_argument("--eval-limit", type=int, default=1000, help="test images scored (0: all)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/example-pixelrnn")
    args = parser.parse_args()

    tinygen.manual_seed(args.seed)
    data = load_dataset(args.dataset, "train")
    if args.limit:
        data = data[: args.limit]
    # Dynamic binarization: each batch draws every pixel afresh as 1 with probability p/255.
    loader = DataLoader(data, args.batch_size, shuffle=True, drop_last=True, value_range=(0, 1),
                        binarize=True, device=args.device)
    # The test split is binarized once, from a fixed seed, so every evaluation scores the same images.
    test = load_dataset(args.dataset, "test")
    test_x = pixelrnn.eval_images(test.images[: args.eval_limit or None], "bernoulli")
    height, width = data.images.shape[2:]

    model = pixelrnn.make_model(args.arch, (1, height, width), args.layers, args.hidden).to(args.device)
    opt = tinygen.optim.Adam(model.parameters(), lr=args.lr)
    # The uniforms the samples are drawn from: the same for every grid, so grids compare over epochs.
    uniform = tinygen.rand(args.grid, height, width, dtype=tinygen.float64).numpy()

    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        for step, (x, _) in enumerate(loader, start=1):
            # One pass gives every conditional: logits[n, 0, r, j] is the logit of p(x_rj = 1 | x_<rj).
            logits = model(x)
            # -log p(x) = -sum_i log p(x_i | x_<i): the BCE of each logit against its pixel, summed
            # over the D pixels of an image (nats per image, the number papers report), then the
            # batch mean. Computed from the logits: a sigmoid then a log gives -inf at saturation.
            nats = F.binary_cross_entropy_with_logits(logits, x, reduction="none").reshape(len(x), -1).sum(1)
            loss = nats.mean()

            opt.zero_grad()
            loss.backward()
            opt.step()

            if step % 100 == 0 or step == len(loader):
                print(f"epoch {epoch} step {step}/{len(loader)}  -log p(x) {loss.item():.2f} nats")
        seconds = time.perf_counter() - start

        # The exact test likelihood, per image; bits/dim = nats / (D ln 2).
        figures = pixelrnn.evaluate(model, test_x)
        print(f"epoch {epoch}  {seconds:.1f} s  test -log p(x) {figures['nll']:.2f} nats "
              f"({figures['bpd']:.4f} bits/dim) on {len(test_x)} test images")

        # Samples, pixel by pixel: pixel (r, j) is 1 when uniform[:, r, j] < p(x_rj = 1 | x_<rj).
        samples = pixelrnn.sample(model, uniform)
        grid = save_image(samples, Path(args.out) / f"epoch_{epoch:03d}.png", value_range=(0, 1))
        print(f"wrote {grid}")


if __name__ == "__main__":
    main()
