"""Counting the kernels one decode step launches, from compiled HLO text.

Hand-written modules pin down each rule (what is free, loops times trips, the largest branch of
a conditional, calls followed); a real compiled CPU loop checks the parser against XLA's text.
"""

import dataclasses

import jax.numpy as jnp
import pytest

from spec_decode.bench import computation_kernels, decode_step_kernels
from spec_decode.core.decoder import DecoderParams, SpeculativeDecoder
from spec_decode.models.llama import LlamaLM, tiny_llama

HLO = """
HloModule toy

%fused_a (p: f32[4]) -> f32[4] {
  %p = f32[4]{0} parameter(0)
  ROOT %n = f32[4]{0} negate(%p)
}

%ibody (t: (s32[], f32[4])) -> (s32[], f32[4]) {
  %t = (s32[], f32[4]{0}) parameter(0)
  %i = s32[] get-tuple-element(%t), index=0
  %x = f32[4]{0} get-tuple-element(%t), index=1
  %f1 = f32[4]{0} fusion(%x), kind=kLoop, calls=%fused_a
  %f2 = f32[4]{0} fusion(%f1), kind=kLoop, calls=%fused_a
  ROOT %r = (s32[], f32[4]{0}) tuple(%i, %f2)
}

%icond (t: (s32[], f32[4])) -> pred[] {
  %t = (s32[], f32[4]{0}) parameter(0)
  %i = s32[] get-tuple-element(%t), index=0
  %c = s32[] constant(4)
  ROOT %lt = pred[] compare(%i, %c), direction=LT
}

%small (x: f32[4]) -> f32[4] {
  %x = f32[4]{0} parameter(0)
  ROOT %f = f32[4]{0} fusion(%x), kind=kLoop, calls=%fused_a
}

%big (x: f32[4]) -> f32[4] {
  %x = f32[4]{0} parameter(0)
  %a = f32[4]{0} fusion(%x), kind=kLoop, calls=%fused_a
  %b = f32[4]{0} custom-call(%a), custom_call_target="__cublas$gemm"
  ROOT %c = f32[4]{0} copy(%b)
}

%callee (x: f32[4]) -> f32[4] {
  %x = f32[4]{0} parameter(0)
  ROOT %f = f32[4]{0} fusion(%x), kind=kLoop, calls=%fused_a
}

%outer_body (t: (s32[], f32[4])) -> (s32[], f32[4]) {
  %t = (s32[], f32[4]{0}) parameter(0)
  %i = s32[] get-tuple-element(%t), index=0
  %x = f32[4]{0} get-tuple-element(%t), index=1
  %g = f32[4]{0} custom-call(%x), custom_call_target="__cublas$gemm"
  %w = (s32[], f32[4]{0}) while(%t), condition=%icond, body=%ibody, TRIPS
  %y = f32[4]{0} get-tuple-element(%w), index=1
  %p = pred[] constant(true)
  %k = f32[4]{0} conditional(%p, %y, %y), true_computation=%big, false_computation=%small
  %cl = f32[4]{0} call(%k), to_apply=%callee
  %s = f32[4]{0} all-reduce-start(%cl), to_apply=%callee
  %d = f32[4]{0} all-reduce-done(%s)
  %b = f32[4]{0} bitcast(%d)
  ROOT %r = (s32[], f32[4]{0}) tuple(%i, %b)
}

%outer_cond (t: (s32[], f32[4])) -> pred[] {
  %t = (s32[], f32[4]{0}) parameter(0)
  ROOT %c = pred[] constant(true)
}

ENTRY %main (x: f32[4]) -> f32[4] {
  %x = f32[4]{0} parameter(0)
  %z = s32[] constant(0)
  %t = (s32[], f32[4]{0}) tuple(%z, %x)
  %w = (s32[], f32[4]{0}) while(%t), condition=%outer_cond, body=%outer_body
  ROOT %y = f32[4]{0} get-tuple-element(%w), index=1
}
""".replace("TRIPS", 'backend_config={"known_trip_count":{"n":"3"}}')


def test_a_step_counts_launches_with_loops_times_trips_and_the_largest_branch():
    count = decode_step_kernels(HLO)
    # gemm 1 + inner loop 3 trips x 2 fusions + its condition 4 tests x 1 compare
    # + the larger branch 3 + the call's fusion 1 + all-reduce-start 1 (the -done is free).
    assert count.total == 1 + 3 * 2 + 4 * 1 + 3 + 1 + 1
    assert count.by_opcode == {"all-reduce-start": 1, "compare": 4, "copy": 1,
                               "custom-call": 2, "fusion": 8}  # fmt: skip
    assert (count.inner_loops, count.unknown_trips) == (1, 0)


def test_a_loop_without_a_known_trip_count_reads_its_condition_bound():
    text = HLO.replace(', backend_config={"known_trip_count":{"n":"3"}}', "")
    assert decode_step_kernels(text).total == 1 + 4 * 2 + 5 * 1 + 3 + 1 + 1
    assert computation_kernels(text, "ibody").total == 2


def test_text_without_a_loop_or_an_entry_is_refused():
    with pytest.raises(ValueError, match="no while loop"):
        decode_step_kernels(HLO.split("%outer_body")[0] + "ENTRY %m (x: f32[4]) -> f32[4] {\n}")
    with pytest.raises(ValueError, match="ENTRY"):
        decode_step_kernels("HloModule empty")


def _compiled_loop(model, params):
    decoder = SpeculativeDecoder(model, max_new_tokens=3)
    prompts = jnp.ones((1, 4), jnp.int32)
    return decoder.lower(DecoderParams(params, None), prompts).compile().as_text()


def test_a_compiled_cpu_loop_launches_kernels_and_unrolled_layers_leave_no_layer_loop():
    model, params = tiny_llama(2, 0)
    scanned = decode_step_kernels(_compiled_loop(model, params))
    config = dataclasses.replace(model.config, layer_unroll=2, attention="einsum")
    unrolled = decode_step_kernels(_compiled_loop(LlamaLM(config), params))
    assert scanned.total > 0 and unrolled.total > 0
    assert scanned.unknown_trips == 0
    # The sampler's random-bit loops stay; the scan over layers is the one loop that goes.
    assert unrolled.inner_loops == scanned.inner_loops - 1
