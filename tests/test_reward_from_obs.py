"""A task's ``reward_from_obs`` (what model-based planners score predicted observations
with) against the engine's own reward on the same transitions."""

from __future__ import annotations

import pytest
import torch

from rlwb import make_engine, tasks


def _transitions(task_id: str, backend: str, steps: int):
    """``(obs, action, next_obs, reward, terminated, info)`` of ``steps`` random steps of
    4 members, ``next_obs`` the final observation where an episode ended."""
    engine = make_engine(task_id, 4, backend=backend, seed=0)
    obs = engine.reset(seed=0)
    g = torch.Generator().manual_seed(0)
    low, high = engine.spec.action_low, engine.spec.action_high
    out = []
    for _ in range(steps):
        u = torch.rand(4, engine.spec.action_dim, generator=g)
        action = low + u * (high - low)
        nxt, reward, terminated, truncated, info = engine.step(action)
        done = (terminated | truncated)[:, None]
        out.append(
            (obs, action, torch.where(done, info["final_obs"], nxt), reward, terminated, info)
        )
        obs = nxt
    return out


@pytest.mark.parametrize(
    "task_id, backend", [("InvertedPendulum-v5", "mujoco"), ("Pendulum-v1", "torch")]
)
def test_observation_only_rewards_equal_the_engines(task_id, backend):
    """InvertedPendulum (survival until the pole passes 0.2 rad, terminations included)
    and Pendulum (cost of the observation before the step) are exact."""
    reward_fn = tasks.reward_from_obs(task_id)
    terminations = 0
    for obs, action, next_obs, reward, terminated, _ in _transitions(task_id, backend, 60):
        r, term = reward_fn(obs, action, next_obs)
        assert torch.allclose(r, reward, atol=1e-5), task_id
        assert torch.equal(term, terminated), task_id
        terminations += int(terminated.sum())
    assert terminations > 0 or task_id == "Pendulum-v1"  # the pole fell under random actions


@pytest.mark.parametrize("task_id, velocity", [("HalfCheetah-v5", 8), ("Hopper-v5", 5)])
def test_locomotion_rewards_differ_from_the_engines_by_the_velocity_alone(task_id, velocity):
    """HalfCheetah and Hopper read the x velocity from the next observation where the
    engine differences the x position: with the engine's velocity in its place the reward
    is the engine's on every step that does not terminate, and Hopper's termination is
    the engine's exactly."""
    reward_fn = tasks.reward_from_obs(task_id)
    terminations = 0
    for obs, action, next_obs, reward, terminated, info in _transitions(task_id, "mujoco", 60):
        r, term = reward_fn(obs, action, next_obs)
        assert torch.equal(term, terminated)
        fixed = r - next_obs[:, velocity] + info["x_velocity"]
        alive = ~terminated
        assert torch.allclose(fixed[alive], reward[alive], atol=1e-4), task_id
        terminations += int(terminated.sum())
    assert terminations > 0 or task_id == "HalfCheetah-v5"  # the hopper fell


def test_reward_from_obs_only_for_tasks_that_offer_one_with_default_arguments():
    assert tasks.reward_from_obs("Swimmer-v5") is None  # no reward_from_obs
    assert tasks.reward_from_obs("not-a-task-v0") is None
    assert tasks.reward_from_obs("Hopper-v5", {"ctrl_cost_weight": 0.1}) is None
    assert tasks.reward_from_obs("Hopper-v5", {}) is not None
