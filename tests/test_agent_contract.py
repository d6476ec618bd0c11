"""What every agent owes the runner, checked on each class ``rlwb.agents`` exports.

Per agent, on a small task (:mod:`tests.agent_setups`): actions have the engine's shape and
stay in the action bounds, exploring or not; a short runner run, and the same run resumed
from its halfway checkpoint, end in identical states; the full state and the policy state
survive a weights-only save and load and reproduce the agent's deterministic actions (as
the runner's evaluation runs them: generators seeded, episodes started); and the policy
network, where the agent has one, computes what ``act(obs, explore=False)`` does.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import io

import pytest
import torch

from rlwb import checkpoint as ckpt
from rlwb.agent import Agent, act_on
from rlwb.evaluate import agent_from_checkpoint, build_agent, evaluation_rng, load_policy
from rlwb.train import TrainConfig, train
from tests.agent_setups import agent_classes, build, config_of, setup_of
from tests.test_runtime import assert_same

AGENTS = agent_classes()
CPU = torch.device("cpu")


@pytest.fixture(params=AGENTS, ids=lambda cls: cls.__name__)
def agent_cls(request) -> type[Agent]:
    cls = request.param
    needed = setup_of(cls).requires
    if needed and importlib.util.find_spec(needed) is None:
        pytest.skip(f"{cls.__name__} needs {needed}, which is not installed")
    return cls


def test_the_agent_list_holds_every_agent_and_none_of_their_parts():
    names = {cls.__name__ for cls in AGENTS}
    assert {"DDPG", "DDPGHER", "GDG", "TDMPC", "DeepGA", "CEMMPC", "PETS"} <= names
    assert not any(name.endswith("Config") for name in names)


def _start_episodes(agent: Agent, members: int) -> None:
    start = getattr(agent, "episode_start", None)  # a StepAgent hook
    if start is not None:
        start(torch.ones(members, dtype=torch.bool))


def _deterministic_actions(agent: Agent, engine, obs: torch.Tensor) -> torch.Tensor:
    """``act(explore=False)`` as the runner's evaluation calls it: fresh episodes, the
    agent's generators seeded."""
    with evaluation_rng(agent, seed=123):
        _start_episodes(agent, engine.num_envs)
        return act_on(agent, engine, obs, explore=False)


def _through_file(state):
    """``state`` after a weights-only ``torch.save`` / ``torch.load``, as checkpoints do."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def test_actions_have_the_engine_shape_and_stay_in_bounds(agent_cls):
    setup = setup_of(agent_cls)
    engine = setup.engine()
    agent = build(agent_cls, engine)
    obs = engine.reset(seed=0)
    low, high = engine.spec.action_low, engine.spec.action_high
    _start_episodes(agent, engine.num_envs)
    for explore in (False, True):
        action = act_on(agent, engine, obs, explore=explore)
        assert action.shape == (engine.num_envs, engine.spec.action_dim)
        assert torch.isfinite(action).all()
        assert bool(((action >= low) & (action <= high)).all()), (explore, action)
        obs, *_ = engine.step(action)
    engine.close()


def test_run_resume_and_round_trips(agent_cls, tmp_path):
    setup = setup_of(agent_cls)
    half = setup.total_steps // 2
    cfg = TrainConfig(
        task=setup.task, backend=setup.backend, device="cpu", num_envs=setup.num_envs,
        total_steps=setup.total_steps, learning_starts=setup.learning_starts, eval_every=0,
        checkpoint_every=half, eval_episodes=2, eval_horizon=4, log_every=half,
        task_kwargs=setup.task_kwargs, run_dir=str(tmp_path), run_name="full", progress=False,
    )  # fmt: skip
    full = train(agent_cls, config_of(agent_cls), cfg)
    assert full.env_steps >= setup.total_steps and full.checkpoint is not None
    saved = ckpt.CheckpointManager(full.run_dir / "checkpoints").existing()
    halfway = next(p for p in saved if half <= ckpt.step_of(p) < full.env_steps)
    resumed = train(
        agent_cls, config_of(agent_cls), dataclasses.replace(cfg, run_name="resumed"),
        resume=str(halfway),
    )  # fmt: skip
    assert resumed.env_steps == full.env_steps
    _same_final_state(resumed.checkpoint, full.checkpoint)

    # Round trips, each agent acting once from its loaded state (a planner's warm start and
    # generators move on with every call), with the runner evaluation's seeding.
    payload = ckpt.load(full.checkpoint)
    trained = agent_from_checkpoint(payload, CPU)
    state = _through_file(trained.state_dict())
    policy = _through_file(_policy_entry(trained))
    engine = setup.engine(seed=1)
    obs = engine.reset(seed=1)
    expected = _deterministic_actions(trained, engine, obs)
    again = agent_from_checkpoint(payload, CPU)
    assert torch.equal(_deterministic_actions(again, engine, obs), expected)  # deterministic

    copy = build_agent(payload, trained.spec, CPU)
    copy.load_state_dict(state)
    assert torch.equal(_deterministic_actions(copy, engine, obs), expected)

    policy_only = build_agent(payload, engine.spec, CPU)  # built for another engine, as eval
    load_policy(policy_only, policy)
    assert torch.equal(_deterministic_actions(policy_only, engine, obs), expected)

    net = again.policy_network()
    if net is not None and net.differs_from_act is None:
        module = net.module.eval()
        with torch.no_grad():
            torch.testing.assert_close(module(obs.float()), expected, rtol=1e-6, atol=1e-6)
    engine.close()


def _same_final_state(path_a, path_b) -> None:
    """Agent, engine, observations, generators and counters bit for bit (the final
    evaluation's returns too, NaN where none ran)."""
    a, b = ckpt.load(path_a), ckpt.load(path_b)
    for key in ("agent", "engine", "obs", "rng"):
        assert_same(a[key], b[key], key)
    torch.testing.assert_close(
        torch.tensor(a["eval"][0]), torch.tensor(b["eval"][0]), equal_nan=True
    )
    for counters in (a["counters"], b["counters"]):
        counters.pop("wall_time")
    assert a["counters"] == b["counters"]


def _policy_entry(agent: Agent) -> dict:
    from rlwb.evaluate import policy_entry

    return policy_entry(agent)


@pytest.mark.parametrize(
    "name, old_module",
    [("GDG", "rlwb.agents.gdg"), ("TDMPC", "rlwb.agents.tdmpc"), ("DeepGA", "rlwb.agents.deep_ga"),
     ("SafeCEMMPC", "rlwb.agents.safe_cem_mpc")],
)  # fmt: skip
def test_checkpoints_naming_the_flat_agent_modules_still_load(name, old_module, tmp_path):
    """Run folders store class paths; those written before the agents were grouped by family
    (``rlwb.agents.gdg:GDG``) still evaluate and resume."""
    agent_cls = next(cls for cls in AGENTS if cls.__name__ == name)
    setup = setup_of(agent_cls)
    cfg = TrainConfig(
        task=setup.task, backend=setup.backend, device="cpu", num_envs=setup.num_envs,
        total_steps=setup.total_steps, learning_starts=setup.learning_starts, eval_every=0,
        checkpoint_every=0, eval_episodes=1, eval_horizon=4, task_kwargs=setup.task_kwargs,
        run_dir=str(tmp_path), run_name="new", progress=False,
    )  # fmt: skip
    result = train(agent_cls, config_of(agent_cls), cfg)
    payload = ckpt.load(result.checkpoint)
    assert payload["agent_class"] != f"{old_module}:{name}"  # written under the new path
    payload = {k: v for k, v in payload.items() if k not in ("format", "version")}
    payload["agent_class"] = f"{old_module}:{name}"
    payload["agent_config_class"] = f"{old_module}:{name}Config"
    old = ckpt.save(tmp_path / "old.pt", payload)
    assert type(agent_from_checkpoint(ckpt.load(old), CPU)) is agent_cls
    resumed = train(
        agent_cls, config_of(agent_cls),
        dataclasses.replace(cfg, total_steps=2 * setup.total_steps, run_name="old"),
        resume=str(old),
    )  # fmt: skip
    assert resumed.env_steps >= 2 * setup.total_steps
