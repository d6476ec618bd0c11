"""Goal-distance gradient (GDG; Jiang & Qin 2020, arXiv 2001.00127), with bridge points.

The agent ignores the environment's reward. A critic learns the distance D(s, a, g): the
number of transitions from s, taking a and then following the policy, until the achieved
goal reaches g. The deterministic actor descends its gradient, ``min D(s, pi(s, g), g)``
(a DDPG-style policy gradient on distance instead of return). To escape the local optima
of a distance that ignores walls, the agent plans bridge points (``rlwb.agents.goal.bridges``):
intermediate goals among visited states, on a shortest path to g over a graph of the
replay's own transitions (the paper's ``b* = argmin_b D(s, b) + D(b, g)`` is the
``one_hop`` option).

Only the paper's abstract and introduction are readable and no code was published, so
these choices are ours:

* Target ``0`` when the next state's achieved goal reaches g (the task's success test);
  else ``T`` (the episode length, the largest distance the targets represent) when the
  episode terminated there, since a terminated state that missed g can never reach it (a
  target of 1 would make a crash look one step from the goal); else
  ``1 + D'(s', pi'(s', g), g)`` with target networks; undiscounted; clipped to ``[0, T]``.
  So D counts the steps before the one that arrives (one less than the steps taken). The
  critic's output layer is linear; D >= 0 holds for its targets, and uses of D clamp at 0.
* Goals are relabelled in hindsight from the same trajectory (HER's ``future``
  strategy, 80% of each batch); rewards are not used, only the success test.
* The actor minimises ``D(s, pi(s, g), g)`` plus HER's action penalty; networks, gradient
  step and target updates are DDPG's (``rlwb.agents.ddpg`` networks on the shared core of
  ``rlwb.actor_critic``), exploration is Gaussian noise plus HER's random actions.
* Bridge points (``rlwb.agents.goal.bridges``, ``rlwb.agents.goal.bridge_graph``): the paper's
  ``argmin_b D(s, b) + D(b, g)`` over visited states trusts D at every range, and on the
  deceptive maze that sends the agent into the cup under the goal. So bridges are planned
  on a graph of visited states, as in SoRB (the paper's closest public relative), spread
  over the replay by farthest-point sampling; the next bridge is the first hop of the
  shortest path to g, a hop that fails cuts its edges and the agent re-plans at once.
  ``BridgeConfig(search="one_hop")`` is the paper's single bridge point.
* The graph's edges are observed, not learned (``certified``, our choice): the fewest
  steps a stored episode took from near one node to near another (up to 16, both ways),
  goal edges likewise into the goal's region, and the goal is chased directly only from
  where stored episodes went on to it. The learned distance still picks the first hop
  (``min_hop <= D(s, b) <= max_edge``, 5 to 8 steps) and drives the policy. Why: D leaks
  through walls and saturates at long range (below), so a graph of learned edges, even
  short ones, holds wormholes through the wall above the cup, and SoRB's graph of learned
  edges (``certified=False``) lost seeds that GDG alone solves. Without any path to g the
  agent heads for the frontier: the reachable, rarely visited node (``frontier_rare``:
  visits in the lowest quarter) nearest g, which explores the top row instead of returning
  to the much-visited cup top nearest g.
* When bridges act (the paper says only that they escape local optima): in training and
  in evaluation, from the start of an episode far from its goal (``start_threshold=10``
  steps) and on any stall of D(s, g) (``patience=15``). ``BridgeConfig(training=False,
  stuck_radius=0.5, patience=25, start_threshold=inf)`` makes bridges an evaluation-time
  escape for a stuck agent instead (training exactly GDG alone's); ``certified=False,
  min_hop=3, frontier_rare=1`` plans on learned edges as SoRB does. A policy file carries
  the bridge graph of the replay at the time it was saved (graph search): an agent
  restored from it (``rlwb eval``, the runner's evaluation copy) has no replay and plans
  on that graph.

The distance's wall leak, checked (seed 0, 20k steps on the deceptive maze; numbers in
benchmarks/RESULTS.md): the targets are as above (0 on arrival, else 1 + D' bootstrapped,
relabelled rows never terminal, clip [0, T]). Short distances are right (4-6 steps per
cell for pairs one cell apart); long ones are underestimated (about 25 steps for 13 cells,
some 55 true steps), and across the wall under the goal they are extrapolation: no
trajectory links the two sides at short range, so no target ever covers those pairs.
Giving 30% of each batch goals from random stored states (``random_goal_prob``, kept as
an option, default 0) made the leak worse (cup-top -> above-the-wall 11-22 steps instead
of 18-72). Hence the planner, not the critic, carries the fix, and it trusts what the
replay shows.

What it achieves (benchmarks/RESULTS.md, "a bridge graph of observed transitions"): on
the deceptive maze, from r to the goal behind the cup, 20 seeds, success 0.97 at 20k env
steps against GDG alone's 0.33, at least as good as GDG alone on every seed; at 10k 0.69
against 0.11 (GDG alone ahead on 2 seeds). Open maze and U-maze: as GDG alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from rlwb.agent import PolicyNetwork
from rlwb.agents.goal.base import GoalAgent, GoalAgentConfig
from rlwb.agents.goal.bridges import BridgeConfig, BridgePlanner
from rlwb.errors import CheckpointError


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
        # The graph a policy-only copy plans on (it has no replay): see policy_state_dict.
        self.frozen_graph: dict | None = None

    # ------------------------------------------------------------------ distance
    def bootstrap_target(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        nxt = batch["next_obs"]
        onward = self.q_target(nxt, self.mu_target(nxt)).clamp(min=0.0)
        cap = float(self.horizon)  # a terminated state that missed g never reaches it
        target = torch.where(batch["terminated"] > 0, cap, 1.0 + onward)
        target = torch.where(self.reached(nxt), torch.zeros_like(target), target)
        return target.clamp(0.0, float(self.horizon))

    def actor_objective(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.q(obs, action)

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
            plan = self.planners[training] = self._new_planner(members)
        return plan

    def _new_planner(self, members: int) -> BridgePlanner:
        goal_dim = self.goal_cols.stop - self.goal_cols.start
        plan = BridgePlanner(self.config.bridge, members,
                             lambda obs: obs[..., self.achieved_cols], goal_dim,
                             self.device)  # fmt: skip
        plan.frozen = self.frozen_graph
        return plan

    def visited(self, k: int, training: bool = True) -> torch.Tensor | None:
        """``k`` visited observations from the replay (bridge candidates), or None."""
        if len(self.replay) == 0:
            return None
        generator = self.generator if training else self.eval_generator
        return self.replay.sample(k, generator)["next_obs"]

    def stored_paths(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The replay's achieved goals ``[M, T, G]`` in time order and episode ids, or None."""
        if len(self.replay) == 0:
            return None
        path, episode = self.replay.in_order("next_obs")
        return path[..., self.achieved_cols], episode

    def policy_obs(self, obs: torch.Tensor, explore: bool) -> torch.Tensor:
        if not self.config.bridges or (explore and not self.config.bridge.training):
            return obs  # GDG alone, or training episodes when bridges act in evaluation only
        plan = self.planner(explore, obs.shape[0])
        goal = plan.goals(
            obs,
            obs[:, self.achieved_cols],
            obs[:, self.goal_cols],
            self.distance_to,
            self.goal_reached,
            lambda k: self.visited(k, explore),
            detect_resets=not explore,
            paths=self.stored_paths,
        )
        return self.with_goal(obs, goal)

    def policy_network(self) -> PolicyNetwork:
        net = super().policy_network()
        if self.config.bridges:
            net.differs_from_act = (
                "GDG's act first swaps a planned bridge point (a graph search over the "
                "replay) into the desired goal; this is the goal-conditioned actor alone: "
                "give it a bridge point as the goal to follow one"
            )
        return net

    def episode_start(self, members: torch.Tensor) -> None:
        self.planner(True, members.shape[0]).restart(members.to(self.device, torch.bool))

    @torch.no_grad()
    def bridge_graph(self) -> dict | None:
        """The graph an evaluation would plan on now, built from the replay (None without
        graph bridges or replay). Its replay draws come from a generator seeded by the
        update count, so saving a policy touches none of the run's random streams."""
        cfg = self.config.bridge
        if not self.config.bridges or cfg.search != "graph" or len(self.replay) == 0:
            return None
        draws = torch.Generator(device=self.device).manual_seed(self.updates)
        plan = self._new_planner(1)
        plan.build_graph(self.distance_to, lambda k: self.replay.sample(k, draws)["next_obs"],
                         self.stored_paths)  # fmt: skip
        return plan.export_graph()

    def policy_state_dict(self) -> dict:
        """Actor, critic and, with graph bridges, the bridge graph of the replay as it is
        now: an agent restored from its policy (``rlwb eval``, the runner's evaluation
        copy) has no replay, and plans its bridges on this graph instead."""
        state = super().policy_state_dict()
        graph = self.bridge_graph()
        if graph is not None:
            state["bridge_graph"] = graph
        return state

    def load_policy_state_dict(self, state: dict) -> None:
        super().load_policy_state_dict(state)
        graph = state.get("bridge_graph")
        if graph is not None:
            keys = {"nodes", "node_points", "edges", "visits", "observed"}
            nodes, edges = graph.get("nodes"), graph.get("edges")
            if (
                set(graph) != keys
                or not isinstance(nodes, torch.Tensor)
                or nodes.ndim != 2
                or nodes.shape[1] != self.spec.observation_shape[0]
                or not isinstance(edges, torch.Tensor)
                or edges.shape != (len(nodes), len(nodes))
            ):
                raise CheckpointError("policy checkpoint's bridge graph does not fit this agent")
        self.frozen_graph = graph
        for plan in self.planners.values():  # the next plan installs the new graph
            plan.frozen = graph
            plan.invalidate()

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
        evaluation = self.planners.get(False)
        if evaluation is not None:  # the next evaluation plans afresh, on the new distance
            evaluation.invalidate()
            evaluation.restart(torch.ones_like(evaluation.active))
        return out

    def metrics(self) -> dict[str, float]:
        """The goal agent's measurements plus ``gdg/bridges_planned``: bridge points the
        training episodes have planned so far."""
        out = super().metrics()
        plan = self.planners.get(True)
        if plan is not None:
            out["gdg/bridges_planned"] = float(plan.planned)
        return out
