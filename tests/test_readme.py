"""The README's Python snippets run as written (in order, sharing names), in a scratch folder."""

import pathlib
import re


def test_readme_snippets_run(tmp_path, monkeypatch):
    readme = pathlib.Path(__file__).resolve().parents[1] / "README.md"
    blocks = re.findall(r"```python\n(.*?)```", readme.read_text(), re.S)
    assert blocks
    monkeypatch.chdir(tmp_path)  # snippets may write files (checkpoints)
    namespace = {}
    for block in blocks:
        exec(compile(block, str(readme), "exec"), namespace)
