"""The micro-batcher and the coalescer: batches fill under load, a lone request never waits, errors reach
every caller."""
import threading
import time

import pytest

from testsupport.factories import run_in_threads
from worker.batching import Coalescer, MicroBatcher


class Recorder:
    def __init__(self, delay: float = 0.0, fail: bool = False):
        self.batches: list[list] = []
        self.threads: list[int] = []  # which thread ran each batch
        self.delay, self.fail = delay, fail

    def __call__(self, items: list) -> list:
        self.batches.append(list(items))
        self.threads.append(threading.get_ident())
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

    run_in_threads(task, range(16))
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


def test_the_coalescer_runs_a_lone_call_in_the_callers_own_thread():
    run = Recorder()
    coalescer = Coalescer(run, max_batch=8)
    assert coalescer(4) == 40 and coalescer(5) == 50
    assert run.batches == [[4], [5]] and run.threads == [threading.get_ident()] * 2


def test_the_coalescer_gathers_calls_that_arrive_while_a_batch_runs():
    run = Recorder(delay=0.05)
    coalescer = Coalescer(run, max_batch=8)
    results, barrier = {}, threading.Barrier(20)

    def task(i: int) -> None:
        barrier.wait()
        results[i] = coalescer(i)

    threads = run_in_threads(task, range(20))
    assert results == {i: i * 10 for i in range(20)}
    assert sorted(x for b in run.batches for x in b) == list(range(20))  # each call ran exactly once
    assert len(run.batches) < 20 and all(len(b) <= 8 for b in run.batches)
    assert set(run.threads) <= {t.ident for t in threads}  # the callers ran them: no thread of its own


def test_a_failing_coalesced_batch_raises_in_each_of_its_callers_and_the_next_call_runs():
    run = Recorder(fail=True)
    coalescer = Coalescer(run)
    with pytest.raises(RuntimeError, match="exploded"):
        coalescer(1)
    run.fail = False
    assert coalescer(3) == 30
