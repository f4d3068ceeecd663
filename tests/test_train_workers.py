"""worker_batches: the round-robin stream of worker processes is the workers' own streams
interleaved (so it is deterministic), a worker's error reaches the consumer, and closing the
stream stops the workers."""

import itertools

import numpy as np
import pytest

from spec_decode.train import worker_batches


def counting(seed, count=5):
    for i in range(count):
        yield {"x": np.full(2, 100 * seed + i)}


def failing(seed):
    yield {"x": np.zeros(2)}
    raise ValueError(f"bad row in stream {seed}")


def test_stream_interleaves_the_workers_streams():
    got = [int(b["x"][0]) for b in worker_batches(counting, workers=3, seed=7)]
    streams = [[int(b["x"][0]) for b in counting(7 + i)] for i in range(3)]
    assert got == [x for row in zip(*streams, strict=True) for x in row]


def test_same_seed_same_stream_other_seed_other_stream():
    a = [int(b["x"][0]) for b in itertools.islice(worker_batches(counting, workers=2), 6)]
    b = [int(b["x"][0]) for b in itertools.islice(worker_batches(counting, workers=2), 6)]
    c = [int(b["x"][0]) for b in itertools.islice(worker_batches(counting, workers=2, seed=1), 6)]
    assert a == b and a != c


def test_a_workers_error_is_raised_by_the_stream():
    with pytest.raises(ValueError, match="bad row in stream"):
        list(worker_batches(failing, workers=2))


def test_closing_stops_the_workers():
    import multiprocessing

    stream = worker_batches(counting, workers=2)
    next(stream)
    stream.close()
    assert not [p for p in multiprocessing.active_children() if p.is_alive()]


@pytest.mark.parametrize("name, value", [("workers", 0), ("prefetch", 0), ("workers", True)])
def test_bad_counts_are_refused(name, value):
    with pytest.raises(ValueError, match=f"{name}={value!r} is not allowed"):
        worker_batches(counting, **{"workers": 2, name: value})


def dying(seed):
    import os

    os._exit(3)
    yield {}


def test_a_worker_that_dies_silently_is_an_error_not_a_hang():
    with pytest.raises(RuntimeError, match="exited \\(code 3\\)"):
        next(worker_batches(dying, workers=1))
