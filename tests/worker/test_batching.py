"""The micro-batcher: batches fill under load, a lone request never waits, errors reach every caller."""
import threading
import time

import pytest

from worker.batching import MicroBatcher


class Recorder:
    def __init__(self, delay: float = 0.0, fail: bool = False):
        self.batches: list[list] = []
        self.delay, self.fail = delay, fail

    def __call__(self, items: list) -> list:
        self.batches.append(list(items))
        time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("model exploded")
        return [item * 10 for item in items]


def test_a_lone_request_runs_at_once_even_with_a_long_max_wait():
    run = Recorder()
    batcher = MicroBatcher(run, max_batch=8, max_wait_s=5.0)
    started = time.monotonic()
    assert batcher(4) == 40
    assert time.monotonic() - started < 1.0  # nothing else was announced: no lingering
    assert run.batches == [[4]]


def test_concurrent_requests_are_batched_and_each_gets_its_own_result():
    run = Recorder(delay=0.05)
    batcher = MicroBatcher(run, max_batch=8, max_wait_s=2.0)
    results, barrier = {}, threading.Barrier(16)

    def task(i: int) -> None:
        with batcher.reserve() as submit:
            barrier.wait()  # all 16 are announced before anyone submits
            time.sleep(0.001 * i)  # "decoding" takes different times
            results[i] = submit(i)

    threads = [threading.Thread(target=task, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == {i: i * 10 for i in range(16)}
    assert max(len(b) for b in run.batches) > 1  # requests shared model calls
    assert all(len(b) <= 8 for b in run.batches)
    assert sum(len(b) for b in run.batches) == 16


def test_an_announced_item_that_never_comes_does_not_hold_the_batch_forever():
    run = Recorder()
    batcher = MicroBatcher(run, max_batch=8, max_wait_s=0.2)
    with batcher.reserve():  # e.g. its image could not be decoded
        started = time.monotonic()
        assert batcher(1) == 10  # waits at most max_wait for the announced one
        assert time.monotonic() - started < 1.5
    started = time.monotonic()
    assert batcher(2) == 20  # the slot was released: no waiting any more
    assert time.monotonic() - started < 0.15


def test_a_failing_batch_raises_in_every_caller_and_the_batcher_lives_on():
    run = Recorder(fail=True)
    batcher = MicroBatcher(run, max_batch=4, max_wait_s=0.01)
    with pytest.raises(RuntimeError, match="exploded"):
        batcher(1)
    run.fail = False
    assert batcher(3) == 30
