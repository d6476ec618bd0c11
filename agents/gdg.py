"""Goal-distance gradient (GDG; Jiang & Qin 2020, arXiv 2001.00127), with bridge points.

The agent ignores the environment's reward. A critic learns the distance D(s, a, g): the
number of transitions from s, taking a and then following the policy, until the achieved
goal reaches g. The deterministic actor descends its gradient, ``min D(s, pi(s, g), g)``
(a DDPG-style policy gradient on distance instead of return). To escape the local optima
of a distance that ignores walls, the agent plans bridge points (``rlwb.agents.bridges``):
intermediate goals ``b* = argmin_b D(s, b) + D(b, g)`` over visited states.

Only the paper's abstract and introduction are readable and no code was published, so
these choices are ours (the reading of ../shared/REFERENCES.md, "GDG"):

* Target ``0`` when the next state's achieved goal reaches g (the task's success test),
  else ``1 + (1 - terminated) D'(s', pi'(s', g), g)`` with target networks; undiscounted;
  clipped to ``[0, T]`` with T the episode length. So D counts the steps before the one
  that arrives (one less than the steps taken). The critic's output layer is linear;
  D >= 0 holds for its targets, and uses of D clamp at 0.
* Goals are relabelled in hindsight from the same trajectory (HER's ``future``
  strategy, 80% of each batch); rewards are not used, only the success test.
* The actor minimises ``D(s, pi(s, g), g)`` plus HER's action penalty; networks,
  target updates and exploration are DDPG's (``rlwb.agents.ddpg`` networks, Gaussian noise
  plus HER's random actions).
* Bridge points: candidates are ``candidates`` visited states drawn uniformly from the
  replay; a bridge is planned at an episode's start when D(s0, g) is large and whenever
  progress towards g stalls; it is pursued until reached or a step budget proportional to
  D(s, b) runs out (``BridgeConfig``). Bridges act in training and in evaluation; an agent
  restored from a policy-only checkpoint has no replay and so no bridges.

What we saw (benchmarks/RESULTS.md): on the open maze GDG learns fast and its distance
ranks states by true steps-to-goal (Spearman about 0.85). On the deceptive maze the learned
distance ignores walls near them (an MLP over (x, y) generalises across the thin wall
under the goal), so many bridge points land inside the cup; those in the side corridors
are the ones that help.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from rlwb.agents.bridges import BridgeConfig, BridgePlanner
from rlwb.agents.goal_base import GoalAgent, GoalAgentConfig


@dataclass
class GDGConfig(GoalAgentConfig):
    bridges: bool = True
    """Plan bridge points (off: GDG alone)."""
    bridge: BridgeConfig = field(default_factory=BridgeConfig)

    def validate(self) -> None:
        super().validate()
        self.bridge.validate()


class GDG(GoalAgent):
    """Goal-distance gradient agent (see the module docstring)."""

    config_class = GDGConfig

    def __init__(self, config: GDGConfig, spec, device) -> None:
        super().__init__(config, spec, device)
        self.planners: dict[bool, BridgePlanner] = {}
        # Bridge candidates outside training come from their own stream, so evaluating
        # never changes the training run's random draws.
        self.eval_generator = torch.Generator(device=self.device)
        seed = torch.randint(0, 2**62, (1,), generator=self.generator, device=self.device)
        self.eval_generator.manual_seed(int(seed))

    # ------------------------------------------------------------------ distance
    def bootstrap_target(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        nxt = batch["next_obs"]
        onward = self.critic_target(nxt, self.actor_target(nxt)).clamp(min=0.0)
        target = 1.0 + (1.0 - batch["terminated"]) * onward
        target = torch.where(self.reached(nxt), torch.zeros_like(target), target)
        return target.clamp(0.0, float(self.horizon))

    def actor_objective(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.critic(obs, action)

    @torch.no_grad()
    def distance_estimate(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic(obs, self.actor(obs)).clamp(min=0.0)

    def distance_to(self, obs: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """D(s, pi(s, goal), goal) for ``goal`` swapped into ``obs``."""
        return self.distance_estimate(self.with_goal(obs, goal))

    # ------------------------------------------------------------------ bridges
    def planner(self, training: bool, members: int) -> BridgePlanner:
        """The bridge state of the training stream or of the other (evaluation) stream."""
        plan = self.planners.get(training)
        if plan is None or plan.active.shape[0] != members:
            goal_dim = self.goal_cols.stop - self.goal_cols.start
            plan = BridgePlanner(
                self.config.bridge,
                members,
                lambda obs: obs[..., self.achieved_cols],
                goal_dim,
                self.device,
            )
            self.planners[training] = plan
        return plan

    def visited(self, k: int, training: bool = True) -> torch.Tensor | None:
        """``k`` visited observations from the replay (bridge candidates), or None."""
        if len(self.replay) == 0:
            return None
        generator = self.generator if training else self.eval_generator
        return self.replay.sample(k, generator)["next_obs"]

    def policy_obs(self, obs: torch.Tensor, explore: bool) -> torch.Tensor:
        if not self.config.bridges:
            return obs
        plan = self.planner(explore, obs.shape[0])
        goal = plan.goals(
            obs,
            obs[:, self.achieved_cols],
            obs[:, self.goal_cols],
            self.distance_to,
            self.goal_reached,
            lambda k: self.visited(k, explore),
            detect_resets=not explore,
        )
        return self.with_goal(obs, goal)

    def episode_start(self, members: torch.Tensor) -> None:
        self.planner(True, members.shape[0]).restart(members.to(self.device, torch.bool))

    def state_dict(self) -> dict:
        """The goal agent's state plus the training stream's bridge state (exact resume)."""
        plan = self.planners.get(True)
        return {
            **super().state_dict(),
            "bridges": plan.state_dict() if plan else None,
            "eval_generator": self.eval_generator.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        if "eval_generator" in state:
            self.eval_generator.set_state(state["eval_generator"])
        if state.get("bridges") is not None:
            members = state["bridges"]["active"].shape[0]
            self.planner(True, members).load_state_dict(state["bridges"])

    def update(self, num_updates: int = 1) -> dict:
        out = super().update(num_updates)
        if False in self.planners:  # the next evaluation plans on the new distance
            self.planners[False].invalidate()
        plan = self.planners.get(True)
        if out and plan is not None:
            out["bridges_planned"] = plan.planned
        return out
