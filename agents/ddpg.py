"""DDPG (Lillicrap et al. 2015, "Continuous control with deep reinforcement learning").

A deterministic tanh actor scaled to the action bounds, a Q critic with the action entering
at a chosen hidden layer, a device-resident replay buffer, soft (Polyak) target updates and
exploration noise (Ornstein-Uhlenbeck as in the paper, or Gaussian as in SB3/CleanRL).

Presets: ``DDPGConfig.paper()`` (section 7 of the paper) and ``DDPGConfig.modern()``
(Stable-Baselines3 / rl-zoo3 defaults). The plain ``DDPGConfig()`` is ``modern()`` scaled
down for small tasks (64-64 networks, batch 128, actor lr 3e-4): the setting the Pendulum
quickstart needs to learn in a minute or two on two CPU cores. On Pendulum, actor lr 1e-3
learns as fast but often collapses again a few thousand steps later (measured).

From pixels (``DDPGConfig.pixels()``, ``experiments/ddpg_pixels.py``): given an image
observation space ``(C, H, W)`` (uint8, frames stacked along the channels), the actor and
the critic each put their own conv encoder (``rlwb.nn.ConvEncoder``: pixels / 255, three
Conv2d of 32 filters with ReLU, no pooling, flattened) before their fully connected layers
(200-200 in the paper's pixel setting), with no other flag. The paper fixes the 3 x 32
filters, 200-200, 3 stacked frames of 64 x 64 and action repeat 3, batch 16 and the final
layer init U[+-3e-4]; it leaves open kernel sizes and strides (3 and 2 here, configurable),
whether actor and critic share an encoder (separate here) and batch norm on pixels (off in
``pixels()``); the action enters the critic at its first fully connected layer, after the
convolutions. The replay then keeps each frame once (per-member trajectories,
``rlwb.replay.TrajectoryBuffer`` with ``StackedFrames``).

Deviations from the paper, on purpose:

* Bootstrapping: the target is ``r + gamma * (1 - terminated) * Q'(s', mu'(s'))``. A
  time-limit truncation is not a terminal state, so we bootstrap through it (and ``s'`` is
  the true final observation, not the autoreset one). The paper did not distinguish.
* Noise is added in the normalised action space ([-1, 1]) and the result clipped there,
  then scaled to the bounds (as SB3 does); the paper's OU process used dt = 1 (we do too).
* L2 weight decay (``critic_l2``) is applied to the critic's weight matrices only, not its
  biases, as Adam's coupled ``weight_decay``.
* Batch norm (``batch_norm=True``, on in ``paper()``): the actor normalises its input and
  every hidden layer, the critic its input and the layers before the action enters. Target
  networks always run in eval mode with running statistics that are copied from the online
  networks at every target update (as SB3 does; soft-updating them at tau = 0.001 left the
  targets' input normalisation ~1,000 updates behind: online input mean 4.9 vs target 0.45
  after 100 updates); the weights are soft-updated. The online networks use batch
  statistics in updates and running statistics when acting.
* The actor loss back-propagates into the actor's parameters only
  (``backward(inputs=actor_params)``): the same gradient as the paper, without computing
  the critic's unused weight gradients.
* The experience comes from ``spec.num_envs`` members at once; the update-to-data ratio is
  the runner's (``TrainConfig.updates_per_step``), as are the random steps before
  ``learning_starts``.

Speed: the gradient step, the optimizers and the target update are the shared
actor-critic core's (:mod:`rlwb.actor_critic`: one ``torch._foreach_lerp_`` for all target
tensors, Adam's fused kernel called directly, optional ``torch.compile``, and on CUDA the
whole gradient step captured once as a CUDA graph, not yet run on a GPU); here, indices for
all of an ``update`` call's gradient steps are sampled in one draw, losses stay tensors
(no host sync per step), and one torch thread runs on CPU. Measured on 2 CPU cores
(HalfCheetah shapes, 400-300, batch 256): 11.0 ms per update against SB3's 14.0 ms; see
``benchmarks/RESULTS.md``. Critic and target critic are not fused into one forward: they
have different weights, and a stacked (bmm) forward would double the weight-gradient work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from rlwb import agent_kit as kit
from rlwb.actor_critic import ActorCriticAgent
from rlwb.agent import PolicyNetwork, ScaledPolicy
from rlwb.engine.base import EngineSpec
from rlwb.errors import ConfigError
from rlwb.nn import ConvSpec, encoder_for, fan_in_uniform_, is_image, mlp_block
from rlwb.noise import GaussianNoise, NoNoise, OrnsteinUhlenbeckNoise
from rlwb.replay import ReplayBuffer, StackedFrames, TrajectoryBuffer

_FIELDS = ("obs", "action", "reward", "next_obs", "done")


@dataclass
class DDPGConfig:
    """DDPG hyperparameters. The defaults learn Pendulum-v1 quickly; see the presets."""

    mutable_on_resume: ClassVar[tuple[str, ...]] = ("actor_lr", "critic_lr", "noise_sigma")
    hidden: tuple[int, ...] = (64, 64)
    """Hidden layer widths, shared by actor and critic (paper: 400, 300)."""
    critic_action_layer: int = 0
    """Hidden layer the action enters the critic at: 0 = with the observation (SB3,
    CleanRL), 1 = second layer (the paper)."""
    batch_norm: bool = False
    """Batch norm as in the paper (input, actor layers, critic layers before the action)."""
    final_init: float = 3e-3
    """Final layers start in U[-final_init, final_init]; others in U[+-1/sqrt(fan_in)]."""
    actor_lr: float = 3e-4
    critic_lr: float = 1e-3
    critic_l2: float = 0.0
    """L2 weight decay on the critic's weights (paper: 1e-2)."""
    gamma: float = 0.99
    tau: float = 0.005
    """Target update rate: target <- (1 - tau) target + tau online, after every update."""
    batch_size: int = 128
    buffer_size: int = 1_000_000
    noise: Literal["gaussian", "ou", "none"] = "gaussian"
    noise_sigma: float = 0.1
    """Noise scale in the normalised action space ([-1, 1])."""
    ou_theta: float = 0.15
    ou_dt: float = 1.0
    compile: bool = False
    """torch.compile the networks. Off by default: on our 2-core CPU it compiled in 12 s and
    then ran the HalfCheetah update slower than eager (13.2 vs 11.0 ms)."""
    cuda_graph: bool = True
    """On CUDA, capture the gradient step as a CUDA graph (ignored on CPU)."""
    conv_channels: tuple[int, ...] = (32, 32, 32)
    """Image observations: filters of the conv layers before ``hidden`` (the paper: 3 x 32)."""
    conv_kernels: tuple[int, ...] = (3, 3, 3)
    """Image observations: conv kernel sizes (not given in the paper: our choice)."""
    conv_strides: tuple[int, ...] = (2, 2, 2)
    """Image observations: conv strides (not given in the paper: our choice)."""
    torch_threads: int = 1
    """torch.set_num_threads at construction on CPU (0: leave torch's setting). One thread
    is the robust choice: DDPG's matmuls are small, and on a shared or loaded machine
    intra-op threads wait on each other at every op (measured here under load: 10-30x
    slower with 2 threads than with 1)."""
    seed: int | None = None
    """Seed of the agent's generator (replay sampling, noise); None: drawn from torch's
    global generator, which the runner seeds."""

    def __post_init__(self) -> None:
        self.hidden = tuple(int(h) for h in self.hidden)
        for name in ("conv_channels", "conv_kernels", "conv_strides"):
            setattr(self, name, tuple(int(v) for v in getattr(self, name)))
        self.validate()

    def conv(self) -> ConvSpec:
        """The conv layers that encode image observations (features for ``hidden``)."""
        return ConvSpec(self.conv_channels, self.conv_kernels, self.conv_strides)

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first bad field."""

        def bad(name: str, why: str) -> ConfigError:
            return ConfigError(f"DDPGConfig.{name} {why}, got {getattr(self, name)!r}")

        if not self.hidden or any(h < 1 for h in self.hidden):
            raise bad("hidden", "must be a non-empty list of positive widths")
        if not 0 <= self.critic_action_layer < len(self.hidden):
            raise bad("critic_action_layer", f"must be in [0, {len(self.hidden) - 1}]")
        for name in ("actor_lr", "critic_lr"):
            if not getattr(self, name) > 0:
                raise bad(name, "must be > 0")
        if not self.critic_l2 >= 0:
            raise bad("critic_l2", "must be >= 0")
        if not 0 <= self.gamma <= 1:
            raise bad("gamma", "must be in [0, 1]")
        if not 0 < self.tau <= 1:
            raise bad("tau", "must be in (0, 1]")
        if self.batch_size < 1:
            raise bad("batch_size", "must be >= 1")
        if self.buffer_size < 1:
            raise bad("buffer_size", "must be >= 1")
        if self.batch_size > self.buffer_size:
            raise ConfigError(
                f"DDPGConfig.batch_size ({self.batch_size}) is larger than buffer_size "
                f"({self.buffer_size})"
            )
        if self.noise not in ("gaussian", "ou", "none"):
            raise bad("noise", "must be 'gaussian', 'ou' or 'none'")
        if not self.noise_sigma >= 0:
            raise bad("noise_sigma", "must be >= 0")
        if not self.ou_theta >= 0 or not self.ou_dt > 0:
            raise ConfigError(
                f"DDPGConfig.ou_theta must be >= 0 and ou_dt > 0, got {self.ou_theta}, {self.ou_dt}"
            )
        if self.torch_threads < 0:
            raise bad("torch_threads", "must be >= 0")
        if not self.final_init > 0:
            raise bad("final_init", "must be > 0")
        self.conv()  # one line if the conv layers do not match up

    @classmethod
    def paper(cls, **overrides: Any) -> DDPGConfig:
        """Lillicrap et al. 2015, section 7 (low-dimensional observations)."""
        values: dict[str, Any] = dict(
            hidden=(400, 300),
            critic_action_layer=1,
            batch_norm=True,
            actor_lr=1e-4,
            critic_lr=1e-3,
            critic_l2=1e-2,
            gamma=0.99,
            tau=0.001,
            batch_size=64,
            buffer_size=1_000_000,
            noise="ou",
            noise_sigma=0.2,
            ou_theta=0.15,
            ou_dt=1.0,
        )
        return cls(**{**values, **overrides})

    @classmethod
    def modern(cls, **overrides: Any) -> DDPGConfig:
        """Stable-Baselines3 / rl-zoo3 MuJoCo DDPG: 400-300, batch 256, tau 0.005,
        Gaussian noise 0.1, lr 1e-3, no L2, action at the critic's input."""
        values: dict[str, Any] = dict(
            hidden=(400, 300),
            critic_action_layer=0,
            batch_norm=False,
            actor_lr=1e-3,
            critic_lr=1e-3,
            critic_l2=0.0,
            gamma=0.99,
            tau=0.005,
            batch_size=256,
            buffer_size=1_000_000,
            noise="gaussian",
            noise_sigma=0.1,
        )
        return cls(**{**values, **overrides})

    @classmethod
    def pixels(cls, **overrides: Any) -> DDPGConfig:
        """The paper's pixel setting (section 7): 3 conv layers of 32 filters, then 200-200
        fully connected; batch 16; final layers in U[-3e-4, 3e-4]; the action enters the
        critic at its first fully connected layer; the rest as :meth:`paper` without batch
        norm (the paper states it for low-dimensional inputs only)."""
        values: dict[str, Any] = dict(
            hidden=(200, 200), critic_action_layer=0, batch_norm=False, batch_size=16,
            final_init=3e-4,
        )  # fmt: skip
        return cls.paper(**{**values, **overrides})


class Actor(nn.Module):
    """``obs -> tanh(...)`` in [-1, 1]^A; the agent scales to the action bounds. Image
    observations pass the config's conv encoder first (``rlwb.nn.encoder_for``)."""

    def __init__(self, obs_shape: tuple[int, ...], act_dim: int, cfg: DDPGConfig) -> None:
        super().__init__()
        self.encoder, obs_dim = encoder_for(obs_shape, cfg.conv())
        first = [nn.BatchNorm1d(obs_dim)] if cfg.batch_norm else []
        body, width = mlp_block(obs_dim, cfg.hidden, cfg.batch_norm)
        head = fan_in_uniform_(nn.Linear(width, act_dim), cfg.final_init)
        self.net = nn.Sequential(*first, body, head, nn.Tanh())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(self.encoder(obs))


class Critic(nn.Module):
    """``Q(obs, action)``; the action joins the features before hidden layer
    ``critic_action_layer`` (image observations: after the critic's own conv encoder)."""

    def __init__(self, obs_shape: tuple[int, ...], act_dim: int, cfg: DDPGConfig) -> None:
        super().__init__()
        k = cfg.critic_action_layer
        self.encoder, obs_dim = encoder_for(obs_shape, cfg.conv())
        first = [nn.BatchNorm1d(obs_dim)] if cfg.batch_norm else []
        pre, width = mlp_block(obs_dim, cfg.hidden[:k], cfg.batch_norm)
        self.obs_net = nn.Sequential(*first, *pre)
        post, width = mlp_block(width + act_dim, cfg.hidden[k:])
        self.head = nn.Sequential(post, fan_in_uniform_(nn.Linear(width, 1), cfg.final_init))

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        features = self.obs_net(self.encoder(obs))
        return self.head(torch.cat([features, action], dim=-1)).squeeze(-1)


class DDPG(ActorCriticAgent):
    """Deep Deterministic Policy Gradient over a batched engine (see the module docstring).

    Per gradient step, on a uniform minibatch ``(s, a, r, s', d)`` from the replay:

    1. ``y = r + gamma (1 - d) Q'(s', mu'(s'))`` (:meth:`bootstrap_target`);
    2. critic: one Adam step on ``mean (Q(s, a) - y)^2``;
    3. actor: one Adam step on ``-mean Q(s, mu(s))`` (:meth:`actor_loss`);
    4. targets: ``theta' <- tau theta + (1 - tau) theta'``.

    Steps 2-4 are the shared core's (:class:`rlwb.actor_critic.ActorCriticAgent`)."""

    saved_parts = ("replay", "noise")

    def __init__(self, config: DDPGConfig, spec: EngineSpec, device: torch.device | str) -> None:
        if not isinstance(config, DDPGConfig):
            raise ConfigError(f"DDPG needs a DDPGConfig, got {type(config).__name__}")
        config.validate()
        _, act_dim = self.prelude(config, spec, device, images=True)
        shape = tuple(spec.observation_shape)
        self.images = is_image(shape)
        self.build_actor_critic(
            lambda: Actor(shape, act_dim, config),
            lambda: Critic(shape, act_dim, config),
            _FIELDS,
        )
        obs_field = (shape, torch.uint8 if self.images else torch.float32)
        self._replay_fields = {
            "obs": obs_field,
            "action": ((act_dim,), torch.float32),
            "reward": ((), torch.float32),
            "next_obs": obs_field,
            "done": ((), torch.float32),
        }
        self._replay: ReplayBuffer | TrajectoryBuffer | None = None
        self.noise = _make_noise(config, spec.num_envs, act_dim, self.device, self.generator)

    @property
    def replay(self) -> ReplayBuffer | TrajectoryBuffer:
        """Allocated on first use: the runner's evaluation copy of the agent only acts, and
        on CUDA a 1M-transition buffer is real memory (2.9 GB for Humanoid). Image
        observations go to per-member trajectories that store each frame once (``done``
        there is ``terminated``)."""
        if self._replay is None and self.images:
            fields = {**self._replay_fields, "terminated": self._replay_fields["done"]}
            del fields["done"]
            frames = StackedFrames.for_shape(
                self.spec.observation_shape, self.spec.task_kwargs.get("frame_stack")
            )
            members = self.spec.num_envs
            self._replay = TrajectoryBuffer(
                max(self.config.buffer_size, members), members, fields, self.device,
                self.generator, frames,
            )  # fmt: skip
        if self._replay is None:
            self._replay = ReplayBuffer(
                self.config.buffer_size,
                self._replay_fields,
                device=self.device,
                generator=self.generator,
            )
        return self._replay

    # ------------------------------------------------------------------ acting
    @torch.no_grad()
    def act(self, obs: torch.Tensor, explore: bool = False) -> torch.Tensor:
        """Deterministic ``mu(obs)`` scaled to the bounds; with ``explore``, plus noise."""
        obs = obs.to(self.device, torch.uint8 if self.images else torch.float32)
        if self.config.batch_norm:
            self.actor.eval()
        action = self.actor(obs)
        if explore:
            if obs.shape[0] != self.noise.shape[0]:
                raise ValueError(
                    f"exploration needs one observation per engine member "
                    f"({self.noise.shape[0]}), got a batch of {obs.shape[0]}"
                )
            action = (action + self.noise.sample()).clamp_(-1.0, 1.0)
        return action * self.action_scale + self.action_bias

    def episode_start(self, members: torch.Tensor) -> None:
        self.noise.reset(members)

    def policy_network(self) -> PolicyNetwork:
        """The actor scaled to the bounds (in eval mode, as ``act`` runs it)."""
        return PolicyNetwork(ScaledPolicy(self.actor, self.action_scale, self.action_bias))

    # ------------------------------------------------------------------ learning
    def observe(
        self,
        obs: torch.Tensor,
        action: torch.Tensor,
        reward: torch.Tensor,
        next_obs: torch.Tensor,
        terminated: torch.Tensor,
        truncated: torch.Tensor,
    ) -> None:
        """Store a batch; truncation is ignored on purpose (we bootstrap through it)."""
        dev = self.device
        stored = dict(
            obs=obs.to(dev),
            action=kit.to_unit(action, self.action_scale, self.action_bias),
            reward=reward.to(dev),
            next_obs=next_obs.to(dev),
        )
        if isinstance(self.replay, TrajectoryBuffer):
            ends = (terminated | truncated).to(dev)
            self.replay.add(done=ends, terminated=terminated.to(dev), **stored)
        else:
            self.replay.add(done=terminated.to(dev), **stored)

    def update(self, num_updates: int = 1) -> dict[str, Any]:
        """``num_updates`` gradient steps on fresh uniform batches (their indices drawn in
        one go).

        Returns the mean critic and actor losses as 0-dim tensors (``float()`` them when
        logging): converting here would force a host sync every step on CUDA.
        """
        if num_updates < 1:
            return {}
        batch = self._sample(num_updates)
        if self.config.batch_norm:
            self.actor.train()
            self.critic.train()
        critic_losses, actor_losses = [], []
        for i in range(num_updates):
            c, a = self.train_step(*(batch[name][i] for name in _FIELDS))
            critic_losses.append(c)
            actor_losses.append(a)
        self.updates += num_updates
        if num_updates == 1:
            return {"critic_loss": critic_losses[0], "actor_loss": actor_losses[0]}
        return {
            "critic_loss": torch.stack(critic_losses).mean(),
            "actor_loss": torch.stack(actor_losses).mean(),
        }

    def _sample(self, num_updates: int) -> dict[str, torch.Tensor]:
        """Uniform batches ``[num_updates, batch, ...]`` of the fields ``_FIELDS``."""
        if isinstance(self.replay, ReplayBuffer):
            return self.replay.sample(self.config.batch_size, num_updates)
        rows = self.replay.sample(self.config.batch_size * num_updates)
        rows["done"] = rows["terminated"]
        return {k: rows[k].unflatten(0, (num_updates, -1)) for k in _FIELDS}

    def bootstrap_target(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``r + gamma (1 - d) Q'(s', mu'(s'))``."""
        next_obs = batch["next_obs"]
        next_q = self.q_target(next_obs, self.mu_target(next_obs))
        return batch["reward"] + self.config.gamma * (1.0 - batch["done"]) * next_q

    def actor_loss(self, batch: dict[str, torch.Tensor], action: torch.Tensor) -> torch.Tensor:
        """``-mean Q(s, mu(s))``: ascend the critic."""
        return -self.q(batch["obs"], action).mean()


def _make_noise(
    cfg: DDPGConfig, members: int, act_dim: int, dev: torch.device, gen: torch.Generator
) -> GaussianNoise | OrnsteinUhlenbeckNoise:
    if cfg.noise == "ou":
        return OrnsteinUhlenbeckNoise(
            members, act_dim, cfg.noise_sigma, cfg.ou_theta, cfg.ou_dt, device=dev, generator=gen
        )
    if cfg.noise == "gaussian" and cfg.noise_sigma > 0:
        return GaussianNoise(members, act_dim, cfg.noise_sigma, device=dev, generator=gen)
    return NoNoise(members, act_dim, device=dev, generator=gen)
