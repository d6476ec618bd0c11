"""A device-resident circular replay buffer with named fields.

Transitions arrive in batches (``[B, ...]`` per field, one row per engine member) and stay
torch tensors on the buffer's device: no numpy round-trip per step. Sampling draws uniform
indices from a caller-supplied ``torch.Generator`` (on the buffer's device), optionally for
several updates at once (``sample(batch, num_batches=U)`` -> ``[U, batch, ...]``), so an agent
pays for one random draw and one gather per ``update`` call instead of one per gradient step.
Storage is allocated with ``torch.empty``; the operating system only commits pages as they fill.
"""

from __future__ import annotations

from collections.abc import Mapping
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
