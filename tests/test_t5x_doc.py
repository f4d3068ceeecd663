"""docs/T5X.md's tiny walk-through runs exactly as written, in an empty directory.

The code blocks are read from the document itself: a block whose first line is ``# NAME.ext``
is saved as that file (all of them first); the ``bash`` blocks and the other ``python`` blocks
are then run in order,
with ``SPEC_DECODE`` set to this checkout as the document asks. Blocks that need what a test
cannot have (the paper's checkpoints, t5x, your own seqio data) are left out by name below,
and the test fails if that list stops matching the document.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "T5X.md"
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
FILE_NAME = re.compile(r"^# ([\w.-]+\.(?:py|gin))\n")
# Commands that need the paper's checkpoints, an installed t5x, or data of your own.
NOT_RUN = ("/ckpts/", "python -m t5x.infer", "--gin_file=pairs/xxl_small.gin ... ")


def doc_blocks() -> list[tuple[str, str]]:
    return [(lang, body) for lang, body in BLOCK.findall(DOC.read_text())]


def test_every_left_out_command_is_still_in_the_doc():
    bash = [body for lang, body in doc_blocks() if lang == "bash"]
    assert all(any(marker in body for body in bash) for marker in NOT_RUN)


def test_t5x_doc_commands_run_as_written(tmp_path):
    env = {**os.environ, "SPEC_DECODE": str(REPO), "JAX_PLATFORMS": "cpu"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    # Files first: the document shows tiny.gin after the command that reads it.
    for _, body in doc_blocks():
        if name := FILE_NAME.match(body):
            (tmp_path / name.group(1)).write_text(body)
    outputs = []
    for lang, body in doc_blocks():
        if FILE_NAME.match(body):
            continue
        if lang == "bash" and not any(s in body for s in NOT_RUN):
            command = ["bash", "-euo", "pipefail", "-c", body]
        elif lang == "python":
            command = [sys.executable, "-c", body]
        else:
            continue
        done = subprocess.run(
            command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, f"{body}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
        outputs.append(done.stdout)
    # What the document says the commands print and write.
    assert "(1, 1, 8) (1, 1)" in outputs[1]
    predictions = (tmp_path / "tiny" / "out" / "predictions.jsonl").read_text().splitlines()
    assert [json.loads(line)["inputs"] for line in predictions] == [
        "the fast draft model",
        "a small exact sample",
    ]
    assert {"index", "inputs", "tokens", "score", "stats", "prediction"} <= set(
        json.loads(predictions[0])
    )
    assert (tmp_path / "tiny" / "out" / "summary.json").is_file()
