"""Deep GA on Ray actors, run locally: more actors than CPUs finish (no actor waits for a
CPU that never comes), the results equal a one-process run bit for bit on a MuJoCo task, and
starting Ray keeps the process's signal handlers. One Ray instance for the module."""

from __future__ import annotations

import dataclasses
import signal

import pytest
import torch

from rlwb.agents.deep_ga.agent import DeepGA, DeepGAConfig
from rlwb.agents.deep_ga.ray_shards import actor_cpus, init_ray
from rlwb.engine import make_engine

ray = pytest.importorskip("ray")
CPU = torch.device("cpu")


def _sentinel(signum, frame) -> None:  # pragma: no cover - never delivered
    pass


@pytest.fixture(scope="module")
def ray_cluster():
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in before:
        signal.signal(sig, _sentinel)
    try:
        init_ray(ray, address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        kept = {sig: signal.getsignal(sig) for sig in before}
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
    yield kept
    ray.shutdown()


def test_starting_ray_keeps_the_signal_handlers(ray_cluster) -> None:
    assert all(handler is _sentinel for handler in ray_cluster.values())


def test_actor_cpu_share() -> None:
    assert actor_cpus(8.0, 4) == 1.0
    assert actor_cpus(2.0, 4) == 0.5
    assert actor_cpus(2.0, 3) == 0.6666
    assert actor_cpus(1.0, 16) == 0.0625


@pytest.mark.timeout(240)
def test_more_actors_than_cpus_equal_one_process_on_mujoco(ray_cluster, capsys) -> None:
    # 4 actors on 2 CPUs, each taking one of the 4 chunks of the children; Hopper's falls end
    # members at different steps, observation normalisation on (recorded sums included).
    engine = make_engine("Hopper-v5", 1, seed=0)
    cfg = DeepGAConfig(population=17, truncation=4, elite_candidates=3, elite_episodes=2,
                       sigma=0.1, chunk=4, obs_stat_prob=0.3, noise_table_size=2**18, seed=1,
                       hidden=(16,))  # fmt: skip
    local = DeepGA(cfg, engine.spec, CPU)
    remote = DeepGA(dataclasses.replace(cfg, num_workers=4), engine.spec, CPU)
    for _ in range(2):
        a, b = local.iterate(engine), remote.iterate(engine)
        for result in (local.last_result, remote.last_result):
            assert result.obs_stat is not None and result.obs_stat.count > 0
        assert torch.equal(local.last_result.returns, remote.last_result.returns)
        assert torch.equal(local.last_result.lengths, remote.last_result.lengths)
        assert torch.equal(local.obs_stat.total_sq, remote.obs_stat.total_sq)
        assert a["elite_score"] == b["elite_score"] and a["frames"] == b["frames"]
    assert local.parents == remote.parents and local.elite == remote.elite
    assert "each asks for 0.5 CPU" in capsys.readouterr().err
    remote._evaluator.close()
