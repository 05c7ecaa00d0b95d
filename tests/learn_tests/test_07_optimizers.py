"""Chapter 7 (optimizers): the NumPy rules match tinygen.optim, and the page's claims hold."""

import re


def table(out, section):
    """{row name: [numbers]} for the lines of the numbered ``section`` of the output."""
    block = out.split(f"\n{section}. ")[1].split("\n\n")[0]
    rows = {}
    for line in block.splitlines()[1:]:
        name, *numbers = re.split(r"\s{2,}", line.strip())
        try:
            rows[name] = [float(x) for x in numbers]
        except ValueError:
            continue
    return rows


def test_numpy_rules_match_tinygen_optim(run_chapter):
    out = run_chapter("07")
    gaps = [float(x) for x in re.findall(r"max \|numpy - tinygen\| over \d+ steps = (\S+)", out)]
    assert len(gaps) == 3 and max(gaps) < 1e-12


def test_bias_correction_restores_the_gradient(run_chapter):
    out = run_chapter("07")
    rows = re.findall(r"^\s+(\d)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)$", out, re.M)
    assert [int(r[0]) for r in rows] == [1, 2, 3]
    t1 = [float(x) for x in rows[0][1:]]
    assert abs(t1[0] - 0.1) < 1e-9 and t1[1] == 1.0 and t1[3] == 1.0  # m = 0.1, m_hat = v_hat = 1
    assert abs(t1[4] - 10**0.5) < 1e-3 and t1[5] == 1.0  # uncorrected first step 3.16 lr


def test_momentum_beats_sgd_on_the_ill_conditioned_bowl(run_chapter):
    out = run_chapter("07")
    f = {name: float(value) for name, value in re.findall(r"^\s+(sgd|momentum|adam)\s+f = (\S+)", out, re.M)}
    assert f["momentum"] < f["adam"] < f["sgd"] < 64.25


def test_a_long_memory_overshoots_in_the_bilinear_game(run_chapter):
    rows = table(run_chapter("07"), 5)
    assert abs(rows["sgd"][-1] - 2**0.5) < 0.05  # alternating SGD circles at the start distance
    assert rows["momentum 0.9"][-1] > rows["momentum 0.5"][-1] > 100
    assert rows["adam b1=0.9"][-1] > 2 * rows["adam b1=0.5"][-1]
    assert rows["adam b1=0.5"][-1] > rows["adam b1=0.0"][-1]


def test_shorter_game_runs(run_chapter):
    rows = table(run_chapter("07", "--steps", "10", "--game-steps", "20"), 5)
    assert set(rows) >= {"sgd", "adam b1=0.5"}
