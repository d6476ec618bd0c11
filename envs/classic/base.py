"""Contract of an analytic task run by the ``torch`` backend (``rlwb.engine.torch_backend``).

A :class:`TorchTask` is pure batched tensor math: every method takes and returns ``[B, ...]``
tensors and never loops over members, so one call advances the whole batch and autograd can
differentiate through it. The engine owns the state tensor, the random generator, the time
limit and autoreset; the task owns the physics:

* **state layout** -- ``state_names`` names the ``state_dim`` columns of the ``[B, S]`` state
  (everything needed to continue the episode, goals included, so ``get_state``/``set_state``
  clone it exactly);
* **dynamics** -- ``dynamics(state, action)``, with the integrator stated in the subclass
  docstring; actions arrive unclipped, the task clips them as its Gymnasium original does;
* **reward** -- ``reward(state, action, next_state)`` with named components (``[B]`` each);
* **termination** -- ``terminated(next_state)`` (never the time limit: the engine truncates);
* **observation** -- ``observation(state)``, a flat ``[B, obs_dim]`` tensor;
* **reset distribution** -- ``reset_state(n, generator)`` draws from the engine's generator;
* **action bounds** and **time limit** -- ``action_low``, ``action_high``,
  ``max_episode_steps``; ``dt`` is the seconds of simulated time per env step.

Layout: the engine keeps the state column-major (a ``[B, S]`` view of ``[S, B]`` memory), so
``state[:, k]`` is contiguous and ``torch.compile`` emits vectorized loops (row-major
columns have stride S and compile to scalar loops, 5x slower). Tasks build next states with
:meth:`TorchTask.pack` to keep that layout and return row-major (contiguous) observations.

Tasks compute in the engine's dtype (``float32`` by default; ``float64`` reproduces the
float64 Gymnasium originals to round-off).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch


class TorchTask:
    """Base class of the analytic tasks. Subclasses set the class attributes below and
    implement ``reset_state``, ``dynamics``, ``reward`` and ``observation``."""

    gym_id: str | None = None
    max_episode_steps: int | None = None
    dt: float = 1.0
    state_names: tuple[str, ...] = ()
    obs_dim: int = 0
    action_low: tuple[float, ...] = ()
    action_high: tuple[float, ...] = ()
    obs_low: tuple[float, ...] | None = None  # None: unbounded
    obs_high: tuple[float, ...] | None = None
    # Named parts of a flat observation (goal-conditioned tasks: observation, achieved_goal,
    # desired_goal); None for a plain vector. Every seam stays one [B, obs_dim] tensor.
    obs_slices: dict[str, slice] | None = None

    device: torch.device = torch.device("cpu")
    dtype: torch.dtype = torch.float32

    @property
    def state_dim(self) -> int:
        return len(self.state_names)

    @property
    def action_dim(self) -> int:
        return len(self.action_low)

    def bind(self, device: torch.device, dtype: torch.dtype) -> None:
        """Move the task's constant tensors to the engine's device and dtype (once)."""
        self.device, self.dtype = torch.device(device), dtype

    # ---------------------------------------------------------------- the task's math
    def reset_state(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``[n, S]`` initial states drawn with ``generator``."""
        raise NotImplementedError

    def dynamics(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """``[B, S]`` state after one env step."""
        raise NotImplementedError

    def reward(
        self, state: torch.Tensor, action: torch.Tensor, next_state: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Reward ``[B]`` and its named ``[B]`` components."""
        raise NotImplementedError

    def terminated(self, next_state: torch.Tensor) -> torch.Tensor:
        """``[B]`` bool; the default task never terminates."""
        return torch.zeros(next_state.shape[0], dtype=torch.bool, device=next_state.device)

    def observation(self, state: torch.Tensor) -> torch.Tensor:
        """``[B, obs_dim]`` observation of ``state``."""
        raise NotImplementedError

    def step(
        self, state: torch.Tensor, action: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """One env step: ``(next_state, obs, reward, terminated, components)``.

        This is the function the engine compiles; subclasses rarely override it.
        """
        next_state = self.dynamics(state, action)
        reward, components = self.reward(state, action, next_state)
        return (
            next_state,
            self.observation(next_state),
            reward,
            self.terminated(next_state),
            components,
        )

    # ---------------------------------------------------------------- spaces and helpers
    @staticmethod
    def pack(columns: list[torch.Tensor]) -> torch.Tensor:
        """``[B, S]`` state from its ``[B]`` columns, stored column-major (see the module
        docstring)."""
        return torch.stack(columns, dim=0).T

    def observation_space(self) -> gym.spaces.Box:
        if self.obs_low is None or self.obs_high is None:
            return gym.spaces.Box(-np.inf, np.inf, shape=(self.obs_dim,), dtype=np.float32)
        return gym.spaces.Box(
            np.asarray(self.obs_low, dtype=np.float32), np.asarray(self.obs_high, dtype=np.float32)
        )

    def action_space(self) -> gym.spaces.Box:
        return gym.spaces.Box(
            np.asarray(self.action_low, dtype=np.float32),
            np.asarray(self.action_high, dtype=np.float32),
        )

    def uniform(
        self,
        generator: torch.Generator,
        n: int,
        low: torch.Tensor | float,
        high: torch.Tensor | float,
        dim: int = 1,
    ) -> torch.Tensor:
        """``[n, dim]`` uniform draws in ``[low, high)`` from ``generator`` on the task's device."""
        u = torch.rand(n, dim, generator=generator, device=self.device, dtype=self.dtype)
        return low + (high - low) * u

    def normal(self, generator: torch.Generator, n: int, dim: int = 1) -> torch.Tensor:
        """``[n, dim]`` standard normal draws from ``generator`` on the task's device."""
        return torch.randn(n, dim, generator=generator, device=self.device, dtype=self.dtype)


def angle_normalize(x: torch.Tensor) -> torch.Tensor:
    """Angle wrapped into ``[-pi, pi)`` as Gymnasium's pendulum does (``remainder`` matches
    numpy's ``%`` sign convention)."""
    return torch.remainder(x + np.pi, 2 * np.pi) - np.pi
