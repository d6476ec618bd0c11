"""What goal-reaching agents share: the goal task, HER replay, DDPG networks, monitoring.

:class:`GoalAgent` is an off-policy actor-critic (:class:`rlwb.actor_critic.ActorCriticAgent`
with the actor and critic networks of :mod:`rlwb.agents.ddpg`) over a goal-conditioned flat
observation (``observation_slices`` names ``achieved_goal`` and ``desired_goal``). It
stores trajectories per engine member in :class:`rlwb.replay.TrajectoryBuffer`, samples
hindsight-relabelled batches, and reports through :meth:`GoalAgent.metrics` the training
success rate, the final distance to the goal and, on tasks that know their true distances
(the point mazes' ``steps_to_goal``), how well the critic ranks a fixed probe set.
Subclasses say what the critic learns (:meth:`GoalAgent.bootstrap_target`) and what the
actor optimises (:meth:`GoalAgent.actor_objective`).

Episodes that end on success (``terminate_on_success``) stop bootstrapping only for the
goal they ended on: relabelled rows of such a step do not count as terminal. A termination
without success (a crash, a fall) is terminal for every goal (:meth:`GoalAgent.terminal`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from rlwb import agent_kit as kit
from rlwb.actor_critic import ActorCriticAgent
from rlwb.agent import PolicyNetwork, ScaledPolicy
from rlwb.agents.ddpg import Actor, Critic, DDPGConfig
from rlwb.engine.base import EngineSpec
from rlwb.errors import ConfigError
from rlwb.goals import goal_task, observation_slices
from rlwb.noise import GaussianNoise
from rlwb.replay import HER_STRATEGIES, TrajectoryBuffer

PROBE_SIZE = 512
_FIELDS = ("obs", "action", "reward", "next_obs", "terminated")


@dataclass
class GoalAgentConfig:
    """Shared hyperparameters (HER's defaults where they exist: Plappert et al. 2018)."""

    hidden: tuple[int, ...] = (256, 256)
    actor_lr: float = 1e-3
    critic_lr: float = 1e-3
    tau: float = 0.05
    """Target update rate (HER's polyak 0.95)."""
    batch_size: int = 256
    buffer_size: int = 1_000_000
    her_strategy: str = "future"
    relabel_prob: float = 0.8
    """Share of relabelled goals (HER's replay_k = 4)."""
    random_goal_prob: float = 0.0
    """Share of each batch whose goal is instead the achieved goal of a random stored
    transition (any episode): pairs a trajectory never links, so the critic's targets also
    cover goals behind walls (0: HER alone)."""
    noise_sigma: float = 0.2
    """Gaussian exploration noise in the normalised action space."""
    random_eps: float = 0.3
    """Probability of a uniform random action while exploring (HER)."""
    action_l2: float = 1.0
    """Penalty on the squared normalised action in the actor loss (HER)."""
    probe_every: int = 1000
    """Updates between probes of the critic against true distances (0: never)."""
    cuda_graph: bool = True
    """On CUDA, capture the gradient step as a CUDA graph (ignored on CPU)."""
    seed: int | None = None
    torch_threads: int = 1

    def validate(self) -> None:
        name = type(self).__name__
        for field, ok in (
            ("hidden", len(self.hidden) > 0 and all(h > 0 for h in self.hidden)),
            ("actor_lr", self.actor_lr > 0),
            ("critic_lr", self.critic_lr > 0),
            ("tau", 0 < self.tau <= 1),
            ("batch_size", self.batch_size >= 1),
            ("buffer_size", self.buffer_size >= 1),
            ("her_strategy", self.her_strategy in HER_STRATEGIES),
            ("relabel_prob", 0 <= self.relabel_prob <= 1),
            ("random_goal_prob", 0 <= self.random_goal_prob <= 1),
            ("noise_sigma", self.noise_sigma >= 0),
            ("random_eps", 0 <= self.random_eps <= 1),
            ("action_l2", self.action_l2 >= 0),
            ("probe_every", self.probe_every >= 0),
        ):
            if not ok:
                raise ConfigError(f"{name}.{field} is invalid: {getattr(self, field)!r}")


def spearman(x: torch.Tensor, y: torch.Tensor) -> float:
    """Spearman rank correlation of two ``[N]`` tensors (ties broken by order)."""

    def ranks(v: torch.Tensor) -> torch.Tensor:
        r = torch.empty_like(v, dtype=torch.float64)
        r[v.argsort()] = torch.arange(len(v), dtype=torch.float64, device=v.device)
        return r - r.mean()

    rx, ry = ranks(x), ranks(y)
    return float((rx * ry).sum() / (rx.norm() * ry.norm()).clamp(min=1e-12))


class GoalAgent(ActorCriticAgent):
    """Goal-conditioned actor-critic with hindsight replay (see the module docstring)."""

    #: The critic is part of acting for GDG's bridge points.
    policy_parts = ("actor", "critic")

    config_class: type = GoalAgentConfig

    def __init__(self, config: GoalAgentConfig, spec: EngineSpec, device: torch.device | str):
        if not isinstance(config, self.config_class):
            raise ConfigError(
                f"{type(self).__name__} needs a {self.config_class.__name__}, got "
                f"{type(config).__name__}"
            )
        config.validate()
        obs_dim, act_dim = self.prelude(config, spec, device)
        dev = self.device
        self.task = goal_task(spec)
        self.slices = observation_slices(spec, self.task)
        self.goal_cols = slice(*self.slices["desired_goal"])
        self.achieved_cols = slice(*self.slices["achieved_goal"])
        self.horizon = int(spec.max_episode_steps or 1000)
        nets = DDPGConfig(hidden=tuple(config.hidden))
        self.build_actor_critic(
            lambda: Actor((obs_dim,), act_dim, nets),
            lambda: Critic((obs_dim,), act_dim, nets),
            _FIELDS,
        )
        self.replay = TrajectoryBuffer(
            max(config.buffer_size, spec.num_envs),
            spec.num_envs,
            {
                "obs": ((obs_dim,), torch.float32),
                "action": ((act_dim,), torch.float32),
                "next_obs": ((obs_dim,), torch.float32),
                "terminated": ((), torch.float32),
            },
            device=dev,
            generator=self.generator,
        )
        self.noise = GaussianNoise(
            spec.num_envs, act_dim, config.noise_sigma, device=dev, generator=self.generator
        )
        # Training episodes finished since metrics() last reported them: successes,
        # summed final distances, count.
        self.stats = torch.zeros(3, dtype=torch.float64, device=dev)
        self._probe = self._make_probe()
        self._probed: dict[str, float] = {}  # the latest probe, until metrics() takes it

    # ------------------------------------------------------------------ goals
    def with_goal(self, obs: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """``obs`` with its desired goal replaced by ``goal`` (broadcast over leading dims)."""
        out = obs.clone()
        out[..., self.goal_cols] = goal
        return out

    def goal_reached(self, achieved: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """``[B]`` bool: ``achieved`` is within reach of ``goal`` (the task's test)."""
        if hasattr(self.task, "goal_reached"):
            return self.task.goal_reached(achieved, goal)
        return self.task.compute_reward(achieved, goal) >= 0  # Gymnasium-Robotics: 0 or -1

    def reached(self, obs: torch.Tensor) -> torch.Tensor:
        """``[B]`` bool: the achieved goal of ``obs`` reaches its desired goal."""
        return self.goal_reached(obs[..., self.achieved_cols], obs[..., self.goal_cols])

    # ------------------------------------------------------------------ acting
    def policy_obs(self, obs: torch.Tensor, explore: bool) -> torch.Tensor:
        """The observation the actor sees (GDG swaps in bridge points here)."""
        return obs

    @torch.no_grad()
    def act(self, obs: torch.Tensor, explore: bool = False) -> torch.Tensor:
        obs = obs.to(self.device, torch.float32)
        action = self.actor(self.policy_obs(obs, explore))
        if explore:
            action = (action + self.noise.sample()).clamp_(-1.0, 1.0)
            shape = action.shape
            uniform = torch.rand(shape, generator=self.generator, device=self.device) * 2 - 1
            coin = torch.rand(shape[0], generator=self.generator, device=self.device)
            action = torch.where((coin < self.config.random_eps)[:, None], uniform, action)
        return action * self.action_scale + self.action_bias

    def policy_network(self) -> PolicyNetwork:
        """The goal-conditioned actor scaled to the bounds."""
        return PolicyNetwork(ScaledPolicy(self.actor, self.action_scale, self.action_bias))

    # ------------------------------------------------------------------ learning
    def observe(self, obs, action, reward, next_obs, terminated, truncated) -> None:
        """Store the step per member (the env reward is not stored: goals are relabelled
        and rewards recomputed) and count finished episodes' success and distance."""
        dev = self.device
        obs, next_obs = obs.to(dev, torch.float32), next_obs.to(dev, torch.float32)
        norm = kit.to_unit(action, self.action_scale, self.action_bias)
        terminated, truncated = terminated.to(dev), truncated.to(dev)
        done = terminated | truncated
        self.replay.add(
            done=done, obs=obs, action=norm, next_obs=next_obs, terminated=terminated.float()
        )
        dist = torch.linalg.vector_norm(
            next_obs[:, self.achieved_cols] - next_obs[:, self.goal_cols], dim=-1
        )
        success = self.reached(next_obs).to(torch.float64)
        d = done.to(torch.float64)
        self.stats += torch.stack([(success * d).sum(), (dist.double() * d).sum(), d.sum()])

    def terminal(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``[batch]`` float, 1 where the row's stored step ends the chase of the row's goal.

        A termination on success belongs to the goal it was reached for: a relabelled row
        goes on (the state can still move towards other goals). A termination without
        success (a crash, a fall) ends the episode whatever the goal, so it stays terminal
        on relabelled rows too."""
        terminated = batch["terminated"] > 0
        stored = self.replay.gather(batch["member"], batch["step"])["next_obs"]
        failed = terminated & ~self.reached(stored)
        return torch.where(batch["relabelled"], failed, terminated).float()

    def actor_objective(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """``[batch]`` quantity the actor minimises (before the action penalty)."""
        raise NotImplementedError

    def actor_loss(self, batch: dict[str, torch.Tensor], action: torch.Tensor) -> torch.Tensor:
        """The subclass's objective plus HER's penalty on the squared normalised action."""
        loss = self.actor_objective(batch["obs"], action).mean()
        return loss + self.config.action_l2 * action.pow(2).mean()

    def distance_estimate(self, obs: torch.Tensor) -> torch.Tensor:
        """``[B]`` the critic's reading of how far each observation is from its goal."""
        raise NotImplementedError

    def update(self, num_updates: int = 1) -> dict[str, Any]:
        """``num_updates`` gradient steps, each on a fresh hindsight-relabelled batch whose
        terminal flags follow :meth:`terminal`; the mean losses (0-dim tensors)."""
        if num_updates < 1 or len(self.replay) == 0:
            return {}
        cfg = self.config
        critic_losses, actor_losses = [], []
        for _ in range(num_updates):
            batch = self.replay.sample_her(
                cfg.batch_size,
                self.task.compute_reward,
                self.slices,
                cfg.her_strategy,
                cfg.relabel_prob,
            )
            if cfg.random_goal_prob > 0:
                self.random_goals(batch, cfg.random_goal_prob)
            batch["terminated"] = self.terminal(batch)
            critic_loss, actor_loss = self.train_step(*(batch[name] for name in _FIELDS))
            critic_losses.append(critic_loss)
            actor_losses.append(actor_loss)
            self.updates += 1
        if cfg.probe_every and self.updates % cfg.probe_every < num_updates:
            self._probed = self.probe()
        return {
            "critic_loss": torch.stack(critic_losses).mean(),
            "actor_loss": torch.stack(actor_losses).mean(),
        }

    def metrics(self) -> dict[str, float]:
        """What the agent measured since the last call: ``goal/success_rate`` and
        ``goal/final_distance`` of the training episodes that finished (once there are 20
        of them), and the latest probe of the critic against true distances
        (``goal/probe_*``, every ``probe_every`` updates, on tasks that know them)."""
        found = {**self.episode_report(), **self._probed}
        self._probed = {}
        return {f"goal/{key}": value for key, value in found.items()}

    def random_goals(self, batch: dict[str, torch.Tensor], prob: float) -> None:
        """Give a share ``prob`` of ``batch``'s rows (in place) the achieved goal of a
        uniformly drawn stored transition, reward recomputed, marked relabelled."""
        n = batch["obs"].shape[0]
        other = self.replay.sample(n, self.generator)["next_obs"][:, self.achieved_cols]
        pick = torch.rand(n, generator=self.generator, device=self.device) < prob
        goal = torch.where(pick[:, None], other, batch["obs"][:, self.goal_cols])
        for key in ("obs", "next_obs"):
            batch[key] = self.with_goal(batch[key], goal)
        batch["reward"] = self.task.compute_reward(batch["next_obs"][:, self.achieved_cols], goal)
        batch["relabelled"] = batch["relabelled"] | pick

    def episode_report(self, min_episodes: int = 20) -> dict[str, float]:
        """Success rate and final distance of the training episodes finished since the last
        report, once there are ``min_episodes`` of them (one host sync)."""
        successes, distance, count = self.stats.tolist()
        if count < min_episodes:
            return {}
        self.stats.zero_()
        return {"success_rate": successes / count, "final_distance": distance / count}

    # ------------------------------------------------------------------ probing
    def _make_probe(self) -> dict[str, torch.Tensor] | None:
        """A fixed set of observations with their true steps-to-goal, if the task knows."""
        if not hasattr(self.task, "steps_to_goal") or not hasattr(self.task, "probe_state"):
            return None
        gen = torch.Generator().manual_seed(12345)
        state = self.task.probe_state(PROBE_SIZE, gen)
        obs = self.task.observation(state).to(self.device, torch.float32)
        true = self.task.steps_to_goal(obs[:, self.achieved_cols], obs[:, self.goal_cols])
        return {"obs": obs, "true": true.to(self.device)}

    @torch.no_grad()
    def probe_distances(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The critic's distance and the true steps-to-goal ``([N], [N])`` on the fixed
        probe set, or None where the task does not know its true distances."""
        if self._probe is None:
            return None
        return self.distance_estimate(self._probe["obs"]), self._probe["true"]

    def probe(self) -> dict[str, float]:
        """Spearman rank correlation of the critic's distance with the true one, and both
        means, on the fixed probe set."""
        found = self.probe_distances()
        if found is None:
            return {}
        learned, true = found
        return {
            "probe_spearman": spearman(learned, true),
            "probe_learned_mean": float(learned.mean()),
            "probe_true_mean": float(true.float().mean()),
        }

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "stats": self.stats.cpu()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        with kit.checkpoint_fits(type(self).__name__):
            self.stats = state["stats"].to(self.device)
