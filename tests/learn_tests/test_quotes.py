"""What a page quotes from its script is what the script prints now.

A page quotes a script's output in code blocks. Every block whose first line is a line the
script prints (at its default arguments) must be printed in full, line for line, except
``...``, which marks lines left out. Lines match when their words match and each number is
within 2% (or 1e-9) of the printed one, so that rounding on another CPU's BLAS does not
fail the test but a changed result does. The chapters that read Fashion-MNIST (9 to 11)
print other numbers on the tests' tiny data, so their quotes are checked by their own tests.
"""

import math
import re
from pathlib import Path

import pytest

NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")

PAGES = Path(__file__).resolve().parents[2] / "docs" / "learn"
WITHOUT_DATA = ["01", "02", "03", "04", "05", "06", "07", "08", "12"]


def code_blocks(text):
    """The page's fenced and 4-space indented blocks, each as its non-blank lines."""
    found, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        if lines[i].startswith("```"):
            end = i + 1
            while end < len(lines) and not lines[end].startswith("```"):
                end += 1
            found.append(lines[i + 1 : end])
            i = end + 1
        elif lines[i].startswith("    ") and (i == 0 or not lines[i - 1].strip()):
            end = i
            while end < len(lines) and (lines[end].startswith("    ") or not lines[end].strip()):
                end += 1
            found.append([line[4:] for line in lines[i:end]])
            i = end
        else:
            i += 1
    return [[line.strip() for line in block if line.strip()] for block in found]


def words(line):
    return NUMBER.sub("#", line)


def same_numbers(quoted, printed):
    pairs = zip(NUMBER.findall(quoted), NUMBER.findall(printed), strict=True)
    return all(math.isclose(float(a), float(b), rel_tol=0.02, abs_tol=1e-9) for a, b in pairs)


@pytest.mark.parametrize("number", WITHOUT_DATA)
def test_the_output_a_page_quotes_is_printed(number, run_chapter):
    printed = {}
    for line in run_chapter(number).splitlines():
        printed.setdefault(words(line.strip()), []).append(line.strip())
    (page,) = PAGES.glob(f"{number}-*.md")
    quoted = [block for block in code_blocks(page.read_text()) if words(block[0]) in printed]
    assert len(quoted) >= 2, f"{page.name} quotes fewer than two blocks of its script's output"
    for block in quoted:
        missing = [line for line in block if line != "..."
                   and not any(same_numbers(line, out) for out in printed.get(words(line), []))]
        assert not missing, f"{page.name} quotes lines its script no longer prints: {missing}"
