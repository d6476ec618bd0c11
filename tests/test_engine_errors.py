"""Bad input to the engine gets an ``rlwb.errors`` error whose message names the problem."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlwb.engine import make_engine
from rlwb.errors import ActionError, ConfigError, UnknownTaskError


@pytest.fixture(scope="module")
def engine():
    eng = make_engine("HalfCheetah-v5", 3, backend="mujoco", seed=0)
    eng.reset()
    yield eng
    eng.close()


def test_wrong_action_shape(engine) -> None:
    with pytest.raises(ActionError, match=r"shape \(num_envs=3, action_dim=6\).*got \(3, 5\)"):
        engine.step(torch.zeros(3, 5))
    with pytest.raises(ActionError, match=r"got \(6,\)"):
        engine.step(torch.zeros(6))


def test_wrong_action_dtype(engine) -> None:
    with pytest.raises(ActionError, match="floating-point.*int64"):
        engine.step(torch.zeros(3, 6, dtype=torch.int64))
    with pytest.raises(ActionError, match="torch.Tensor"):
        engine.step([[0.0] * 6] * 3)


def test_numpy_action_is_accepted(engine) -> None:
    obs, *_ = engine.step(np.zeros((3, 6), dtype=np.float32))
    assert obs.shape == (3, 17)


def test_nan_action_names_the_members(engine) -> None:
    action = torch.zeros(3, 6)
    action[1, 2] = float("nan")
    action[2, 0] = float("inf")
    with pytest.raises(ActionError, match=r"NaN or inf for members \[1, 2\]"):
        engine.step(action)


def test_one_member_fast_check_still_rejects_nan_and_accepts_huge_finite() -> None:
    """The small-CPU-action fast path: a NaN still names the member, and finite values
    whose sum overflows are re-checked, not rejected."""
    with make_engine("Hopper-v5", 1, backend="mujoco", seed=0, dtype=torch.float64) as one:
        one.reset()
        with pytest.raises(ActionError, match=r"NaN or inf for members \[0\]"):
            one.step(torch.tensor([[0.0, float("nan"), 0.0]], dtype=torch.float64))
        huge = torch.full((1, 3), 1e308, dtype=torch.float64)  # sums to inf, each finite
        assert one.check_action(huge, (1, 3)) is huge
        half = torch.zeros(1, 3, dtype=torch.float32)  # another dtype takes the full path
        assert one.check_action(half, (1, 3)).dtype == torch.float64


def test_unknown_task_suggests_a_close_id() -> None:
    with pytest.raises(UnknownTaskError, match="did you mean HalfCheetah-v5"):
        make_engine("HalfCheeta-v5", 2, backend="mujoco")


@pytest.mark.parametrize("num_envs", [0, -3, 2.5, True])
def test_bad_num_envs(num_envs) -> None:
    with pytest.raises(ConfigError, match="num_envs must be an integer >= 1"):
        make_engine("HalfCheetah-v5", num_envs, backend="mujoco")


def test_unknown_backend() -> None:
    with pytest.raises(ConfigError, match="unknown backend 'mujocoo'.*mujoco"):
        make_engine("HalfCheetah-v5", 2, backend="mujocoo")


def test_unknown_task_kwarg_lists_valid_ones() -> None:
    with pytest.raises(
        ConfigError, match="'ctrl_cost' for task 'HalfCheetah-v5'.*ctrl_cost_weight"
    ):
        make_engine("HalfCheetah-v5", 2, backend="mujoco", ctrl_cost=0.1)


def test_kwarg_of_another_task_is_rejected() -> None:
    with pytest.raises(ConfigError, match="'healthy_state_range' for task 'Walker2d-v5'"):
        make_engine("Walker2d-v5", 2, backend="mujoco", healthy_state_range=(-1.0, 1.0))


def test_bad_kwarg_value() -> None:
    with pytest.raises(ConfigError, match="frame_skip must be >= 1, got 0"):
        make_engine("Hopper-v5", 2, backend="mujoco", frame_skip=0)
    with pytest.raises(ConfigError, match="xml_file.*no_such_model.xml"):
        make_engine("Hopper-v5", 2, backend="mujoco", xml_file="./no_such_model.xml")


def test_bad_thread_count() -> None:
    with pytest.raises(ConfigError, match="num_threads must be an integer >= 1"):
        make_engine("Hopper-v5", 2, backend="mujoco", num_threads=0)


def test_bad_time_limit() -> None:
    with pytest.raises(ConfigError, match="max_episode_steps must be an int >= 1, got 0"):
        make_engine("Hopper-v5", 2, backend="mujoco", max_episode_steps=0)


def test_task_kwargs_are_honoured() -> None:
    """Not an error, but the other side of the kwarg check: overrides take effect."""
    eng = make_engine("HalfCheetah-v5", 2, backend="mujoco", seed=0, frame_skip=2,
                      exclude_current_positions_from_observation=False)  # fmt: skip
    assert eng.observation_shape == (18,)
    assert eng.dt == pytest.approx(0.02)
    eng.close()
    eng = make_engine("HalfCheetah-v5", 2, backend="mujoco", max_episode_steps=7)
    assert eng.max_episode_steps == eng.spec.max_episode_steps == 7
    eng.close()
