"""The engine's fast paths give the same numbers as the reference ones:
numpy bookkeeping on the CPU equals the torch bookkeeping, a one-member engine equals a
row of a batched one, and rollouts that step only the members still running equal
rollouts that step every member to the end."""

from __future__ import annotations

import pytest
import torch

from rlwb.engine import make_engine

F64 = torch.float64


def _assert_step_equal(a: tuple, b: tuple, rows: slice | int = slice(None)) -> None:
    for x, y in zip(a[:4], b[:4], strict=True):
        assert torch.equal(x[rows], y[rows])
    assert a[4].keys() == b[4].keys()
    for key in a[4]:
        assert torch.equal(a[4][key][rows], b[4][key][rows]), key


@pytest.mark.parametrize("members", [3, 1])
def test_host_bookkeeping_equals_torch_bookkeeping(members: int) -> None:
    """Hopper with a short time limit: terminations, truncations and autoresets, counted
    in numpy (the CPU path; one member: Python scalars) and with torch ops (every other
    device), bit for bit."""
    engines = [
        make_engine("Hopper-v5", members, backend="mujoco", seed=4, max_episode_steps=9)
        for _ in range(2)
    ]
    engines[1]._host_arrays = lambda reward, terminated: None  # the device path, on the CPU
    for engine in engines:
        engine.reset()
    gen = torch.Generator().manual_seed(0)
    ended = 0
    for _ in range(40 * (4 - members)):
        action = torch.rand(members, engines[0].action_dim, generator=gen) * 2 - 1
        outs = [engine.step(action) for engine in engines]
        _assert_step_equal(*outs)
        ended += int(outs[0][4]["done"].sum())
        assert torch.equal(engines[0].elapsed, engines[1].elapsed)
        assert torch.equal(engines[0].episode_return, engines[1].episode_return)
        assert torch.equal(engines[0].episode_length, engines[1].episode_length)
    assert ended >= 6  # autoresets happened on both paths


def test_one_member_engine_equals_a_row_of_a_batched_engine() -> None:
    """A single-member engine loaded with member 2's state steps exactly as member 2 of a
    four-member engine (observation, reward, components, statistics), through a time
    limit and autoreset counters."""
    batched = make_engine("HalfCheetah-v5", 4, backend="mujoco", seed=1, max_episode_steps=15)
    single = make_engine("HalfCheetah-v5", 1, backend="mujoco", seed=9, max_episode_steps=15)
    batched.reset()
    gen = torch.Generator().manual_seed(3)
    for _ in range(3):
        batched.step(torch.rand(4, 6, generator=gen) * 2 - 1)
    single.set_state(batched.get_state()[2])
    batched.episode_return.zero_()
    batched.episode_length.zero_()
    for _ in range(12):  # member 2 hits the limit of 15 at the 12th step
        action = torch.rand(4, 6, generator=gen) * 2 - 1
        out_b = batched.step(action)
        out_s = single.step(action[2:3])
        for x, y in zip(out_b[1:4], out_s[1:4], strict=True):
            assert torch.equal(x[2:3], y)
        for key in out_s[4]:  # components, statistics, final_obs (each reset draws anew)
            assert torch.equal(out_b[4][key][2:3], out_s[4][key]), key
        if not bool(out_s[4]["done"][0]):
            assert torch.equal(out_b[0][2:3], out_s[0])
    assert bool(out_s[3][0])  # truncated at the last step


def _fan_out_policy(engine, still_every: int = 4):  # noqa: ANN001, ANN202
    """A fixed linear policy; every ``still_every``-th member stays still, so members end
    at very different steps."""
    gen = torch.Generator().manual_seed(0)
    weights = torch.randn(engine.observation_shape[0], engine.action_dim, generator=gen)
    moving = (torch.arange(engine.num_envs) % still_every != 0).to(engine.dtype)[:, None]
    return lambda obs: torch.tanh(obs @ weights) * moving


@pytest.mark.parametrize(
    ("task_id", "members", "kwargs"),
    [("Hopper-v5", 12, {}), ("Walker2d-v5", 8, {"action_repeat": 2})],
)
def test_rollout_of_live_members_equals_stepping_every_member(
    task_id: str, members: int, kwargs: dict
) -> None:
    """Closed-loop rollouts with fall termination: members that ended stop costing
    physics, with the same rewards, masks, observations and components as before."""
    engine = make_engine(task_id, members, backend="mujoco", seed=2, **kwargs)
    engine.reset()
    policy = _fan_out_policy(engine)
    subset_steps = []
    step_some = engine._step_some
    engine._step_some = lambda act, members: (
        subset_steps.append(len(members)) or step_some(act, members)
    )
    results = []
    for live_only in (False, True):
        engine.step_live_only = live_only
        results.append(engine.rollout(policy, horizon=120, record_obs=True))
    full, live = results
    lengths = full.lengths
    assert int(lengths.min()) * 2 < int(lengths.max())  # members really end apart
    assert subset_steps and max(subset_steps) < members  # the live path ran
    for name in ("rewards", "terminated", "truncated", "alive", "returns", "lengths",
                 "final_obs", "observations"):  # fmt: skip
        assert torch.equal(getattr(full, name), getattr(live, name)), name
    assert full.infos.keys() == live.infos.keys()
    for key in full.infos:
        assert torch.equal(full.infos[key], live.infos[key]), key


def test_live_member_rollout_leaves_the_engine_as_it_was() -> None:
    """After a rollout that stepped a subset, ``step`` continues the running episodes
    exactly as an engine that never rolled out."""
    engines = [make_engine("Hopper-v5", 8, backend="mujoco", seed=5) for _ in range(2)]
    for engine in engines:
        engine.reset()
    engines[0].rollout(_fan_out_policy(engines[0]), horizon=60)
    action = torch.full((8, 3), 0.1)
    _assert_step_equal(engines[0].step(action), engines[1].step(action))
