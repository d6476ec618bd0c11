"""Trajectory storage: episode-safe windows, prioritized sampling, hindsight relabelling,
checkpoints."""

import pytest
import torch

from rlwb.errors import CheckpointError, ConfigError
from rlwb.replay import TrajectoryBuffer

FIELDS = {"obs": ((3,), torch.float32), "next_obs": ((3,), torch.float32)}


def _fill(buf: TrajectoryBuffer, steps: int, episode_lengths: list[int]) -> None:
    """Member m's episodes last episode_lengths[m] steps; obs = [member, global step, 0]."""
    m = buf.num_members
    for g in range(steps):
        member = torch.arange(m, dtype=torch.float32)
        row = torch.stack([member, torch.full((m,), float(g)), torch.zeros(m)], 1)
        done = torch.tensor([(g + 1) % n == 0 for n in episode_lengths])
        buf.add(done=done, obs=row, next_obs=row + torch.tensor([0.0, 0.0, 1.0]))


def _episode_of(member: int, g: int, lengths: list[int]) -> int:
    return g // lengths[member]


def test_windows_never_cross_an_episode_end_including_after_wraparound():
    lengths = [5, 7, 3]
    buf = TrajectoryBuffer(3 * 20, 3, FIELDS, generator=torch.Generator().manual_seed(0))
    _fill(buf, 47, lengths)  # wrapped twice over 20 slots per member
    batch = buf.sample_windows(512, horizon=3)
    obs = batch["obs"]
    assert obs.shape == (512, 3, 3)
    for row in obs:
        m = int(row[0, 0])
        steps = row[:, 1].long().tolist()
        assert steps == list(range(steps[0], steps[0] + 3))  # consecutive, in order
        assert steps[0] >= 47 - 20  # never an overwritten row
        assert len({_episode_of(m, g, lengths) for g in steps}) == 1
    # The member with 3-step episodes has windows; no window of 8 exists anywhere.
    assert (batch["member"] == 2).any()
    with pytest.raises(RuntimeError, match="no stored episode has 8 steps"):
        buf.sample_windows(4, horizon=8)


def test_priorities_bias_window_sampling_and_weights_correct_it():
    buf = TrajectoryBuffer(2 * 50, 2, FIELDS, generator=torch.Generator().manual_seed(1))
    _fill(buf, 50, [10, 10])
    first = buf.sample_windows(64, horizon=2, alpha=1.0, beta=1.0)
    assert torch.allclose(first["weight"], torch.ones(64))  # equal priorities: uniform
    member = torch.zeros(1, dtype=torch.long)
    step = torch.tensor([12])
    low = torch.full((2, 50), 1e-3)
    buf.update_priorities(
        torch.arange(2).repeat_interleave(50), torch.arange(50).repeat(2), low.reshape(-1)
    )
    buf.update_priorities(member, step, torch.tensor([10.0]))
    batch = buf.sample_windows(2000, horizon=2, alpha=1.0, beta=1.0)
    hit = (batch["member"] == 0) & (batch["step"] == 12)
    assert hit.float().mean() > 0.9  # 10 against ~90 windows * 1e-3
    assert torch.allclose(batch["weight"][hit], batch["weight"][hit].min())
    assert batch["weight"][hit].max() < batch["weight"][~hit].min()  # rare rows weigh more
    uniform = buf.sample_windows(2000, horizon=2, alpha=0.0)
    hit0 = (uniform["member"] == 0) & (uniform["step"] == 12)
    assert hit0.float().mean() < 0.05


def test_a_draw_at_the_end_of_the_priorities_never_picks_an_invalid_window(monkeypatch):
    """A draw ``u = rand * total`` that lands at or past the cumulative sum's end (float32
    rounding: ``total`` and the cumsum add in different orders) must pick the last window
    that can be drawn, not a trailing one too short for the horizon: its probability 0 gave
    weights inf / inf = NaN, and NaN gradients (a pixel TD-MPC run died of it after 2,468
    updates)."""
    buf = TrajectoryBuffer(1 * 40, 1, FIELDS, generator=torch.Generator().manual_seed(3))
    _fill(buf, 30, [1000])  # one unfinished episode: windows of 3 start at steps 0..27 only
    real_rand = torch.rand
    monkeypatch.setattr(torch, "rand", lambda n, **kw: torch.ones(n))  # the end of the cdf
    batch = buf.sample_windows(4, horizon=3, alpha=0.6, beta=0.4)
    monkeypatch.setattr(torch, "rand", real_rand)
    assert torch.isfinite(batch["weight"]).all()
    assert (batch["step"] == 27).all()  # the last valid window start
    assert (batch["obs"][:, :, 1] == torch.tensor([27.0, 28.0, 29.0])).all()


def test_hindsight_relabelling_uses_compute_reward_and_the_same_episode():
    """Goal slices of obs [x, achieved, desired]: achieved = global step, desired = -1."""
    m, lengths = 2, [6, 4]
    buf = TrajectoryBuffer(m * 30, m, FIELDS, generator=torch.Generator().manual_seed(2))
    for g in range(30):
        obs = torch.tensor([[float(g), float(g), -1.0]] * m)
        nxt = torch.tensor([[float(g + 1), float(g + 1), -1.0]] * m)
        done = torch.tensor([(g + 1) % n == 0 for n in lengths])
        buf.add(done=done, obs=obs, next_obs=nxt)
    slices = {"achieved_goal": (1, 2), "desired_goal": (2, 3)}

    def compute_reward(achieved, desired):
        return -(achieved - desired).abs().sum(-1)

    for strategy in ("future", "final", "episode"):
        b = buf.sample_her(800, compute_reward, slices, strategy, relabel_prob=0.8)
        goal, achieved = b["obs"][:, 2], b["next_obs"][:, 1]
        assert torch.equal(b["reward"], compute_reward(b["next_obs"][:, 1:2], b["obs"][:, 2:3]))
        assert torch.equal(b["next_obs"][:, 2], goal)
        assert torch.equal(goal[~b["relabelled"]], torch.full_like(goal[~b["relabelled"]], -1))
        rel = b["relabelled"]
        assert 0.7 < rel.float().mean() < 0.9
        n = torch.tensor(lengths)[b["member"]]
        start, end = (b["step"] // n) * n, (b["step"] // n) * n + n  # next_obs steps start+1..end
        picked = goal[rel].long()
        assert (picked >= start[rel] + 1).all() and (picked <= end[rel]).all()
        if strategy == "future":
            assert (picked >= achieved[rel].long()).all()
        if strategy == "final":
            last_written = torch.minimum(end[rel], torch.tensor(30))
            assert torch.equal(picked, last_written)
    with pytest.raises(ConfigError, match="HER strategy"):
        buf.sample_her(4, compute_reward, slices, "past")


def test_state_dict_holds_only_filled_rows_and_resumes_exactly():
    buf = TrajectoryBuffer(3 * 16, 3, FIELDS, generator=torch.Generator().manual_seed(3))
    _fill(buf, 9, [4, 5, 6])
    state = buf.state_dict()
    assert state["data"]["obs"].shape == (3, 9, 3)
    other = TrajectoryBuffer(3 * 16, 3, FIELDS, generator=torch.Generator())
    other.load_state_dict(state)
    buf.generator.manual_seed(7)
    other.generator.manual_seed(7)
    for b in (buf, other):
        _fill_more = torch.zeros(3, 3)
        b.add(done=torch.tensor([True, False, False]), obs=_fill_more, next_obs=_fill_more)
    x, y = buf.sample_windows(64, 2, alpha=0.6, beta=0.4), other.sample_windows(64, 2, 0.6, 0.4)
    for key in x:
        assert torch.equal(x[key], y[key]), key
    assert torch.equal(buf.window_starts(3), other.window_starts(3))
    with pytest.raises(CheckpointError, match="capacity"):
        TrajectoryBuffer(3 * 8, 3, FIELDS).load_state_dict(state)
