"""The README's example runs as written."""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_readme_python_example_runs(tmp_path, monkeypatch):
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "the README has no python example"
    code = blocks[0].replace("/tmp/lenet.npz", str(tmp_path / "lenet.npz"))
    exec(compile(code, "README.md", "exec"), {})
