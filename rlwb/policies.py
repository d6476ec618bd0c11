"""Policies as engine-side batched functions, and populations of networks as one module.

``policy_of(agent, engine)`` turns an agent into the ``obs[B] -> action[B]`` function that
``engine.rollout`` runs. :class:`PopulationMLP` holds P multilayer perceptrons of one
architecture as one flat ``[P, D]`` parameter tensor (per-layer weights are ``[P, in, out]``
views of it), evaluated with batched matmuls: engine member ``i`` of a ``P * m`` batch is
driven by network ``i // m``, so a population method (Deep GA) evaluates a whole generation,
``m`` episodes per network, in one closed-loop engine rollout. The flat layout is what a
genetic algorithm mutates (one add over all weights of all networks) and what a seed-list
genome rebuilds. A population may normalise its observations first (``set_obs_norm``:
``clip((obs - mean) / std, -5, 5)`` with one mean and std for every network, as the Deep GA
authors' MuJoCo policy does).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from rlwb.agent import Agent, act_on
from rlwb.engine import Engine
from rlwb.errors import ConfigError

ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu}
OBS_CLIP = 5.0  # normalised observations are clipped to [-OBS_CLIP, OBS_CLIP]
HUGE_PAGE_BYTES = 8 << 20
"""CPU populations at least this large keep their weights in memory that numpy allocates:
it advises the kernel to back large blocks with transparent huge pages. A population
forward streams every weight once per step (256 2 x 256 networks: 74 MB), so it is bound
by memory traffic, and 4 KiB pages add a TLB miss per page: the forward alone measured
1.02-1.25x faster on a loaded 2-core VM (benchmarks/RESULTS.md, Deep GA vs EvoTorch)."""


def policy_of(agent: Agent, engine: Engine):
    """The agent's deterministic policy as an engine-side batched function."""

    def policy(obs: torch.Tensor) -> torch.Tensor:
        return act_on(agent, engine, obs, explore=False).to(engine.device)

    return policy


def _page_backed(shape: Sequence[int], dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised CPU tensor in numpy-allocated memory (huge pages where the kernel
    grants them, see ``HUGE_PAGE_BYTES``); torch's own allocation for dtypes numpy lacks."""
    try:
        np_dtype = torch.empty(0, dtype=dtype).numpy().dtype
    except TypeError:  # bfloat16
        return torch.empty(tuple(shape), dtype=dtype)
    return torch.from_numpy(np.empty(tuple(shape), dtype=np_dtype))


class _StackedPopulation(nn.Module):
    """What every population policy shares: P networks' parameters stacked in one ``[P, D]``
    buffer ``params`` (``num_params`` = D), replaced whole by :meth:`set_params`; member i of
    a ``P * m`` batch is driven by network i // m; live-member subsets of ``params`` cached
    for ``act_some``. Subclasses register ``params`` and call :meth:`_init_caches`."""

    num_params: int
    params: torch.Tensor

    def _init_caches(self) -> None:
        self._subset: tuple | None = None  # (params id and version, rows, params[rows])
        self._buffer: torch.Tensor | None = None  # what the cached params[rows] are copied to
        self._huge: torch.Tensor | None = None  # huge-page-backed params (set_params)

    @property
    def population(self) -> int:
        return int(self.params.shape[0])

    def set_params(self, params: torch.Tensor) -> None:
        """Replace the population's parameters with ``params[P', D]`` (P' may differ)."""
        if params.ndim != 2 or params.shape[1] != self.num_params:
            raise ValueError(f"params must be [P, {self.num_params}], got {tuple(params.shape)}")
        params = params.to(self.params.device, self.params.dtype)
        if params.device.type == "cpu" and params.nbytes >= HUGE_PAGE_BYTES:
            params = self._huge_copy(params)
        self.params = params
        self._subset = None

    def _huge_copy(self, params: torch.Tensor) -> torch.Tensor:
        """``params`` copied into a huge-page-backed buffer of its shape, kept across calls
        (see ``HUGE_PAGE_BYTES``); same values."""
        buffer = self._huge
        fits = buffer is not None and (buffer.shape, buffer.dtype) == (params.shape, params.dtype)
        if not fits or buffer.untyped_storage().data_ptr() == params.untyped_storage().data_ptr():
            buffer = self._huge = _page_backed(params.shape, params.dtype)
        return buffer.copy_(params)

    def _members_per_network(self, batch: int) -> int:
        p = self.population
        if batch % p:
            raise ValueError(f"batch of {batch} is not a multiple of population {p}")
        return batch // p

    def _rows_covering(self, needed: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        """``(rows, params[rows])`` with ``rows`` a sorted superset of ``needed`` no more
        than twice its size (``rows`` None: every network); cached between calls."""
        source = (self.params.data_ptr(), self.params._version)
        if self._subset is not None and self._subset[0] == source:
            rows, params = self._subset[1:]
            found = torch.searchsorted(rows, needed).clamp(max=len(rows) - 1)
            if bool((rows[found] == needed).all()) and 2 * len(needed) >= len(rows):
                return rows, params
        lo, hi = int(needed[0]), int(needed[-1]) + 1
        if hi - lo < self.population and 2 * len(needed) >= hi - lo:
            # a dense span (e.g. half of the population, which the mujoco backend's
            # overlapped rollout step asks for): a view, no copy
            return torch.arange(lo, hi, device=needed.device), self.params[lo:hi]
        if 2 * len(needed) >= self.population:
            return None, self.params
        gathered = self._gather_buffer(len(needed))
        torch.index_select(self.params, 0, needed, out=gathered)
        self._subset = (source, needed, gathered)
        return needed, gathered

    def _gather_buffer(self, count: int) -> torch.Tensor:
        """``[count, D]`` rows of one buffer kept across rollouts: a fresh allocation of
        this size each time costs more in page faults than the copy itself."""
        buffer = self._buffer
        like = (self.params.dtype, self.params.device)
        if buffer is None or len(buffer) < count or (buffer.dtype, buffer.device) != like:
            shape = (max(count, self.population // 2), self.num_params)
            big = self.params.device.type == "cpu" and self.params[0].nbytes * shape[0] >= (
                HUGE_PAGE_BYTES
            )
            buffer = self._buffer = (
                _page_backed(shape, self.params.dtype) if big else self.params.new_empty(shape)
            )
        return buffer[:count]


class PopulationMLP(_StackedPopulation):
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
        self.obs_mean: torch.Tensor | None = None  # observation normalisation (None: off)
        self.obs_std: torch.Tensor | None = None
        self._init_caches()

    def init_scale(self) -> torch.Tensor:
        """``[D]`` per-parameter standard deviation of the initialisation: weights
        N(0, 1/fan_in) (LeCun normal), biases zero."""
        scale = torch.zeros(self.num_params, dtype=self.params.dtype, device=self.params.device)
        for w_off, b_off, fan_in, _ in self.layout:
            scale[w_off:b_off] = 1.0 / math.sqrt(fan_in)
        return scale

    def set_obs_norm(self, mean: torch.Tensor | None, std: torch.Tensor | None) -> None:
        """Normalise observations as ``clip((obs - mean) / std, -5, 5)`` before the first
        layer (``mean`` None: no normalisation)."""
        if mean is None or std is None:
            self.obs_mean = self.obs_std = None
            return
        like = dict(dtype=self.params.dtype, device=self.params.device)
        self.obs_mean, self.obs_std = mean.to(**like), std.to(**like)

    def _inputs(self, obs: torch.Tensor) -> torch.Tensor:
        """``obs[B, ...]`` as normalised ``[B, in]`` inputs of the first layer."""
        x = obs.reshape(obs.shape[0], -1).to(self.params.dtype)
        if self.obs_mean is None:
            return x
        return ((x - self.obs_mean) / self.obs_std).clamp(-OBS_CLIP, OBS_CLIP)

    def _mlp(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``x[R, m, in] -> action[R, m, A]`` with network r's weights ``params[r]``."""
        r = params.shape[0]
        last = len(self.layout) - 1
        for k, (w_off, b_off, fan_in, fan_out) in enumerate(self.layout):
            weight = params[:, w_off:b_off].view(r, fan_in, fan_out)
            bias = params[:, b_off : b_off + fan_out].unsqueeze(1)
            x = torch.baddbmm(bias, x, weight)
            x = torch.tanh(x) if k == last else self.activation(x)
        return x * self.scale + self.shift

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """``obs[P * m, ...] -> action[P * m, A]``; member i is driven by network i // m."""
        p, m = self.population, self._members_per_network(obs.shape[0])
        x = self._inputs(obs).reshape(p, m, -1)
        return self._mlp(self.params, x).reshape(obs.shape[0], -1)

    def act_some(self, obs: torch.Tensor, members: torch.Tensor, batch: int) -> torch.Tensor:
        """Actions of only ``members`` (sorted int64 ``[K]``) of a ``batch = P * m`` batch,
        from their observations ``obs[K, ...]``: what ``forward(all_obs)[members]`` gives,
        computing only the networks that drive them.

        Why: a closed-loop rollout whose members end early (Humanoid falls) would otherwise
        read every network's weights each step for the few still running. The networks
        computed are a cached row subset of ``params`` (a superset of those needed, gathered
        again only once it is twice too large; a view of ``params`` when the needed rows
        fill at least half of their span; every network while half or more are needed), so
        the gathers of a shrinking live set copy at most the population's weights once per
        rollout in all.
        """
        m = self._members_per_network(batch)
        nets, slot = members // m, members % m
        rows, params = self._rows_covering(torch.unique_consecutive(nets))
        pos = torch.searchsorted(rows, nets) if rows is not None else nets
        x = obs.new_zeros((params.shape[0], m, self.sizes[0]), dtype=self.params.dtype)
        x[pos, slot] = self._inputs(obs)
        return self._mlp(params, x)[pos, slot]


# ---------------------------------------------------------------------------- conv populations
#: Atari networks: (conv layers as (channels, kernel, stride), hidden width, padding).
#: ``large`` is the Deep GA paper's (the authors' ``LargeModel``: DQN's 32-64-64 convolutions
#: and 512 hidden units with TensorFlow "SAME" padding, 4.0M weights for 18 actions);
#: ``nature`` the same layers with "VALID" padding, exactly Mnih et al. 2015's DQN (1.7M);
#: ``small`` the authors' default ``Model``, Mnih et al. 2013's 16-32 convolutions and 256
#: hidden units, "SAME" padding (1.0M).
CONV_NETWORKS: dict[str, tuple[tuple[tuple[int, int, int], ...], int, str]] = {
    "large": (((32, 8, 4), (64, 4, 2), (64, 3, 1)), 512, "same"),
    "nature": (((32, 8, 4), (64, 4, 2), (64, 3, 1)), 512, "valid"),
    "small": (((16, 8, 4), (32, 4, 2)), 256, "same"),
}
OUTPUT_INIT_STD = 0.1  # the authors' output layer: std 0.1 / sqrt(fan_in), hidden ones 1.0


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "SAME" padding (before, after) of one dimension: output ceil(size /
    stride), the extra pixel after."""
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class PopulationConv(_StackedPopulation):
    """P convolutional Q-style networks ``frames -> action logits`` with stacked weights in
    one flat ``[P, D]`` tensor (the Deep GA's Atari policy): member i of a ``P * m`` batch
    is driven by network i // m and acts by the argmax of its outputs, as in the paper.

    Frames are uint8 ``[C, H, W]`` scaled to [0, 1]. Each convolution runs as one grouped
    convolution over all networks (network p's channels are group p), the hidden and output
    layers as batched matmuls; ReLU after every layer but the last. Initialisation as the
    authors' code: weights N(0, std^2 / fan_in) with std 1 (0.1 for the output layer),
    biases zero. ``architecture`` names a row of :data:`CONV_NETWORKS`.
    """

    def __init__(
        self,
        observation_shape: Sequence[int],
        num_actions: int,
        population: int,
        architecture: str = "large",
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        if architecture not in CONV_NETWORKS:
            raise ConfigError(
                f"architecture must be one of {', '.join(CONV_NETWORKS)}, got {architecture!r}"
            )
        if len(observation_shape) != 3:
            raise ConfigError(f"a conv population needs [C, H, W] frames, got {observation_shape}")
        if population < 1 or num_actions < 1:
            raise ConfigError(f"population and num_actions must be >= 1 ({population}, "
                              f"{num_actions})")  # fmt: skip
        convs, hidden, padding = CONV_NETWORKS[architecture]
        self.observation_shape = tuple(int(s) for s in observation_shape)
        self.num_actions, self.architecture = int(num_actions), architecture
        channels, height, width = self.observation_shape
        self.convs: list[tuple[int, int, int, int, tuple[int, int, int, int]]] = []
        self.layout: list[tuple[int, int, int]] = []  # (offset, weights, fan_in) per layer
        offset = 0
        for out, kernel, stride in convs:
            if padding == "same":
                (top, bottom), (left, right) = (_same_padding(height, kernel, stride),
                                                _same_padding(width, kernel, stride))  # fmt: skip
            else:
                top = bottom = left = right = 0
            pad = (left, right, top, bottom)
            self.convs.append((channels, out, kernel, stride, pad))
            self.layout.append((offset, out * channels * kernel * kernel, channels * kernel**2))
            offset += out * channels * kernel * kernel + out
            height = (height + top + bottom - kernel) // stride + 1
            width = (width + left + right - kernel) // stride + 1
            channels = out
        self.features = channels * height * width
        self.dense = [(self.features, hidden), (hidden, self.num_actions)]
        for fan_in, fan_out in self.dense:
            self.layout.append((offset, fan_in * fan_out, fan_in))
            offset += fan_in * fan_out + fan_out
        self.num_params = offset
        self.register_buffer(
            "params", torch.zeros(population, self.num_params, dtype=dtype, device=device)
        )
        self._init_caches()
        self.network_seconds = 0.0  # time spent in forward passes (the GA logs it)

    def init_scale(self) -> torch.Tensor:
        """``[D]`` per-parameter standard deviation of the initialisation."""
        scale = torch.zeros(self.num_params, dtype=self.params.dtype, device=self.params.device)
        last = len(self.layout) - 1
        for k, (offset, weights, fan_in) in enumerate(self.layout):
            std = OUTPUT_INIT_STD if k == last else 1.0
            scale[offset : offset + weights] = std / math.sqrt(fan_in)
        return scale

    def set_obs_norm(self, mean: torch.Tensor | None, std: torch.Tensor | None) -> None:
        """Frames are scaled to [0, 1]; running observation statistics do not apply."""
        if mean is not None:
            raise ConfigError("observation normalisation is for vector observations, not frames")

    def _logits(self, params: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """``frames[R, m, C, H, W] -> logits[R, m, A]`` with network r's weights ``params[r]``."""
        r, m = int(params.shape[0]), frames.shape[1]  # (r a constant when exported)
        x = (frames.to(params.dtype) / 255.0).transpose(0, 1).reshape(m, -1, *frames.shape[3:])
        for (offset, weights, _), (c_in, c_out, kernel, stride, pad) in zip(
            self.layout, self.convs, strict=False
        ):
            weight = params[:, offset : offset + weights].reshape(r * c_out, c_in, kernel, kernel)
            bias = params[:, offset + weights : offset + weights + c_out].reshape(-1)
            if any(pad):
                x = torch.nn.functional.pad(x, pad)
            x = torch.relu(torch.nn.functional.conv2d(x, weight, bias, stride=stride, groups=r))
        x = x.reshape(m, r, self.features).transpose(0, 1)
        for k, ((fan_in, fan_out), (offset, weights, _)) in enumerate(
            zip(self.dense, self.layout[len(self.convs) :], strict=True)
        ):
            weight = params[:, offset : offset + weights].view(r, fan_in, fan_out)
            bias = params[:, offset + weights : offset + weights + fan_out].unsqueeze(1)
            x = torch.baddbmm(bias, x, weight)
            if k == 0:
                x = torch.relu(x)
        return x

    def logits(self, obs: torch.Tensor) -> torch.Tensor:
        """``obs[P * m, C, H, W] -> [P * m, A]`` outputs; member i read by network i // m."""
        p, m = self.population, self._members_per_network(obs.shape[0])
        frames = obs.reshape(p, m, *self.observation_shape)
        return self._logits(self.params, frames).reshape(obs.shape[0], -1)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """``obs[P * m, C, H, W] -> action[P * m]`` (int64): the argmax of each network."""
        start = time.perf_counter()
        actions = self.logits(obs).argmax(1)
        self.network_seconds += time.perf_counter() - start
        return actions

    def act_some(self, obs: torch.Tensor, members: torch.Tensor, batch: int) -> torch.Tensor:
        """Actions of only ``members`` (sorted int64 ``[K]``) of a ``batch = P * m`` batch:
        ``forward(all_obs)[members]``, computing only networks that drive them (a cached
        row subset of ``params``, gathered again once it is twice too large, so a shrinking
        live set copies at most the population's weights once per rollout in all)."""
        start = time.perf_counter()
        m = self._members_per_network(batch)
        nets, slot = members // m, members % m
        rows, params = self._rows_covering(torch.unique_consecutive(nets))
        pos = nets if rows is None else torch.searchsorted(rows, nets)
        frames = obs.new_zeros((params.shape[0], m, *self.observation_shape))
        frames[pos, slot] = obs
        actions = self._logits(params, frames)[pos, slot].argmax(1)
        self.network_seconds += time.perf_counter() - start
        return actions
