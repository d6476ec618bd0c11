"""TOLD, the task-oriented latent dynamics model of TD-MPC (Hansen, Wang, Su 2022).

Five small networks over a latent state ``z``: an encoder ``h(obs) -> z``, latent dynamics
``d(z, a) -> z'``, a reward head ``R(z, a) -> r``, twin action values ``Q1, Q2(z, a)`` and a
policy ``pi(z) -> a``. Shapes and initialisation follow the authors' code: ELU MLPs with two
hidden layers of ``mlp_dim``; the state encoder has one hidden layer of ``enc_dim`` (an image
encoder is given by the agent: ``rlwb.nn.ConvEncoder``); each Q's first layer is Linear ->
LayerNorm -> Tanh; every linear layer is orthogonally initialised with zero bias (conv
layers with the ReLU gain), and the last layers of the reward and Q heads start at exactly
zero.
Actions live in [-1, 1]^A (the agent scales to the task's bounds).

Everything is batched over any leading dimensions; nothing here knows about planning or
losses (``agents.tdmpc`` does). :class:`TOLDWorld` presents the model as the planners'
``LatentWorld`` (``rlwb.planners.latent``), so planning and the update share one module.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def elu_mlp(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    """Linear -> ELU -> Linear -> ELU -> Linear (the authors' ``mlp``)."""
    return nn.Sequential(
        nn.Linear(in_dim, hidden),
        nn.ELU(),
        nn.Linear(hidden, hidden),
        nn.ELU(),
        nn.Linear(hidden, out_dim),
    )


def q_mlp(in_dim: int, hidden: int) -> nn.Sequential:
    """Linear -> LayerNorm -> Tanh -> Linear -> ELU -> Linear: the first layer's
    normalisation keeps the value's input scale bounded whatever the latent drifts to."""
    return nn.Sequential(
        nn.Linear(in_dim, hidden),
        nn.LayerNorm(hidden),
        nn.Tanh(),
        nn.Linear(hidden, hidden),
        nn.ELU(),
        nn.Linear(hidden, 1),
    )


def _orthogonal_init(module: nn.Module) -> None:
    if isinstance(module, nn.Linear | nn.Conv2d):
        gain = nn.init.calculate_gain("relu") if isinstance(module, nn.Conv2d) else 1.0
        nn.init.orthogonal_(module.weight, gain)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def truncated_normal_action(
    mean: torch.Tensor, std: float, generator: torch.Generator | None, clip: float = 0.3
) -> torch.Tensor:
    """``mean + clamp(std * N(0, 1), -clip, clip)``, clamped to [-1 + 1e-6, 1 - 1e-6] with
    a straight-through gradient (the authors' ``TruncatedNormal.sample(clip=0.3)``): the
    policy's exploration noise inside planning, targets and the policy loss."""
    if std <= 0:
        return mean
    noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    return noisy_action(mean, std, noise, clip)


def noisy_action(
    mean: torch.Tensor, std: float, noise: torch.Tensor, clip: float = 0.3
) -> torch.Tensor:
    """:func:`truncated_normal_action` with its standard normal ``noise`` given: what a
    compiled function takes (it draws no random numbers itself)."""
    if std <= 0:
        return mean
    x = mean + (noise * std).clamp(-clip, clip)
    clamped = x.clamp(-1.0 + 1e-6, 1.0 - 1e-6)
    return x + (clamped - x).detach()


def state_encoder(obs_dim: int, enc_dim: int, latent_dim: int) -> nn.Sequential:
    """Linear -> ELU -> Linear: the authors' encoder of state vectors."""
    return nn.Sequential(nn.Linear(obs_dim, enc_dim), nn.ELU(), nn.Linear(enc_dim, latent_dim))


class TOLD(nn.Module):
    """Encoder, latent dynamics, reward, twin Q and policy (see the module docstring)."""

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        latent_dim: int,
        enc_dim: int,
        mlp_dim: int,
        encoder: nn.Module | None = None,
    ) -> None:
        super().__init__()
        za = latent_dim + action_dim
        self.encoder = encoder or state_encoder(obs_dim, enc_dim, latent_dim)
        self.dynamics = elu_mlp(za, mlp_dim, latent_dim)
        self.reward_head = elu_mlp(za, mlp_dim, 1)
        self.pi = elu_mlp(latent_dim, mlp_dim, action_dim)
        self.q1 = q_mlp(za, mlp_dim)
        self.q2 = q_mlp(za, mlp_dim)
        self.apply(_orthogonal_init)
        for head in (self.reward_head, self.q1, self.q2):
            nn.init.zeros_(head[-1].weight)
            nn.init.zeros_(head[-1].bias)

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        """``h``: observation -> latent."""
        return self.encoder(obs)

    def next(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """``d(z, a)``: the next latent."""
        return self.dynamics(torch.cat([z, a], dim=-1))

    def reward(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """``R(z, a)``: the step's reward ``[...]``."""
        return self.reward_head(torch.cat([z, a], dim=-1)).squeeze(-1)

    def q(self, z: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both action values ``[...]``."""
        x = torch.cat([z, a], dim=-1)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)

    def min_q(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        q1, q2 = self.q(z, a)
        return torch.minimum(q1, q2)

    def policy(
        self, z: torch.Tensor, std: float = 0.0, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``tanh(pi(z))``, plus clipped Gaussian noise of ``std`` when ``std > 0``."""
        return truncated_normal_action(torch.tanh(self.pi(z)), std, generator)


class TargetTOLD(nn.Module):
    """The slow copy TD-MPC needs: the encoder (consistency targets) and the Q heads (TD
    targets), updated as an exponential moving average of the online ones."""

    def __init__(self, online: TOLD) -> None:
        super().__init__()
        self.encoder = copy.deepcopy(online.encoder)
        self.q1 = copy.deepcopy(online.q1)
        self.q2 = copy.deepcopy(online.q2)
        self.requires_grad_(False)

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        return self.encoder(obs)

    def min_q(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        x = torch.cat([z, a], dim=-1)
        return torch.minimum(self.q1(x), self.q2(x)).squeeze(-1)

    def sources(self, online: TOLD) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(target tensors, the online tensors they track), in matching order."""
        mine = [*self.encoder.parameters(), *self.q1.parameters(), *self.q2.parameters()]
        theirs = [*online.encoder.parameters(), *online.q1.parameters(), *online.q2.parameters()]
        return mine, theirs


class TOLDWorld:
    """TOLD as the planners' ``LatentWorld``: ``encode``, ``next``, ``reward`` and the
    terminal ``value(z) = min Q(z, pi(z))``, where the policy's action carries clipped noise
    of ``noise_std`` (the authors' value estimate samples pi at min_std), drawn from the
    agent's generator."""

    def __init__(self, told: TOLD, discount: float, generator: torch.Generator) -> None:
        self.told, self.discount, self.generator = told, float(discount), generator
        self.noise_std = 0.0

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        return self.told.encode(obs)

    def next(self, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.told.next(z, action)

    def reward(self, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.told.reward(z, action)

    def policy(self, z: torch.Tensor) -> torch.Tensor:
        return self.told.policy(z, self.noise_std, self.generator)

    def value(self, z: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """``min Q(z, pi(z))``; the policy's standard normal ``noise`` drawn here unless
        given (a compiled rollout gets it)."""
        if noise is None:
            return self.told.min_q(z, self.policy(z))
        action = noisy_action(torch.tanh(self.told.pi(z)), self.noise_std, noise)
        return self.told.min_q(z, action)
