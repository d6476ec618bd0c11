"""Deep GA: population module, seed-list rebuilds, learning thresholds, GA-NS on the
deceptive maze, exact resume, rlwb eval on a saved elite, and sharded (Ray) evaluation equal
to local evaluation."""

from __future__ import annotations

import pytest
import torch

from rlwb import checkpoint as ckpt
from rlwb.agent import PhaseInterrupted
from rlwb.agents.deep_ga.agent import DeepGA, DeepGAConfig
from rlwb.agents.deep_ga.evaluation import (
    LocalEvaluator,
    PopulationResult,
    chunk_bounds,
    chunk_seed,
    start_states,
)
from rlwb.agents.deep_ga.ray_shards import ShardWorker
from rlwb.engine import make_engine
from rlwb.errors import ConfigError
from rlwb.evaluate import evaluate
from rlwb.policies import PopulationMLP
from rlwb.train import TrainConfig, train

CPU = torch.device("cpu")
SMALL = dict(population=16, truncation=4, elite_candidates=3, elite_episodes=2, sigma=0.3)
SMALL_TABLE = dict(noise_table_size=2**18)


def _agent(task: str = "Pendulum-v1", **overrides) -> tuple[DeepGA, object]:
    engine = make_engine(task, 1, seed=0)
    cfg = DeepGAConfig(**{**SMALL, **SMALL_TABLE, "seed": 0, **overrides})
    return DeepGA(cfg, engine.spec, CPU), engine


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(population=1), "population"),
        (dict(truncation=0), "truncation"),
        (dict(population=8, truncation=9), "truncation"),
        (dict(sigma=0.0), "sigma"),
        (dict(sigma=float("nan")), "sigma"),
        (dict(elite_episodes=0), "elite_episodes"),
        (dict(activation="gelu"), "activation"),
        (dict(archive_probability=1.5), "archive_probability"),
    ],
)
def test_bad_config_is_a_clear_error(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DeepGAConfig(**overrides)


def test_noise_table_must_hold_a_network() -> None:
    engine = make_engine("Pendulum-v1", 1)
    with pytest.raises(ConfigError, match="noise_table_size"):
        DeepGA(DeepGAConfig(noise_table_size=100), engine.spec, CPU)


def test_population_module_drives_member_i_with_network_i_div_m() -> None:
    gen = torch.Generator().manual_seed(0)
    net = PopulationMLP(3, 2, (5, 4), 3, torch.full((2,), -2.0), torch.full((2,), 2.0))
    net.set_params(torch.randn(3, net.num_params, generator=gen))
    obs = torch.randn(6, 3, generator=gen)
    out = net(obs)
    for i in range(6):
        single = PopulationMLP(3, 2, (5, 4), 1, torch.full((2,), -2.0), torch.full((2,), 2.0))
        single.set_params(net.params[i // 2 : i // 2 + 1])
        torch.testing.assert_close(out[i : i + 1], single(obs[i : i + 1]))
    assert out.abs().max() <= 2.0
    with pytest.raises(ValueError, match="multiple"):
        net(torch.zeros(4, 3))


def test_act_some_equals_the_full_forward_on_shrinking_member_sets() -> None:
    # A rollout's live members only shrink; act_some gathers a row subset of the weights and
    # reuses it while it is no more than twice what is needed.
    gen = torch.Generator().manual_seed(1)
    bounds = torch.full((2,), -1.0), torch.full((2,), 1.0)
    for p, m in ((16, 1), (6, 3)):
        net = PopulationMLP(4, 2, (8,), p, *bounds)
        net.set_params(torch.randn(p, net.num_params, generator=gen))
        obs = torch.randn(p * m, 4, generator=gen)
        full = net(obs)
        members = torch.arange(p * m)
        while len(members):
            torch.testing.assert_close(net.act_some(obs[members], members, p * m), full[members])
            keep = torch.rand(len(members), generator=gen) < 0.6
            members = members[keep]
        net.set_params(net.params + 1.0)  # a new population invalidates the cached rows
        members = torch.tensor([0, p * m - 1])
        torch.testing.assert_close(net.act_some(obs[members], members, p * m), net(obs)[members])


def test_huge_page_weights_give_the_same_actions_and_never_alias(monkeypatch) -> None:
    # Large CPU populations are copied into a huge-page-backed buffer kept across calls:
    # the same actions bit for bit, a copy (changing the source later changes nothing), and
    # a refill of the same shape, or from the buffer itself, shows the new values.
    import rlwb.policies

    gen = torch.Generator().manual_seed(2)
    bounds = torch.full((2,), -1.0), torch.full((2,), 1.0)
    plain, huge = PopulationMLP(4, 2, (8,), 6, *bounds), PopulationMLP(4, 2, (8,), 6, *bounds)
    monkeypatch.setattr(rlwb.policies, "HUGE_PAGE_BYTES", 0)
    obs, members = torch.randn(6, 4, generator=gen), torch.tensor([1, 4])
    for step in range(3):
        params = torch.randn(6, plain.num_params, generator=gen)
        plain.params = params.clone()  # the plain net keeps torch's own memory
        plain._subset = None
        huge.set_params(params)
        if step == 2:  # refill from its own buffer
            huge.set_params(huge.params)
        params.add_(1.0)
        assert huge.params.data_ptr() != params.data_ptr()
        assert torch.equal(huge(obs), plain(obs))
        assert torch.equal(huge.act_some(obs[members], members, 6), plain(obs)[members])


def test_population_rollout_of_live_members_matches_stepping_every_member() -> None:
    # Humanoid members fall at different steps; once one has, the engine asks the population
    # for the live members' actions only (act_some), and steps only them once under 3/4 run.
    # Same results as a policy without act_some with every member stepped.
    engine = make_engine("Humanoid-v5", 24, backend="mujoco", seed=0)
    spec = engine.spec
    net = PopulationMLP(spec.observation_shape[0], spec.action_dim, (32,), 24,
                        spec.action_low, spec.action_high)  # fmt: skip
    net.set_params(torch.randn(24, net.num_params, generator=torch.Generator().manual_seed(0)))
    state = start_states(engine, 0)
    calls = []
    act_some = net.act_some
    net.act_some = lambda obs, members, batch: (
        calls.append(len(members)) or act_some(obs, members, batch)
    )
    with torch.no_grad():
        fast = engine.rollout(net, horizon=60, init_state=state)
        engine.step_live_only = False
        slow = engine.rollout(lambda obs: net(obs), horizon=60, init_state=state)
    assert 1 < len(set(fast.lengths.tolist())) and int(fast.lengths.min()) < 45
    assert calls and max(calls) < 24 and min(calls) >= 1  # asked for live members only
    assert torch.equal(fast.lengths, slow.lengths)
    torch.testing.assert_close(fast.returns, slow.returns)


def test_the_frame_budget_is_never_exceeded(tmp_path, capsys) -> None:
    # Pendulum episodes never end early: a generation is 15 * 50 + 3 * 2 * 50 frames (then
    # 2 + 1 elite candidates: the same). A budget of 3.5 generations runs 3 and stops.
    cfg = DeepGAConfig(**{**SMALL, **SMALL_TABLE, "seed": 0, "horizon": 50})
    per_gen = 15 * 50 + 3 * 2 * 50

    def run(steps: int, eval_every: int = 0):
        tc = TrainConfig(task="Pendulum-v1", total_steps=steps, eval_every=eval_every,
                         checkpoint_every=0, eval_episodes=2, run_dir=str(tmp_path),
                         progress=False)  # fmt: skip
        return train(DeepGA, cfg, tc)

    result = run(int(3.5 * per_gen), eval_every=3 * per_gen - 1)
    assert result.env_steps == 3 * per_gen
    # the periodic evaluation after generation 3 is the final one: printed once
    assert capsys.readouterr().out.count(f"step {3 * per_gen:,}: eval return") == 1
    assert ckpt.load(result.checkpoint)["agent"]["generation"] == 3
    assert run(3 * per_gen).env_steps == 3 * per_gen  # exactly fits: all three run
    with pytest.raises(ConfigError, match="total_steps"):
        run(per_gen - 1)


def test_seed_list_rebuild_is_bit_identical_and_compact() -> None:
    agent, engine = _agent()
    for _ in range(3):
        metrics = agent.iterate(engine)
    assert all(len(g) >= 2 for g in agent.parents[1:])  # mutated at least once
    assert torch.equal(agent.genomes.build(agent.parents), agent.parent_params)
    assert torch.equal(agent.genomes.build([agent.elite]), agent.net.params)
    d = agent.net.num_params
    assert metrics["compression_ratio"] == pytest.approx(4 * d / (8 * len(agent.elite)))
    # Another agent (fresh table cache) rebuilds the saved elite exactly.
    other, _ = _agent()
    other.load_policy_state_dict(agent.policy_state_dict())
    assert torch.equal(other.net.params, agent.net.params)
    saved = agent.state_dict()
    assert isinstance(saved["elite"], list) and all(isinstance(s, int) for s in saved["elite"])


def test_ga_learns_mountain_car_and_rlwb_eval_reproduces_the_elite(tmp_path) -> None:
    # Untrained: the best of 63 random networks never reaches the hilltop (return <= 0);
    # two generations find a policy that does (return ~ 90).
    cfg = DeepGAConfig(population=64, elite_candidates=5, elite_episodes=5, sigma=0.5, seed=0)
    run = TrainConfig(
        task="MountainCarContinuous-v0",
        total_steps=200_000,
        eval_every=0,
        checkpoint_every=1,  # every generation
        keep_checkpoints=10,
        eval_episodes=5,
        run_dir=str(tmp_path),
        progress=False,
    )
    result = train(DeepGA, cfg, run)
    first = ckpt.load(sorted((result.run_dir / "checkpoints").glob("step_*.pt"))[0])
    assert first["agent"]["generation"] == 1
    assert first["agent"]["elite_score"] < 0.0
    assert result.eval_mean > 50.0
    mean, _, returns = evaluate(result.checkpoint, episodes=None)
    assert mean == result.eval_mean and returns == result.eval_returns


def _maze_run(novelty: bool) -> list[float]:
    engine = make_engine("PointMaze-Deceptive-Dense-v0", 1, seed=0, maze_size_scaling=2.0)
    cfg = DeepGAConfig(
        population=64, elite_candidates=4, elite_episodes=2, sigma=0.1, novelty=novelty,
        archive_probability=0.05, seed=0, **SMALL_TABLE,
    )  # fmt: skip
    agent = DeepGA(cfg, engine.spec, CPU)
    return [agent.iterate(engine)["success_max"] for _ in range(20)]


def test_ga_ns_reaches_the_deceptive_maze_goal_where_ga_gets_stuck() -> None:
    # Random early networks sometimes end at the goal; once the populations settle (second
    # half), GA's sit in the cup under the goal while GA-NS keeps finding the way round.
    ga, ns = _maze_run(False), _maze_run(True)
    assert max(ns[10:]) == 1.0
    assert max(ga[10:]) == 0.0


def test_resume_equals_uninterrupted(tmp_path) -> None:
    # normalisation forced on (Pendulum is no MuJoCo task): its sums resume exactly too
    cfg = DeepGAConfig(**{**SMALL, **SMALL_TABLE, "seed": 3, "novelty": True, "obs_norm": True,
                          "obs_stat_prob": 0.2})  # fmt: skip
    per_gen = 15 * 200 + 3 * 2 * 200  # children + validation frames (Pendulum never ends early)

    def run(name: str, steps: int, resume=None):
        tc = TrainConfig(
            task="Pendulum-v1", total_steps=steps, eval_every=0, checkpoint_every=1,
            eval_episodes=3, run_dir=str(tmp_path), run_name=name, progress=False,
        )  # fmt: skip
        return train(DeepGA, cfg, tc, resume=resume)

    full = run("full", 4 * per_gen)
    half = run("half", 2 * per_gen)
    resumed = run("half", 4 * per_gen, resume=half.checkpoint)
    a, b = ckpt.load(full.checkpoint)["agent"], ckpt.load(resumed.checkpoint)["agent"]
    assert a["generation"] == b["generation"] == 4
    assert a["parents"] == b["parents"] and a["elite"] == b["elite"]
    assert torch.equal(a["archive"], b["archive"])
    assert a["obs_stat"]["count"] == b["obs_stat"]["count"] > 1
    assert torch.equal(a["obs_stat"]["total_sq"], b["obs_stat"]["total_sq"])
    assert torch.equal(a["obs_std"], b["obs_std"])
    assert resumed.eval_returns == full.eval_returns


def _assert_same(a: PopulationResult, b: PopulationResult) -> None:
    for field in ("returns", "lengths", "behaviors"):
        assert torch.equal(getattr(a, field), getattr(b, field)), field
    assert a.goal.keys() == b.goal.keys()
    assert (a.obs_stat is None) == (b.obs_stat is None)
    if a.obs_stat is not None:
        assert torch.equal(a.obs_stat.total, b.obs_stat.total)
        assert torch.equal(a.obs_stat.total_sq, b.obs_stat.total_sq)
        assert a.obs_stat.count == b.obs_stat.count


def test_worker_chunks_equal_local_evaluation() -> None:
    # A Ray actor's chunk (plain ShardWorker here) is the local evaluator's chunk: same
    # networks rebuilt from seeds (cached parents on the 2nd call), same start states, same
    # observation sums, with normalisation on.
    agent, engine = _agent("Hopper-v5", chunk=4, obs_stat_prob=0.5)
    factory, net, table = _worker_args(agent, engine)
    local = LocalEvaluator(engine.spawn, PopulationMLP(**net), None, chunk=4)
    worker = ShardWorker(factory, net, table)
    agent.iterate(engine)  # parents exist
    norm = agent.obs_stat.mean_std()
    record = torch.arange(18) % 3 == 0
    for call in range(2):
        genomes, params = agent._children(9)
        want = local.evaluate(params, genomes, 2, 5, norm, record)
        got = PopulationResult.cat([
            worker.evaluate(genomes[lo:hi], 2, chunk_seed(5, c), None, norm,
                            record[2 * lo : 2 * hi], call)
            for c, (lo, hi) in enumerate(chunk_bounds(9, 4))
        ])  # fmt: skip
        assert want.obs_stat.count > 0
        _assert_same(want, got)
        agent.parents, agent.parent_params = genomes, params


def _worker_args(agent: DeepGA, engine) -> tuple[dict, dict, dict]:
    cfg = agent.config
    factory = dict(engine._factory, device="cpu")
    net = dict(
        obs_dim=agent.net.sizes[0], action_dim=agent.spec.action_dim, hidden=cfg.hidden,
        population=1, action_low=agent.spec.action_low, action_high=agent.spec.action_high,
        activation=cfg.activation,
    )  # fmt: skip
    table = dict(
        sigma=cfg.sigma, table_size=cfg.noise_table_size, table_seed=cfg.noise_table_seed,
        device="cpu",
    )  # fmt: skip
    return factory, net, table


class _StopAfter:
    """A phase reporter that asks to stop at its ``k``-th call."""

    def __init__(self, k: int) -> None:
        self.k, self.calls = k, []

    def __call__(self, what: str, done: int, total: int) -> bool:
        self.calls.append((what, done, total))
        return len(self.calls) >= self.k


@pytest.mark.parametrize("k", [2, 4])  # in the children's chunks; in the elite's validation
def test_stopped_generation_leaves_the_agent_unchanged(k: int) -> None:
    agent, engine = _agent("Hopper-v5", chunk=5, novelty=True, obs_stat_prob=0.3)
    twin, _ = _agent("Hopper-v5", chunk=5, novelty=True, obs_stat_prob=0.3)
    agent.iterate(engine), twin.iterate(engine)
    saved = agent.state_dict()
    agent.phase_reporter = _StopAfter(k)
    with pytest.raises(PhaseInterrupted):
        agent.iterate(engine)
    assert agent.phase_reporter.calls[-1][0] == "generation"
    assert agent.phase_reporter.calls[-1][2] == 4  # 15 children in 3 chunks, 3 candidates in 1
    _assert_same_state(agent.state_dict(), saved)
    agent.phase_reporter = None
    a, b = agent.iterate(engine), twin.iterate(engine)  # redone exactly
    a.pop("generation_seconds"), b.pop("generation_seconds")
    assert a == b
    _assert_same_state(agent.state_dict(), twin.state_dict())


def _assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], torch.Tensor):
            assert torch.equal(a[key], b[key]), key
        elif isinstance(a[key], dict) and key == "obs_stat":
            for part in ("total", "total_sq"):
                assert torch.equal(a[key][part], b[key][part])
            assert a[key]["count"] == b[key]["count"]
        else:
            assert a[key] == b[key] or (a[key] != a[key] and b[key] != b[key]), key


def test_documented_paper_scale_humanoid_command_is_the_papers_preset() -> None:
    # The cluster command in deep_ga_humanoid's docstring sets DeepGAConfig.humanoid()'s N,
    # T, sigma, episodes, elite episodes and network.
    from rlwb.config import parse_cli
    from rlwb.experiments import deep_ga_humanoid

    doc = deep_ga_humanoid.__doc__
    start = doc.index("rlwb train deep_ga_humanoid --agent.population")
    command = doc[start : doc.index("\n\n", start)].replace("\\\n", " ").split()[3:]
    agent = parse_cli(deep_ga_humanoid.Config, command).agent
    paper = DeepGAConfig.humanoid()
    fields = ("population", "truncation", "sigma", "episodes", "elite_episodes", "hidden")
    assert {f: getattr(agent, f) for f in fields} == {f: getattr(paper, f) for f in fields}
    assert agent.num_workers > 0 and paper.population == 12_501 and paper.truncation == 625


def test_normalised_elite_is_saved_and_rlwb_eval_reproduces_it(tmp_path) -> None:
    # On a MuJoCo task normalisation is on by default: the checkpoint holds the running sums,
    # the policy the mean/std the elite was validated with, and rlwb eval acts as the
    # runner's evaluation did.
    cfg = DeepGAConfig(population=9, truncation=3, elite_candidates=3, elite_episodes=2,
                       sigma=0.1, chunk=4, obs_stat_prob=0.5, hidden=(16,), seed=0,
                       horizon=60, **SMALL_TABLE)  # fmt: skip
    run = TrainConfig(task="Hopper-v5", total_steps=3 * (8 + 3 * 2) * 60, eval_every=0,
                      checkpoint_every=1, eval_episodes=3, run_dir=str(tmp_path),
                      progress=False)  # fmt: skip
    result = train(DeepGA, cfg, run)
    saved = ckpt.load(result.checkpoint)["agent"]
    assert saved["generation"] >= 3 and saved["format_version"] == 2
    assert saved["obs_stat"]["count"] > 50
    mean, std = saved["obs_mean"], saved["obs_std"]
    assert mean.abs().sum() > 0 and not torch.equal(std, torch.ones_like(std))
    got_mean, _, returns = evaluate(result.checkpoint, episodes=None)
    assert got_mean == result.eval_mean and returns == result.eval_returns
    engine = make_engine("Hopper-v5", 1, seed=0)
    agent = DeepGA(cfg, engine.spec, CPU)
    agent.load_state_dict(saved)
    assert torch.equal(agent.obs_stat.total, saved["obs_stat"]["total"])
    assert torch.equal(agent.net.obs_std, std)


def test_checkpoints_from_before_normalisation_load_with_it_off() -> None:
    agent, engine = _agent("Hopper-v5")
    assert agent.obs_stat is not None  # on by default for a MuJoCo task
    agent.iterate(engine)
    old = agent.state_dict()
    for key in ("obs_mean", "obs_std", "obs_stat"):
        del old[key]
    old["format_version"] = 1
    other, _ = _agent("Hopper-v5")
    other.load_state_dict(old)
    assert other.obs_stat is None and other.net.obs_mean is None
    obs = torch.randn(4, 11, generator=torch.Generator().manual_seed(0))  # Hopper: 11
    raw = PopulationMLP(**_worker_args(other, engine)[1])
    raw.set_params(other.net.params)
    assert torch.equal(other.act(obs), raw(obs))
    assert other.iterate(engine)["generation"] == 2.0  # and it trains on, unnormalised
    assert other.obs_stat is None
