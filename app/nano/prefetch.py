"""Training examples made ahead of the step that needs them, in worker processes (`--workers`).

Drawing a whole screen with a Qt window and encoding it costs ~30-40 ms of CPU (2-core AMD
EPYC, one thread), so a step of 16 such examples is ~0.6 s of drawing: on a GPU, where the
model's step is a small fraction of that, the drawing is the whole run unless it is spread over
the machine's cores. Every example is a pure function of its index (`ExampleMaker`), so workers
change when an example is made, never what it is: a run with workers trains on the very batches
of a run without (tests/app/test_nano_prefetch.py).

Workers are started with "spawn" (a forked child of a process that has touched CUDA or
started torch's thread pools can hang) and each renders with its own offscreen QApplication.
At most `ahead` steps are in flight, so memory stays bounded on a long run.
"""

from __future__ import annotations

import multiprocessing
import random
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor

from app.nano.examples import Encoded, Encoder
from app.nano.screens import make_any


class ExampleMaker:
    """Training example number `index`: a generated screen of kind `screens`, or (with solved
    data, in about `solved_share` of the slots, chosen from the index alone so that resuming
    sees the same batches) a verified solver step. Picklable: workers get a copy."""

    def __init__(self, encoder: Encoder, screens: str, buttons: tuple[int, int] | None,
                 solved=None, solved_share: float = 0.0) -> None:
        self.encoder, self.screens, self.buttons = encoder, screens, buttons
        self.solved, self.solved_share = solved, solved_share
        self.solved_examples = solved.examples if solved is not None else []

    def __call__(self, index: int) -> Encoded:
        if self.solved is not None:
            pick = random.Random(index)
            if pick.random() < self.solved_share:
                at = self.solved_examples[pick.randrange(len(self.solved_examples))]
                return self.encoder.encode_prompt(*self.solved.prompt(self.encoder.family, at))
        return self.encoder.encode(make_any(self.screens, "train", index, self.buttons))


_MAKER: ExampleMaker | None = None  # the worker's own copy (set by _start_worker)


def _start_worker(maker: ExampleMaker) -> None:
    global _MAKER
    import torch

    torch.set_num_threads(1)  # one process per core already
    _MAKER = maker


def _make_all(indices: list[int]) -> list[Encoded]:
    assert _MAKER is not None, "worker not started"
    return [_MAKER(i) for i in indices]


class Examples:
    """Each step's examples (`indices(step)` gives their numbers): made here when `workers` is
    0, else by a pool of `workers` processes, up to `ahead` steps before they are asked for."""

    def __init__(self, maker: ExampleMaker, indices, workers: int = 0,
                 ahead: int | None = None) -> None:
        if workers < 0:
            raise ValueError("workers must be 0 or more")
        self.maker, self.indices = maker, indices
        self.ahead = max(1, ahead if ahead is not None else 2 * workers)
        self.pool = (ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_start_worker, initargs=(maker,))
                     if workers else None)
        self.pending: deque[tuple[int, Future]] = deque()

    def step(self, step: int) -> list[Encoded]:
        if self.pool is None:
            return [self.maker(i) for i in self.indices(step)]
        if self.pending and self.pending[0][0] != step:  # not the next step: start again there
            self._cancel()
        if not self.pending:
            self._submit(step)
        while len(self.pending) < self.ahead:
            self._submit(self.pending[-1][0] + 1)
        _, future = self.pending.popleft()
        self._submit(self.pending[-1][0] + 1 if self.pending else step + 1)
        return future.result()

    def _submit(self, step: int) -> None:
        assert self.pool is not None
        self.pending.append((step, self.pool.submit(_make_all, list(self.indices(step)))))

    def _cancel(self) -> None:
        while self.pending:
            self.pending.popleft()[1].cancel()

    def close(self) -> None:
        """Stop the workers (the examples made ahead are dropped)."""
        if self.pool is not None:
            self._cancel()
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None

    def __enter__(self) -> Examples:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()
