"""Ant-v5, Humanoid-v5 and HumanoidStandup-v5 task definitions against Gymnasium's own envs.

Task-level parity without an engine: Gymnasium's env steps the physics with random actions
(through terminations and resets); the MjData arrays each task names are gathered before and
after every step into batched ``PhysicsView`` dicts, and the task's observation, reward,
info components and termination must equal Gymnasium's outputs to ``ATOL`` in float64.
"""

from __future__ import annotations

import functools
import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlwb.envs.mujoco.ant import Ant
from rlwb.envs.mujoco.humanoid import Humanoid
from rlwb.envs.mujoco.humanoid_standup import HumanoidStandup
from rlwb.errors import ConfigError

# Everything is float64 from the same MjData; the only differences are summation order.
ATOL = 1e-10
RTOL = 1e-12


def snapshot(data, names: tuple[str, ...]) -> dict[str, np.ndarray]:  # noqa: ANN001
    return {name: np.array(getattr(data, name), dtype=np.float64) for name in names}


def stack(views: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    return {k: torch.as_tensor(np.stack([v[k] for v in views])) for k in views[0]}


def gym_rollout(task, steps: int, seed: int, **kwargs) -> dict:  # noqa: ANN001
    """Step Gymnasium's env with random float64 actions; record views and its outputs."""
    env = gym.make(task.gym_id, **kwargs)
    env.reset(seed=seed)
    data = env.unwrapped.data
    rng = np.random.default_rng(seed)
    low, high = env.action_space.low, env.action_space.high
    rec: dict[str, list] = {"pre": [], "post": [], "act": [], "obs": [], "rew": [], "term": []}
    rec["info"] = []
    resets: list[tuple[dict, np.ndarray]] = []
    for _ in range(steps):
        rec["pre"].append(snapshot(data, task.pre_fields or ("qpos",)))
        action = rng.uniform(low, high).astype(np.float64)
        obs, reward, terminated, truncated, info = env.step(action)
        rec["post"].append(snapshot(data, task.fields))
        for key, value in zip(
            ("act", "obs", "rew", "term", "info"),
            (action, obs, reward, terminated, info),
            strict=True,
        ):
            rec[key].append(value)
        if terminated or truncated:
            obs, _ = env.reset()
            resets.append((snapshot(data, task.fields), obs))
    env.close()
    return {
        "pre": stack(rec["pre"]),
        "post": stack(rec["post"]),
        "action": torch.as_tensor(np.stack(rec["act"])),
        "obs": torch.as_tensor(np.stack(rec["obs"])),
        "reward": torch.as_tensor(np.array(rec["rew"], dtype=np.float64)),
        "terminated": torch.as_tensor(np.array(rec["term"], dtype=bool)),
        "info": rec["info"],
        "resets": resets,
        "dt": env.unwrapped.dt,
        "model": env.unwrapped.model,
    }


def assert_close(actual: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    assert actual.dtype == torch.float64, what
    torch.testing.assert_close(actual, expected.to(torch.float64), atol=ATOL, rtol=RTOL, msg=what)


CASES = {
    "ant-default": (Ant, 300, {}),
    "ant-variant": (
        Ant,
        300,
        {
            "main_body": "torso",
            "healthy_z_range": (0.3, 0.8),
            "contact_force_range": (-0.5, 0.3),
            "exclude_current_positions_from_observation": False,
            "include_cfrc_ext_in_observation": False,
            "ctrl_cost_weight": 0.3,
        },
    ),
    "humanoid-default": (Humanoid, 300, {}),
    "humanoid-variant": (
        Humanoid,
        200,
        {
            "terminate_when_unhealthy": False,
            "contact_cost_range": (-math.inf, 1e-4),
            "healthy_z_range": (0.9, 1.3),
            "exclude_current_positions_from_observation": False,
            "include_cinert_in_observation": False,
            "include_qfrc_actuator_in_observation": False,
        },
    ),
    "standup-default": (HumanoidStandup, 200, {}),
    "standup-variant": (
        HumanoidStandup,
        150,
        {
            "impact_cost_range": (-math.inf, 1e-3),
            "include_cvel_in_observation": False,
            "include_cfrc_ext_in_observation": False,
        },
    ),
}


@functools.cache
def case_run(case: str) -> dict:
    """Gymnasium's rollout for ``case`` (shared by the tests; nothing mutates it)."""
    cls, steps, kwargs = CASES[case]
    return gym_rollout(cls(**kwargs), steps, seed=7, **kwargs)


@pytest.mark.parametrize("case", list(CASES))
def test_step_parity_with_gymnasium(case: str) -> None:
    cls, _, kwargs = CASES[case]
    task = cls(**kwargs)
    run = case_run(case)
    if case.endswith("default"):
        task.setup(run["model"])  # as a backend does; variants exercise the lazy XML fallback
    assert task.observation_dim(run["model"]) == run["obs"].shape[1]

    assert_close(task.observation(run["post"]), run["obs"], f"{case} observation")
    reward, info = task.reward(run["pre"], run["post"], run["action"], run["dt"])
    assert_close(reward, run["reward"], f"{case} reward")
    scalar_keys = {k for k, v in run["info"][0].items() if np.ndim(v) == 0}
    assert set(info) == scalar_keys
    for key in scalar_keys:
        expected = torch.tensor([float(i[key]) for i in run["info"]], dtype=torch.float64)
        assert_close(info[key], expected, f"{case} info[{key}]")
    terminated = task.terminated(run["post"])
    assert terminated.dtype == torch.bool
    assert torch.equal(terminated, run["terminated"])

    for view, obs in run["resets"]:
        batch = {k: torch.as_tensor(v)[None] for k, v in view.items()}
        assert_close(task.observation(batch)[0], torch.as_tensor(obs), f"{case} reset obs")


def test_rollouts_cover_terminations_and_clipping() -> None:
    """The parity runs above must exercise both termination outcomes and the cost clips."""
    for case in ("ant-default", "ant-variant", "humanoid-default"):
        run = case_run(case)
        assert 0 < int(run["terminated"].sum()) < len(run["terminated"]), case
        assert run["resets"], case
    for case, key, cap in (
        ("humanoid-variant", "reward_contact", 1e-4),
        ("standup-variant", "reward_impact", 1e-3),
    ):
        costs = np.array([-i[key] for i in case_run(case)["info"]])
        assert (costs == cap).any() and (costs < cap).any(), case
    contact = case_run("ant-default")["post"]["cfrc_ext"]
    assert (contact.abs() > 1.0).any()  # Ant's contact_force_range clip is exercised


def gym_reset_noise(gym_id: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    env = gym.make(gym_id)
    u = env.unwrapped
    qpos, qvel = [], []
    for seed in range(n):
        env.reset(seed=seed)
        qpos.append(u.data.qpos - u.init_qpos)
        qvel.append(u.data.qvel - u.init_qvel)
    env.close()
    return np.concatenate(qpos), np.concatenate(qvel)


def kurtosis(x: np.ndarray) -> float:
    x = x - x.mean()
    return float((x**4).mean() / (x**2).mean() ** 2)


@pytest.mark.parametrize("cls", [Ant, Humanoid, HumanoidStandup])
def test_reset_noise_matches_gymnasium(cls) -> None:  # noqa: ANN001
    """Same scale and shape (uniform: kurtosis 1.8; Gaussian: 3) as Gymnasium's resets."""
    task = cls()
    env = gym.make(cls.gym_id)
    init_qpos = torch.as_tensor(env.unwrapped.init_qpos)
    init_qvel = torch.as_tensor(env.unwrapped.init_qvel)
    env.close()
    gen = torch.Generator().manual_seed(0)
    qpos, qvel = task.reset_state(init_qpos, init_qvel, 4000, gen)
    assert qpos.shape == (4000, init_qpos.numel()) and qvel.shape == (4000, init_qvel.numel())
    assert qpos.dtype == qvel.dtype == torch.float64
    ours = {
        "qpos": (qpos - init_qpos).flatten().numpy(),
        "qvel": (qvel - init_qvel).flatten().numpy(),
    }
    theirs = dict(zip(("qpos", "qvel"), gym_reset_noise(cls.gym_id, 300), strict=True))
    scale = task.reset_noise_scale
    for key in ("qpos", "qvel"):
        a, b = ours[key], theirs[key]
        assert abs(a.mean()) < 0.05 * scale and abs(b.mean()) < 0.05 * scale, key
        assert a.std() == pytest.approx(b.std(), rel=0.05), key
        assert kurtosis(a) == pytest.approx(kurtosis(b), abs=0.25), key
        if kurtosis(b) < 2.5:  # uniform: bounded by the scale
            assert np.abs(a).max() <= scale
    # Different generator seeds give different draws; the same seed repeats them.
    again = task.reset_state(init_qpos, init_qvel, 4000, torch.Generator().manual_seed(0))
    assert torch.equal(again[0], qpos) and torch.equal(again[1], qvel)


def test_defaults_match_gymnasium_constructors() -> None:
    """Every Gymnasium constructor argument exists as a task field with the same default."""
    import inspect

    from gymnasium.envs.mujoco.ant_v5 import AntEnv
    from gymnasium.envs.mujoco.humanoid_v5 import HumanoidEnv
    from gymnasium.envs.mujoco.humanoidstandup_v5 import HumanoidStandupEnv

    for env_cls, task_cls in (
        (AntEnv, Ant),
        (HumanoidEnv, Humanoid),
        (HumanoidStandupEnv, HumanoidStandup),
    ):
        task = task_cls()
        params = inspect.signature(env_cls.__init__).parameters
        for name, param in params.items():
            if name in ("self", "kwargs", "default_camera_config"):
                continue
            value = getattr(task, name)
            expected = param.default
            if isinstance(expected, tuple):
                value, expected = tuple(value), tuple(expected)
            assert value == expected, f"{task_cls.__name__}.{name}"


def test_bad_main_body_is_a_config_error() -> None:
    env = gym.make("Ant-v5")
    with pytest.raises(ConfigError, match="not_a_body"):
        Ant(main_body="not_a_body").setup(env.unwrapped.model)
    with pytest.raises(ConfigError, match="out of range"):
        Ant(main_body=99).setup(env.unwrapped.model)
    env.close()


def test_engine_smoke_when_backend_exists() -> None:
    """Once the ``mujoco`` backend exists, Ant-v5 runs through ``make_engine`` in float64."""
    pytest.importorskip("rlwb.engine.mujoco_backend")
    from rlwb import tasks
    from rlwb.engine import make_engine

    if tasks.find("Ant-v5") is None:
        pytest.skip("Ant-v5 not registered yet")
    engine = make_engine("Ant-v5", 4, backend="mujoco", dtype=torch.float64, seed=0)
    obs = engine.reset(seed=0)
    assert obs.shape == (4, 105) and obs.dtype == torch.float64
    for _ in range(5):
        obs, reward, terminated, truncated, _ = engine.step(torch.zeros(4, 8, dtype=torch.float64))
    assert torch.isfinite(obs).all() and reward.shape == (4,)
    engine.close()
