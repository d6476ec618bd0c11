"""The ``mujoco`` backend against Gymnasium's own v5 envs, the oracle.

Both start from the same physics state (the engine's reset state is loaded into the
Gymnasium env with ``set_state(qpos, qvel)``; both have a zero warm start right after a
reset), take the same random float64 actions and must give the same observations,
rewards, reward components and terminated/truncated flags. When an episode ends the engine
autoresets, and the Gymnasium env is reset and re-synced to the engine's new state.

Tolerance: the physics state (qpos, qvel) must agree *bit for bit* after every step (same
C code on the same MjData, same warm start). Observations, rewards and info use
``rtol = atol = 1e-12``: torch and numpy differ by an ulp or so in sin/cos, norms and sums
(measured: at most 4.4e-16 absolute).
"""

from __future__ import annotations

import importlib.util

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlwb import tasks
from rlwb.engine import make_engine

RTOL = ATOL = 1e-12

# (task, steps): enough steps to cross several terminations or time limits where the task has them.
PARITY_CASES = [
    ("HalfCheetah-v5", 200),
    ("Hopper-v5", 300),
    ("Walker2d-v5", 300),
    ("Swimmer-v5", 200),
    ("InvertedPendulum-v5", 300),
    ("InvertedDoublePendulum-v5", 300),
    ("Reacher-v5", 160),
    ("Pusher-v5", 220),
    ("Ant-v5", 200),
    ("Humanoid-v5", 150),
    ("HumanoidStandup-v5", 100),
]


def _require_definition(task_id: str) -> None:
    module = tasks.get(task_id).loader.partition(":")[0]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{task_id}: task definition {module} is not written yet")


def _sync(env: gym.Env, engine, nq: int, nv: int) -> None:
    """Load the engine's member-0 physics state into the Gymnasium env (after a reset)."""
    state = engine.get_state()[0].numpy()
    env.reset(seed=0)
    env.unwrapped.set_state(state[1 : 1 + nq].copy(), state[1 + nq : 1 + nq + nv].copy())


def _close(a, b, what: str, t: int) -> None:
    np.testing.assert_allclose(
        np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64),
        rtol=RTOL, atol=ATOL, err_msg=f"{what} differs at step {t}",
    )  # fmt: skip


# Non-default constructor arguments, passed to both make_engine and gym.make.
KWARGS_CASES = [
    ("HalfCheetah-v5", {"frame_skip": 3, "exclude_current_positions_from_observation": False,
                        "reset_noise_scale": 0.2, "forward_reward_weight": 2.0}),
    ("Hopper-v5", {"terminate_when_unhealthy": False, "ctrl_cost_weight": 0.01,
                   "healthy_z_range": (0.9, 2.0), "healthy_reward": 0.5}),
    ("Walker2d-v5", {"healthy_angle_range": (-0.5, 0.5), "reset_noise_scale": 0.05}),
    ("Swimmer-v5", {"exclude_current_positions_from_observation": False, "ctrl_cost_weight": 0.1}),
    ("InvertedDoublePendulum-v5", {"healthy_reward": 3.0, "reset_noise_scale": 0.2}),
    ("Reacher-v5", {"reward_dist_weight": 2.0, "reward_control_weight": 0.5}),
    ("Pusher-v5", {"reward_near_weight": 1.0, "frame_skip": 4}),
]  # fmt: skip


@pytest.mark.parametrize(("task_id", "kwargs"), KWARGS_CASES, ids=[c[0] for c in KWARGS_CASES])
def test_matches_gymnasium_with_arguments(task_id: str, kwargs: dict) -> None:
    test_matches_gymnasium(task_id, 120, kwargs)


@pytest.mark.parametrize(("task_id", "steps"), PARITY_CASES, ids=[c[0] for c in PARITY_CASES])
def test_matches_gymnasium(task_id: str, steps: int, kwargs: dict | None = None) -> None:
    _require_definition(task_id)
    kwargs = kwargs or {}
    # Two members share the thread's MjData (states are swapped in and out): member 0 is
    # compared, member 1 (another state, same actions) checks that swapping leaks nothing.
    engine = make_engine(task_id, 2, backend="mujoco", seed=1, dtype=torch.float64, **kwargs)
    env = gym.make(task_id, disable_env_checker=True, **kwargs)
    nq, nv = engine.model.nq, engine.model.nv
    rng = np.random.default_rng(0)
    low, high = env.action_space.low.astype(np.float64), env.action_space.high.astype(np.float64)
    obs = engine.reset()
    _sync(env, engine, nq, nv)
    _close(obs[0], env.unwrapped._get_obs(), "reset observation", 0)
    episodes = 0
    for t in range(steps):
        action = rng.uniform(low, high)
        batch = torch.from_numpy(action)[None].expand(2, -1)
        obs, reward, terminated, truncated, info = engine.step(batch)
        g_obs, g_reward, g_term, g_trunc, g_info = env.step(action)
        physics = engine.get_state()[0].numpy() if not (g_term or g_trunc) else None
        if physics is not None:  # the engine has autoreset otherwise
            np.testing.assert_array_equal(
                physics[1 : 1 + nq], env.unwrapped.data.qpos, f"qpos, step {t}"
            )
            np.testing.assert_array_equal(
                physics[1 + nq : 1 + nq + nv], env.unwrapped.data.qvel, f"qvel, step {t}"
            )
        _close(info["final_obs"][0], g_obs, "observation", t)
        _close(reward[0], g_reward, "reward", t)
        assert bool(terminated[0]) == g_term, f"terminated differs at step {t}"
        assert bool(truncated[0]) == g_trunc, f"truncated differs at step {t}"
        for key, value in g_info.items():
            # scalar info (reward components, positions, velocities) is required; array info
            # (Humanoid's tendon lengths) is compared where the task provides it
            if np.ndim(value) > 0 and key not in info:
                continue
            assert key in info, f"info key {key!r} missing"
            _close(info[key][0], value, f"info[{key!r}]", t)
        if g_term or g_trunc:
            episodes += 1
            _sync(env, engine, nq, nv)
            _close(obs[0], env.unwrapped._get_obs(), "observation after autoreset", t)
    env.close()
    engine.close()
    ends = ("Hopper-v5", "Walker2d-v5", "InvertedPendulum-v5", "Reacher-v5", "Pusher-v5")
    if task_id in ends and not kwargs:
        assert episodes >= 2, "the run should cross episode ends to test autoreset parity"


RESET_CASES = [
    "HalfCheetah-v5",
    "Hopper-v5",
    "Walker2d-v5",
    "Swimmer-v5",
    "InvertedPendulum-v5",
    "InvertedDoublePendulum-v5",
    "Reacher-v5",
    "Pusher-v5",
    "Ant-v5",
    "Humanoid-v5",
    "HumanoidStandup-v5",
]


@pytest.mark.parametrize("task_id", RESET_CASES)
def test_reset_distribution(task_id: str) -> None:
    """Engine reset states have Gymnasium's per-coordinate mean and std (within 5 standard
    errors of Gymnasium's own sample, on 4 x 500 engine and 400 Gymnasium resets)."""
    _require_definition(task_id)
    members, rounds, n_gym = 500, 4, 400
    n_engine = members * rounds
    engine = make_engine(task_id, members, backend="mujoco", seed=3, dtype=torch.float64)
    nq, nv = engine.model.nq, engine.model.nv
    ours = []
    for _ in range(rounds):
        engine.reset()
        ours.append(engine.get_state()[:, 1 : 1 + nq + nv].numpy())
    ours = np.concatenate(ours)
    engine.close()
    env = gym.make(task_id, disable_env_checker=True).unwrapped
    theirs = []
    for k in range(n_gym):
        env.reset(seed=k)
        theirs.append(np.concatenate([env.data.qpos, env.data.qvel]))
    theirs = np.asarray(theirs)
    env.close()
    mean_o, mean_t = ours.mean(0), theirs.mean(0)
    std_o, std_t = ours.std(0), theirs.std(0)
    se_mean = np.sqrt(std_o**2 / n_engine + std_t**2 / n_gym) + 1e-12
    assert np.all(np.abs(mean_o - mean_t) <= 5 * se_mean), "reset mean differs from Gymnasium's"
    # std of a sample std ~ std / sqrt(2n) (normal); uniform noise has a smaller spread
    se_std = np.sqrt(std_o**2 / (2 * n_engine) + std_t**2 / (2 * n_gym)) + 1e-12
    assert np.all(np.abs(std_o - std_t) <= 5 * se_std), "reset spread differs from Gymnasium's"


@pytest.mark.parametrize("stop_on_truncation", [True, False])
def test_fast_open_loop_rollout_equals_reference_loop(stop_on_truncation: bool) -> None:
    """The backend's one-hand-off open-loop rollout gives the reference loop's result,
    through terminations (Hopper with random actions falls) and time limits."""
    engine = make_engine("Hopper-v5", 8, backend="mujoco", seed=2, dtype=torch.float64)
    engine.reset()
    start = engine.get_state()
    start[::2, -1] = engine.max_episode_steps - 10  # half the members hit the time limit
    gen = torch.Generator().manual_seed(0)
    actions = torch.rand(8, 60, engine.action_dim, generator=gen, dtype=torch.float64) * 2 - 1
    fast = engine.rollout(actions, init_state=start, record_obs=True, record_actions=True,
                          stop_on_truncation=stop_on_truncation)  # fmt: skip
    engine._rollout_fast = lambda *args: None  # the stepping loop
    ref = engine.rollout(actions, init_state=start, record_obs=True, record_actions=True,
                         stop_on_truncation=stop_on_truncation)  # fmt: skip
    del engine._rollout_fast
    assert bool(fast.terminated.any()) and bool(fast.truncated.any())
    for name in ("rewards", "terminated", "truncated", "alive", "returns", "lengths",
                 "final_obs", "observations", "actions"):  # fmt: skip
        assert torch.equal(getattr(fast, name), getattr(ref, name)), name
    assert fast.infos.keys() == ref.infos.keys()
    for key in fast.infos:
        assert torch.equal(fast.infos[key], ref.infos[key]), key
    engine.close()


def test_threaded_stepping_equals_single_thread() -> None:
    """The thread pool (dynamic blocks of members) changes nothing: same numbers as one
    thread, through autoresets (Hopper falls) and the open-loop fast path."""
    engines = [
        make_engine("Hopper-v5", 32, backend="mujoco", seed=4, num_threads=k) for k in (1, 2)
    ]
    assert engines[1].pool.num_threads == 2 and len(engines[1]._chunks) > 2
    gen = torch.Generator().manual_seed(1)
    actions = torch.rand(60, 32, 3, generator=gen) * 2 - 1
    first = [e.reset() for e in engines]
    assert torch.equal(first[0], first[1])
    for act in actions:
        (o1, r1, t1, u1, i1), (o2, r2, t2, u2, i2) = (e.step(act) for e in engines)
        assert torch.equal(o1, o2) and torch.equal(r1, r2) and torch.equal(t1, t2)
        assert torch.equal(i1["final_obs"], i2["final_obs"])
    assert torch.equal(engines[0].get_state(), engines[1].get_state())
    start = engines[0].get_state()
    results = [e.rollout(actions.transpose(0, 1).contiguous(), init_state=start) for e in engines]
    assert torch.equal(results[0].rewards, results[1].rewards)
    assert torch.equal(results[0].final_obs, results[1].final_obs)
    for e in engines:
        e.close()
