"""Bridge points for GDG: intermediate goals chosen from visited states by a learned distance.

A :class:`BridgePlanner` keeps, per engine member, whether a bridge point is being pursued,
which, for how many more steps, and how the distance to the real goal has progressed. Each
:meth:`BridgePlanner.goals` call (one per env step) returns the goal the policy should
chase now:

* a bridge is planned (no bridge being active) at the start of an episode far from its
  goal (``D(s0, g) > start_threshold``) and when progress stalls: ``D(s, g)`` has not
  dropped by ``min_progress`` for ``patience`` steps (with ``stuck_radius > 0``, also the
  achieved goal moved less than that over those steps: an escape for an agent that has
  stopped, since a detour that works makes D rise too, but it moves);
* ``search="graph"`` (the default; after Search on the Replay Buffer, Eysenbach et al.
  2019): a graph of visited states spread over the replay (``rlwb.agents.goal.bridge_graph``;
  rebuilt every ``refresh`` planner calls). Its edges (``certified``, the default) are the
  fewest steps a stored episode took from near one node to near another, up to
  ``link_window``, counted both ways; SoRB's learned distances of at most ``max_edge``
  steps are the edges with ``certified=False`` or without stored trajectories. The
  bridge is the first hop of the shortest path from s to g: ``argmin_j D(s, j) +
  path(j, g)`` over nodes with ``min_hop <= D(s, j) <= max_edge`` (certified: also one
  observed edge from a node at hand); the real goal is chased instead when it is no
  farther than that: ``D(s, g) <= max_edge`` (certified: a node at hand has an observed
  edge into the goal's region, and its steps are the distance). Reaching a bridge plans
  the next hop at once, so the agent walks the path.
  Re-planning on failure: a hop that runs out of budget cuts its edges (from the nodes the
  agent was at to the bridge) and plans again at once; stalling while chasing the goal
  itself cuts the goal's edges from every node within one edge of where it stalled. Cuts
  belong to one member and last until its episode ends or the graph is rebuilt. Without
  any path to g (the replay has not linked it yet) the agent heads along the graph for the
  frontier: the reachable node nearest g in goal space among those it has not been within
  one edge of this episode and, certified, among the rarely visited ones
  (``frontier_rare``: the edge of explored space, not the much-visited trap nearest the
  goal); ``frontier`` off: the one-hop rule below, or (certified) the goal itself;
* ``search="one_hop"`` (and the graph's fallback): the bridge is
  ``b* = argmin_b D(s, b) + D(b, g)`` over the candidates with ``D(s, b)`` in
  ``[min_hop, max_hop]`` (the paper's single bridge point);
* a bridge is pursued until reached (the task's success test) or until its budget
  ``ceil(budget_scale * D(s, b)) + budget_slack`` steps ends; then the graph plans the next
  hop, the one-hop rule waits for a stall.

The planner never changes what is stored: replay keeps the real goals, and hindsight
relabelling teaches the policy to reach visited states anyway.

Episode starts: the training stream is told by ``episode_start``; streams that are not
(evaluation rollouts) restart a member when its desired goal changes or its achieved goal
jumps farther than ``teleport`` in one step (a reset). One ``any()`` per step decides
whether to plan at all (a host sync on CUDA, once per env step).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from rlwb.agents.goal.bridge_graph import edge_weights, node_labels, observed_steps, spread, to_goal
from rlwb.errors import ConfigError

SEARCHES = ("graph", "one_hop")


@dataclass
class BridgeConfig:
    search: str = "graph"
    """``graph``: shortest path over visited states joined by short learned distances;
    ``one_hop``: one bridge ``argmin_b D(s, b) + D(b, g)``."""
    start_threshold: float = 10.0
    """Plan at the episode start when D(s0, g) exceeds this many steps (inf: never; plan
    only on a stall)."""
    stuck_radius: float = 0.0
    """A stall also needs the achieved goal to have moved less than this (goal units) over
    the last ``patience`` steps (0: a stall of D alone; 0.5 makes bridges an escape for an
    agent that has stopped)."""
    training: bool = True
    """Plan bridges in training episodes too (off: training acts exactly as GDG alone, so
    it gathers the same goal-directed data; bridges act in evaluation only)."""
    patience: int = 15
    """Steps without progress (and, with ``stuck_radius``, without moving) before planning
    a bridge."""
    min_progress: float = 1.0
    """Decrease of D(s, g) (steps) that counts as progress."""
    candidates: int = 256
    """Visited states drawn as bridge candidates (graph nodes)."""
    oversample: int = 64
    """Graph: nodes are spread (farthest-point sampling) over this many times
    ``candidates`` uniform replay draws."""
    min_hop: float = 5.0
    """Least D(s, b) of a bridge (steps): not the state the agent is already at."""
    max_hop: float = 40.0
    """One-hop rule: the longest D(s, b) a bridge may be from s."""
    max_edge: float = 8.0
    """Graph: the longest learned distance (steps) trusted as an edge."""
    refresh: int = 250
    """Graph: planner calls (env steps) between rebuilds of the nodes and edges."""
    certified: bool = True
    """Graph: edges are the fewest steps a stored episode took from within ``link_radius``
    of node i to within it of node j (at most ``link_window``), not learned distances;
    goal edges likewise into the goal's region, and the goal is chased directly only from
    nodes that led there: a learned distance that leaks through a wall is never trusted
    (needs the replay's trajectories)."""
    link_radius: float = 0.5
    """Certified graph: how near (goal units) a stored row must pass a node to count."""
    link_window: int = 16
    """Certified graph: most stored steps between the two ends of an observed link."""
    link_both_ways: bool = True
    """Certified graph: an observed link certifies the way back too (reversible dynamics,
    as in mazes: a wall no stored episode crossed stays uncrossed either way)."""
    frontier: bool = True
    frontier_rare: float = 0.25
    """Observed graph: the frontier is chosen among the nodes whose stored visits are at
    most this quantile of all nodes' (count-based: the edge of explored space, not the
    much-visited trap nearest the goal); 1: any node."""
    """Graph without a path to g: head for the frontier (the reachable node nearest g in
    goal space, not yet within one edge this episode) instead of the one-hop rule."""
    budget_scale: float = 1.5
    budget_slack: int = 5
    teleport: float = 1.0
    """Achieved-goal jump (goal units) taken as a reset in streams without episode_start."""

    def validate(self) -> None:
        if self.search not in SEARCHES:
            raise ConfigError(f"BridgeConfig.search must be one of {SEARCHES}, got {self.search!r}")
        for name in ("patience", "candidates", "refresh", "oversample", "link_window"):
            if getattr(self, name) < 1:
                raise ConfigError(f"BridgeConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.stuck_radius < 0:
            raise ConfigError(f"BridgeConfig.stuck_radius must be >= 0, got {self.stuck_radius}")
        if not 0 <= self.frontier_rare <= 1:
            raise ConfigError(
                f"BridgeConfig.frontier_rare must be in [0, 1], got {self.frontier_rare}"
            )
        if self.link_radius <= 0:
            raise ConfigError(f"BridgeConfig.link_radius must be > 0, got {self.link_radius}")
        if self.max_edge <= 0:
            raise ConfigError(f"BridgeConfig.max_edge must be > 0, got {self.max_edge}")


class BridgePlanner:
    """Per-member bridge state for one stream of observations (see the module docstring)."""

    def __init__(
        self,
        config: BridgeConfig,
        members: int,
        achieved_of: Callable[[torch.Tensor], torch.Tensor],
        goal_dim: int,
        device: torch.device,
    ) -> None:
        self.config, self.achieved_of = config, achieved_of
        z = dict(device=device)
        self.active = torch.zeros(members, dtype=torch.bool, **z)
        self.bridge = torch.zeros(members, goal_dim, **z)
        self.budget = torch.zeros(members, dtype=torch.int64, **z)
        self.best = torch.full((members,), math.inf, **z)
        self.stalled = torch.zeros(members, dtype=torch.int64, **z)
        self.fresh = torch.ones(members, dtype=torch.bool, **z)
        self.last_goal = torch.full((members, goal_dim), math.nan, **z)
        self.last_achieved = torch.full((members, goal_dim), math.nan, **z)
        # Per member: its achieved goals of the last ``patience`` steps (a ring, slot
        # ``steps % patience``; nan: not yet in this episode).
        self.trail = torch.full((members, config.patience, goal_dim), math.nan, **z)
        self.steps = 0
        self.chosen: list[torch.Tensor] = []  # bridge points planned (for pictures)
        self.planned = 0
        # The graph (rlwb.agents.goal.bridge_graph): node observations, their achieved goals,
        # trusted edges, and planner calls since it was built (None: build at the next
        # plan); per member the edges (cut) and node -> goal edges (cut_goal) it no longer
        # trusts, and the nodes near where its current hop began (hop_from) and its target.
        self.nodes: torch.Tensor | None = None
        self.node_points: torch.Tensor | None = None
        self.edges: torch.Tensor | None = None
        self.cut: torch.Tensor | None = None
        self.cut_goal: torch.Tensor | None = None
        self.hop_from: torch.Tensor | None = None
        self.hop_to: torch.Tensor | None = None
        self.tried: torch.Tensor | None = None
        self.observed = False  # edges are observed steps (certified), not learned
        self.visits: torch.Tensor | None = None  # observed graph: stored rows per node
        # A saved graph to plan on where there is no replay to build one from (the
        # evaluation copy of an agent restored from its policy: ``export_graph``).
        self.frozen: dict | None = None
        self.graph_age = 0

    def invalidate(self) -> None:
        """Rebuild the graph at the next plan (the distance has changed)."""
        for k in self._GRAPH:
            setattr(self, k, None)

    def restart(self, members: torch.Tensor) -> None:
        """Forget the members in bool mask ``members`` (a new episode)."""
        self.active &= ~members
        self.best = torch.where(members, math.inf, self.best)
        self.stalled = torch.where(members, 0, self.stalled)
        self.fresh |= members
        self.trail[members] = math.nan
        if self.cut is not None:  # a new episode trusts the graph again
            self.cut &= ~members[:, None, None]
            self.cut_goal &= ~members[:, None]
            self.tried &= ~members[:, None]

    def goals(
        self,
        obs: torch.Tensor,
        achieved: torch.Tensor,
        goal: torch.Tensor,
        distance: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        reached: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        visited: Callable[[int], torch.Tensor | None],
        detect_resets: bool,
        paths: Callable[[], tuple[torch.Tensor, torch.Tensor] | None] | None = None,
    ) -> torch.Tensor:
        """The goal each member chases now ``[B, G]``.

        ``distance(obs, goal) -> [B]`` is the learned D(s, pi(s, g), g) with ``goal``
        swapped into ``obs``; ``reached(achieved, goal) -> [B]`` the success test;
        ``visited(K)`` returns K visited observations ``[K, obs_dim]`` or None;
        ``paths()`` the stored achieved goals ``[M, T, G]`` in time order and their episode
        ids ``[M, T]`` (or None), for the ``certified`` graph.
        """
        cfg = self.config
        if detect_resets:
            jump = torch.linalg.vector_norm(achieved - self.last_achieved, dim=-1)
            new_goal = (goal != self.last_goal).any(-1)
            self.restart(new_goal | (jump > cfg.teleport) | jump.isnan())
        self.last_goal, self.last_achieved = goal.clone(), achieved.clone()
        d_goal = distance(obs, goal)
        # Bridges end when reached or out of budget; the progress baseline restarts there.
        self.budget -= self.active.long()
        self.graph_age += 1
        arrived = self.active & reached(achieved, self.bridge)
        done = self.active & (arrived | (self.budget <= 0))
        failed = done & ~arrived
        if cfg.search == "graph" and self.cut is not None and bool(failed.any()):
            # The hop did not arrive: cut its edges from the nodes it began near.
            m = failed.nonzero().squeeze(1)
            self.cut[m, :, self.hop_to[m]] |= self.hop_from[m]
        self.active &= ~done
        improved = d_goal < self.best - cfg.min_progress
        reset_best = improved | done
        self.best = torch.where(reset_best, d_goal, self.best)
        self.stalled = torch.where(reset_best | self.active, 0, self.stalled + 1)
        stall = ~self.active & (self.stalled >= cfg.patience)
        slot = self.steps % cfg.patience
        if cfg.stuck_radius > 0:  # and it has not moved (nan, too few steps: it has)
            moved = torch.linalg.vector_norm(achieved - self.trail[:, slot], dim=-1)
            stall &= moved < cfg.stuck_radius
        self.trail[:, slot] = achieved
        self.steps += 1
        want = ~self.active & ((self.fresh & (d_goal > cfg.start_threshold)) | stall)
        if cfg.search == "graph":  # walk the path; after a failed hop, plan round it
            want |= done
        self.fresh = torch.zeros_like(self.fresh)
        if bool(want.any()):
            self._plan(want, obs, goal, distance, visited, paths)
        return torch.where(self.active[:, None], self.bridge, goal)

    def _plan(self, want, obs, goal, distance, visited, paths=None) -> None:
        cfg = self.config
        stalled = want & (self.stalled >= cfg.patience)
        self.stalled = torch.where(want, 0, self.stalled)
        if cfg.search == "graph" and (self.nodes is None or self.graph_age >= cfg.refresh):
            self.build_graph(distance, visited, paths)
        cand = self.nodes if cfg.search == "graph" else visited(cfg.candidates)
        if cand is None:
            return
        idx = want.nonzero().squeeze(1)
        p, k = len(idx), cand.shape[0]
        points = self.achieved_of(cand)  # [K, G]
        here = obs[idx].unsqueeze(1).expand(p, k, -1).reshape(p * k, -1)
        to_bridge = distance(here, points.repeat(p, 1)).reshape(p, k)
        there = cand.unsqueeze(0).expand(p, k, -1).reshape(p * k, -1)
        onward = distance(there, goal[idx].repeat_interleave(k, 0)).reshape(p, k)
        total = torch.where(
            (to_bridge >= cfg.min_hop) & (to_bridge <= cfg.max_hop), to_bridge + onward, math.inf
        )
        if cfg.search == "graph":
            total = self._graph_costs(idx, stalled[idx], to_bridge, onward, obs, goal, distance,
                                      total)  # fmt: skip
        best, arg = total.min(1)
        ok = torch.isfinite(best)
        chosen = points[arg]
        budget = torch.ceil(cfg.budget_scale * to_bridge.gather(1, arg[:, None]).squeeze(1))
        sel = idx[ok]
        self.bridge[sel] = chosen[ok]
        self.budget[sel] = budget[ok].long() + cfg.budget_slack
        self.active[sel] = True
        if cfg.search == "graph":
            self.hop_to[sel] = arg[ok]
            self.hop_from[sel] = self._near(to_bridge)[ok]
        self.planned += int(ok.sum())
        self.chosen = (self.chosen + [chosen[ok].cpu()])[-64:]

    def _near(self, to_nodes: torch.Tensor) -> torch.Tensor:
        """``[P, K]`` the nodes a member is at: within ``min_hop`` or the closest."""
        closest = to_nodes == to_nodes.amin(1, keepdim=True)
        return (to_nodes <= self.config.min_hop) | closest

    def _graph_costs(self, idx, stalled, to_bridge, onward, obs, goal, distance, one_hop):
        """``[P, K]`` cost of hopping to each node on the way to the goal (inf: not a
        first hop); inf everywhere where the goal is best chased directly; ``one_hop``
        where the graph has no path at all."""
        cfg = self.config
        near = self._near(to_bridge)
        # Stalled while chasing the goal itself: no node one edge from here is trusted to
        # reach it in one edge (wormholes come in rows, along the wall they cross).
        local = near | (to_bridge <= cfg.max_edge)
        self.cut_goal[idx] |= local & stalled[:, None]
        cut, cut_goal = self.cut[idx], self.cut_goal[idx]
        if self.observed:  # observed steps into the goal's region
            last = torch.where(cut_goal, math.inf, self._observed_to_goal(goal[idx]))
        else:
            last = torch.where((onward <= cfg.max_edge) & ~cut_goal, onward, math.inf)
        path = to_goal(self.edges, cut, last)  # [P, K]
        blocked = (near.unsqueeze(2) & cut).any(1)  # hops already failed from here
        hop_ok = (to_bridge >= cfg.min_hop) & (to_bridge <= cfg.max_edge) & ~blocked
        if self.observed:  # the first hop too: one observed edge from a node at hand
            hop_ok &= (near.float() @ torch.isfinite(self.edges).float()) > 0
        via = torch.where(hop_ok, to_bridge + path, math.inf)
        if self.observed:  # from where stored episodes went on to the goal in one edge
            d_goal = torch.where(near, last, math.inf).amin(1)
            direct = torch.isfinite(d_goal)
        else:
            d_goal = distance(obs[idx], goal[idx])
            direct = (d_goal <= cfg.max_edge) & ~(near & cut_goal).any(1)
        chase_goal = direct & (d_goal <= via.amin(1))
        has_path = torch.isfinite(via).any(1)
        self.tried[idx] |= local
        # No path: the paper's one bridge; on the observed graph, the goal itself (a
        # bridge chosen by learned distances alone is what the graph exists to avoid).
        fallback = torch.full_like(one_hop, math.inf) if self.observed else one_hop
        if cfg.frontier and not bool(has_path.all()):
            fallback = self._toward_frontier(idx, hop_ok, to_bridge, goal[idx])
        return torch.where(chase_goal[:, None], math.inf,
                           torch.where(has_path[:, None], via, fallback))  # fmt: skip

    def _observed_to_goal(self, goal: torch.Tensor) -> torch.Tensor:
        """``[P, K]`` observed graph: fewest stored steps from each node to a node whose
        region may hold rows within ``link_radius`` of the goal (nodes within twice that
        of it; 0 for those; inf: none seen)."""
        at_goal = torch.cdist(goal, self.node_points) <= 2 * self.config.link_radius
        into = torch.where(at_goal[:, None, :], self.edges[None], math.inf)  # [P, K, K]
        return into.amin(-1)

    def _toward_frontier(self, idx, hop_ok, to_bridge, goal):
        """``[P, K]`` hop costs towards the frontier: the node reachable from here (over
        uncut edges) nearest the goal in goal space, among nodes this member has not yet
        been within one edge of since its episode began."""
        cut, points = self.cut[idx], self.node_points
        first = torch.where(hop_ok, to_bridge, math.inf)
        reach = to_goal(self.edges.T, cut.transpose(1, 2), first)  # [P, K] from here
        gap = torch.cdist(goal, points)  # [P, K]
        eligible = torch.isfinite(reach) & ~self.tried[idx]
        if self.observed and self.config.frontier_rare < 1:  # rarely visited nodes only
            rare = self.visits <= torch.quantile(self.visits.float(), self.config.frontier_rare)
            eligible &= rare
        gap = torch.where(eligible, gap, math.inf)
        target = gap.argmin(1)
        last = torch.full_like(gap, math.inf)
        last[torch.arange(len(idx), device=last.device), target] = 0.0
        path = to_goal(self.edges, cut, last)
        ok = torch.isfinite(gap.amin(1))
        return torch.where(ok[:, None] & hop_ok, to_bridge + path, math.inf)

    def build_graph(self, distance, visited, paths=None) -> None:
        """Nodes spread over a replay sample, trusted edges, no cuts (bridge_graph); with
        no replay (a policy-only agent), the ``frozen`` graph it was saved with."""
        cfg = self.config
        sample = visited(cfg.candidates * cfg.oversample)
        if sample is None:
            if self.frozen is not None:
                self._install(**self.frozen)
            return
        nodes = sample[spread(self.achieved_of(sample), cfg.candidates)]
        points = self.achieved_of(nodes)
        stored = paths() if cfg.certified and paths is not None else None
        visits = None
        if stored is not None:
            path, episode = stored
            label = node_labels(path, points, cfg.link_radius)
            steps = observed_steps(label, episode, len(nodes), cfg.link_window)
            edges = torch.minimum(steps, steps.T) if cfg.link_both_ways else steps
            visits = torch.bincount(label[label >= 0], minlength=len(nodes))
        else:
            edges = edge_weights(nodes, points, distance, cfg.max_edge)
        self._install(nodes, points, edges, visits, stored is not None)

    def _install(self, nodes, node_points, edges, visits, observed) -> None:
        """Plan on this graph from now on, every member trusting all of it."""
        m, k, dev = self.active.shape[0], nodes.shape[0], self.active.device
        self.nodes, self.node_points = nodes.to(dev), node_points.to(dev)
        self.edges = edges.to(dev)
        self.visits = None if visits is None else visits.to(dev)
        self.observed = bool(observed)
        self.cut = torch.zeros(m, k, k, dtype=torch.bool, device=dev)
        self.cut_goal = torch.zeros(m, k, dtype=torch.bool, device=dev)
        self.hop_from = torch.zeros(m, k, dtype=torch.bool, device=dev)
        self.hop_to = torch.zeros(m, dtype=torch.long, device=dev)
        self.tried = torch.zeros(m, k, dtype=torch.bool, device=dev)
        self.graph_age = 0

    def export_graph(self) -> dict | None:
        """The graph (CPU tensors) for :attr:`frozen` of another planner, or None."""
        if self.nodes is None:
            return None
        graph = {k: getattr(self, k) for k in ("nodes", "node_points", "edges", "visits")}
        return {**{k: None if v is None else v.cpu() for k, v in graph.items()},
                "observed": self.observed}  # fmt: skip

    _STATE = ("active", "bridge", "budget", "best", "stalled", "fresh", "last_goal",
              "last_achieved", "trail")  # fmt: skip

    _GRAPH = ("nodes", "node_points", "edges", "visits", "cut", "cut_goal", "hop_from",
              "hop_to", "tried")  # fmt: skip

    def state_dict(self) -> dict:
        """Per-member state and the graph (CPU tensors) and counters, for exact resume."""
        graph = {k: None if getattr(self, k) is None else getattr(self, k).cpu()
                 for k in self._GRAPH}  # fmt: skip
        return {
            **{k: getattr(self, k).cpu() for k in self._STATE},
            **graph,
            "planned": self.planned,
            "steps": self.steps,
            "graph_age": self.graph_age,
            "observed": self.observed,
        }

    def load_state_dict(self, state: dict) -> None:
        dev = self.active.device
        for k in self._STATE:
            if k in state:  # checkpoints from before a field existed keep its default
                setattr(self, k, state[k].to(dev).clone())
        for k in self._GRAPH:
            value = state.get(k)
            setattr(self, k, None if value is None else value.to(dev).clone())
        self.planned = int(state["planned"])
        self.steps = int(state.get("steps", 0))
        self.graph_age = int(state.get("graph_age", 0))
        self.observed = bool(state.get("observed", False))

    def recent_bridges(self) -> torch.Tensor:
        """Up to the last 64 planning calls' bridge points ``[N, G]`` on the CPU."""
        return torch.cat(self.chosen) if self.chosen else torch.zeros(0, self.bridge.shape[1])
