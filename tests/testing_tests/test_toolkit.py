"""``tinygen.testing``: reachable from ``import tinygen``, hypothesis only for its strategies (and an
error naming the extra without it), the ``testing`` extra, and the importable hypothesis profiles."""

import os
import pathlib
import re
import subprocess
import sys

from hypothesis import settings

import tinygen
from tinygen.testing import profiles

ROOT = pathlib.Path(__file__).resolve().parents[2]


def run_python(code):
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_testing_is_lazy_and_imports_hypothesis_only_for_strategies():
    out = run_python(
        "import sys, tinygen\n"
        "print('tinygen.testing' in sys.modules, 'hypothesis' in sys.modules)\n"
        "tinygen.testing.check_op, tinygen.testing.gradcheck\n"
        "print('hypothesis' in sys.modules)\n"
        "tinygen.testing.strategies.arrays\n"
        "print('hypothesis' in sys.modules)\n"
    )
    assert out.split() == ["False", "False", "False", "True"]


def test_without_hypothesis_the_error_names_the_extra():
    out = run_python(
        "import sys\n"
        "sys.modules['hypothesis'] = None  # as if it were not installed\n"
        "import tinygen\n"
        "assert tinygen.testing.gradcheck(tinygen.exp, [tinygen.tensor([1.0]).double().requires_grad_()])\n"
        "for name in ('strategies', 'profiles', 'op_test'):\n"
        "    try:\n"
        "        getattr(tinygen.testing, name)\n"
        "    except ImportError as err:\n"
        "        print(err)\n"
    )
    lines = out.strip().splitlines()
    assert len(lines) == 3
    for line, name in zip(lines, ("strategies", "profiles", "op_test"), strict=True):
        assert f"tinygen.testing.{name} needs hypothesis" in line
        assert "pip install 'tinygen[testing]'" in line


def test_the_testing_extra_brings_hypothesis_and_pytest_alone():
    line = re.search(r"^testing = \[(.*)\]$", (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    assert sorted(r.strip(' "').split(">")[0] for r in line.split(",")) == ["hypothesis", "pytest"]


def test_profiles_are_registered_and_loadable(monkeypatch):
    current = settings.get_current_profile_name()
    try:
        assert profiles.load_profile(profiles.CI) == "tinygen-ci"
        assert settings.default.derandomize and settings.default.database is None
        assert settings.default.max_examples < settings.get_profile(profiles.DEV).max_examples
        monkeypatch.delenv("HYPOTHESIS_PROFILE", raising=False)
        monkeypatch.setenv("CI", "true")
        assert profiles.load_profile() == "tinygen-ci"
        monkeypatch.delenv("CI")
        assert profiles.load_profile() == "tinygen-dev"
    finally:
        settings.load_profile(current)


def test_this_suite_runs_under_the_profile_the_plugin_chose(pytestconfig):
    """tests/conftest.py is the one line ``pytest_plugins = ["tinygen.testing.profiles"]``."""
    chosen = pytestconfig.getoption("hypothesis_profile") or os.environ.get("HYPOTHESIS_PROFILE")
    expected = chosen or (profiles.CI if os.environ.get("CI") else profiles.DEV)
    assert settings.get_current_profile_name() == expected


def test_tinygen_testing_is_the_submodule():
    assert tinygen.testing.check_op is __import__("tinygen.testing", fromlist=["check_op"]).check_op
