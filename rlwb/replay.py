"""A device-resident circular replay buffer with named fields.

Transitions arrive in batches (``[B, ...]`` per field, one row per engine member) and stay
torch tensors on the buffer's device: no numpy round-trip per step. Sampling draws uniform
indices from a caller-supplied ``torch.Generator`` (on the buffer's device), optionally for
several updates at once (``sample(batch, num_batches=U)`` -> ``[U, batch, ...]``), so an agent
pays for one random draw and one gather per ``update`` call instead of one per gradient step.
Storage is allocated with ``torch.empty``; the operating system only commits pages as they fill.

:class:`TrajectoryBuffer` keeps transitions per engine member in time order with episode ids:
uniform transitions, prioritized windows of H steps that never cross an episode end (for
model-based agents such as TD-MPC) and hindsight goal relabelling (GDG, DDPG + HER). Given
:class:`StackedFrames`, it keeps image observations (``[k*c, H, W]`` stacks of ``k`` frames)
as each frame once and rebuilds the stacks of ``obs`` and ``next_obs`` when sampling.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from rlwb.errors import CheckpointError, ConfigError

FieldSpec = tuple[tuple[int, ...], torch.dtype]


class ReplayBuffer:
    """Circular buffer of ``capacity`` transitions; fields given as ``name -> (shape, dtype)``."""

    def __init__(
        self,
        capacity: int,
        fields: Mapping[str, FieldSpec],
        device: torch.device | str = "cpu",
        generator: torch.Generator | None = None,
    ) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ConfigError(f"replay capacity must be an integer >= 1, got {capacity!r}")
        if not fields:
            raise ConfigError("a replay buffer needs at least one field")
        self.capacity = capacity
        self.device = torch.device(device)
        self.fields = {name: (tuple(shape), dtype) for name, (shape, dtype) in fields.items()}
        self.generator = generator
        self.data = {
            name: torch.empty((capacity, *shape), dtype=dtype, device=self.device)
            for name, (shape, dtype) in self.fields.items()
        }
        self.pos = 0  # next row to write
        self.size = 0  # rows filled

    def __len__(self) -> int:
        return self.size

    def add(self, **batch: torch.Tensor) -> None:
        """Append a batch of transitions; every field has the same leading size B."""
        if set(batch) != set(self.fields):
            raise ValueError(
                f"replay add needs exactly the fields {sorted(self.fields)}, got {sorted(batch)}"
            )
        sizes = {int(v.shape[0]) for v in batch.values()}
        if len(sizes) != 1:
            raise ValueError(f"replay add: fields have different batch sizes {sorted(sizes)}")
        n = sizes.pop()
        if n > self.capacity:  # only the newest rows fit
            batch = {k: v[-self.capacity :] for k, v in batch.items()}
            self.pos = (self.pos + n - self.capacity) % self.capacity
            n = self.capacity
        end = self.pos + n
        for name, value in batch.items():
            shape, dtype = self.fields[name]
            value = value.to(device=self.device, dtype=dtype)
            if tuple(value.shape[1:]) != shape:
                raise ValueError(
                    f"replay field {name!r} expects rows of shape {shape}, got {tuple(value.shape)}"
                )
            store = self.data[name]
            if end <= self.capacity:
                store[self.pos : end] = value
            else:  # wrap around
                first = self.capacity - self.pos
                store[self.pos :] = value[:first]
                store[: n - first] = value[first:]
        self.pos = end % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample_indices(self, batch_size: int, num_batches: int | None = None) -> torch.Tensor:
        """Uniform indices ``[batch]`` (or ``[num_batches, batch]``) into the filled rows."""
        if self.size == 0:
            raise RuntimeError("cannot sample from an empty replay buffer")
        shape = (batch_size,) if num_batches is None else (num_batches, batch_size)
        return torch.randint(0, self.size, shape, generator=self.generator, device=self.device)

    def sample(self, batch_size: int, num_batches: int | None = None) -> dict[str, torch.Tensor]:
        """Uniform batch: each field ``[batch, ...]`` or ``[num_batches, batch, ...]``."""
        idx = self.sample_indices(batch_size, num_batches)
        return {name: store[idx] for name, store in self.data.items()}

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Filled rows (on CPU) and the write position: enough to continue exactly.

        The rows are copied out: a slice of the preallocated storage would make
        ``torch.save`` write the whole capacity (36 MB for a 15k-step Pendulum run)."""
        return {
            "capacity": self.capacity,
            "pos": self.pos,
            "size": self.size,
            "fields": {k: [list(s), str(d)] for k, (s, d) in self.fields.items()},
            "data": {k: v[: self.size].to("cpu", copy=True) for k, v in self.data.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        try:
            capacity, pos, size, data = (
                state["capacity"],
                state["pos"],
                state["size"],
                state["data"],
            )
        except KeyError as exc:
            raise CheckpointError(f"replay state is missing {exc}") from exc
        if capacity != self.capacity:
            raise CheckpointError(
                f"replay state has capacity {capacity}, this buffer has {self.capacity}"
            )
        if set(data) != set(self.fields):
            raise CheckpointError(
                f"replay state has fields {sorted(data)}, this buffer has {sorted(self.fields)}"
            )
        for name, rows in data.items():
            shape, dtype = self.fields[name]
            if tuple(rows.shape) != (size, *shape):
                raise CheckpointError(
                    f"replay field {name!r} has shape {tuple(rows.shape)}, expected "
                    f"{(size, *shape)}"
                )
            self.data[name][:size] = rows.to(device=self.device, dtype=dtype)
        self.pos, self.size = int(pos), int(size)


# ====================================================================== frames
@dataclass(frozen=True)
class StackedFrames:
    """Which fields of a :class:`TrajectoryBuffer` are image stacks: ``obs`` and ``next_obs``,
    each ``[stack * channels, H, W]`` uint8 with the newest frame last (what a pixel engine
    returns). The buffer then stores each frame once instead of ``2 * stack`` times."""

    stack: int
    channels: int = 3
    obs: str = "obs"
    next_obs: str = "next_obs"

    @classmethod
    def for_shape(cls, shape: Sequence[int], stack: int | None = None) -> StackedFrames:
        """The stacking of observations of ``shape`` ``(C, H, W)``: ``stack`` frames (default
        ``C // 3``, RGB frames) of ``C // stack`` channels each."""
        c = int(shape[0])
        stack = c // 3 if stack is None and c % 3 == 0 else (stack or 1)
        if stack < 1 or c % stack:
            raise ConfigError(f"{c} image channels do not split into {stack} stacked frames")
        return cls(stack=stack, channels=c // stack)


class FrameStore:
    """The frames behind the stacked image fields of a :class:`TrajectoryBuffer`.

    Per member, a ring of ``length + stack`` frames holds the newest frame of every row's
    ``next_obs`` (the ``stack`` extra slots keep the frames the oldest rows' stacks reach
    back to), and a small table keyed by episode id holds each live episode's first ``obs``
    stack (whatever the engine put there at reset). Episode ``e``'s frame sequence is its
    first stack followed by its rows' frames, so row ``p`` of the episode has ``obs`` =
    frames ``p .. p+stack-1`` of the sequence and ``next_obs`` = ``p+1 .. p+stack``: nothing
    crosses an episode end and no frame is stored twice. The table has room for the live
    episodes of a member and doubles when short episodes need more (memory per stored step:
    one frame plus ``stack`` frames per episode, i.e. ``stack / episode length`` more)."""

    def __init__(
        self, num_members: int, length: int, frames: StackedFrames, image: Sequence[int],
        device: torch.device,
    ) -> None:  # fmt: skip
        k, c = frames.stack, frames.channels
        if int(image[0]) != k * c:
            raise ConfigError(
                f"image fields have {image[0]} channels, not {k} frames of {c} channels"
            )
        self.spec, self.stack, self.ring = frames, k, length + k
        self.frame_shape = (c, int(image[1]), int(image[2]))
        self.device = device
        self.frames = torch.empty((num_members, self.ring, *self.frame_shape), dtype=torch.uint8,
                                  device=device)  # fmt: skip
        self.starts = self._table(4)

    def _table(self, episodes: int) -> torch.Tensor:
        m = self.frames.shape[0]
        shape = (m, episodes, self.stack, *self.frame_shape)
        return torch.empty(shape, dtype=torch.uint8, device=self.device)

    def nbytes(self) -> int:
        """Bytes allocated for frames (the ring and the episode table)."""
        return sum(t.numel() * t.element_size() for t in (self.frames, self.starts))

    def _frames_of(self, stack: torch.Tensor) -> torch.Tensor:
        return stack.reshape(*stack.shape[:-3], self.stack, *self.frame_shape)

    def write(
        self, g: int, obs: torch.Tensor, next_obs: torch.Tensor, fresh: torch.Tensor,
        episode: torch.Tensor, live_low: torch.Tensor,
    ) -> None:  # fmt: skip
        """Row ``g`` of every member: ``next_obs``'s newest frame; for members whose row
        starts episode ``episode[m]`` (``fresh``), ``obs``'s whole stack. ``live_low[m]`` is
        the oldest episode id still stored."""
        c = self.frame_shape[0]
        self.frames[:, g % self.ring] = next_obs[:, -c:].to(self.device, torch.uint8)
        if not bool(fresh.any()):
            return
        span = int((episode - live_low).max()) + 1
        if span > self.starts.shape[1]:
            self._grow(span, episode, live_low)
        members = fresh.nonzero().squeeze(1)
        key = episode[members] % self.starts.shape[1]
        self.starts[members, key] = self._frames_of(obs[members].to(self.device, torch.uint8))

    def _grow(self, span: int, episode: torch.Tensor, live_low: torch.Tensor) -> None:
        old, size = self.starts, self.starts.shape[1]
        new_size = max(2 * size, span)
        self.starts = self._table(new_size)
        ids = live_low[:, None] + torch.arange(size, device=self.device)
        ids = torch.minimum(ids, episode[:, None])  # only ids that exist
        rows = torch.arange(old.shape[0], device=self.device)[:, None]
        self.starts[rows, ids % new_size] = old[rows, ids % size]

    def stacks(
        self, member: torch.Tensor, g: torch.Tensor, episode: torch.Tensor, first: torch.Tensor,
        rows: int = 1,
    ) -> torch.Tensor:  # fmt: skip
        """The ``rows + 1`` stacks ``[..., rows + 1, k*c, H, W]`` of the observations before
        and after ``rows`` consecutive rows from ``(member, g)`` of episode ``episode`` (which
        began at global step ``first``): ``[..., t]`` is row ``g + t``'s ``obs``, and
        ``[..., t + 1]`` its ``next_obs``."""
        k = self.stack
        pos = (g - first)[..., None] + torch.arange(k + rows, device=self.device)
        m = member[..., None].expand_as(pos)
        seq = self.frames[m, (first[..., None] + pos - k) % self.ring]  # [..., k+rows, c, H, W]
        early = (pos < k).nonzero(as_tuple=True)  # positions in the episode's first stack
        e = (episode % self.starts.shape[1])[..., None].expand_as(pos)
        seq[early] = self.starts[m[early], e[early], pos[early]]
        stacks = torch.stack([seq[..., t : t + k, :, :, :] for t in range(rows + 1)], -5)
        return stacks.flatten(-4, -3)

    def state_dict(self, oldest: int, steps: int, live_low: torch.Tensor) -> dict[str, Any]:
        """The frames stored rows can reach (steps ``oldest - stack ..``) in order, and the
        first stacks of episodes ``live_low[m] ..`` per member."""
        first = max(oldest - self.stack, 0)
        order = torch.arange(first, steps, device=self.device) % self.ring
        size = self.starts.shape[1]
        ids = live_low[:, None] + torch.arange(size, device=self.device)
        rows = torch.arange(self.frames.shape[0], device=self.device)[:, None]
        return {
            "frames": self.frames[:, order].cpu(),
            "starts": self.starts[rows, ids % size].cpu(),
            "live_low": live_low.cpu(),
        }

    def load_state_dict(self, state: Mapping[str, Any], oldest: int, steps: int) -> None:
        frames, starts, low = state["frames"], state["starts"], state["live_low"]
        first = max(oldest - self.stack, 0)
        if tuple(frames.shape[2:]) != self.frame_shape or frames.shape[1] != steps - first:
            raise CheckpointError(
                f"replay frames have shape {tuple(frames.shape)}, expected "
                f"{(self.frames.shape[0], steps - first, *self.frame_shape)}"
            )
        order = torch.arange(first, steps, device=self.device) % self.ring
        self.frames[:, order] = frames.to(self.device, torch.uint8)
        size = starts.shape[1]
        self.starts = self._table(size)
        ids = low.to(self.device)[:, None] + torch.arange(size, device=self.device)
        rows = torch.arange(self.frames.shape[0], device=self.device)[:, None]
        self.starts[rows, ids % size] = starts.to(self.device, torch.uint8)


# ====================================================================== trajectories
GoalSlices = Mapping[str, tuple[int, int]]
HER_STRATEGIES = ("future", "final", "episode")


class TrajectoryBuffer:
    """Per-member trajectories in time order, device-resident, with episode ids.

    Every engine member owns ``capacity // num_members`` slots that it fills circularly, one
    per :meth:`add` call (all members write together, so one global step counter ``g``
    addresses the same slot ``g % T`` in every member). Each slot remembers its episode id;
    two tables per member (episode id mod T -> first and last global step) say where every
    stored episode starts and ends, so windows and hindsight goals never cross an episode
    end and cost no search. A member's ``done`` closes its episode after the row is written.

    Sampling (all draws from the buffer's generator, no host loops):

    * :meth:`sample`: uniform transitions.
    * :meth:`sample_windows`: ``H`` consecutive transitions of one episode, drawn in
      proportion to ``priority ** alpha`` of their first transition (proportional
      prioritized replay, Schaul et al. 2016; uniform with ``alpha = 0``), with importance
      weights ``(N P)^-beta`` normalised by their maximum; :meth:`update_priorities` sets
      the priorities of the sampled windows (new transitions get the maximum seen so far).
    * :meth:`sample_her`: transitions whose desired goal is replaced, with probability
      ``relabel_prob``, by an achieved goal of the same episode (Andrychowicz et al. 2017:
      ``future`` = a later step of the episode, ``final`` = its last stored step, ``episode``
      = any of its steps), rewards recomputed by the task's ``compute_reward``.

    With ``frames`` (:class:`StackedFrames`), the ``obs`` and ``next_obs`` fields are image
    stacks kept by a :class:`FrameStore`: each frame stored once, stacks rebuilt by every
    sampling method (hindsight relabelling needs flat observations).
    """

    def __init__(
        self,
        capacity: int,
        num_members: int,
        fields: Mapping[str, FieldSpec],
        device: torch.device | str = "cpu",
        generator: torch.Generator | None = None,
        frames: StackedFrames | None = None,
    ) -> None:
        if isinstance(num_members, bool) or not isinstance(num_members, int) or num_members < 1:
            raise ConfigError(f"num_members must be an integer >= 1, got {num_members!r}")
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < num_members:
            raise ConfigError(
                f"trajectory capacity must be an integer >= num_members ({num_members}), "
                f"got {capacity!r}"
            )
        if not fields:
            raise ConfigError("a trajectory buffer needs at least one field")
        if "done" in fields:
            raise ConfigError("'done' is the trajectory buffer's own field; do not declare it")
        self.num_members, self.length = num_members, capacity // num_members
        self.capacity = self.length * num_members
        self.device = torch.device(device)
        self.fields = {name: (tuple(shape), dtype) for name, (shape, dtype) in fields.items()}
        self.generator = generator
        m, t, dev = num_members, self.length, self.device
        self.stacked: tuple[str, ...] = ()
        self.store: FrameStore | None = None
        if frames is not None:
            self.stacked = (frames.obs, frames.next_obs)
            shapes = {self.fields.get(name, ((), None))[0] for name in self.stacked}
            image = shapes.pop()
            if shapes or len(image) != 3:
                raise ConfigError(
                    f"stacked frames need image fields {self.stacked} of one [C, H, W] shape"
                )
            self.store = FrameStore(m, t, frames, image, dev)
        self.data = {
            name: torch.empty((m, t, *shape), dtype=dtype, device=dev)
            for name, (shape, dtype) in self.fields.items()
            if name not in self.stacked
        }
        self.done = torch.zeros((m, t), dtype=torch.bool, device=dev)
        self.episode = torch.zeros((m, t), dtype=torch.int64, device=dev)
        self.priority = torch.zeros((m, t), dtype=torch.float32, device=dev)
        self.ep_first = torch.zeros((m, t), dtype=torch.int64, device=dev)
        self.ep_last = torch.zeros((m, t), dtype=torch.int64, device=dev)
        self.current = torch.zeros(m, dtype=torch.int64, device=dev)  # open episode id
        self.fresh = torch.ones(m, dtype=torch.bool, device=dev)  # next row starts it
        # a 0-dim tensor on the device: updating it needs no host sync
        self.max_priority = torch.ones((), dtype=torch.float32, device=dev)
        self.steps = 0  # add() calls so far: the next global step
        self._members = torch.arange(m, device=dev)

    def __len__(self) -> int:
        return self.size * self.num_members

    @property
    def size(self) -> int:
        """Filled slots per member."""
        return min(self.steps, self.length)

    @property
    def oldest(self) -> int:
        """Global step of the oldest stored row."""
        return self.steps - self.size

    # ------------------------------------------------------------------ writing
    def add(self, done: torch.Tensor, **batch: torch.Tensor) -> None:
        """One step of every member: fields ``[M, ...]`` and ``done[M]`` (the episode ends
        after this row)."""
        if set(batch) != set(self.fields):
            raise ValueError(
                f"trajectory add needs exactly the fields {sorted(self.fields)}, got "
                f"{sorted(batch)}"
            )
        m, slot, g = self.num_members, self.steps % self.length, self.steps
        for name, value in batch.items():
            shape, dtype = self.fields[name]
            if tuple(value.shape) != (m, *shape):
                raise ValueError(
                    f"trajectory field {name!r} expects shape {(m, *shape)}, got "
                    f"{tuple(value.shape)}"
                )
            if name not in self.stacked:
                self.data[name][:, slot] = value.to(device=self.device, dtype=dtype)
        done = done.to(device=self.device, dtype=torch.bool).reshape(m)
        key = self.current % self.length
        self.episode[:, slot] = self.current
        self.done[:, slot] = done
        self.priority[:, slot] = self.max_priority
        first = self.ep_first[self._members, key]
        self.ep_first[self._members, key] = torch.where(self.fresh, g, first)
        self.ep_last[self._members, key] = g
        if self.store is not None:
            obs, next_obs = (batch[name] for name in self.stacked)
            self.steps += 1  # the oldest row once this one is stored
            self.store.write(g, obs, next_obs, self.fresh, self.current, self._live_low())
            self.steps -= 1
        self.current += done.long()
        self.fresh = done
        self.steps += 1

    def _live_low(self) -> torch.Tensor:
        """Per member, the episode id of the oldest stored row (the open one when empty)."""
        if self.steps == 0:
            return self.current.clone()
        return self.episode[:, self.oldest % self.length].clone()

    def nbytes(self) -> int:
        """Bytes allocated for the stored rows, frames and episode tables."""
        tensors = [*self.data.values(), self.done, self.episode, self.priority,
                   self.ep_first, self.ep_last]  # fmt: skip
        own = sum(t.numel() * t.element_size() for t in tensors)
        return own + (self.store.nbytes() if self.store is not None else 0)

    # ------------------------------------------------------------------ addressing
    def _slot(self, g: torch.Tensor) -> torch.Tensor:
        return g % self.length

    def _episode_bounds(
        self, member: torch.Tensor, g: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """First and last stored global step of the episode that holds row ``(member, g)``."""
        key = self.episode[member, self._slot(g)] % self.length
        first = self.ep_first[member, key].clamp(min=self.oldest)
        return first, self.ep_last[member, key]

    def gather(
        self, member: torch.Tensor, g: torch.Tensor, stacks: bool = True
    ) -> dict[str, torch.Tensor]:
        """Fields (and ``done``) of rows ``(member, g)`` of any matching shapes; the stacked
        image fields rebuilt from their frames unless ``stacks`` is False."""
        slot = self._slot(g)
        out = {name: store[member, slot] for name, store in self.data.items()}
        out["done"] = self.done[member, slot]
        if self.store is not None and stacks:
            both = self.image_stacks(member, g).movedim(-4, 0)
            out[self.stacked[0]], out[self.stacked[1]] = both[0], both[1]
        return out

    def image_stacks(self, member: torch.Tensor, g: torch.Tensor, rows: int = 1) -> torch.Tensor:
        """Image stacks ``[..., rows + 1, C, H, W]`` around ``rows`` consecutive rows of one
        episode from ``(member, g)``: ``[..., t]`` is row ``g + t``'s ``obs`` and
        ``[..., t + 1]`` its ``next_obs`` (see :meth:`FrameStore.stacks`)."""
        if self.store is None:
            raise ConfigError("this trajectory buffer stores no stacked frames")
        episode = self.episode[member, self._slot(g)]
        first = self.ep_first[member, episode % self.length]
        return self.store.stacks(member, g, episode, first, rows)

    def _check_flat(self, what: str) -> None:
        if self.store is not None:
            raise ConfigError(f"{what} needs flat observations; this buffer stores images")

    def _check_nonempty(self) -> None:
        if self.steps == 0:
            raise RuntimeError("cannot sample from an empty trajectory buffer")

    def sample_rows(
        self, batch_size: int, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Uniform ``(member, g)`` index pairs ``[batch]`` over all stored rows (drawn from
        ``generator``, default the buffer's)."""
        self._check_nonempty()
        k = torch.randint(
            0, self.size * self.num_members, (batch_size,),
            generator=generator or self.generator, device=self.device,
        )  # fmt: skip
        return k // self.size, self.oldest + k % self.size

    def sample(
        self, batch_size: int, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """Uniform transitions: each field ``[batch, ...]``, plus ``member`` and ``step``."""
        member, g = self.sample_rows(batch_size, generator)
        return {**self.gather(member, g), "member": member, "step": g}

    def in_order(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Field ``name`` of every stored row ``[M, size, ...]``, oldest first per member,
        and the rows' episode ids ``[M, size]`` (rows of one episode are consecutive)."""
        if name in self.stacked:
            self._check_flat(f"in_order({name!r})")
        order = self._stored_slots()
        return self.data[name][:, order], self.episode[:, order]

    def _stored_slots(self) -> torch.Tensor:
        """Slots of the stored rows, oldest first (the same for every member)."""
        return self._slot(torch.arange(self.oldest, self.steps, device=self.device))

    # ------------------------------------------------------------------ windows
    def window_starts(self, horizon: int) -> torch.Tensor:
        """``[M, size]`` bool: the slot's row starts ``horizon`` stored steps of one episode.
        Only the slots filled so far (``0 .. size-1``; all ``T`` once the buffer wrapped),
        so that sampling costs the stored rows, not the capacity (1M for TD-MPC)."""
        n = self.size
        slot = torch.arange(n, device=self.device)
        last = self.steps - 1
        g = slot + self.length * torch.div(last - slot, self.length, rounding_mode="floor")
        g = g.expand(self.num_members, -1)
        filled = (g >= self.oldest) & (g >= 0)
        key = self.episode[:, :n] % self.length
        ep_last = self.ep_last.gather(1, key)
        return filled & (g + horizon - 1 <= ep_last)

    def sample_windows(
        self,
        batch_size: int,
        horizon: int,
        alpha: float = 0.0,
        beta: float = 0.0,
        first_only: Sequence[str] = (),
    ) -> dict[str, torch.Tensor]:
        """Windows of ``horizon`` steps inside one episode: fields ``[batch, horizon, ...]``
        (those named in ``first_only`` only for the first row, ``[batch, ...]``: an image
        ``obs`` whose later rows are the previous ``next_obs``), ``member`` and ``step`` (the
        first row's global step) ``[batch]`` for :meth:`update_priorities`, and importance
        ``weight`` ``[batch]``."""
        self._check_nonempty()
        if horizon < 1:
            raise ConfigError(f"window horizon must be >= 1, got {horizon}")
        valid = self.window_starts(horizon)
        n = valid.shape[1]
        p = torch.where(valid, self.priority[:, :n].clamp(min=1e-12) ** alpha, 0.0).reshape(-1)
        total = p.sum()
        if not bool(total > 0):
            raise RuntimeError(f"no stored episode has {horizon} steps yet")
        cdf = torch.cumsum(p, 0)
        u = torch.rand(batch_size, generator=self.generator, device=self.device) * total
        # a draw past the cumulative sum's end (``total`` is summed in another order, and
        # float32 rounding differs) goes to the last window that can be drawn, never to a
        # trailing invalid one: its probability 0 would make the weights inf / inf = NaN
        last_valid = int(torch.nonzero(p).max())
        flat = torch.searchsorted(cdf, u, right=True).clamp_(max=last_valid)
        member, slot = flat // n, flat % n
        last = self.steps - 1
        g0 = slot + self.length * torch.div(last - slot, self.length, rounding_mode="floor")
        offsets = torch.arange(horizon, device=self.device)
        rows = self.gather(member[:, None], g0[:, None] + offsets, stacks=False)
        if self.store is not None:  # the window's H + 1 stacks share their frames
            stacks = self.image_stacks(member, g0, horizon)
            rows[self.stacked[0]], rows[self.stacked[1]] = stacks[:, :-1], stacks[:, 1:]
        for name in first_only:
            rows[name] = rows[name][:, 0]
        prob = p[flat] / total
        weight = (valid.sum() * prob) ** (-beta)
        rows.update(member=member, step=g0, weight=weight / weight.max())
        return rows

    def update_priorities(
        self, member: torch.Tensor, step: torch.Tensor, priority: torch.Tensor
    ) -> None:
        """Set the priority of rows ``(member, step)`` (e.g. a window's mean TD error)."""
        priority = priority.detach().to(self.device, torch.float32).clamp(min=1e-6)
        self.priority[member, self._slot(step)] = priority
        self.max_priority = torch.maximum(self.max_priority, priority.max())

    # ------------------------------------------------------------------ hindsight
    def hindsight_goals(
        self,
        member: torch.Tensor,
        g: torch.Tensor,
        strategy: str,
        goal_field: str,
        goal_slice: tuple[int, int],
    ) -> torch.Tensor:
        """Achieved goals ``[batch, G]`` from the episode of each row (see the class doc);
        taken from ``goal_field`` (e.g. ``next_obs``) at columns ``goal_slice``."""
        if strategy not in HER_STRATEGIES:
            raise ConfigError(f"HER strategy must be one of {HER_STRATEGIES}, got {strategy!r}")
        first, last = self._episode_bounds(member, g)
        if strategy == "final":
            pick = last
        else:
            low = g if strategy == "future" else first
            u = torch.rand(g.shape, generator=self.generator, device=self.device)
            pick = torch.minimum(low + (u * (last - low + 1).to(u.dtype)).long(), last)
        a, b = goal_slice
        return self.data[goal_field][member, self._slot(pick), a:b]

    def sample_her(
        self,
        batch_size: int,
        compute_reward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        slices: GoalSlices,
        strategy: str = "future",
        relabel_prob: float = 0.8,
    ) -> dict[str, torch.Tensor]:
        """Uniform transitions (fields ``obs``, ``next_obs``, ``action``, …) whose desired
        goal is relabelled with probability ``relabel_prob`` (``her_ratio`` k = 4 is 0.8);
        ``reward = compute_reward(achieved goal of next_obs, desired goal)`` for every row,
        ``relabelled`` says which rows changed."""
        self._check_flat("hindsight relabelling")
        if not 0 <= relabel_prob <= 1:
            raise ConfigError(f"relabel_prob must be in [0, 1], got {relabel_prob}")
        member, g = self.sample_rows(batch_size)
        rows = self.gather(member, g)
        (ag0, ag1), (dg0, dg1) = slices["achieved_goal"], slices["desired_goal"]
        new_goal = self.hindsight_goals(member, g, strategy, "next_obs", (ag0, ag1))
        u = torch.rand(batch_size, generator=self.generator, device=self.device)
        relabel = u < relabel_prob
        obs, next_obs = rows["obs"].clone(), rows["next_obs"].clone()
        goal = torch.where(relabel[:, None], new_goal, obs[:, dg0:dg1])
        obs[:, dg0:dg1] = goal
        next_obs[:, dg0:dg1] = goal
        reward = compute_reward(next_obs[:, ag0:ag1], goal)
        rows.update(
            obs=obs, next_obs=next_obs, reward=reward, relabelled=relabel, member=member, step=g
        )
        return rows

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """The stored rows of every member in time order (on CPU) and the counters."""
        order = self._stored_slots()
        frames = None
        if self.store is not None:
            low = self._live_low()  # its first step may precede the oldest row
            frames = self.store.state_dict(self.oldest, self.steps, low)
            frames["first_of_oldest"] = self.ep_first[self._members, low % self.length].cpu()
        return {
            **({"frames": frames} if frames else {}),
            "capacity": self.capacity,
            "num_members": self.num_members,
            "steps": self.steps,
            "max_priority": float(self.max_priority),
            "data": {k: v[:, order].cpu() for k, v in self.data.items()},
            "done": self.done[:, order].cpu(),
            "episode": self.episode[:, order].cpu(),
            "priority": self.priority[:, order].cpu(),
            "current": self.current.cpu(),
            "fresh": self.fresh.cpu(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        try:
            capacity, members, steps = state["capacity"], state["num_members"], state["steps"]
            data = state["data"]
            episode, done, priority = state["episode"], state["done"], state["priority"]
            current, fresh, max_priority = state["current"], state["fresh"], state["max_priority"]
        except KeyError as exc:
            raise CheckpointError(f"trajectory buffer state is missing {exc}") from exc
        if (capacity, members) != (self.capacity, self.num_members):
            raise CheckpointError(
                f"trajectory state has capacity {capacity} for {members} members, this "
                f"buffer has {self.capacity} for {self.num_members}"
            )
        if set(data) != set(self.data) or ("frames" in state) != (self.store is not None):
            kind = "image stacks" if self.store is not None else "flat observations"
            raise CheckpointError(
                f"trajectory state has fields {sorted(data)}, this buffer has "
                f"{sorted(self.data)} ({kind})"
            )
        self.steps = int(steps)
        size, dev = self.size, self.device
        order = self._stored_slots()
        for name, rows in data.items():
            shape, dtype = self.fields[name]
            if tuple(rows.shape) != (members, size, *shape):
                raise CheckpointError(
                    f"trajectory field {name!r} has shape {tuple(rows.shape)}, expected "
                    f"{(members, size, *shape)}"
                )
            self.data[name][:, order] = rows.to(device=dev, dtype=dtype)
        self.episode[:, order] = episode.to(dev)
        self.done[:, order] = done.to(dev)
        self.priority[:, order] = priority.to(dev, torch.float32)
        self.current, self.fresh = current.to(dev).clone(), fresh.to(dev).clone()
        self.max_priority = torch.tensor(float(max_priority), device=dev)
        # Episode tables from the rows: first and last global step of each stored episode.
        g = torch.arange(self.oldest, self.steps, device=dev).expand(members, -1)
        key = self.episode[:, order] % self.length
        self.ep_first.fill_(0).scatter_reduce_(1, key, g, "amin", include_self=False)
        self.ep_last.fill_(0).scatter_reduce_(1, key, g, "amax", include_self=False)
        if self.store is not None:
            frames = state["frames"]
            try:
                self.store.load_state_dict(frames, self.oldest, self.steps)
                low = self._live_low() % self.length
                self.ep_first[self._members, low] = frames["first_of_oldest"].to(dev)
            except KeyError as exc:
                raise CheckpointError(f"trajectory frames state is missing {exc}") from exc
