"""Policies as engine-side batched functions, and populations of networks as one module.

``policy_of(agent, engine)`` turns an agent into the ``obs[B] -> action[B]`` function that
``engine.rollout`` runs. :class:`PopulationMLP` holds P multilayer perceptrons of one
architecture as one flat ``[P, D]`` parameter tensor (per-layer weights are ``[P, in, out]``
views of it), evaluated with batched matmuls: engine member ``i`` of a ``P * m`` batch is
driven by network ``i // m``, so a population method (Deep GA) evaluates a whole generation,
``m`` episodes per network, in one closed-loop engine rollout. The flat layout is what a
genetic algorithm mutates (one add over all weights of all networks) and what a seed-list
genome rebuilds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from rlwb.agent import Agent, act_on
from rlwb.engine import Engine
from rlwb.errors import ConfigError

ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu}


def policy_of(agent: Agent, engine: Engine):
    """The agent's deterministic policy as an engine-side batched function."""

    def policy(obs: torch.Tensor) -> torch.Tensor:
        return act_on(agent, engine, obs, explore=False).to(engine.device)

    return policy


class PopulationMLP(nn.Module):
    """P MLPs ``obs -> hidden... -> action`` with stacked weights, in one flat tensor.

    ``params`` is ``[P, D]``; layer ``l`` reads its weight ``[P, in, out]`` and bias
    ``[P, 1, out]`` as views of it (weights first, then biases, layer by layer). Hidden
    layers use ``activation``; the output is ``tanh`` rescaled to the action bounds (where
    a bound is infinite, the raw ``tanh`` output in [-1, 1]).
    """

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        hidden: Sequence[int],
        population: int,
        action_low: torch.Tensor,
        action_high: torch.Tensor,
        activation: str = "tanh",
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ConfigError(
                f"activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}"
            )
        if population < 1:
            raise ConfigError(f"population must be >= 1, got {population}")
        self.sizes = [int(obs_dim), *(int(h) for h in hidden), int(action_dim)]
        self.activation = ACTIVATIONS[activation]
        self.layout: list[tuple[int, int, int, int]] = []  # (w offset, b offset, in, out)
        offset = 0
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:], strict=True):
            self.layout.append((offset, offset + fan_in * fan_out, fan_in, fan_out))
            offset += fan_in * fan_out + fan_out
        self.num_params = offset
        low = torch.as_tensor(action_low, dtype=dtype, device=device)
        high = torch.as_tensor(action_high, dtype=dtype, device=device)
        finite = torch.isfinite(low) & torch.isfinite(high)
        self.register_buffer("scale", torch.where(finite, (high - low) / 2, torch.ones_like(low)))
        self.register_buffer("shift", torch.where(finite, (high + low) / 2, torch.zeros_like(low)))
        self.register_buffer(
            "params", torch.zeros(population, self.num_params, dtype=dtype, device=device)
        )

    @property
    def population(self) -> int:
        return int(self.params.shape[0])

    def init_scale(self) -> torch.Tensor:
        """``[D]`` per-parameter standard deviation of the initialisation: weights
        N(0, 1/fan_in) (LeCun normal), biases zero."""
        scale = torch.zeros(self.num_params, dtype=self.params.dtype, device=self.params.device)
        for w_off, b_off, fan_in, _ in self.layout:
            scale[w_off:b_off] = 1.0 / math.sqrt(fan_in)
        return scale

    def set_params(self, params: torch.Tensor) -> None:
        """Replace the population's parameters with ``params[P', D]`` (P' may differ)."""
        if params.ndim != 2 or params.shape[1] != self.num_params:
            raise ValueError(f"params must be [P, {self.num_params}], got {tuple(params.shape)}")
        self.params = params.to(self.params.device, self.params.dtype)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """``obs[P * m, ...] -> action[P * m, A]``; member i is driven by network i // m."""
        p = self.population
        if obs.shape[0] % p:
            raise ValueError(f"batch of {obs.shape[0]} is not a multiple of population {p}")
        x = obs.reshape(p, obs.shape[0] // p, -1).to(self.params.dtype)
        last = len(self.layout) - 1
        for k, (w_off, b_off, fan_in, fan_out) in enumerate(self.layout):
            weight = self.params[:, w_off:b_off].view(p, fan_in, fan_out)
            bias = self.params[:, b_off : b_off + fan_out].unsqueeze(1)
            x = torch.baddbmm(bias, x, weight)
            x = torch.tanh(x) if k == last else self.activation(x)
        return (x * self.scale + self.shift).reshape(obs.shape[0], -1)
