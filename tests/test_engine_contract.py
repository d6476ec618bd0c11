"""Backend-generic engine contract: every (backend, task) in ``CONTRACT_CASES`` must pass.

To cover another backend, append its cases to ``CONTRACT_CASES`` (guard cases that need
hardware with ``_available``): the tests only use the public :class:`rlwb.engine.Engine`
API. Comparisons between two runs of one engine are exact (``torch.equal``): a backend is
deterministic given its state.
"""

from __future__ import annotations

import pytest
import torch

from rlwb.engine import backend_status, make_engine


def _available(backend: str, task: str) -> pytest.param:
    ok, why = backend_status(backend, DEVICE.get(backend))
    return pytest.param(
        backend, task, id=f"{backend}-{task}", marks=pytest.mark.skipif(not ok, reason=why)
    )


# Warp runs on its CPU device where there is no CUDA.
DEVICE = {"warp": None if torch.cuda.is_available() else "cpu"}

CONTRACT_CASES = [
    *(_available("warp", t) for t in ("HalfCheetah-v5", "Hopper-v5")),
    _available("mujoco", "HalfCheetah-v5"),
    _available("mujoco", "Hopper-v5"),
    _available("mujoco", "cheetah-run"),  # DeepMind Control Suite
    _available("torch", "Pendulum-v1"),
    _available("torch", "MountainCarContinuous-v0"),
    _available("torch", "PointMaze-Deceptive-Dense-v0"),
    *(_available("gym", t) for t in ("HalfCheetah-v5", "Pendulum-v1")),
]

NUM_ENVS = 4


def _engine(backend: str, task: str, num_envs: int = NUM_ENVS, seed: int = 0):
    device = DEVICE.get(backend)
    return make_engine(
        task, num_envs, backend=backend, device=device, seed=seed, dtype=torch.float64
    )


def _actions(engine, steps: int, seed: int, same_rows: bool = False) -> torch.Tensor:
    """Random actions ``[steps, B, A]`` inside the action bounds."""
    gen = torch.Generator().manual_seed(seed)
    rows = 1 if same_rows else engine.num_envs
    u = torch.rand(steps, rows, engine.action_dim, generator=gen, dtype=torch.float64)
    low = engine.spec.action_low.to(torch.float64).cpu()
    high = engine.spec.action_high.to(torch.float64).cpu()
    acts = low + (high - low) * u
    return acts.expand(steps, engine.num_envs, -1).to(engine.device)


def _policy(engine) -> callable:
    gen = torch.Generator().manual_seed(7)
    w = 0.3 * torch.randn(engine.observation_shape[0], engine.action_dim, generator=gen)
    w = w.to(engine.device, torch.float64)
    return lambda obs: torch.tanh(obs.to(torch.float64) @ w)


pytestmark = pytest.mark.parametrize(("backend", "task"), CONTRACT_CASES)


def test_spaces_and_shapes(backend: str, task: str) -> None:
    engine = _engine(backend, task)
    obs = engine.reset(seed=0)
    assert obs.shape == (NUM_ENVS, *engine.observation_shape)
    assert obs.dtype == torch.float64
    obs, reward, terminated, truncated, info = engine.step(_actions(engine, 1, 0)[0])
    assert obs.shape == (NUM_ENVS, *engine.observation_shape)
    assert reward.shape == terminated.shape == truncated.shape == (NUM_ENVS,)
    assert terminated.dtype == truncated.dtype == torch.bool
    assert info["final_obs"].shape == obs.shape
    assert engine.get_state().shape == (NUM_ENVS, engine.state_dim)
    assert engine.spec.state_dim == engine.state_dim
    engine.close()


def test_truncation_at_time_limit_keeps_final_obs(backend: str, task: str) -> None:
    engine = _engine(backend, task)
    engine.reset(seed=1)
    state = engine.get_state()
    limit = engine.max_episode_steps
    state[:, -1] = limit - 3  # three steps before the time limit
    engine.set_state(state)
    acts = 0.1 * _actions(engine, 3, 1)
    for t in range(3):
        obs, reward, terminated, truncated, info = engine.step(acts[t])
        if bool(terminated.any()):
            pytest.skip("a member terminated before the time limit")
        assert bool(truncated.all()) == (t == 2), f"truncated at step {t}: {truncated}"
    assert torch.equal(info["done"], truncated)
    assert not torch.equal(info["final_obs"], obs), (
        "final_obs must be the last obs, not the reset one"
    )
    assert torch.equal(info["episode_length"].cpu(), torch.full((NUM_ENVS,), 3))
    assert bool((engine.get_state()[:, -1] == 0).all()), "elapsed steps restart after autoreset"
    engine.close()


def test_autoreset_final_obs_is_the_true_last_observation(backend: str, task: str) -> None:
    """Replaying the step that ended an episode from the saved state gives ``final_obs``."""
    engine = _engine(backend, task)
    engine.reset(seed=2)
    state = engine.get_state()
    state[:, -1] = engine.max_episode_steps - 40  # the episode ends within 40 steps
    engine.set_state(state)
    acts = _actions(engine, 40, 2)
    returns = torch.zeros(NUM_ENVS, dtype=torch.float64, device=engine.device)
    for t in range(40):
        before = engine.get_state()
        obs, reward, terminated, truncated, info = engine.step(acts[t])
        returns += reward
        done = terminated | truncated
        if bool(done.any()):
            break
        assert torch.equal(info["final_obs"], obs)
    else:
        raise AssertionError("no episode ended at the time limit")
    k = int(done.nonzero()[0])
    assert torch.allclose(info["episode_return"][k], returns[k], rtol=1e-12, atol=1e-9)
    assert int(info["episode_length"][k]) == t + 1
    assert not torch.equal(obs[k], info["final_obs"][k])
    final = info["final_obs"].clone()
    engine.set_state(before)
    _, _, terminated2, _, info2 = engine.step(acts[t])
    assert torch.equal(terminated2, terminated)
    assert torch.equal(info2["final_obs"][done], final[done])
    engine.close()


def test_cloned_state_gives_identical_trajectories(backend: str, task: str) -> None:
    """One member's state cloned into all members replays that member's own future."""
    engine = _engine(backend, task)
    engine.reset(seed=3)
    for act in 0.3 * _actions(engine, 5, 3):  # a non-trivial state (velocities, warm start)
        engine.step(act)
    source = engine.get_state()
    acts = 0.3 * _actions(engine, 20, 4, same_rows=True)
    reference = []
    for act in acts:  # member 0's own future, up to the end of its episode
        _, reward, terminated, truncated, info = engine.step(act)
        reference.append((info["final_obs"][0].clone(), reward[0].clone()))
        if bool(terminated[0] | truncated[0]):
            break
    engine.set_state(source[0])
    for t, (ref_obs, ref_reward) in enumerate(reference):
        _, reward, _, _, info = engine.step(acts[t])
        obs = info["final_obs"]
        assert torch.equal(obs, ref_obs.expand_as(obs)), f"clones diverge at step {t}"
        assert torch.equal(reward, ref_reward.expand_as(reward)), f"clone rewards diverge at {t}"
    assert len(reference) >= 5
    engine.close()


def test_set_state_roundtrip_on_subset(backend: str, task: str) -> None:
    engine = _engine(backend, task)
    engine.reset(seed=4)
    state = engine.get_state()
    members = torch.tensor([2, 0])
    engine.reset(seed=5)
    other = engine.get_state()
    engine.set_state(state[members], members=members)
    now = engine.get_state()
    assert torch.equal(now[members], state[members])
    assert torch.equal(now[1], other[1]) and torch.equal(now[3], other[3])
    engine.close()


def test_open_loop_rollout_equals_stepping(backend: str, task: str) -> None:
    engine = _engine(backend, task)
    engine.reset(seed=5)
    start = engine.get_state()
    horizon = 30
    acts = _actions(engine, horizon, 5)
    result = engine.rollout(acts.transpose(0, 1).contiguous(), init_state=start, record_obs=True)
    _compare_with_stepping(engine, start, result, lambda t, obs: acts[t])
    engine.close()


def test_closed_loop_rollout_equals_stepping(backend: str, task: str) -> None:
    engine = _engine(backend, task)
    engine.reset(seed=6)
    start = engine.get_state()
    policy = _policy(engine)
    result = engine.rollout(policy, horizon=30, init_state=start, record_obs=True)
    _compare_with_stepping(engine, start, result, lambda t, obs: policy(obs))
    engine.close()


def _compare_with_stepping(engine, start, result, act_fn) -> None:
    horizon = result.rewards.shape[1]
    obs = engine.set_state(start)
    assert torch.equal(result.observations[:, 0], obs)
    alive = torch.ones(engine.num_envs, dtype=torch.bool, device=engine.device)
    for t in range(horizon):
        obs, reward, terminated, truncated, info = engine.step(act_fn(t, obs))
        assert torch.equal(result.alive[:, t], alive)
        a = alive
        assert torch.equal(result.rewards[a, t], reward[a]), f"reward differs at step {t}"
        assert torch.equal(result.terminated[a, t], terminated[a])
        assert torch.equal(result.observations[a, t + 1], info["final_obs"][a]), f"obs at {t}"
        alive = alive & ~(terminated | truncated)
        if not bool(alive.any()):
            break
    assert torch.equal(result.lengths, result.alive.sum(1))
    assert torch.allclose(result.returns, result.rewards.sum(1))


def test_seeded_reset_is_reproducible(backend: str, task: str) -> None:
    a, b = _engine(backend, task, seed=11), _engine(backend, task, seed=99)
    first = a.reset(seed=5)
    assert torch.equal(a.reset(seed=5), first)
    assert torch.equal(b.reset(seed=5), first), "same seed, another engine: same reset"
    assert not torch.equal(a.reset(seed=6), first)
    assert not torch.equal(first[0], first[1]), "members draw their own reset noise"
    a.close()
    b.close()


def test_spawned_sibling_equals_fresh_engine(backend: str, task: str) -> None:
    with _engine(backend, task, num_envs=2) as parent:
        with parent.spawn(3, seed=5) as sibling, _engine(backend, task, 3, seed=5) as fresh:
            assert (sibling.backend, sibling.task_id, sibling.num_envs) == (backend, task, 3)
            assert sibling.dtype == fresh.dtype and sibling.device == fresh.device
            assert sibling.spec.backend == backend
            torch.testing.assert_close(sibling.reset(), fresh.reset(), rtol=0, atol=0)
            acts = _actions(fresh, 5, seed=1)
            for a in acts:
                torch.testing.assert_close(sibling.step(a)[0], fresh.step(a)[0], rtol=0, atol=0)


def test_set_state_with_bool_mask_writes_the_masked_members(backend: str, task: str) -> None:
    with _engine(backend, task) as engine:
        engine.reset(seed=0)
        for a in _actions(engine, 3, seed=2):
            engine.step(a)
        source = engine.get_state()
        mask = torch.tensor([False, False, True, True], device=engine.device)
        engine.set_state(source[[0, 1]], members=mask)
        after = engine.get_state()
        torch.testing.assert_close(after[2:], source[:2], rtol=0, atol=0)
        torch.testing.assert_close(after[:2], source[:2], rtol=0, atol=0)
        with pytest.raises(ValueError, match="bool member mask"):
            engine.set_state(source[:1], members=torch.tensor([True, False]))


def test_step_right_after_rollout_continues_the_episode(backend: str, task: str) -> None:
    """A rollout is a query: stepping after it (open and closed loop, from another
    state) gives exactly what stepping without it gives."""
    with _engine(backend, task) as engine, _engine(backend, task) as twin:
        engine.reset(seed=8)
        twin.reset(seed=8)
        acts = 0.3 * _actions(engine, 6, 8)
        for a in acts[:3]:
            engine.step(a)
            twin.step(a)
        elsewhere = engine.get_state()[[1, 2, 3, 0]]
        elsewhere[:, -1] = 0
        engine.rollout(acts.transpose(0, 1).contiguous(), init_state=elsewhere)
        engine.rollout(_policy(engine), horizon=4)
        for a in acts[3:]:
            got, want = engine.step(a), twin.step(a)
            for x, y in zip(got[:4], want[:4], strict=True):
                assert torch.equal(x, y)
            for key in ("episode_return", "episode_length"):
                assert torch.equal(got[4][key], want[4][key]), key
        assert torch.equal(engine.get_state(), twin.get_state())


def test_time_limit_override_counts_engine_steps(backend: str, task: str) -> None:
    device = DEVICE.get(backend)
    kw = dict(backend=backend, device=device, seed=0, dtype=torch.float64)
    with make_engine(task, 2, max_episode_steps=5, **kw) as engine:
        assert engine.max_episode_steps == engine.spec.max_episode_steps == 5
        assert engine.spec.task_kwargs == {"max_episode_steps": 5}
        engine.reset(seed=0)
        for t, a in enumerate(0.1 * _actions(engine, 5, 3)):
            _, _, terminated, truncated, _ = engine.step(a)
            if bool(terminated.any()):
                pytest.skip("a member terminated before the time limit")
            assert bool(truncated.all()) == (t == 4)


def test_action_repeat_is_k_task_steps(backend: str, task: str) -> None:
    """One engine step with ``action_repeat=2`` is two task steps with the same action
    (rewards summed); the time limit halves and rollouts follow the same rule."""
    device = DEVICE.get(backend)
    kw = dict(backend=backend, device=device, dtype=torch.float64)
    with (
        make_engine(task, NUM_ENVS, action_repeat=2, **kw) as rep,
        make_engine(task, NUM_ENVS, **kw) as one,
    ):
        assert rep.spec.action_repeat == 2 and rep.dt == pytest.approx(2 * one.dt)
        assert rep.max_episode_steps == -(-one.max_episode_steps // 2)
        assert torch.equal(rep.reset(seed=3), one.reset(seed=3))
        start = rep.get_state()
        acts = 0.3 * _actions(rep, 4, 9)
        for a in acts:
            _, r1, t1, _, _ = one.step(a)
            o2, r2, t2, _, _ = one.step(a)
            if bool((t1 | t2).any()):
                pytest.skip("a member terminated during the check")
            obs, reward, terminated, _, _ = rep.step(a)
            assert torch.equal(obs, o2) and torch.equal(reward, r1 + r2)
            assert not bool(terminated.any())
        result = rep.rollout(acts.transpose(0, 1).contiguous(), init_state=start, record_obs=True)
        _compare_with_stepping(rep, start, result, lambda t, obs: acts[t])
