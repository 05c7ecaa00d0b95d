"""The README's Python snippets run as written (in order, sharing names), in a scratch folder."""

import pathlib
import re

from tests.data_tests.files import write_idx_split
from tinygen.data import DATASETS


def test_readme_snippets_run(tmp_path, monkeypatch):
    readme = pathlib.Path(__file__).resolve().parents[1] / "README.md"
    blocks = re.findall(r"```python\n(.*?)```", readme.read_text(), re.S)
    assert blocks
    # load_dataset("fashion-mnist") finds a tiny copy in $TINYGEN_DATA (its checksums patched in)
    _, _, digests = write_idx_split(str(tmp_path / "data"), "train", n=64)
    monkeypatch.setenv("TINYGEN_DATA", str(tmp_path / "data"))
    for name, digest in digests.items():
        monkeypatch.setitem(DATASETS["fashion-mnist"].sha256, name, digest)
    monkeypatch.chdir(tmp_path)  # snippets may write files (checkpoints)
    namespace = {}
    for block in blocks:
        exec(compile(block, str(readme), "exec"), namespace)
