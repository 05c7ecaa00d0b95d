"""Chapter 8 (toy GAN): D matches D* in 1-D, one run covers the ring and the other collapses.

One run of the chapter at its defaults (a few seconds); every claim of the page is checked on it.
"""

import math
import re


def histories(out):
    """{run name: [(step, loss_d, loss_g, modes_hit, high_quality, top_share), ...]}"""
    runs = {}
    for name, block in re.findall(r"^  (\w+): \{.*?\}\n.*?\n((?:\s+\d+ .*\n?)+)", out, re.M):
        rows = []
        for line in block.strip().splitlines():
            step, loss_d, loss_g, hit, quality, share = line.split()
            hit = int(hit.split("/")[0])
            rows.append((int(step), float(loss_d), float(loss_g), hit, float(quality), float(share)))
        runs[name] = rows
    return runs


def test_toy_gan_chapter(run_chapter):
    out = run_chapter("08")

    # 1. the trained 1-D D is the optimal D*, and its loss is log 4 - 2 JSD
    assert float(re.search(r"max \|D - D\*\| on \[-3, 3\] = (\S+)", out).group(1)) < 0.05
    found = re.search(r"D's loss (\S+); at D\*, log 4 - 2\*JSD\(p_data, p_g\) = (\S+);", out)
    loss, optimum = map(float, found.groups())
    assert abs(loss - optimum) < 0.01 and optimum < math.log(4) - 0.1

    runs = histories(out)
    assert set(runs) == {"good", "collapse"}
    good, collapse = runs["good"][-1], runs["collapse"][-1]
    # 2. the good run covers all 8 modes, most samples on a mode, none dominating
    assert good[3] == 8 and good[4] > 0.6 and good[5] < 0.3
    # 3. the collapsed run puts (nearly) every sample by one mode
    assert collapse[3] <= 2 and collapse[5] > 0.9
    # 4. the losses do not show the collapse: both runs sit near 2 log 2 and log 2
    for _, loss_d, loss_g, *_ in (good, collapse):
        assert abs(loss_d - 2 * math.log(2)) < 0.25 and abs(loss_g - math.log(2)) < 0.25
