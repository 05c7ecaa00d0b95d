"""Chapter 11 (the LSTM cell, PixelRNN) states what its page says, on the tiny data set."""

import math
import re


def run(tiny_data, monkeypatch, run_chapter):
    return run_chapter("11", "--limit", "128", "--steps", "8", "--eval-limit", "32")


def test_cell_matches_its_equations_and_passes_gradcheck(tiny_data, monkeypatch, run_chapter):
    out = run(tiny_data, monkeypatch, run_chapter)
    gap = float(re.search(r"largest difference in h, c = (\S+)", out).group(1))
    assert gap < 1e-12
    assert re.search(r"gradcheck of F.lstm_cell .*: passed", out)
    # The hand-set cell: a write raises c, an erase (f near 0) empties it.
    rows = {int(m.group(1)): float(m.group(2)) for m in re.finditer(r"^\s*(\d+) .*\| (\S+)  \S+$", out, re.M)}
    assert rows[1] > 0.9 and rows[5] > 1.8 and rows[9] < 0.05


def test_masks_causality_and_samplers(tiny_data, monkeypatch, run_chapter):
    out = run(tiny_data, monkeypatch, run_chapter)
    assert "mask A, 3x3:\n  1 1 1\n  1 . .\n  . . ." in out
    assert "mask B, 5x5:\n  1 1 1 1 1\n  1 1 1 1 1\n  1 1 1 . .\n  . . . . .\n  . . . . ." in out
    assert "pixels at or before it whose logits moved: 0 of 29" in out
    later = int(re.search(r"pixels after it whose logits moved:\s+(\d+) of 35", out).group(1))
    assert later > 25
    assert "cached and naive samplers, same uniforms: identical" in out


def test_exact_likelihood_in_nats_and_bits_per_dim(tiny_data, monkeypatch, run_chapter):
    out = run(tiny_data, monkeypatch, run_chapter)
    assert "128 Fashion-MNIST images of 28x28" in out and "8 steps" in out
    for label in ("untrained", "trained"):
        found = re.search(rf"{label}: +test -log p\(x\) (\S+) nats \((\S+) bits/dim\)", out)
        nats, bpd = map(float, found.groups())
        assert 0 < nats < 2000
        assert abs(bpd - nats / (784 * math.log(2))) < 2e-3
    assert "on 32 test images" in out
    sample_rows = re.findall(r"^  [.#]{28}   [.#]{28}$", out, re.M)
    assert len(sample_rows) == 28
