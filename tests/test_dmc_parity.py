"""DeepMind Control Suite tasks against dm_control itself (the oracle).

From the same physics state and actions, the ``mujoco`` backend's observations and rewards
must equal ``dm_control.suite.load(domain, task)``'s over whole episodes (float64), the
episode must end by truncation at dm_control's step limit, and reset observations must be
distributed like dm_control's (two-sample Kolmogorov-Smirnov test per observation column).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlwb.engine import make_engine
from rlwb.envs import dmc
from rlwb.envs.dmc.rewards import SIGMOIDS, tolerance
from rlwb.errors import BackendUnavailableError

suite = pytest.importorskip("dm_control.suite")
stats = pytest.importorskip("scipy.stats")

# steps of the parity episode: whole episodes for a few tasks, shorter ones elsewhere
STEPS = {"cheetah-run": 1000, "walker-walk": 1000, "cartpole-swingup": 1000, "finger-spin": 500}
STEPS.update({f"humanoid-{t}": 40 for t in ("stand", "walk", "run")})
STEPS.update({f"dog-{t}": 30 for t in ("stand", "walk", "trot", "run")})
ALIASES = {"ball_in_cup-catch": "cup-catch"}  # the old id -> TD-MPC's, tested once
TASKS = sorted(set(dmc._TASKS) - set(ALIASES))
# tasks whose observations and rewards are bit-identical too, not only their physics (the
# others' torch reward/observation math rounds differently in the last bits)
EXACT = {
    "cartpole-balance_sparse", "cartpole-swingup_sparse", "finger-turn_easy", "finger-turn_hard",
    "cup-catch", "fish-swim", "humanoid-stand", "humanoid-walk", "humanoid-run", "dog-stand",
    "dog-walk", "dog-trot", "dog-run",
}  # fmt: skip
MEMBERS = 2


def _flat(observation: dict) -> np.ndarray:
    return np.concatenate([np.atleast_1d(v).ravel() for v in observation.values()])


def _load(task_id: str, seed: int):
    return suite.load(*dmc.dm_control_name(task_id), task_kwargs={"random": seed})


def _dm_states(engine, envs: list) -> np.ndarray:  # noqa: ANN001
    """dm_control's physics states as engine state rows (step counter 0)."""
    return np.stack([np.r_[engine.task.state_from_dm_control(env.physics), 0] for env in envs])


@pytest.mark.parametrize("task_id", TASKS)
def test_episode_matches_dm_control(task_id: str) -> None:
    envs = [_load(task_id, seed) for seed in range(MEMBERS)]
    first = [env.reset() for env in envs]
    engine = make_engine(task_id, MEMBERS, backend="mujoco", seed=0, dtype=torch.float64)
    assert engine.frame_skip == envs[0]._n_sub_steps
    assert engine.max_episode_steps == envs[0]._step_limit == 1000
    keys = list(first[0].observation)
    slices = engine.task.observation_slices
    assert list(slices) == keys
    engine.reset()
    obs = engine.set_state(torch.from_numpy(_dm_states(engine, envs)))
    expected = np.stack([_flat(ts.observation) for ts in first])
    np.testing.assert_allclose(obs.numpy(), expected, rtol=0, atol=1e-12)
    for key, (start, stop) in slices.items():
        np.testing.assert_array_equal(obs[0, start:stop].numpy(), first[0].observation[key].ravel())

    spec = envs[0].action_spec()
    rng = np.random.default_rng(1)
    steps = STEPS.get(task_id, 200)
    tol = {"rtol": 0, "atol": 0} if task_id in EXACT else {"rtol": 1e-9, "atol": 1e-9}
    rewards = np.zeros((steps, MEMBERS))
    for t in range(steps):
        action = rng.uniform(spec.minimum, spec.maximum, size=(MEMBERS, *spec.shape))
        timesteps = [env.step(a) for env, a in zip(envs, action, strict=True)]
        obs, reward, terminated, truncated, info = engine.step(torch.from_numpy(action))
        final = info["final_obs"].numpy()
        expected = np.stack([_flat(ts.observation) for ts in timesteps])
        np.testing.assert_allclose(final, expected, **tol, err_msg=f"step {t}")
        rewards[t] = [ts.reward for ts in timesteps]
        np.testing.assert_allclose(reward.numpy(), rewards[t], **tol, err_msg=f"step {t}")
        assert not terminated.any() and all(ts.discount == 1.0 for ts in timesteps)
        assert bool(truncated.all()) == timesteps[0].last() == (t == 999)
        if t == min(steps - 1, 998):  # the last step before any autoreset
            # the physics is bit-identical: the whole state, solver warm start included
            ours = engine.get_state().numpy()[:, :-1]
            np.testing.assert_array_equal(ours, _dm_states(engine, envs)[:, :-1])


def test_action_repeat_counts_dm_control_steps() -> None:
    """TD-MPC's cartpole setting: action repeat 8, so an engine step is 8 dm_control steps
    (rewards summed) and an episode is 1000 / 8 = 125 engine steps."""
    env = _load("cartpole-swingup", 0)
    first = env.reset()
    engine = make_engine(
        "cartpole-swingup", 1, backend="mujoco", dtype=torch.float64, action_repeat=8
    )
    assert engine.spec.action_repeat == 8 and engine.spec.max_episode_steps == 125
    engine.reset()
    engine.set_state(torch.from_numpy(np.r_[engine.task.state_from_dm_control(env.physics), 0]))
    assert _flat(first.observation).shape == engine.observation_shape
    rng = np.random.default_rng(0)
    for t in range(125):
        action = rng.uniform(-1, 1, size=(1, 1))
        rewards = [env.step(action[0]).reward for _ in range(8)]
        obs, reward, _, truncated, info = engine.step(torch.from_numpy(action))
        np.testing.assert_allclose(reward.item(), sum(rewards), rtol=1e-12)
        assert bool(truncated[0]) == (t == 124) == env._reset_next_step
    expected = _flat(env.task.get_observation(env.physics))
    np.testing.assert_allclose(info["final_obs"][0].numpy(), expected, atol=1e-12)


@pytest.mark.parametrize("task_id", TASKS)
def test_reset_distribution_matches_dm_control(task_id: str) -> None:
    n = 100
    env = _load(task_id, 0)
    reference = np.stack([_flat(env.reset().observation) for _ in range(n)])
    engine = make_engine(task_id, n, backend="mujoco", seed=0, dtype=torch.float64)
    ours = engine.reset().numpy()
    for column in range(ours.shape[1]):
        a, b = ours[:, column], reference[:, column]
        if np.ptp(b) == 0:
            np.testing.assert_allclose(a, b, atol=1e-12, err_msg=f"column {column}")
            continue
        p = stats.ks_2samp(a, b).pvalue
        assert p > 1e-4, f"{task_id}: reset column {column} differs from dm_control (p={p:.2g})"


@pytest.mark.parametrize("sigmoid", SIGMOIDS)
def test_tolerance_matches_dm_control(sigmoid: str) -> None:
    from dm_control.utils import rewards

    x = np.linspace(-3, 3, 601)
    for bounds, margin, value in [((0, 0), 1.0, 0.1), ((-0.5, 1.0), 0.7, 0.3), ((1, 2), 0, 0.1)]:
        if sigmoid in ("cosine", "linear", "quadratic") or value > 0:
            expected = rewards.tolerance(x, bounds, margin, sigmoid, value)
            ours = tolerance(torch.from_numpy(x), bounds, margin, sigmoid, value)
            np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="value_at_1"):
        tolerance(torch.zeros(1), margin=1, sigmoid=sigmoid, value_at_margin=1.5)


def test_missing_dm_control_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "dm_control.suite", None)
    with pytest.raises(BackendUnavailableError, match=r"rlwb\[dmc\]"):
        make_engine("cheetah-run", 1, backend="mujoco")


def test_gym_backend_runs_dm_control_through_shimmy() -> None:
    pytest.importorskip("shimmy")
    engine = make_engine("cheetah-run", 2, backend="gym", seed=0)
    obs = engine.reset(seed=0)
    assert obs.shape == (2, 17)
    obs, reward, terminated, truncated, _ = engine.step(torch.zeros(2, 6))
    assert obs.shape == (2, 17) and reward.shape == (2,)
    engine.close()


@pytest.mark.parametrize("old, new", sorted(ALIASES.items()))
def test_old_ids_run_the_same_task(old: str, new: str) -> None:
    from rlwb.tasks import get

    assert get(old).gym_id == get(new).gym_id == "dm_control/ball_in_cup-catch-v0"
    a, b = (make_engine(i, 3, backend="mujoco", seed=0, dtype=torch.float64) for i in (old, new))
    torch.testing.assert_close(a.reset(), b.reset(), rtol=0, atol=0)
    action = torch.full((3, a.action_dim), 0.5, dtype=torch.float64)
    torch.testing.assert_close(a.step(action)[0], b.step(action)[0], rtol=0, atol=0)


# touch sensors; userdata; userdata, geom frames and fluid forces
@pytest.mark.parametrize("task_id", ["hopper-hop", "reacher-easy", "fish-swim"])
def test_warp_backend_agrees_with_mujoco(task_id: str) -> None:
    """One step from the same states: MuJoCo Warp (float32, on Warp's CPU device here) within
    float32 tolerance of the exact CPU backend, touch sensors included."""
    from rlwb.engine import backend_status

    ok, why = backend_status("warp", "cpu")
    if not ok:
        pytest.skip(why)
    cpu = make_engine(task_id, 4, backend="mujoco", seed=0, dtype=torch.float64)
    gpu = make_engine(task_id, 4, backend="warp", device="cpu", seed=0, dtype=torch.float64)
    cpu.reset()
    gpu.reset()
    assert gpu.get_state().shape == cpu.get_state().shape
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        action = torch.rand(4, cpu.action_dim, generator=gen, dtype=torch.float64) * 2 - 1
        gpu.set_state(cpu.get_state())
        obs_cpu, reward_cpu, *_ = cpu.step(action)
        obs_gpu, reward_gpu, *_ = gpu.step(action)
        torch.testing.assert_close(obs_gpu, obs_cpu, rtol=1e-3, atol=1e-3)
        torch.testing.assert_close(reward_gpu, reward_cpu, rtol=1e-4, atol=1e-4)


def test_cloning_a_reacher_member_clones_its_target() -> None:
    """The per-episode target is part of the state: a clone continues identically."""
    engine = make_engine("reacher-hard", 3, backend="mujoco", seed=0, dtype=torch.float64)
    obs = engine.reset()
    lo, hi = engine.task.observation_slices["to_target"]
    assert not torch.equal(obs[0, lo:hi], obs[1, lo:hi])  # different targets drawn
    engine.set_state(engine.get_state()[:1], members=[1])
    action = torch.full((3, 2), 0.3, dtype=torch.float64)
    for _ in range(20):
        obs, reward, *_ = engine.step(action)
        assert torch.equal(obs[0], obs[1]) and torch.equal(reward[0], reward[1])
