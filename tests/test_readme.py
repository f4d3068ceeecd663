"""The README's example runs as written."""

import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_runs():
    example = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)[0]
    namespace: dict = {}
    exec(compile(example, str(README), "exec"), namespace)
    out = namespace["out"]
    assert out.tokens.shape == (2, 16)
    assert (out.lengths >= 1).all()
