"""What the T5 GPU benchmarks share: sizes, random weights made on the device, timing, output.

Imported by ``benchmark_mesh.py`` and ``benchmark_t5_scale.py`` (``python scripts/<name>.py``
puts this directory on the import path).

Random weights are made one array at a time, each by a small jitted program cached per
(shape, layout): a T5 has about ten distinct weight shapes, so a 24-layer model costs ten tiny
compilations. One jitted ``model.init`` for the whole tree instead compiles hundreds of random
number kernels in one program (about 100 s for 24 layers even at toy widths on a CPU).
"""

from __future__ import annotations

import gc
import math
import statistics
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec, SingleDeviceSharding

from spec_decode.models.t5 import T5Config, T5Decoding

# T5 1.1 sizes (T5X gin): emb_dim, num_heads, layers (encoder = decoder), mlp_dim; head_dim 64.
SIZES = {
    "small": (512, 6, 8, 1024),
    "base": (768, 12, 12, 2048),
    "large": (1024, 16, 24, 2816),
    "xl": (2048, 32, 24, 5120),
    "xxl": (4096, 64, 24, 10240),
}
START = time.perf_counter()


def log(message: str) -> None:
    """A progress line with the seconds since the script started, flushed at once."""
    print(f"[{time.perf_counter() - START:7.1f} s] {message}", flush=True)


def elapsed() -> float:
    return time.perf_counter() - START


def t5_config(size: str, smoke: bool, layers: int | None = None) -> T5Config:
    """T5 1.1 ``size`` in bfloat16; ``smoke``: 1/32 of the width and 2 layers (a CPU compiles
    it in seconds); ``layers`` overrides the depth."""
    emb, heads, depth, mlp = SIZES[size]
    if smoke:
        emb, heads, depth, mlp = emb // 32, max(heads // 4, 2), 2, mlp // 32
    return T5Config(
        vocab_size=512 if smoke else 32128, dtype="bfloat16", emb_dim=emb, num_heads=heads,
        num_encoder_layers=layers or depth, num_decoder_layers=layers or depth,
        head_dim=8 if smoke else 64, mlp_dim=mlp, mlp_activations=("gelu", "linear"),
        dropout_rate=0.0, logits_via_embedding=False,
    )  # fmt: skip


def _scale_and_offset(path: str, shape: tuple[int, ...], head_dim: int) -> tuple[float, float]:
    """T5X's initial scale of one weight (normal rather than truncated: timing does not care)."""
    if path.endswith("['scale']"):  # RMS norm scales start at 1
        return 0.0, 1.0
    if path.endswith("['embedding']"):
        return 1.0, 0.0
    if path.endswith("['rel_embedding']"):
        return 1.0 / math.sqrt(sum(shape) / 2), 0.0
    scale = 1.0 / math.sqrt(shape[0])  # kernels [inputs, outputs]: fan-in
    if "['query']" in path:  # T5 folds 1/sqrt(H) into the query kernel
        scale /= math.sqrt(head_dim)
    return scale, 0.0


_MAKERS: dict[Any, Any] = {}


def _maker(sharding):
    """A jitted maker of one bfloat16 array laid out by ``sharding`` (one per layout)."""
    if sharding not in _MAKERS:

        def make(key, scale, offset, shape):
            # Drawn in float32 (bfloat16 draws are visibly biased) and cast in the same fused
            # kernel: only the bfloat16 array is stored.
            x = offset + scale * jax.random.normal(key, shape, jnp.float32)
            return x.astype(jnp.bfloat16)

        _MAKERS[sharding] = jax.jit(make, static_argnums=3, out_shardings=sharding)
    return _MAKERS[sharding]


def random_params(model: T5Decoding, key: jax.Array, shardings: Any = None) -> Any:
    """Random bfloat16 T5 params made on the device(s), each array directly in its layout.

    ``shardings``: a tree of shardings matching the params (``sharding.param_shardings``), one
    sharding for every array, or None for the default device. No float32 copy and no whole
    copy of a split array exists at any time.
    """
    shapes = jax.eval_shape(model.init, jax.random.key(0))
    if shardings is None:
        shardings = SingleDeviceSharding(jax.devices()[0])
    if isinstance(shardings, (NamedSharding, SingleDeviceSharding)):
        shardings = jax.tree.map(lambda _: shardings, shapes)
    flat, tree = jax.tree_util.tree_flatten_with_path(shapes)
    layouts = jax.tree.leaves(shardings, is_leaf=lambda x: isinstance(x, jax.sharding.Sharding))
    arrays = []
    for index, ((path, leaf), layout) in enumerate(zip(flat, layouts, strict=True)):
        scale, offset = _scale_and_offset(
            jax.tree_util.keystr(path), leaf.shape, model.config.head_dim
        )
        make = _maker(layout)
        arrays.append(make(jax.random.fold_in(key, index), scale, offset, tuple(leaf.shape)))
    return jax.block_until_ready(jax.tree.unflatten(tree, arrays))


def replicated(mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def timed(fn, repeats: int) -> tuple[float, float, Any]:
    """(median seconds over ``repeats`` runs, seconds of the first run (compiles), last output)."""
    start = time.perf_counter()
    out = jax.block_until_ready(fn())
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return statistics.median(times), first, out


def finite(value: Any) -> Any:
    """JSON-safe and short: floats to 5 significant digits, NaN and infinities None."""
    if isinstance(value, float):
        return float(f"{value:.5g}") if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {str(error)[:2000]}"


def within_budget(
    items: Iterable, key: str, budget_seconds: float | None, measure: Callable[[Any], dict]
) -> Iterator[dict]:
    """One record per item, ``measure(item)`` or the error it raised (an out-of-memory size
    must not end the run), with its seconds; once the budget is spent, one "not started"
    record and no more. Each item's weights and executables are freed before the next's."""
    for item in items:
        if budget_seconds is not None and elapsed() > budget_seconds:
            log(f"budget of {budget_seconds:.0f} s spent: {key}={item} and later not run")
            yield {key: item, "error": f"not started: budget spent ({elapsed():.0f} s)"}
            return
        start = time.perf_counter()
        try:
            record = measure(item)
        except Exception as error:
            traceback.print_exc()
            record = {key: item, "error": error_text(error)}
        record["seconds"] = time.perf_counter() - start
        yield record
        gc.collect()
        jax.clear_caches()
