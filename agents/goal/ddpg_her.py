"""DDPG + hindsight experience replay (Andrychowicz et al. 2017), the baseline of GDG.

The rlwb DDPG networks (:mod:`rlwb.agents.ddpg`) over the trajectory storage's hindsight
relabelling (:meth:`rlwb.replay.TrajectoryBuffer.sample_her`), with HER's own settings
(Plappert et al. 2018): ``future`` goals for 80% of a batch, polyak 0.95, action L2
penalty 1, 30% random actions plus Gaussian noise 0.2 while exploring, gamma 0.98.

Deviations: the target ``r + gamma (1 - terminated) Q'(s', mu'(s'))`` is clipped to
``+-1 / (1 - gamma)`` (HER's ``clip_return``, made symmetric because the point mazes reward
0/1 where Gymnasium-Robotics rewards -1/0); no observation normalisation (the point mazes'
coordinates are of order 1; HER normalises for the Fetch tasks).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rlwb.agents.goal.base import GoalAgent, GoalAgentConfig


@dataclass
class DDPGHERConfig(GoalAgentConfig):
    gamma: float = 0.98


class DDPGHER(GoalAgent):
    """DDPG on relabelled goals, maximising the discounted task reward."""

    config_class = DDPGHERConfig

    def bootstrap_target(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        gamma = self.config.gamma
        next_q = self.q_target(batch["next_obs"], self.mu_target(batch["next_obs"]))
        target = batch["reward"] + gamma * (1.0 - batch["terminated"]) * next_q
        bound = 1.0 / (1.0 - gamma) if gamma < 1 else float(self.horizon)
        return target.clamp(-bound, bound)

    def actor_objective(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return -self.q(obs, action)

    @torch.no_grad()
    def distance_estimate(self, obs: torch.Tensor) -> torch.Tensor:
        return -self.critic(obs, self.actor(obs))
