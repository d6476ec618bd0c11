"""Task math written once for numpy and torch (``rlwb.envs.mujoco.arrays``, for
speed): the ``mujoco`` backend evaluates tasks in numpy, the ``warp`` backend and torch
callers in torch. Both libraries must give the same numbers: elementwise results bit for
bit, reductions and sin/cos to the last bit or two (numpy and torch sum in other orders).
Also the thread pool's rule that the caller never waits for a helper that has not joined."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from rlwb import tasks
from rlwb.engine import make_engine
from rlwb.engine.mujoco_backend import ThreadPool

NUMPY_TASKS = [
    "HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Swimmer-v5", "Ant-v5", "Humanoid-v5",
    "HumanoidStandup-v5", "InvertedPendulum-v5", "InvertedDoublePendulum-v5", "Reacher-v5",
    "Pusher-v5", "ReacherGoal-v0",
]  # fmt: skip
# observations without sums or sin/cos: equal bit for bit
EXACT_OBSERVATION = {
    "HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Swimmer-v5", "Ant-v5", "Humanoid-v5",
    "HumanoidStandup-v5", "InvertedPendulum-v5", "Pusher-v5",
}  # fmt: skip


def _views(task_id: str, steps: int = 12) -> tuple:
    """A few random steps of a 4-member engine; the pre/post fields and action of the
    last step, as numpy arrays (copies)."""
    engine = make_engine(task_id, 4, backend="mujoco", seed=3)
    engine.reset()
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        pre = {n: engine._np_view[n].copy() for n in engine.task.fields}
        action = torch.rand(4, engine.action_dim, generator=gen, dtype=torch.float64) * 2 - 1
        engine._step_members(action.float())
    post = {n: engine._np_view[n].copy() for n in engine.task.fields}
    act = action.float().double().numpy()
    task, dt = engine.task, engine.task_dt
    engine.close()
    return task, pre, post, act, dt


@pytest.mark.parametrize("task_id", NUMPY_TASKS)
def test_numpy_and_torch_task_math_agree(task_id: str) -> None:
    task, pre, post, act, dt = _views(task_id)
    assert type(task).numpy_math
    as_torch = lambda view: {k: torch.from_numpy(v) for k, v in view.items()}  # noqa: E731
    out_np = task.evaluate(pre, post, act, dt)
    out_t = task.evaluate(as_torch(pre), as_torch(post), torch.from_numpy(act), dt)
    obs_np, reward_np, term_np, info_np = out_np
    obs_t, reward_t, term_t, info_t = out_t
    assert isinstance(obs_np, np.ndarray) and isinstance(obs_t, torch.Tensor)
    assert obs_np.dtype == np.float64 and obs_t.dtype == torch.float64
    np.testing.assert_array_equal(term_np, term_t.numpy())
    assert term_np.dtype == np.bool_ and term_t.dtype == torch.bool
    if task_id in EXACT_OBSERVATION:
        np.testing.assert_array_equal(obs_np, obs_t.numpy())
    np.testing.assert_allclose(obs_np, obs_t.numpy(), rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(reward_np, reward_t.numpy(), rtol=1e-14, atol=1e-14)
    assert list(info_np) == list(info_t)
    for key in info_np:
        np.testing.assert_allclose(info_np[key], info_t[key].numpy(), rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("task_id", NUMPY_TASKS)
def test_numpy_and_torch_resets_draw_the_same_states(task_id: str) -> None:
    """A numpy_math task's ``reset_state`` on numpy initial arrays (what the ``mujoco``
    backend passes) returns numpy arrays equal bit for bit to the torch call's tensors
    from an identically seeded generator, and leaves the generator in the same place (so
    later draws agree too; Reacher and Pusher draw goals by rejection)."""
    task = tasks.build_task(task_id, {})
    engine = make_engine(task_id, 1, backend="mujoco", seed=0)
    qpos0, qvel0 = engine.init_qpos.clone(), engine.init_qvel.clone()
    engine.close()
    gens = [torch.Generator().manual_seed(11) for _ in range(2)]
    drawn_np = task.reset_state(qpos0.numpy(), qvel0.numpy(), 64, gens[0])
    drawn_t = task.reset_state(qpos0, qvel0, 64, gens[1])
    assert len(drawn_np) == len(drawn_t)
    for a, b in zip(drawn_np, drawn_t, strict=True):
        assert isinstance(a, np.ndarray) and isinstance(b, torch.Tensor)
        np.testing.assert_array_equal(a, b.numpy())
    assert torch.equal(gens[0].get_state(), gens[1].get_state())
    np.testing.assert_array_equal(qpos0.numpy(), engine.init_qpos.numpy())  # not written


def test_every_gymnasium_mujoco_task_has_numpy_math() -> None:
    for task_id in NUMPY_TASKS:
        entry = tasks.get(task_id)
        assert tasks.build_task(entry, {}, []).numpy_math, task_id


def test_engine_with_numpy_math_steps_as_with_torch_math() -> None:
    """The same engine evaluated in torch (the path tasks without numpy math take): the
    physics is identical bit for bit, terminations and autoresets the same, outputs equal
    to the last bit or two, and tensors come out with the same dtypes."""
    engines = [make_engine("Hopper-v5", 3, backend="mujoco", seed=2) for _ in range(2)]
    engines[1]._numpy = False
    for engine in engines:
        engine.reset()
    gen = torch.Generator().manual_seed(0)
    ends = 0
    for _ in range(60):
        action = torch.rand(3, 3, generator=gen) * 2 - 1
        a, b = (engine.step(action) for engine in engines)
        assert torch.equal(engines[0].get_state(), engines[1].get_state())
        assert torch.equal(a[2], b[2]) and torch.equal(a[3], b[3])
        for x, y in [(a[0], b[0]), (a[1], b[1])] + [(a[4][k], b[4][k]) for k in a[4]]:
            assert x.dtype == y.dtype
            torch.testing.assert_close(x, y, rtol=1e-6, atol=1e-6)
        ends += int(a[4]["done"].sum())
    assert ends > 0, "the run should cross terminations"


def test_pool_runs_every_block_once_and_raises_a_workers_error() -> None:
    pool = ThreadPool(2)
    seen: list[int] = []
    lock = threading.Lock()

    def record(block: int, slot: int) -> None:
        with lock:
            seen.append(block)

    pool.map(record, list(range(50)))
    assert sorted(seen) == list(range(50))

    def fail(block: int, slot: int) -> None:
        if block == 7:
            raise ValueError("block 7")

    with pytest.raises(ValueError, match="block 7"):
        pool.map(fail, list(range(20)))
    seen.clear()
    pool.map(record, list(range(10)))  # still usable
    assert sorted(seen) == list(range(10))
    pool.close()


def test_pool_caller_does_not_wait_for_a_helper_that_has_not_joined() -> None:
    """A helper kept busy elsewhere (as a thread not yet scheduled on a loaded machine):
    the caller does every block itself and returns; the late helper later finds no
    block left."""
    pool = ThreadPool(2)
    release = threading.Event()

    class Stall:
        def help(self, slot: int) -> None:
            release.wait(10)

    pool._jobs[0].put(Stall())
    slots: list[int] = []
    finished = threading.Event()

    def run() -> None:
        pool.map(lambda block, slot: slots.append(slot), list(range(8)))
        finished.set()

    caller = threading.Thread(target=run)
    caller.start()
    assert finished.wait(5), "map waited for a helper that never joined"
    assert slots == [0] * 8
    release.set()
    caller.join()
    pool.map(lambda block, slot: slots.append(slot), list(range(8)))
    assert len(slots) == 16
    pool.close()


def test_small_action_finite_test_on_the_host() -> None:
    """One member's action is tested on a Python sum: NaN/inf name the member; finite
    values whose sum overflows pass (re-checked elementwise)."""
    from rlwb.errors import ActionError

    engine = make_engine("HalfCheetah-v5", 2, backend="mujoco", seed=0, dtype=torch.float64)
    shape = (2, engine.action_dim)
    big = torch.full(shape, 1e308, dtype=torch.float64)
    assert engine.check_action(big, shape) is big
    for bad in (float("nan"), float("-inf")):
        action = torch.zeros(shape, dtype=torch.float64)
        action[1, 3] = bad
        with pytest.raises(ActionError, match=r"NaN or inf for members \[1\]"):
            engine.check_action(action, shape)
    engine.close()
