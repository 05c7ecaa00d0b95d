"""The learning path holds together: every chapter has its page, script, solutions and test,
every relative link on its pages resolves, and every figure a page shows is drawn by
examples/learn/figures.py (so no picture can drift from the code)."""

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LEARN_DOCS = ROOT / "docs" / "learn"
LEARN_CODE = ROOT / "examples" / "learn"
FIGURES = ROOT / "docs" / "images" / "learn"
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)  # code blocks and spans hold no links


def links(page):
    """The targets of the Markdown links on ``page``, outside code."""
    return LINK.findall(CODE.sub("", page.read_text()))


def load_figures_script():
    spec = importlib.util.spec_from_file_location("learn_figures", LEARN_CODE / "figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def chapter_scripts():
    return sorted(LEARN_CODE.glob("[0-9][0-9]_*.py"))


def test_every_chapter_has_a_page_solutions_and_a_test():
    scripts = chapter_scripts()
    assert len(scripts) >= 10
    numbers = [path.name[:2] for path in scripts]
    assert numbers == [f"{i:02d}" for i in range(1, len(scripts) + 1)], "chapters are numbered 01, 02, ..."
    for script in scripts:
        slug = script.stem[3:].replace("_", "-")
        number = script.name[:2]
        assert (LEARN_DOCS / f"{number}-{slug}.md").is_file(), script.name
        assert (LEARN_DOCS / "solutions" / f"{number}-{slug}.md").is_file(), script.name
        assert (ROOT / "tests" / "learn_tests" / f"test_{script.stem}.py").is_file(), script.name


def pages():
    return sorted(LEARN_DOCS.glob("**/*.md"))


@pytest.mark.parametrize("page", pages(), ids=lambda page: str(page.relative_to(LEARN_DOCS)))
def test_relative_links_resolve(page):
    for target in links(page):
        if "://" in target or target.startswith("mailto:"):
            continue
        assert (page.parent / target).exists(), f"{page.name} links to {target}, which does not exist"


def test_every_figure_shown_is_drawn_by_the_figures_script(tiny_data, tmp_path):
    out = tmp_path / "figures"  # chapters 9 and 10 draw theirs from the tiny data set here
    drawn = {path.name for path in load_figures_script().main(["--out", str(out)])}
    assert drawn, "no chapter draws a figure"
    for name in drawn:
        assert (out / name).stat().st_size > 1000, name
        assert (FIGURES / name).is_file(), f"{name} is drawn but not committed: run `make figures`"
    shown = set()
    for page in pages():
        shown |= {Path(target).name for target in links(page) if "images/learn/" in target}
    assert shown <= drawn, f"pages show figures no script draws: {sorted(shown - drawn)}"
    committed = {path.name for path in FIGURES.glob("*.png")}
    assert committed <= drawn, f"stale figures in docs/images/learn: {sorted(committed - drawn)}"
