"""The ``gym`` backend against Gymnasium itself: same seed and actions, same numbers."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlwb import make_engine
from rlwb.engine.gym_backend import GymEngine, StateNotSupportedError
from rlwb.errors import ActionError, BackendUnavailableError, ConfigError, UnknownTaskError


class DictObsEnv(gym.Env):
    """A tiny env with a Dict observation and no physics state (for flattening/errors)."""

    observation_space = gym.spaces.Dict(
        {"a": gym.spaces.Box(-1, 1, (2,)), "b": gym.spaces.Box(-1, 1, (3,))}
    )
    action_space = gym.spaces.Box(-1, 1, (1,), dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._x = self.np_random.uniform(-1, 1, 5)
        return self._obs(), {}

    def step(self, action):
        self._x = np.clip(self._x + float(action[0]), -1, 1)
        return self._obs(), float(self._x.sum()), False, False, {"label": "not numeric"}

    def _obs(self):
        return {"a": self._x[:2].astype(np.float32), "b": self._x[2:].astype(np.float32)}


gym.register("rlwb_test/DictObs-v0", entry_point=DictObsEnv, max_episode_steps=5)


def _reference(env_id: str, n: int, **kwargs) -> gym.vector.SyncVectorEnv:
    return gym.vector.SyncVectorEnv(
        [lambda: gym.make(env_id, **kwargs) for _ in range(n)], autoreset_mode="SameStep"
    )


def test_matches_sync_vector_env_with_autoresets():
    """Same seed and actions as SyncVectorEnv(SAME_STEP): identical obs, rewards, flags,
    final observations, through many terminations and autoresets."""
    n = 4
    engine = make_engine("InvertedPendulum-v5", n, backend="gym", dtype=torch.float64)
    ref = _reference("InvertedPendulum-v5", n)
    obs = engine.reset(seed=11)
    ref_obs, _ = ref.reset(seed=11)
    np.testing.assert_array_equal(obs.numpy(), ref_obs)
    rng = np.random.default_rng(0)
    dones = 0
    for _ in range(40):
        act = rng.uniform(-3, 3, (n, 1))
        obs, rew, term, trunc, info = engine.step(torch.from_numpy(act))
        ref_obs, ref_rew, ref_term, ref_trunc, ref_info = ref.step(act)
        np.testing.assert_array_equal(obs.numpy(), ref_obs)
        np.testing.assert_array_equal(rew.numpy(), ref_rew)
        np.testing.assert_array_equal(term.numpy(), ref_term)
        np.testing.assert_array_equal(trunc.numpy(), ref_trunc)
        if term.any():
            done = term.numpy()
            np.testing.assert_array_equal(ref_info["_final_obs"], done)
            expected = np.stack(ref_info["final_obs"][done])
            np.testing.assert_array_equal(info["final_obs"][term].numpy(), expected)
            np.testing.assert_array_equal(info["done"].numpy(), done)
            dones += int(done.sum())
        np.testing.assert_array_equal(info["reward_survive"].numpy(), ref_info["reward_survive"])
    assert dones >= 8  # random actions topple the pendulum: autoreset was exercised
    engine.close()
    ref.close()


def test_truncates_at_the_spec_time_limit_and_at_an_override():
    engine = make_engine("Pendulum-v1", 2, backend="gym", seed=0)
    assert engine.max_episode_steps == 200  # from Pendulum-v1's spec
    ref = _reference("Pendulum-v1", 2)
    engine.reset(seed=3)
    ref.reset(seed=3)
    act = np.full((2, 1), 0.5, dtype=np.float32)
    for t in range(1, 202):
        obs, _, term, trunc, info = engine.step(torch.from_numpy(act))
        ref_obs, _, _, ref_trunc, ref_info = ref.step(act)
        assert not term.any()
        assert trunc.tolist() == [t == 200] * 2 == ref_trunc.tolist()
        np.testing.assert_allclose(obs.numpy(), ref_obs, atol=1e-6)  # float32 engine
        if t == 200:
            expected = np.stack(ref_info["final_obs"])
            np.testing.assert_allclose(info["final_obs"].numpy(), expected, atol=1e-6)
            assert info["episode_length"].tolist() == [200, 200]
    short = make_engine("Pendulum-v1", 1, backend="gym", seed=0, max_episode_steps=7)
    short.reset()
    flags = [bool(short.step(torch.zeros(1, 1))[3]) for _ in range(14)]
    assert [i + 1 for i, f in enumerate(flags) if f] == [7, 14]


def test_seeded_engines_reproduce():
    def run(seed):
        engine = make_engine("Hopper-v5", 3, backend="gym", seed=seed)
        obs = [engine.reset()]
        for _ in range(5):
            obs.append(engine.step(torch.full((3, 3), 0.3))[0])
        return torch.stack(obs)

    np.testing.assert_array_equal(run(4).numpy(), run(4).numpy())
    assert not torch.equal(run(4), run(5))
    engine = make_engine("Hopper-v5", 2, backend="gym")
    engine.seed(4)
    first = engine.reset()
    engine.step(torch.zeros(2, 3))
    engine.seed(4)
    assert torch.equal(engine.reset(), first)  # seed() then reset() reproduces too


def test_set_state_clones_a_mujoco_member_exactly():
    """A state cloned into every member continues bit-exactly like the original."""
    engine = make_engine("InvertedPendulum-v5", 3, backend="gym", seed=1, dtype=torch.float64)
    engine.reset()
    for _ in range(4):
        engine.step(torch.full((3, 1), 0.2))
    state = engine.get_state()
    assert state.shape == (3, engine.state_dim) and state[:, -1].tolist() == [4, 4, 4]
    actions = torch.linspace(-0.5, 0.5, 6)[:, None]
    original = [engine.step(a.expand(3, 1))[0][1] for a in actions]

    obs = engine.set_state(state[1])  # member 1's state into all three members
    assert torch.equal(obs[0], obs[2])
    for t, a in enumerate(actions):
        step_obs = engine.step(a.expand(3, 1))[0]
        for m in range(3):
            assert torch.equal(step_obs[m], original[t])
    assert engine.get_state()[:, -1].tolist() == [10, 10, 10]  # elapsed steps travel too

    engine.set_state(state[0], members=torch.tensor([2]))
    np.testing.assert_array_equal(engine.get_state()[2].numpy()[:-1], state[0].numpy()[:-1])


def test_classic_control_state_round_trip():
    engine = make_engine("Pendulum-v1", 2, backend="gym", seed=0, dtype=torch.float64)
    engine.reset()
    state = torch.tensor([np.pi, 0.0, 0.0], dtype=torch.float64)  # hanging, at rest
    obs = engine.set_state(state)
    np.testing.assert_allclose(obs.numpy(), [[-1.0, 0.0, 0.0]] * 2, atol=1e-12)
    reward = engine.step(torch.zeros(2, 1))[1]
    np.testing.assert_allclose(reward.numpy(), [-(np.pi**2)] * 2)  # Pendulum's cost at rest


def test_dict_observations_are_flattened_and_state_is_refused_by_name():
    engine = make_engine("rlwb_test/DictObs-v0", 2, backend="gym", seed=0)
    assert engine.observation_shape == (5,)
    obs = engine.reset(seed=0)
    raw, _ = DictObsEnv().reset(seed=0)
    np.testing.assert_allclose(obs[0].numpy(), np.concatenate([raw["a"], raw["b"]]))
    _, _, _, trunc, info = engine.step(torch.zeros(2, 1))
    assert "label" not in info  # non-numeric info entries are dropped
    with pytest.raises(StateNotSupportedError, match="rlwb_test/DictObs-v0"):
        engine.get_state()
    with pytest.raises(NotImplementedError):
        engine.set_state(torch.zeros(3))


def test_async_vectorization_matches_sync():
    kwargs = dict(backend="gym", seed=2, dtype=torch.float64)
    sync = make_engine("Pendulum-v1", 3, **kwargs)
    asyn = make_engine("Pendulum-v1", 3, vectorization="async", **kwargs)
    try:
        np.testing.assert_array_equal(sync.reset().numpy(), asyn.reset().numpy())
        for t in range(3):
            a = torch.full((3, 1), 0.1 * t)
            for x, y in zip(sync.step(a)[:4], asyn.step(a)[:4], strict=True):
                np.testing.assert_array_equal(x.numpy(), y.numpy())
        state = sync.get_state()
        np.testing.assert_array_equal(state.numpy(), asyn.get_state().numpy())
        members = torch.tensor([0, 2])
        obs = asyn.set_state(state[1], members=members)
        np.testing.assert_array_equal(obs[0].numpy(), obs[2].numpy())
    finally:
        asyn.close()


def test_bad_inputs_get_clear_errors():
    with pytest.raises(UnknownTaskError, match="NoSuchEnv-v9"):
        make_engine("NoSuchEnv-v9", 2, backend="gym")
    with pytest.raises(UnknownTaskError, match="NoSuchEnv-v9"):
        GymEngine("NoSuchEnv-v9", 2)
    with pytest.raises(BackendUnavailableError, match="Box.*CartPole-v1.*Discrete"):
        make_engine("CartPole-v1", 2, backend="gym")
    with pytest.raises(BackendUnavailableError, match="CartpoleBalance-v0.*torch"):
        make_engine("CartpoleBalance-v0", 2, backend="gym")  # an rlwb-only task
    with pytest.raises(ConfigError, match="vectorization"):
        make_engine("Pendulum-v1", 2, backend="gym", vectorization="threads")
    with pytest.raises(ConfigError, match="Pendulum-v1"):
        make_engine("Pendulum-v1", 2, backend="gym", no_such_option=1)
    engine = make_engine("Pendulum-v1", 2, backend="gym", seed=0)
    engine.reset()
    with pytest.raises(ActionError, match="shape"):
        engine.step(torch.zeros(3, 1))
    with pytest.raises(ActionError, match="NaN"):
        engine.step(torch.tensor([[0.0], [float("nan")]]))
