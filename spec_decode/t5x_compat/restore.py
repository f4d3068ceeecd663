"""Restoring {'target': ..., 'draft': ...} in a T5X run from two T5X checkpoints.

T5X restores one checkpoint per run (``utils.RestoreCheckpointConfig.path``), whose parameters
are the target's. ``draft_restore_fn`` is a T5X ``RestoreStateTransformationFn``: applied to the
state read from the target checkpoint, it nests those parameters under 'target' and adds the
draft's, read from its own checkpoint, under 'draft', which is the tree that
``SpeculativeEncoderDecoderModel.get_initial_variables`` declares::

    utils.RestoreCheckpointConfig.state_transformation_fns = [
        @t5x_compat.draft_restore_fn(),
    ]
    t5x_compat.draft_restore_fn.draft_checkpoint_path = %DRAFT_CHECKPOINT_PATH
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


def draft_restore_fn(draft_checkpoint_path: str, restore_dtype: Any = None) -> Callable[..., dict]:
    """A T5X state transformation: target params -> {'target': them, 'draft': the draft's}.

    The draft checkpoint is read (either T5X format) when the transformation first runs. The
    optimizer slots of the target checkpoint (``state/param_states``) are dropped: inference
    does not use them and they no longer match the nested tree.
    """
    draft: dict = {}

    def transform(state_dict: Mapping, target_state_dict: Any = None, **kwargs: Any) -> dict:
        del target_state_dict, kwargs  # T5X passes them; the layout is fixed here
        state = dict(state_dict)
        params = state.get("target")
        if not isinstance(params, Mapping):
            raise ValueError(
                f"state_dict with keys {sorted(state)} is not allowed: a T5X state dict has the "
                "parameters under 'target'"
            )
        if set(params) == {"target", "draft"}:  # already nested (e.g. a resumed run)
            return state
        if not draft:
            from spec_decode.formats.t5x import load_t5x_checkpoint

            draft.update(load_t5x_checkpoint(draft_checkpoint_path, restore_dtype)["target"])
        state["target"] = {"target": params, "draft": draft}
        if isinstance(state.get("state"), Mapping):
            state["state"] = {k: v for k, v in state["state"].items() if k != "param_states"}
        return state

    return transform
