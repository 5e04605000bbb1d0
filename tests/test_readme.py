"""The README's examples run as written (every python block that does not need a GPU)."""
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEXT = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
BLOCKS = re.findall(r"```python\n(.*?)```", TEXT, flags=re.S)


def test_the_readme_has_python_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("i", range(len(BLOCKS)))
def test_readme_python_example_runs(i, tmp_path, monkeypatch):
    code = BLOCKS[i]
    if '"cuda"' in code:
        pytest.skip("needs a GPU")
    monkeypatch.chdir(tmp_path)
    code = code.replace("\"/tmp/", f"\"{tmp_path}/")
    if i > 0 and "import engine" not in code:
        code = "import numpy as np\nimport engine\n" + code
    try:
        exec(compile(code, f"README.md block {i}", "exec"), {})
    finally:                                   # the scale-out example leaves a process group (of one) behind
        import engine.distributed as dist
        if dist.is_initialized():
            dist.destroy_process_group()
