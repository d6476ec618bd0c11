"""Forked simulation workers (``workers="process"``) of the mujoco backend: the same numbers
as the thread pool, errors and dead workers reported, processes reaped."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import pytest
import torch

from rlwb.engine import make_engine
from rlwb.engine.mujoco_backend import MujocoEngine
from rlwb.engine.mujoco_workers import process_workers_available
from rlwb.errors import ConfigError

pytestmark = pytest.mark.skipif(
    not process_workers_available()[0], reason=process_workers_available()[1]
)


def _pair(task: str, n: int) -> tuple[MujocoEngine, MujocoEngine]:
    forked = make_engine(task, n, backend="mujoco", seed=3, num_threads=2, workers="process")
    threaded = make_engine(task, n, backend="mujoco", seed=3, num_threads=2, workers="thread")
    assert forked._workers is not None and forked._workers.pids
    assert threaded._workers is None
    return forked, threaded


def test_forked_workers_step_bit_identically_to_the_threads() -> None:
    """Hopper falls often under random actions: steps, autoresets and rollouts of the live
    members (``_step_some``) all cross the workers."""
    forked, threaded = _pair("Hopper-v5", 32)
    try:
        obs_f, obs_t = forked.reset(), threaded.reset()
        ends = 0
        for t in range(120):
            action = torch.rand(32, 3, generator=torch.Generator().manual_seed(t)) * 2 - 1
            obs_f, rew_f, term_f, trunc_f, _ = forked.step(action)
            obs_t, rew_t, term_t, trunc_t, _ = threaded.step(action)
            assert torch.equal(obs_f, obs_t) and torch.equal(rew_f, rew_t)
            assert torch.equal(term_f, term_t) and torch.equal(trunc_f, trunc_t)
            ends += int(term_f.sum())
        assert ends > 0  # the autoreset path ran
        assert torch.equal(forked.get_state(), threaded.get_state())

        def policy(obs: torch.Tensor) -> torch.Tensor:
            return torch.tanh(obs[:, :3] * 3.0)

        out_f = forked.rollout(policy, 60, record_obs=True)
        out_t = threaded.rollout(policy, 60, record_obs=True)
        assert not bool(out_f.alive[:, -1].all())  # members ended: subsets were stepped
        assert torch.equal(out_f.rewards, out_t.rewards)
        assert torch.equal(out_f.observations, out_t.observations)
    finally:
        forked.close()
        threaded.close()


class _FailingInWorker(MujocoEngine):
    def _step_chunk(self, members, slot):  # type: ignore[no-untyped-def]
        if slot:
            raise FloatingPointError("boom in a worker")
        super()._step_chunk(members, slot)


def test_an_error_in_a_worker_is_raised_in_the_caller() -> None:
    engine = _FailingInWorker("HalfCheetah-v5", 32, seed=0, num_threads=2, workers="process")
    try:
        engine.reset()
        with pytest.raises(RuntimeError, match="simulation worker failed: FloatingPointError"):
            for _ in range(20):  # the worker takes at least one block within a few steps
                engine.step(torch.zeros(32, 6))
    finally:
        engine.close()


def test_a_dead_worker_is_reported_and_close_reaps_the_workers() -> None:
    engine = make_engine("HalfCheetah-v5", 32, backend="mujoco", seed=0, workers="process")
    (pid,) = engine._workers.pids
    engine.reset()
    engine.step(torch.zeros(32, 6))
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(RuntimeError, match=f"worker process {pid} died"):
        for _ in range(2000):  # until the caller needs a block the dead worker took
            engine.step(torch.zeros(32, 6))
    engine.close()

    other = make_engine("Hopper-v5", 32, backend="mujoco", seed=0, workers="process")
    pids = list(other._workers.pids)
    other.close()
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # already reaped


def test_workers_option_is_checked() -> None:
    with pytest.raises(ConfigError, match="workers must be"):
        make_engine("Hopper-v5", 32, backend="mujoco", workers="fibers")
    small = make_engine("Hopper-v5", 4, backend="mujoco", workers="process")
    assert small._workers is None  # too few members to split: no processes
    small.close()


def test_population_rollout_overlapping_policy_and_physics_matches_the_threads() -> None:
    """A population policy (``act_some``) lets the forked engine simulate one piece of the
    batch while it computes the next piece's actions; the numbers stay those of the
    threads."""
    from rlwb.policies import PopulationMLP

    forked, threaded = _pair("Hopper-v5", 64)
    try:
        net = PopulationMLP(11, 3, (32,), 64, -torch.ones(3), torch.ones(3))
        net.params.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(0))
        pieces: list[int] = []  # per overlapped step: how many pieces it handed over
        extend, start = forked._workers.extend, forked._workers.start

        def count_piece(hand_over: Callable, first: bool) -> Callable:
            def wrapped(*args: object) -> None:
                if first:
                    pieces.append(0)
                pieces[-1] += 1
                hand_over(*args)

            return wrapped

        forked._workers.start = count_piece(start, True)
        forked._workers.extend = count_piece(extend, False)
        for engine in (forked, threaded):
            engine.reset()
        out_f = forked.rollout(net, 80, record_obs=True, record_actions=True)
        out_t = threaded.rollout(net, 80, record_obs=True, record_actions=True)
        assert max(pieces) == 4  # the overlapped step ran, in 4 pieces at 64 members
        assert min(pieces) == 2  # and in 2 once few members live
        assert 0 < int(out_f.alive[:, -1].sum()) < 64  # and over shrinking live sets
        assert torch.equal(out_f.rewards, out_t.rewards)
        assert torch.equal(out_f.observations, out_t.observations)
        assert torch.equal(out_f.actions, out_t.actions)
    finally:
        forked.close()
        threaded.close()


def test_workers_exit_when_their_parent_dies_without_closing() -> None:
    import subprocess
    import sys
    import time

    script = (
        "import os\n"
        "from rlwb.engine import make_engine\n"
        "e = make_engine('Hopper-v5', 32, backend='mujoco', seed=0, workers='process')\n"
        "print(*e._workers.pids, flush=True)\n"
        "os._exit(0)\n"  # no close(), no atexit
    )
    command = [sys.executable, "-c", script]
    out = subprocess.run(command, capture_output=True, text=True, timeout=120)
    pids = [int(p) for p in out.stdout.split()]
    assert pids, out.stderr
    deadline = time.monotonic() + 10.0
    alive = pids
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [p for p in alive if os.path.exists(f"/proc/{p}") and "Z" not in _state(p)]
    assert not alive, f"workers {alive} outlived their parent"


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0]
    except OSError:
        return "Z"
