"""The engine seen as a Gymnasium VectorEnv and as a Stable-Baselines3 VecEnv."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.wrappers.vector import RecordEpisodeStatistics
from stable_baselines3 import PPO
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from rlwb import make_engine
from rlwb.engine import backend_status
from rlwb.errors import ConfigError


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """SB3's small networks run fastest single-threaded, above all on a loaded machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _engine(task="InvertedPendulum-v5", n=4, **kw):
    return make_engine(task, n, backend="gym", seed=0, **kw)


def test_gymnasium_view_matches_sync_vector_env():
    """The view of a float64 gym engine returns what SyncVectorEnv(SAME_STEP) returns,
    in the same info layout (final_obs object array with its _final_obs mask)."""
    n = 3
    view = _engine(n=n, dtype=torch.float64).as_gymnasium_vector()
    ref = gym.vector.SyncVectorEnv(
        [lambda: gym.make("InvertedPendulum-v5") for _ in range(n)], autoreset_mode="SameStep"
    )
    assert isinstance(view, VectorEnv)
    assert view.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    assert view.observation_space == ref.observation_space
    assert view.action_space == ref.action_space
    obs, info = view.reset(seed=5)
    np.testing.assert_array_equal(obs, ref.reset(seed=5)[0])
    assert view.observation_space.contains(obs)
    rng = np.random.default_rng(1)
    finals = 0
    for _ in range(30):
        act = rng.uniform(-3, 3, (n, 1)).astype(np.float32)
        out, ref_out = view.step(act), ref.step(act)
        for x, y in zip(out[:4], ref_out[:4], strict=True):
            assert x.dtype == y.dtype and x.shape == y.shape
            np.testing.assert_array_equal(x, y)
        info, ref_info = out[4], ref_out[4]
        if "_final_obs" in ref_info:
            np.testing.assert_array_equal(info["_final_obs"], ref_info["_final_obs"])
            for i in np.flatnonzero(ref_info["_final_obs"]):
                np.testing.assert_array_equal(info["final_obs"][i], ref_info["final_obs"][i])
            finals += 1
        else:
            assert "final_obs" not in info
    assert finals >= 3
    view.close()
    ref.close()


def test_gymnasium_view_works_under_record_episode_statistics():
    """Gymnasium's own vector wrapper accepts the view and counts the engine's episodes."""
    engine = _engine("Pendulum-v1", n=2, max_episode_steps=10)
    env = RecordEpisodeStatistics(engine.as_gymnasium_vector())
    env.reset(seed=0)
    total = np.zeros(2)
    for _ in range(10):
        _, reward, _, trunc, info = env.step(np.zeros((2, 1), dtype=np.float32))
        total += reward
    assert trunc.all() and info["_episode"].all()
    np.testing.assert_allclose(info["episode"]["r"], total, rtol=1e-6)
    np.testing.assert_allclose(info["final_info"]["episode_return"], total, rtol=1e-6)
    assert info["episode"]["l"].tolist() == [10, 10]
    with pytest.raises(ConfigError, match="one int seed"):
        env.reset(seed=[3, 9])


def test_sb3_view_step_contract():
    """Shapes, dtypes and the infos SB3 expects at episode ends."""
    engine = _engine("Pendulum-v1", n=3, max_episode_steps=4)
    venv = engine.as_sb3_vec_env()
    assert isinstance(venv, VecEnv) and venv.num_envs == 3
    assert venv.observation_space.shape == (3,) and venv.action_space.shape == (1,)
    venv.seed(7)
    obs = venv.reset()
    assert obs.shape == (3, 3) and obs.dtype == venv.observation_space.dtype == np.float32
    for _ in range(4):
        obs, rew, dones, infos = venv.step(np.zeros((3, 1), dtype=np.float32))
        assert rew.shape == (3,) and rew.dtype == np.float32 and dones.dtype == bool
        assert len(infos) == 3
    assert dones.all()
    for info in infos:
        assert info["TimeLimit.truncated"] is True
        assert info["terminal_observation"].shape == (3,)
        assert info["episode"]["l"] == 4
    # autoreset: the returned obs starts a new episode, the terminal one is in the info
    assert not np.allclose(obs, np.stack([i["terminal_observation"] for i in infos]))
    assert venv.env_is_wrapped(Monitor) == [True] * 3  # the view reports Monitor's info
    assert venv.env_is_wrapped(gym.wrappers.TimeLimit) == [False] * 3
    assert venv.get_attr("max_episode_steps") == [4, 4, 4]
    with pytest.raises(ConfigError):
        venv.env_method("reset", indices=[0])


def test_sb3_seed_reproduces_and_vecnormalize_wraps():
    engine = _engine("Hopper-v5", n=2)
    venv = engine.as_sb3_vec_env()
    venv.seed(3)
    first = venv.reset()
    venv.seed(3)
    np.testing.assert_array_equal(venv.reset(), first)
    norm = VecNormalize(venv)
    norm.reset()
    obs, *_ = norm.step(np.zeros((2, 3), dtype=np.float32))
    assert obs.shape == (2, 11) and np.isfinite(obs).all()


def test_sb3_evaluate_policy_agrees_with_engine_rollout():
    """evaluate_policy through the view reports the returns the engine itself computes."""
    engine = _engine(n=4)
    venv = engine.as_sb3_vec_env()
    model = PPO("MlpPolicy", venv, n_steps=16, seed=0, device="cpu")
    venv.seed(21)
    returns, lengths = evaluate_policy(
        model, venv, n_eval_episodes=4, deterministic=True, return_episode_rewards=True
    )

    def policy(obs: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(model.predict(obs.numpy(), deterministic=True)[0])

    engine.reset(seed=21)
    result = engine.rollout(policy)
    np.testing.assert_allclose(sorted(returns), sorted(result.returns.tolist()), rtol=1e-6)
    assert sorted(lengths) == sorted(result.lengths.tolist())


def test_sb3_ppo_learns_on_the_engine():
    """PPO through the view balances InvertedPendulum far longer than an untrained policy
    (zero action falls after about 22 steps; random init about 25)."""
    torch.manual_seed(0)
    venv = _engine(n=8).as_sb3_vec_env()
    venv.seed(1)
    model = PPO(
        "MlpPolicy", venv, n_steps=64, batch_size=128, n_epochs=4, learning_rate=1e-3, seed=1,
        device="cpu",
    )  # fmt: skip
    before, _ = evaluate_policy(model, venv, n_eval_episodes=8)
    model.learn(8_000)
    after, _ = evaluate_policy(model, venv, n_eval_episodes=8)
    assert before < 50 and after > 80, (before, after)


@pytest.mark.parametrize(
    ("backend", "task"), [("mujoco", "Hopper-v5"), ("torch", "Pendulum-v1"), ("gym", "Hopper-v5")]
)
def test_views_work_on_every_backend(backend, task):
    """The views only use the public Engine API: any backend works behind them."""
    ok, why = backend_status(backend)
    if not ok:
        pytest.skip(why)
    engine = make_engine(task, 2, backend=backend, seed=0)
    engine.reset()
    state = engine.get_state()
    state[:, -1] = engine.max_episode_steps - 3  # three steps before the time limit
    engine.set_state(state)
    venv = engine.as_sb3_vec_env()
    act = np.zeros((2, engine.action_dim), dtype=np.float32)
    for _ in range(3):
        obs, rew, dones, infos = venv.step(act)
    assert dones.all() and obs.dtype == np.float32 and rew.shape == (2,)
    assert all(i["TimeLimit.truncated"] or i["episode"]["l"] < 3 for i in infos)
    view = make_engine(task, 2, backend=backend, seed=0).as_gymnasium_vector()
    obs, _ = view.reset(seed=0)
    assert view.observation_space.contains(obs)
    obs, rew, term, trunc, _ = view.step(act)
    assert obs.shape == view.observation_space.shape and rew.dtype == np.float64
