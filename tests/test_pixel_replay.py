"""Frame-once replay: image stacks rebuilt from single stored frames equal the observations
that were stored, for flat sampling, H-step windows and after a checkpoint round trip."""

import torch

from rlwb.replay import StackedFrames, TrajectoryBuffer

K, SIZE = 3, 4  # frames per stack, image side


class FakeFrames:
    """Per member a stream of unique frames, stacked K at a time with the newest last; each
    episode starts from K fresh frames (as an engine that renders K frames at reset) and its
    final observation differs from the next episode's first."""

    def __init__(self, members: int, lengths: list[int]) -> None:
        self.lengths, self.counter = lengths, 0
        self.t = [0] * members
        self.stack = [self._fresh(m) for m in range(members)]

    def _frame(self, m: int) -> torch.Tensor:
        self.counter += 1
        f = torch.zeros(3, SIZE, SIZE, dtype=torch.uint8)
        f[0], f[1], f[2] = m, self.counter % 256, self.counter // 256
        return f

    def _fresh(self, m: int) -> torch.Tensor:
        return torch.cat([self._frame(m) for _ in range(K)])

    def step(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(obs, next_obs with the final observation at an episode end, done)."""
        obs = torch.stack(self.stack)
        nxt, done = [], []
        for m, stack in enumerate(self.stack):
            new = torch.cat([stack[3:], self._frame(m)])
            self.t[m] += 1
            end = self.t[m] % self.lengths[m] == 0
            nxt.append(new)
            done.append(end)
            self.stack[m] = self._fresh(m) if end else new
        return obs, torch.stack(nxt), torch.tensor(done)


def _buffer(capacity: int, members: int, seed: int = 0) -> TrajectoryBuffer:
    image = ((3 * K, SIZE, SIZE), torch.uint8)
    fields = {"obs": image, "next_obs": image, "tag": ((2,), torch.int64)}
    gen = torch.Generator().manual_seed(seed)
    return TrajectoryBuffer(capacity, members, fields, generator=gen, frames=StackedFrames(K))


def _fill(buf: TrajectoryBuffer, source: FakeFrames, steps: int, truth: dict) -> None:
    for _ in range(steps):
        obs, nxt, done = source.step()
        g = buf.steps
        for m in range(buf.num_members):
            truth[(m, g)] = (obs[m], nxt[m])
        tag = torch.stack([torch.arange(buf.num_members), torch.full((buf.num_members,), g)], 1)
        buf.add(done=done, obs=obs, next_obs=nxt, tag=tag)


def _check_rows(batch: dict, truth: dict) -> None:
    for i in range(batch["tag"].shape[0]):
        m, g = (int(v) for v in batch["tag"][i])
        assert torch.equal(batch["obs"][i], truth[(m, g)][0]), (m, g)
        assert torch.equal(batch["next_obs"][i], truth[(m, g)][1]), (m, g)


def test_rebuilt_stacks_equal_the_stored_observations_across_episode_ends_and_wraparound():
    lengths = [2, 5, 9]  # episodes shorter and longer than the stack, many per buffer
    buf, truth = _buffer(3 * 16, 3), {}
    _fill(buf, FakeFrames(3, lengths), 70, truth)  # wrapped four times over 16 slots
    batch = buf.sample(400)
    assert batch["obs"].dtype == torch.uint8 and batch["obs"].shape == (400, 3 * K, SIZE, SIZE)
    assert (batch["step"] >= 70 - 16).all()
    _check_rows(batch, truth)

    windows = buf.sample_windows(200, horizon=2, first_only=("tag",))
    assert windows["obs"].shape == (200, 2, 3 * K, SIZE, SIZE)
    for t in range(2):
        rows = {"tag": torch.stack([windows["member"], windows["step"] + t], 1),
                "obs": windows["obs"][:, t], "next_obs": windows["next_obs"][:, t]}  # fmt: skip
        _check_rows(rows, truth)
    # the episode-start table grew for the 2-step episodes and kept only live episodes
    assert buf.store.starts.shape[1] <= 16


def test_frames_survive_a_checkpoint_and_storage_is_one_frame_per_step():
    lengths = [4, 6]
    buf, truth = _buffer(2 * 12, 2, seed=1), {}
    source = FakeFrames(2, lengths)
    _fill(buf, source, 30, truth)
    _fill(buf, source, 7, truth)
    _check_rows(buf.sample(300), truth)
    restored = _buffer(2 * 12, 2, seed=1)
    restored.load_state_dict(buf.state_dict())  # the oldest episode began before the oldest row
    _check_rows(restored.sample(300), truth)
    assert torch.equal(restored.sample(50)["obs"], buf.sample(50)["obs"])  # same generator state


def test_memory_per_stored_step_is_one_frame_plus_the_scalar_fields():
    """84 x 84 RGB, 3 stacked frames, 1M / 1000 steps: within 10% of 3*H*W per step plus the
    action, reward and bookkeeping fields (a naive obs + next_obs layout needs 6x the frame)."""
    image = ((9, 84, 84), torch.uint8)
    fields = {"obs": image, "next_obs": image, "action": ((6,), torch.float32),
              "reward": ((), torch.float32), "terminated": ((), torch.float32)}  # fmt: skip
    buf = TrajectoryBuffer(2000, 2, fields, frames=StackedFrames(3))
    per_step = buf.nbytes() / buf.capacity
    scalars = 6 * 4 + 4 + 4 + 1 + 8 + 4 + 8 + 8  # fields, done, episode, priority, tables
    assert per_step <= 1.10 * 3 * 84 * 84 + scalars, per_step
    assert per_step >= 3 * 84 * 84
