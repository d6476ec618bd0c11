"""Goal tasks, bridge points, GDG / DDPG+HER learning the open goal maze in a CI budget, and
GDG with against without bridge points on the deceptive maze (one seed; the 10-seed
comparison lives in benchmarks/gdg_bench.py, numbers in benchmarks/RESULTS.md).
"""

import io
import math

import numpy as np
import pytest
import torch

from rlwb import checkpoint
from rlwb.agents.goal.bridge_graph import node_labels, observed_steps
from rlwb.agents.goal.bridges import BridgeConfig, BridgePlanner
from rlwb.agents.goal.ddpg_her import DDPGHER, DDPGHERConfig
from rlwb.agents.goal.gdg import GDG, GDGConfig
from rlwb.config import from_dict
from rlwb.engine import make_engine
from rlwb.engine.adapters import SB3GoalVecEnvView
from rlwb.errors import CheckpointError, ConfigError
from rlwb.evaluate import run_evaluation, spec_from_dict
from rlwb.stepping import training_steps
from rlwb.tasks import get

MAZE_KW = {"min_goal_distance": 2.0, "max_episode_steps": 50, "terminate_on_success": True}


def test_goal_maze_options():
    engine = make_engine("PointMaze-Open-Goal-v0", 2000, backend="torch", seed=0, **MAZE_KW)
    obs = engine.reset(seed=0)
    task = engine.task
    a, b = task.observation_slices["achieved_goal"], task.observation_slices["desired_goal"]
    assert (a, b) == ((4, 6), (6, 8))
    start = torch.linalg.vector_norm(obs[:, 4:6] - obs[:, 6:8], dim=1)
    assert (start >= 2.0).float().mean() > 0.995  # else the farthest of 32 draws
    assert not task.goal_reached(obs[:, a[0] : a[1]], obs[:, b[0] : b[1]]).any()
    deceptive = get("PointMaze-Deceptive-Goal-v0").build(goal_cell_prob=1.0)
    state = deceptive.reset_state(64, torch.Generator().manual_seed(0))
    goal_cell = deceptive.goal_cells[0]
    assert (torch.linalg.vector_norm(state[:, 4:6] - goal_cell, dim=1) <= 0.25 * 2**0.5).all()
    # From r round the cup to g: 4 + 5 + 4 cells.
    steps = deceptive.steps_to_goal(state[:, 0:2], state[:, 4:6])
    assert torch.equal(steps, torch.full((64,), 13.0))
    with pytest.raises(ConfigError, match="goal_cell_prob"):
        get("PointMaze-Open-Goal-v0").build(goal_cell_prob=2.0)
    for bad in (
        {"search": "astar"},
        {"max_edge": 0.0},
        {"candidates": 0},
        {"frontier_rare": 1.5},
        {"link_radius": 0.0},
        {"link_window": 0},
    ):
        with pytest.raises(ConfigError, match="BridgeConfig"):
            GDG(GDGConfig(bridge=BridgeConfig(**bad)), engine.spec, "cpu")


def test_sb3_goal_view_presents_dict_observations_and_compute_reward():
    engine = make_engine("PointMaze-Open-Goal-v0", 3, backend="torch", seed=0, **MAZE_KW)
    view = SB3GoalVecEnvView(engine)
    obs = view.reset()
    assert set(obs) == {"observation", "achieved_goal", "desired_goal"}
    assert obs["observation"].shape == (3, 4) and obs["desired_goal"].shape == (3, 2)
    goal = obs["desired_goal"]
    reward = view.env_method("compute_reward", goal + 0.1, goal, [{}] * 3, indices=[0])[0]
    assert np.array_equal(reward, np.ones(3, dtype=np.float32))
    far = view.env_method("compute_reward", goal + 5.0, goal, [{}] * 3, indices=[0])[0]
    assert np.array_equal(far, np.zeros(3, dtype=np.float32))


def _deceptive_planner(distance=None, **overrides):
    """A planner on the deceptive maze with every open cell as a candidate; its distance is
    the true one (4 steps per cell) unless ``distance`` is given."""
    task = get("PointMaze-Deceptive-Goal-v0").build()
    cfg = BridgeConfig(**{"patience": 3, "min_hop": 4.0, "max_hop": 40.0, **overrides})
    planner = BridgePlanner(cfg, 1, lambda o: o[..., 4:6], 2, torch.device("cpu"))
    cells = task.open_cells

    def true_distance(obs, goal):
        return 4.0 * task.steps_to_goal(obs[:, 4:6], goal)

    def visited(k):
        return torch.cat([cells, torch.zeros_like(cells), cells, cells], 1)  # every open cell

    return task, planner, distance or true_distance, visited


def _chase(task, planner, distance, visited, detect_resets=False, paths=None):
    def chase(o):
        return planner.goals(
            o, o[:, 4:6], o[:, 6:8], distance, task.goal_reached, visited, detect_resets,
            paths=paths,
        )  # fmt: skip

    return chase


def _at(point, goal):
    return torch.cat([point, torch.zeros(1, 2), point, goal], 1)


def _walk(task, planner, chase, start, goal, hops=30):
    """Stall at ``start`` until a bridge is planned, then jump to each bridge in turn until
    the real goal is handed back; the points visited."""
    obs, path = _at(start, goal), [start]
    for _ in range(planner.config.patience + 1):
        chased = chase(obs)
    for _ in range(hops):
        if torch.equal(chased, goal):
            return path
        path.append(chased)
        obs = _at(chased, goal)
        chased = chase(obs)
    raise AssertionError("the walk never handed the goal back")


def _path_steps(task, path, goal):
    points = [*path, goal]
    return sum(float(task.steps_to_goal(a, b)) for a, b in zip(points, points[1:], strict=False))


def test_one_hop_bridge_goes_round_the_cup_after_a_stall():
    task, planner, distance, visited = _deceptive_planner(
        search="one_hop", start_threshold=math.inf
    )
    chase = _chase(task, planner, distance, visited)
    top_of_cup = torch.tensor([task.cell_center(3, 5)])  # right under the wall below g
    goal = torch.tensor([task.cell_center(1, 5)])
    path = _walk(task, planner, chase, top_of_cup, goal)
    assert len(path) == 2 and planner.planned == 1  # one bridge, then the real goal
    hop = task.steps_to_goal(top_of_cup, path[1])
    assert _path_steps(task, path, goal) == float(task.steps_to_goal(top_of_cup, goal)) == 16.0
    assert hop >= 1  # a real hop, on a shortest path: down out of the cup and round
    assert not bool(planner.active[0])


def test_graph_search_walks_a_shortest_path_of_short_hops():
    task, planner, distance, visited = _deceptive_planner(start_threshold=math.inf, max_edge=10.0)
    chase = _chase(task, planner, distance, visited)
    top_of_cup = torch.tensor([task.cell_center(3, 5)])
    goal = torch.tensor([task.cell_center(1, 5)])
    path = _walk(task, planner, chase, top_of_cup, goal)
    hops = [float(task.steps_to_goal(a, b)) for a, b in zip(path, path[1:], strict=False)]
    assert _path_steps(task, path, goal) == 16.0  # every hop on a shortest path
    assert all(1 <= h <= 2.5 for h in hops) and len(path) >= 7  # edges <= 10 steps
    assert planner.planned == len(path) - 1


def test_graph_search_escapes_a_distance_that_leaks_through_walls():
    """A distance that is right up to one cell but ignores walls beyond (Euclidean): the
    one-hop rule heads straight for the goal through the cup; graph search, trusting only
    edges of one cell, goes round on a shortest path."""
    task = get("PointMaze-Deceptive-Goal-v0").build()

    def leaky(obs, goal):
        euclid = torch.linalg.vector_norm(obs[:, 4:6] - goal, dim=-1)
        return 4.0 * torch.where(euclid <= 1.01, task.steps_to_goal(obs[:, 4:6], goal), euclid)

    def crosses_a_wall(a, b):  # the true path is longer than the Manhattan one
        return float(task.steps_to_goal(a, b)) > float((a - b).abs().sum()) + 1e-6

    start = torch.tensor([task.cell_center(6, 5)])  # r, under the cup
    goal = torch.tensor([task.cell_center(1, 5)])
    for search in ("one_hop", "graph"):
        _, planner, distance, visited = _deceptive_planner(
            leaky, search=search, max_edge=4.5, start_threshold=math.inf
        )
        path = _walk(task, planner, _chase(task, planner, distance, visited), start, goal)
        legs = list(zip(path, [*path[1:], goal], strict=True))
        assert any(crosses_a_wall(a, b) for a, b in legs) == (search == "one_hop"), path
    assert _path_steps(task, path, goal) == 13.0 and len(path) == 13  # graph: cell by cell


def test_observed_steps_link_only_what_a_stored_episode_did():
    points = torch.tensor([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [0.0, 5.0]])
    # One member: an episode walks node 0 -> 1 -> 2 in half steps, the next starts at 3.
    path = torch.tensor([[[0.0, 0.0], [0.5, 0.0], [1.0, 0.0], [1.5, 0.0], [2.0, 0.0],
                          [0.0, 5.0]]])  # fmt: skip
    episode = torch.tensor([[0, 0, 0, 0, 0, 1]])
    inf = math.inf
    label = node_labels(path, points, radius=0.3)
    assert label.tolist() == [[0, -1, 1, -1, 2, 3]]
    steps = observed_steps(label, episode, 4, window=4)
    expected = torch.tensor([[0, 2, 4, inf], [inf, 0, 2, inf], [inf, inf, 0, inf],
                             [inf, inf, inf, 0]])  # fmt: skip
    assert torch.equal(steps, expected)
    assert torch.isinf(observed_steps(label, episode, 4, window=3)[0, 2])
    # Rows farther than the radius from every node count for none.
    assert (node_labels(path + 0.4, points, 0.3) == -1).all()


def _walked_round_the_left_corridor(task):
    """One stored episode from r round the left corridor to g, 4 rows a cell (the point
    mass's pace): achieved goals ``[1, T, 2]`` and episode ids ``[1, T]``."""
    cells = [(6, j) for j in (5, 4, 3, 2, 1)] + [(i, 1) for i in (5, 4, 3, 2, 1)]
    cells += [(1, j) for j in (2, 3, 4, 5)]
    centres = torch.tensor([task.cell_center(i, j) for i, j in cells])
    quarter = torch.linspace(0, 1, 5)[:-1, None]
    walk = [a + quarter * (b - a) for a, b in zip(centres, centres[1:], strict=False)]
    path = torch.cat([*walk, centres[-1:]])
    return path[None], torch.zeros(1, len(path), dtype=torch.long)


def test_observed_graph_never_trusts_a_distance_that_leaks_through_a_wall():
    """The leaky distance at every range (4 steps a cell, Euclidean) with edges of two
    cells: the learned-edge graph's walk from r crosses the wall (the wormhole above the
    cup); the observed graph, built from a stored walk round the left corridor, goes
    round on legs that cross no wall."""
    task = get("PointMaze-Deceptive-Goal-v0").build()

    def leaky(obs, goal):
        return 4.0 * torch.linalg.vector_norm(obs[:, 4:6] - goal, dim=-1)

    def crosses_a_wall(a, b):
        return float(task.steps_to_goal(a, b)) > float((a - b).abs().sum()) + 1e-6

    start = torch.tensor([task.cell_center(6, 5)])
    goal = torch.tensor([task.cell_center(1, 5)])
    stored = _walked_round_the_left_corridor(task)
    for certified in (False, True):
        _, planner, distance, visited = _deceptive_planner(
            leaky, max_edge=8.5, start_threshold=math.inf, certified=certified
        )
        chase = _chase(task, planner, distance, visited, paths=lambda: stored)
        path = _walk(task, planner, chase, start, goal)
        legs = list(zip(path, [*path[1:], goal], strict=True))
        assert any(crosses_a_wall(a, b) for a, b in legs) != certified, path
    assert planner.observed and _path_steps(task, path, goal) == 13.0


def test_graph_search_cuts_an_edge_that_fails_and_plans_round_it():
    """Trusting two cells lets the leaky distance's wormhole through the wall above the
    cup into the graph. A simulated agent that moves only along wall-free legs stalls on
    it; the hop runs out of budget, its edge is cut, and the re-planned walk gets round."""
    task = get("PointMaze-Deceptive-Goal-v0").build()

    def leaky(obs, goal):
        euclid = torch.linalg.vector_norm(obs[:, 4:6] - goal, dim=-1)
        return 4.0 * torch.where(euclid <= 1.01, task.steps_to_goal(obs[:, 4:6], goal), euclid)

    _, planner, distance, visited = _deceptive_planner(leaky, max_edge=8.5, start_threshold=0.0)
    chase = _chase(task, planner, distance, visited)
    here = torch.tensor([task.cell_center(3, 5)])  # top of the cup, right under g
    goal = torch.tensor([task.cell_center(1, 5)])
    stuck = 0
    for _ in range(200):
        target = chase(_at(here, goal))
        legal = float(task.steps_to_goal(here, target)) <= float((here - target).abs().sum())
        stuck += not legal
        if legal:  # the agent gets there; a leg through a wall leaves it where it is
            here = target
        if task.goal_reached(here, goal).all():
            break
    assert task.goal_reached(here, goal).all()
    assert stuck > 0 and int(planner.cut.sum() + planner.cut_goal.sum()) >= 1


class _Steer(torch.nn.Module):
    """A fixed controller for the point maze: accelerate towards the observed goal, damped."""

    def forward(self, obs):
        return (2.0 * (obs[:, 6:8] - obs[:, 0:2]) - 0.8 * obs[:, 2:4]).clamp(-1.0, 1.0)


def _fixed_gdg(bridges: bool, members: int, certified: bool = False, stored: bool = True):
    """GDG on the deceptive maze with its networks replaced by fixed functions: the
    controller above and a distance blind to walls (4 steps per cell, Euclidean: right in
    the open, so edges of one cell are right). Its replay holds every open cell (at rest,
    for the learned-edge graph) or, ``certified``, one stored walk from r round the left
    corridor to g per member (the observed graph's edges)."""
    kw = {"max_episode_steps": 100, "terminate_on_success": True, "goal_cell_prob": 1.0}
    engine = make_engine("PointMaze-Deceptive-Goal-v0", members, backend="torch", seed=3, **kw)
    bridge = BridgeConfig(max_edge=6.0, start_threshold=6.0, candidates=64, min_hop=2.0,
                          certified=certified)  # fmt: skip
    agent = GDG(GDGConfig(hidden=(8,), seed=0, bridges=bridges, bridge=bridge), engine.spec, "cpu")
    agent.actor = _Steer()

    agent.distance_estimate = lambda obs: (
        4.0 * torch.linalg.vector_norm(obs[:, 4:6] - obs[:, 6:8], dim=-1)
    )
    never = torch.zeros(members, dtype=torch.bool)
    if not stored:
        return agent, engine
    if certified:
        walk = _walked_round_the_left_corridor(agent.task)[0][0]
        for t in range(len(walk) - 1):
            here, there = walk[t].expand(members, 2), walk[t + 1].expand(members, 2)
            obs = torch.cat([here, torch.zeros_like(here), here, walk[-1].expand(members, 2)], 1)
            nxt = torch.cat([there, torch.zeros_like(there), there, obs[:, 6:8]], 1)
            last = torch.full((members,), t == len(walk) - 2)
            agent.observe(obs, torch.zeros(members, 2), torch.zeros(members), nxt, last, never)
        return agent, engine
    cells = agent.task.open_cells
    for i in range(0, len(cells), members):  # every open cell, at rest
        xy = cells[torch.arange(i, i + members) % len(cells)]
        obs = torch.cat([xy, torch.zeros_like(xy), xy, xy], 1)
        agent.observe(obs, torch.zeros(members, 2), torch.zeros(members), obs, never, never)
    return agent, engine


@pytest.mark.parametrize(("bridges", "certified"), [(False, False), (True, False), (True, True)])
def test_bridges_get_round_the_deceptive_cup_where_the_distance_gradient_does_not(
    bridges, certified
):
    """The contrast bridge points exist for, made deterministic and CI-sized: the same
    controller and the same wall-blind distance, from r to the goal behind the cup. Without
    bridge points it runs into the cup and stays there (0 of 8 episodes); with graph bridge
    points it walks round, on learned edges (8 of 8 with evaluation seeds 3, 4 and 5) and on
    observed ones."""
    agent, engine = _fixed_gdg(bridges, members=8, certified=certified)
    returns, lengths = run_evaluation(agent, engine, seed=3)
    if bridges:
        assert float(returns.mean()) >= 0.75, (returns, lengths)
        assert agent.planners[False].planned > 0
        assert agent.planners[False].observed == certified
    else:
        assert float(returns.sum()) == 0.0


def test_a_policy_file_carries_the_bridge_graph():
    """The runner's evaluation copy and ``rlwb eval`` restore GDG from its policy, with no
    replay: the policy carries the replay's bridge graph, so the restored agent still
    walks round the cup (without it, it runs into the cup like GDG alone). Saving it draws
    from none of the run's random streams."""
    trained, engine = _fixed_gdg(True, members=8, certified=True)
    streams = trained.generator.get_state(), trained.eval_generator.get_state()
    policy = trained.policy_state_dict()
    assert torch.equal(streams[0], trained.generator.get_state())
    assert torch.equal(streams[1], trained.eval_generator.get_state())
    assert policy["bridge_graph"]["observed"] and len(policy["bridge_graph"]["nodes"]) > 0
    buffer = io.BytesIO()
    torch.save(policy, buffer)
    for carried in (True, False):
        restored, _ = _fixed_gdg(True, members=8, certified=True, stored=False)
        buffer.seek(0)
        saved = torch.load(buffer, weights_only=True)
        if not carried:
            del saved["bridge_graph"]
        restored.load_policy_state_dict(saved)
        returns, lengths = run_evaluation(restored, engine, seed=3)
        if carried:
            assert float(returns.mean()) >= 0.75, (returns, lengths)
            assert restored.planners[False].observed
        else:
            assert float(returns.sum()) == 0.0
    saved["bridge_graph"] = {**policy["bridge_graph"], "edges": torch.zeros(3, 3)}
    with pytest.raises(CheckpointError, match="bridge graph"):
        restored.load_policy_state_dict(saved)


ESCAPE_BRIDGES = BridgeConfig(
    start_threshold=math.inf, stuck_radius=0.5, training=False, patience=25
)
"""The evaluation-time escape option: bridges only once an evaluation member is stuck."""


def _deceptive_success(bridges: bool, seed: int, steps: int, bridge=None) -> float:
    """benchmarks/gdg_bench.py's deceptive-maze run, condensed: train GDG with the runner's
    loop (4 members, 1000 random steps, half an update per env step), then the success rate
    of 50 deterministic episodes from r to the goal behind the cup."""
    kw = {"min_goal_distance": 2.0, "max_episode_steps": 100, "terminate_on_success": True}
    torch.manual_seed(seed)
    engine = make_engine("PointMaze-Deceptive-Goal-v0", 4, backend="torch", seed=seed,
                         goal_cell_prob=0.5, **kw)  # fmt: skip
    cfg = GDGConfig(hidden=(64, 64), batch_size=128, seed=seed, probe_every=0, bridges=bridges,
                    bridge=bridge or BridgeConfig())  # fmt: skip
    agent = GDG(cfg, engine.spec, "cpu")
    for _ in training_steps(agent, engine, steps, 1000, updates_per_step=0.5, seed=seed):
        pass
    evaluation = make_engine("PointMaze-Deceptive-Goal-v0", 50, backend="torch",
                             seed=seed + 10_000, goal_cell_prob=1.0, **kw)  # fmt: skip
    evaluation.reset(seed=seed + 10_000)
    with torch.no_grad():
        result = evaluation.rollout(lambda o: agent.act(o), horizon=100)
    return float(result.terminated.any(1).float().mean())


@pytest.mark.parametrize("seed", [0, 7])
def test_bridges_solve_the_deceptive_maze_where_gdg_alone_does_not(seed):
    """The same contrast, learned, at 10k env steps (~40 s a seed for both on 2 quiet cores), the
    default planner (observed graph, bridges in training and evaluation): all 50 episodes
    from r reach the goal behind the cup, GDG alone's at most a fifth (measured with the
    runner's loop, seeds 0, 1, 7: 1.00 each with bridges, 0.18, 0.00, 0.10 alone;
    benchmarks/RESULTS.md, "a bridge graph of observed transitions": over 20 seeds at 20k, at
    least as good as GDG alone on every seed)."""
    assert _deceptive_success(True, seed=seed, steps=10_000) >= 0.75
    assert _deceptive_success(False, seed=seed, steps=10_000) <= 0.25


def test_bridges_wait_for_the_agent_to_be_stuck():
    """A stall of D alone also happens while the agent is still on the move (a detour that
    works makes D rise too), so with ``stuck_radius`` a bridge waits until it has also
    stopped."""
    for radius, plans in ((0.5, False), (0.0, True)):
        task, planner, distance, visited = _deceptive_planner(
            search="one_hop", start_threshold=math.inf, stuck_radius=radius
        )
        chase = _chase(task, planner, distance, visited)
        goal = torch.tensor([task.cell_center(1, 5)])
        for i in (6, 5, 4, 3):  # from r up into the cup, a cell a step: true D rises
            chase(_at(torch.tensor([task.cell_center(i, 5)]), goal))
        assert (planner.planned > 0) == plans, radius
    for _ in range(planner.config.patience + 1):  # standing still at the top: stuck
        chase(_at(torch.tensor([task.cell_center(3, 5)]), goal))
    assert planner.planned > 0


def test_evaluation_time_bridges_leave_training_as_gdg_alone():
    """The escape option plans bridges in evaluation only: training with it takes the same
    actions and learns the same networks as GDG alone, so it gathers GDG's own
    goal-directed data."""
    kw = {**MAZE_KW, "max_episode_steps": 30}
    agents = []
    for bridges in (True, False):
        torch.manual_seed(0)  # the networks' initial weights
        engine = make_engine("PointMaze-Deceptive-Goal-v0", 2, backend="torch", seed=0, **kw)
        cfg = GDGConfig(hidden=(16,), batch_size=16, seed=0, probe_every=0, bridges=bridges,
                        bridge=ESCAPE_BRIDGES)  # fmt: skip
        agent = GDG(cfg, engine.spec, "cpu")
        for _ in training_steps(agent, engine, 300, 100, updates_per_step=0.5, seed=0):
            pass
        agents.append(agent)
    with_b, alone = agents
    for a, b in zip(with_b.actor.parameters(), alone.actor.parameters(), strict=True):
        assert torch.equal(a, b)
    draw = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(with_b.replay.sample(64, draw[0])["obs"],
                       alone.replay.sample(64, draw[1])["obs"])  # fmt: skip


def test_bridge_budget_runs_out_and_resets_are_detected():
    task, planner, distance, visited = _deceptive_planner(
        search="one_hop", start_threshold=10.0, budget_slack=0
    )
    start = torch.tensor([task.cell_center(6, 5)])
    goal = torch.tensor([task.cell_center(1, 5)])
    obs = _at(start, goal)
    chase = _chase(task, planner, distance, visited, detect_resets=True)
    assert not torch.equal(chase(obs), goal)  # far at the start: plan at once
    budget = int(planner.budget[0])
    assert budget > 0
    for _ in range(budget - 1):
        assert bool(planner.active[0]) and not torch.equal(chase(obs), goal)
    chase(obs)
    assert not bool(planner.active[0])  # out of budget
    moved = obs.clone()
    moved[:, 6:8] = torch.tensor([task.cell_center(1, 1)])  # a new goal: a new episode
    chase(moved)
    assert bool(planner.active[0]) and planner.planned == 2


def _train(experiment: str, tmp_path, seed: int):
    import importlib

    module = importlib.import_module(f"rlwb.experiments.{experiment}")
    argv = [
        "--train.total-steps", "3000", "--train.eval-every", "0", "--train.checkpoint-every", "0",
        "--train.seed", str(seed), "--train.run-dir", str(tmp_path), "--train.no-progress",
    ]  # fmt: skip
    return module.main(argv)


@pytest.mark.parametrize(("experiment", "success"), [("gdg_maze", 0.9), ("ddpg_her_maze", 0.3)])
def test_agents_reach_open_maze_goals_and_rank_distances(experiment, success, tmp_path):
    """3000 env steps (~1000 updates): GDG succeeds in >= 90% of 50 evaluation episodes
    (measured 100% on seeds 0-3), DDPG+HER, slower here, in >= 30% (measured 42-82%); an
    untrained actor barely moves (0%). The critic ranks a probe set of 512 states by true
    steps-to-goal with Spearman >= 0.6 (untrained: |rho| < 0.5)."""
    result = _train(experiment, tmp_path, seed=1)
    assert result.eval_mean >= success, result.eval_mean
    payload = checkpoint.load(result.checkpoint)  # torch.load(weights_only=True)
    agent_state = payload["agent"]
    spec = spec_from_dict(payload["spec"], torch.device("cpu"))
    cls = GDG if experiment == "gdg_maze" else DDPGHER
    agent = cls(from_dict(cls.config_class, payload["agent_config"]), spec, "cpu")
    untrained = agent.probe()["probe_spearman"]
    agent.load_state_dict(agent_state)
    probe = agent.probe()
    assert probe["probe_spearman"] >= 0.6, (probe, untrained)
    assert abs(untrained) < 0.5


def test_random_goal_relabelling_draws_stored_achieved_goals():
    engine = make_engine("PointMaze-Open-Goal-v0", 2, backend="torch", seed=0, **MAZE_KW)
    agent = GDG(GDGConfig(hidden=(8,), seed=0, random_goal_prob=0.5), engine.spec, "cpu")
    obs = engine.reset(seed=0)
    for _ in range(20):
        action = agent.act(obs, explore=True)
        nxt, reward, term, trunc, _ = engine.step(action)
        agent.observe(obs, action, reward, nxt, term, trunc)
        obs = nxt
    batch = agent.replay.sample_her(256, agent.task.compute_reward, agent.slices, "future", 0.0)
    before = batch["obs"][:, 6:8].clone()
    agent.random_goals(batch, 0.5)
    moved = (batch["obs"][:, 6:8] != before).any(1)
    assert 0.3 < float(moved.float().mean()) < 0.7 and batch["relabelled"][moved].all()
    stored = agent.replay.sample(4096, torch.Generator().manual_seed(1))["next_obs"][:, 4:6]
    exact = torch.cdist(
        batch["obs"][moved, 6:8], stored, compute_mode="donot_use_mm_for_euclid_dist"
    )
    assert exact.amin(1).max() < 1e-6  # every new goal is a stored achieved goal
    assert torch.equal(batch["next_obs"][:, 6:8], batch["obs"][:, 6:8])
    expected = agent.task.compute_reward(batch["next_obs"][:, 4:6], batch["obs"][:, 6:8])
    assert torch.equal(batch["reward"], expected)


def test_goal_reacher_rewards_match_compute_reward():
    engine = make_engine("ReacherGoal-v0", 4, backend="mujoco", seed=0)
    task = get("ReacherGoal-v0").build()
    (a0, a1), (d0, d1) = (
        task.observation_slices["achieved_goal"],
        task.observation_slices["desired_goal"],
    )
    engine.reset(seed=0)
    for _ in range(5):
        obs, reward, *_ = engine.step(torch.rand(4, 2) * 0.2 - 0.1)
        expected = task.compute_reward(obs[:, a0:a1], obs[:, d0:d1])
        assert torch.equal(reward.to(expected.dtype), expected)
    # Relabelled with its own fingertip, every row succeeds.
    assert task.compute_reward(obs[:, a0:a1], obs[:, a0:a1]).eq(1).all()
    assert GDG(GDGConfig(hidden=(16,)), engine.spec, "cpu").act(obs).shape == (4, 2)


def test_gymnasium_robotics_point_maze_is_a_goal_task():
    pytest.importorskip("gymnasium_robotics")
    engine = make_engine("PointMaze_UMaze-v3", 2, backend="gym", seed=0)
    agent = GDG(GDGConfig(hidden=(16,)), engine.spec, "cpu")
    assert agent.slices == {"achieved_goal": (0, 2), "desired_goal": (2, 4), "observation": (4, 8)}
    obs = engine.reset(seed=0)
    for _ in range(3):
        obs, reward, *_ = engine.step(agent.act(obs, explore=True))
        assert torch.equal(reward, agent.task.compute_reward(obs[:, 0:2], obs[:, 2:4]))
    engine.close()


@pytest.mark.parametrize("certified", [False, True])
def test_gdg_resumes_exactly_with_bridge_state(certified):
    """Train a few hundred steps, checkpoint (through torch.save/weights_only load),
    continue both copies: identical actions and losses (learned-edge and observed graph)."""
    kw = {**MAZE_KW, "max_episode_steps": 30}
    cfg = dict(hidden=(16,), batch_size=16, seed=0, probe_every=0)
    cfg_bridge = BridgeConfig(
        start_threshold=-1.0,
        patience=2,
        candidates=16,
        min_hop=2.0 if certified else -1.0,
        max_edge=6.0 if certified else 0.3,
        refresh=20,
        frontier=certified,  # observed: the frontier is what is planned this early
        training=True,
        certified=certified,
    )
    engines = [make_engine("PointMaze-Deceptive-Goal-v0", 2, backend="torch", seed=0, **kw)]

    def make_agent():
        agent = GDG(GDGConfig(bridge=cfg_bridge, **cfg), engines[0].spec, "cpu")
        if certified:  # an untrained critic's distances are all below one step: 4 a cell
            agent.distance_estimate = lambda obs: (
                4.0 * torch.linalg.vector_norm(obs[:, 4:6] - obs[:, 6:8], dim=-1)
            )
        return agent

    agent = make_agent()

    def run(agent, engine, obs, steps):
        out = []
        for _ in range(steps):
            action = agent.act(obs, explore=True)
            nxt, reward, term, trunc, info = engine.step(action)
            real = torch.where(info["done"][:, None], info["final_obs"], nxt)
            agent.observe(obs, action, reward, real, term, trunc)
            if bool(info["done"].any()):
                agent.episode_start(info["done"])
            out.append((action, agent.update(1)["critic_loss"]))
            obs = nxt
        return obs, out

    obs = engines[0].reset(seed=0)
    agent.episode_start(torch.ones(2, dtype=torch.bool))
    obs, _ = run(agent, engines[0], obs, 60)
    assert agent.planners[True].planned > 0
    assert agent.planners[True].observed == certified
    buffer = io.BytesIO()
    torch.save(agent.state_dict(), buffer)
    buffer.seek(0)
    clone = make_agent()
    clone.load_state_dict(torch.load(buffer, weights_only=True))
    twin = make_engine("PointMaze-Deceptive-Goal-v0", 2, backend="torch", seed=0, **kw)
    twin.load_state_dict(engines[0].state_dict())
    _, a = run(agent, engines[0], obs, 40)
    _, b = run(clone, twin, obs.clone(), 40)
    for (act_a, loss_a), (act_b, loss_b) in zip(a, b, strict=True):
        assert torch.equal(act_a, act_b) and torch.equal(loss_a, loss_b)


def test_an_update_restarts_the_evaluation_planner():
    """Evaluations repeat their starts and goals (same seed), so a member whose new episode
    begins near where its last one ended is not seen to reset; with a stale stall count it
    would escape at once (open maze at 2000 steps: 0.83 against GDG alone's 1.00). After
    an update the next evaluation therefore starts afresh."""
    engine = make_engine("PointMaze-Open-Goal-v0", 3, backend="torch", seed=0, **MAZE_KW)
    agent = GDG(GDGConfig(hidden=(16,), batch_size=8, seed=0, probe_every=0), engine.spec, "cpu")
    for _ in training_steps(agent, engine, 30, 30, updates_per_step=0.5, seed=0):
        pass
    obs = engine.reset(seed=1)
    agent.act(obs)
    plan = agent.planners[False]
    plan.stalled.fill_(100)
    plan.active.fill_(True)
    agent.update(1)
    assert not plan.active.any() and (plan.stalled == 0).all() and plan.fresh.all()


def _terminating_batch(agent, engine, terminated_at_goal: bool):
    """Store one episode per member that terminates (synthetically) after 5 steps, at
    the goal or away from it, and sample a batch from it."""
    obs = engine.reset(seed=0)
    for t in range(5):
        action = agent.act(obs, explore=True)
        nxt, reward, _, trunc, _ = engine.step(action)
        if terminated_at_goal and t == 4:
            obs[:, 6:8] = nxt[:, 6:8] = nxt[:, 4:6]  # the episode ends on reaching its goal
        term = torch.full_like(trunc, t == 4)
        agent.observe(obs, action, reward, nxt, term, trunc)
        obs = nxt
    return agent.replay.sample_her(512, agent.task.compute_reward, agent.slices, "future", 0.8)


@pytest.mark.parametrize("at_goal", [False, True])
def test_gdg_terminal_target_is_the_cap_unless_the_goal_is_reached(at_goal):
    """A termination away from the goal (a crash, a fall) can never reach it: its distance
    target is the cap T (the episode length), not 1; the goal's own termination keeps
    target 0. A relabelled row keeps a failure's termination (no goal is reachable after
    it) but not a success's (the state goes on towards other goals)."""
    kw = {**MAZE_KW, "terminate_on_success": False}
    engine = make_engine("PointMaze-Open-Goal-v0", 4, backend="torch", seed=0, **kw)
    agent = GDG(GDGConfig(hidden=(8,), seed=0, probe_every=0), engine.spec, "cpu")
    batch = _terminating_batch(agent, engine, at_goal)
    batch["terminated"] = agent.terminal(batch)
    last = batch["step"] % 5 == 4
    reached = agent.reached(batch["next_obs"])
    target = agent.bootstrap_target(batch)
    if at_goal:  # success ends only its own goal's chase
        assert torch.equal(batch["terminated"][last] > 0, ~batch["relabelled"][last])
        arrived = last & ~batch["relabelled"]
        assert arrived.sum() > 2 and (target[arrived] == 0).all()
    else:
        assert (batch["terminated"][last] == 1).all()
        failed = last & ~reached
        assert failed.sum() > 10
        assert torch.equal(target[failed], torch.full_like(target[failed], float(agent.horizon)))
    assert (target[reached] == 0).all()
    going = ~last & ~reached
    assert (target[going] >= 1).all() and (target[going] < agent.horizon).all()


def _random_steps(agent, engine, steps: int, seed: int = 0) -> tuple[float, float, int]:
    """``steps`` batch steps of uniform random actions stored in ``agent``; the success
    count, summed final distance and number of the episodes that finished."""
    gen = torch.Generator().manual_seed(seed)
    obs = engine.reset(seed=seed)
    successes = distance = finished = 0
    for _ in range(steps):
        action = torch.rand(engine.num_envs, engine.spec.action_dim, generator=gen) * 2 - 1
        nxt, reward, term, trunc, info = engine.step(action)
        real = torch.where(info["done"][:, None], info["final_obs"], nxt)
        agent.observe(obs, action, reward, real, term, trunc)
        done = info["done"]
        successes += int((agent.reached(real) & done).sum())
        distance += float(torch.linalg.vector_norm(real[done, 4:6] - real[done, 6:8], dim=-1).sum())
        finished += int(done.sum())
        obs = nxt
    return successes, distance, finished


def test_goal_metrics_report_episodes_and_probe_once_through_the_hook():
    """``metrics()`` gives the training episodes' success rate and final distance and the
    latest probe under their TensorBoard tags, each measurement once; GDG adds its bridges."""
    engine = make_engine("PointMaze-Open-Goal-v0", 4, backend="torch", seed=0,
                         **{**MAZE_KW, "max_episode_steps": 5})  # fmt: skip
    for cls, cfg in ((DDPGHER, DDPGHERConfig), (GDG, GDGConfig)):
        agent = cls(cfg(hidden=(16,), batch_size=8, buffer_size=1000, seed=0, probe_every=2),
                    engine.spec, "cpu")  # fmt: skip
        successes, distance, finished = _random_steps(agent, engine, 30)
        assert finished >= 20
        agent.update(2)
        found = agent.metrics()
        assert found["goal/success_rate"] == pytest.approx(successes / finished)
        assert found["goal/final_distance"] == pytest.approx(distance / finished, rel=1e-5)
        assert found["goal/probe_spearman"] == pytest.approx(agent.probe()["probe_spearman"])
        assert {"goal/probe_learned_mean", "goal/probe_true_mean"} < set(found)
        assert "success_rate" not in agent.update(1)  # losses only
        assert agent.metrics() == {}  # nothing new measured since
    agent.act(engine.reset(seed=1), explore=True)
    assert agent.metrics() == {"gdg/bridges_planned": float(agent.planners[True].planned)}


def test_goal_agent_loads_a_critic_optimizer_saved_as_one_group():
    """Goal-agent checkpoints hold the critic's Adam state as one parameter group; the
    shared core splits weights and biases into two: each parameter keeps its moments."""
    engine = make_engine("PointMaze-Open-Goal-v0", 2, backend="torch", seed=0, **MAZE_KW)
    cfg = GDGConfig(hidden=(16, 8), batch_size=8, buffer_size=1000, seed=0, probe_every=0)
    old = GDG(cfg, engine.spec, "cpu")
    _random_steps(old, engine, 10)
    one_group = torch.optim.Adam(old.critic.parameters(), lr=cfg.critic_lr)
    obs = torch.randn(5, engine.spec.observation_shape[0])
    for _ in range(2):
        one_group.zero_grad()
        old.critic(obs, torch.rand(5, 2)).pow(2).sum().backward()
        one_group.step()
    state = {**old.state_dict(), "critic_opt": one_group.state_dict()}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    agent = GDG(cfg, engine.spec, "cpu")
    agent.load_state_dict(torch.load(buffer, weights_only=True))
    assert len(agent.critic_opt.param_groups) == 2
    for mine, saved in zip(agent.critic.parameters(), old.critic.parameters(), strict=True):
        for key in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(agent.critic_opt.state[mine][key], one_group.state[saved][key])
    assert torch.isfinite(agent.update(1)["critic_loss"])
