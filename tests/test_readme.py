"""The README's example runs as written."""

import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_runs():
    examples = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    namespace: dict = {}
    exec(compile(examples[0], str(README), "exec"), namespace)
    out = namespace["out"]
    assert out.tokens.shape == (2, 16)
    assert (out.lengths >= 1).all()
    # The decoder object's example continues the first one and gives the same decode.
    exec(compile(examples[1], str(README), "exec"), namespace)
    for result in (namespace["result"], namespace["stream"].result()):
        assert (result.tokens == out.tokens).all()
        assert result.summary() == out.summary()
    assert namespace["baseline"].draft is None and namespace["baseline"].gamma == 0
    assert namespace["auto"].max_drafts == 3
