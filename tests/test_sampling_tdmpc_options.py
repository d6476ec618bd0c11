"""The sampling planner's options TD-MPC needs: the std refit without momentum, the executed
sequence drawn from the final elites by weight, and the final std for exploration."""

from __future__ import annotations

import torch

from rlwb.planners.models import check_plan_shapes
from rlwb.planners.sampling import SamplingConfig, SamplingPlanner


class Quadratic:
    """Return -sum_t ||a_t - target||^2; the state row is the target."""

    def rollout(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        check_plan_shapes(states, actions)
        return -((actions - states[:, None, None, :]) ** 2).sum((2, 3))


def _plan(targets: torch.Tensor, **kw) -> SamplingPlanner:
    base = dict(method="mppi", samples=256, elites=32, horizon=3, init_std=1.0, min_std=0.01)
    planner = SamplingPlanner(
        SamplingConfig(**{**base, **kw}), -torch.ones(2), torch.ones(2), seed=0
    )
    planner.plan(Quadratic(), targets)
    return planner


def test_std_refit_without_momentum_shrinks_in_one_iteration() -> None:
    targets = torch.tensor([[0.3, -0.5]])
    smoothed = _plan(targets, iterations=1, momentum=0.9)
    refit = _plan(targets, iterations=1, momentum=0.9, momentum_std=False)
    assert smoothed.last_std.shape == (1, 2)
    assert bool((smoothed.last_std >= 0.9).all())  # 0.9 * init_std + 0.1 * spread
    assert bool((refit.last_std < 0.5).all())  # the elites' weighted spread alone


def test_sampled_elite_is_executed_near_the_optimum() -> None:
    targets = torch.tensor([[0.3, -0.5]]).repeat(64, 1)  # 64 members, one problem
    kw = dict(iterations=4, momentum_std=False, temperature=1e6)  # elites weigh equally
    sampled = _plan(targets, execute="sample", **kw)
    first = sampled.last_plan[:, 0]
    assert (first - targets).abs().max() < 0.25  # an elite, so close to the optimum
    assert first.unique(dim=0).shape[0] > 8  # members draw different elites
    mean = _plan(targets, **kw).last_plan[:, 0]
    assert (first - targets).abs().mean() > (mean - targets).abs().mean()  # not the mean
    cem = _plan(targets, method="cem", execute="sample", momentum_std=False)
    assert (cem.last_plan[:, 0] - targets).abs().max() < 0.25
