"""Hypothesis profiles from tinygen.testing: derandomized and small in CI (CI=true), larger locally."""

pytest_plugins = ["tinygen.testing.profiles"]
