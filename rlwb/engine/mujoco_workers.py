"""Forked simulation workers for the ``mujoco`` backend's closed-loop steps.

Why processes and not only threads: a thread that steps members holds the GIL for its
Python loop between ``mj_step`` calls, so two stepping threads hand the GIL back and forth
once per member. On a VM each hand-off wakes a sleeping vCPU, which costs about as much as
a small member's physics (HalfCheetah ~22 us), and a 2-thread step of 16-64 members ran no
faster than 1 thread. Worker processes share nothing but memory: each runs the backend's
own ``_step_chunk`` over its blocks with its own ``MjData`` and its own GIL.

How: the member states and the gathered task fields live in anonymous shared memory
(:func:`shared_zeros`), and each worker is forked from the engine once, so it holds the same
model and the same ``_step_chunk``. A call publishes its blocks (member lists and block
bounds in shared arrays) under one cross-process lock, wakes the workers (one semaphore
each), and the caller takes blocks itself. A call can be started, extended with more blocks,
and finished (the caller joins, then waits): so the workers simulate one part of a batch
while the caller computes the next part's actions. Blocks are claimed one at a time under
the lock, so a worker the OS has not scheduled yet simply takes none: the caller never waits
for a worker that has not started, only for blocks a worker is running. Between calls a
worker polls for unclaimed blocks for a short while (back-to-back steps of a closed loop
find it awake), then sleeps on its semaphore; a caller waiting for the last block does the
same on its own.

Lifetime: a worker dies with its engine (``close``) or within a second of its parent (an
idle worker checks its parent id; not ``PR_SET_PDEATHSIG``, which fires when the *thread*
that forked exits, e.g. a short-lived thread that built the engine), and ignores
SIGINT/SIGTERM, so a run stopped by a signal finishes its step and checkpoints before the
workers go. The model is copied into the workers when they start: edits to
``engine.model`` after construction are not seen by them (nothing in rlwb edits a built
model).
"""

from __future__ import annotations

import functools
import gc
import mmap
import multiprocessing
import os
import signal
import sys
import time
import weakref
from collections.abc import Callable, Sequence

import numpy as np

# control-block slots (int64, shared)
_NEXT, _BLOCKS, _FINISHED, _FILLED, _STOP, _ERROR = range(6)
_CONTROL = 8
SPIN_SECONDS = 5e-4
"""How long a worker polls for the next call before sleeping, and a caller for the last
block: longer than the gap between back-to-back steps of a small policy, short enough not
to steal a core from a training update."""
_LIVENESS_SECONDS = 1.0


def shared_zeros(shape: tuple[int, ...], dtype: type = np.float64) -> np.ndarray:
    """A zeroed array in anonymous shared memory (``MAP_SHARED``): processes forked after
    it is made read and write the same bytes."""
    count = int(np.prod(shape))
    size = max(count * np.dtype(dtype).itemsize, 8)
    return np.frombuffer(mmap.mmap(-1, size), dtype=dtype, count=count).reshape(shape)


def process_workers_available() -> tuple[bool, str]:
    """Forked workers need Linux's ``fork`` (safe in a threaded process as long as the child
    only simulates; macOS's is not). Every shared write is ordered by the lock, so any CPU
    architecture works: the workers' polling only hints that blocks may be waiting."""
    if sys.platform != "linux":
        return False, f"forked workers run on Linux, not {sys.platform}"
    return True, ""


@functools.lru_cache(maxsize=256)
def split_bounds(n: int, parts: int) -> tuple[tuple[int, int], ...]:
    """Contiguous, nearly equal position ranges of ``0..n-1`` (cached: a closed loop asks
    for the same few splits every step)."""
    return tuple((round(k * n / parts), round((k + 1) * n / parts)) for k in range(parts))


class ForkedWorkers:
    """``num_workers`` forked processes that, with the caller, run ``step_chunk(members,
    slot)`` over blocks of members (slot 0 is the caller, 1.. the workers)."""

    def __init__(
        self,
        step_chunk: Callable[[Sequence[int], int], None],
        num_members: int,
        num_workers: int,
        job: str = "simulation",
    ) -> None:
        # a weak reference: the engine owns its workers, not the other way round, so an
        # engine nobody holds is freed (and closes its workers) at once
        self._step_chunk = weakref.WeakMethod(step_chunk)  # type: ignore[arg-type]
        self._owner, self._job = os.getpid(), job  # job: what errors call the workers
        self._caller_error: BaseException | None = None
        self._ctl = shared_zeros((_CONTROL,), np.int64)
        self._index = shared_zeros((max(1, num_members),), np.int64)
        self._bounds = shared_zeros((max(1, num_members), 2), np.int64)  # per block: index span
        ctx = multiprocessing.get_context("fork")
        self._lock = ctx.Lock()
        self._go = [ctx.Semaphore(0) for _ in range(num_workers)]
        self._done = ctx.Semaphore(0)
        self._error = shared_zeros((512,), np.uint8)
        self.pids: list[int] = []
        parent = os.getpid()
        for slot in range(1, num_workers + 1):
            pid = os.fork()
            if pid == 0:  # the worker: serve until told to stop, never return
                code = 0
                try:
                    gc.disable()  # no collection here: it could run other engines' __del__
                    signal.signal(signal.SIGINT, signal.SIG_IGN)
                    signal.signal(signal.SIGTERM, signal.SIG_IGN)
                    if os.getppid() != parent:  # the parent died before we got here
                        os._exit(0)
                    self._serve(slot, parent)
                except BaseException:  # noqa: BLE001 - a worker must never unwind
                    code = 1
                finally:
                    os._exit(code)
            self.pids.append(pid)

    # ------------------------------------------------------------------ both sides
    def _blocks_left(self, slot: int) -> int:
        """Claim and run blocks of the current call until none are left; return how many
        this process ran. Finishing a block
        and claiming the next share one critical section; the lock is taken by polling
        (its holders keep it for a microsecond, and a blocked ``acquire`` would sleep in
        the kernel and cost a wake-up)."""
        ctl, acquire, release = self._ctl, self._lock.acquire, self._lock.release
        ran = 0
        while True:
            while not acquire(False):
                pass
            if ran:
                ctl[_FINISHED] += 1
                last = ctl[_FINISHED] == ctl[_BLOCKS]  # (caller waiting or extending)
            k, n = int(ctl[_NEXT]), int(ctl[_BLOCKS])
            if k < n:
                ctl[_NEXT] = k + 1
                lo, hi = self._bounds[k]
            release()
            if ran and last and slot:
                self._done.release()
            if k >= n:
                return ran
            members = self._index[lo:hi].tolist()
            try:
                self._step_chunk()(members, slot)
            except BaseException as exc:  # noqa: BLE001 - reported to the caller
                if slot:
                    self._record(exc)
                else:
                    self._caller_error = self._caller_error or exc
            ran += 1

    def _record(self, exc: BaseException) -> None:
        if self._ctl[_ERROR]:
            return
        text = f"{type(exc).__name__}: {exc}".encode()[: len(self._error) - 1]
        self._error[: len(text)] = np.frombuffer(text, np.uint8)
        self._ctl[_ERROR] = len(text) or 1

    # ------------------------------------------------------------------ worker side
    def _serve(self, slot: int, parent: int) -> None:
        ctl, go = self._ctl, self._go[slot - 1]
        while not ctl[_STOP]:
            deadline = time.perf_counter() + SPIN_SECONDS
            while ctl[_NEXT] >= ctl[_BLOCKS] and not ctl[_STOP]:
                if time.perf_counter() > deadline:
                    if not go.acquire(timeout=_LIVENESS_SECONDS) and os.getppid() != parent:
                        return
                    deadline = time.perf_counter() + SPIN_SECONDS
            self._blocks_left(slot)

    # ------------------------------------------------------------------ caller side
    def run(self, members: Sequence[int], num_blocks: int) -> None:
        """Step ``members`` (engine positions) in ``num_blocks`` blocks over the caller and
        the workers; re-raise a worker's error."""
        self.start(members, num_blocks)
        self.finish()

    def start(self, members: Sequence[int], num_blocks: int) -> None:
        """Publish a new call's blocks and wake the workers; the caller does not join."""
        with self._lock:
            self._ctl[_NEXT] = self._ctl[_BLOCKS] = self._ctl[_FINISHED] = 0
            self._ctl[_FILLED] = 0
            self._append(members, num_blocks)
        for go in self._go:
            go.release()

    def extend(self, members: Sequence[int], num_blocks: int) -> None:
        """Add blocks to the running call (other members than it has)."""
        with self._lock:
            self._append(members, num_blocks)
        for go in self._go:
            go.release()

    def _append(self, members: Sequence[int], num_blocks: int) -> None:
        ctl, filled, first = self._ctl, int(self._ctl[_FILLED]), int(self._ctl[_BLOCKS])
        self._index[filled : filled + len(members)] = members
        bounds = self._bounds[first : first + num_blocks]
        bounds[:] = split_bounds(len(members), num_blocks)
        bounds += filled
        ctl[_FILLED] = filled + len(members)
        ctl[_BLOCKS] = first + num_blocks  # last: workers poll this for new blocks

    def finish(self) -> None:
        """Join the call until every block is taken, wait for the workers' last blocks,
        and re-raise an error from any of them."""
        ctl = self._ctl
        blocks = int(ctl[_BLOCKS])
        if self._blocks_left(0) == blocks:  # no worker took a block: are they alive?
            self._check_alive()
        deadline = time.perf_counter() + SPIN_SECONDS
        while ctl[_FINISHED] < blocks and time.perf_counter() < deadline:
            pass
        while ctl[_FINISHED] < blocks:  # a stale release only costs one more check
            if not self._done.acquire(timeout=_LIVENESS_SECONDS):
                self._check_alive()
        if self._caller_error is not None:
            error, self._caller_error = self._caller_error, None
            ctl[_ERROR] = 0
            raise error
        if ctl[_ERROR]:
            message = bytes(self._error[: int(ctl[_ERROR])]).decode(errors="replace")
            ctl[_ERROR] = 0
            self._error[:] = 0
            raise RuntimeError(f"a {self._job} worker failed: {message}")

    def _check_alive(self) -> None:
        for pid in self.pids:
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done, status = pid, -1
            if done:
                self.pids = [p for p in self.pids if p != pid]
                raise RuntimeError(
                    f"simulation worker process {pid} died (status {status}); "
                    "close this engine and make a new one"
                )

    def close(self) -> None:
        if not self.pids or os.getpid() != self._owner:
            return
        self._ctl[_STOP] = 1
        for go in self._go:
            go.release()
        for pid in self.pids:
            try:
                for _ in range(200):  # ~1 s, then kill
                    if os.waitpid(pid, os.WNOHANG)[0]:
                        break
                    time.sleep(0.005)
                else:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
            except (ChildProcessError, ProcessLookupError):
                pass
        self.pids = []
