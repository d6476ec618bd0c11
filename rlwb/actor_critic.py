"""The off-policy actor-critic that DDPG, DDPG+HER and GDG share, written once.

:class:`ActorCriticAgent` owns a deterministic actor ``mu``, a critic ``Q``, their target
copies ``mu'`` and ``Q'``, one Adam optimizer each, the gradient step and the soft target
update, and their part of a checkpoint. An agent built on it says only what its paper
changes, through two hooks:

* :meth:`ActorCriticAgent.bootstrap_target` ``(batch) -> y``: what the critic regresses
  onto (run without gradients). DDPG: ``r + gamma (1 - d) Q'(s', mu'(s'))``.
* :meth:`ActorCriticAgent.actor_loss` ``(batch, mu(s)) -> loss``: what the actor
  minimises. DDPG: ``-mean Q(s, mu(s))``.

One gradient step (:meth:`ActorCriticAgent.gradient_step`) is: critic descent on
``mean (Q(s, a) - y)^2``, then actor descent on the actor loss (through the updated
critic, gradients into the actor's parameters only), then
``theta' <- (1 - tau) theta' + tau theta`` for both networks (one fused ``lerp``), with the
targets' buffers (batch-norm running statistics) copied, not averaged.

Speed, for every agent built on it: Adam's fused kernel called directly
(:class:`rlwb.nn.FusedAdamStep`), optional ``torch.compile`` of the four forwards, and on
CUDA the whole gradient step captured once as a CUDA graph and replayed
(:class:`rlwb.nn.CudaGraphStep`). The step therefore reads only its tensor arguments and
state at fixed addresses: hooks must not sync with the host or draw from the CPU.

The hooks call the networks through ``self.mu``, ``self.q``, ``self.mu_target`` and
``self.q_target`` (the compiled forwards where ``compile`` is on; the modules otherwise).

How TD3 and SAC would sit on it:

* TD3 (Fujimoto et al. 2018): ``make_critic`` builds twin critics in one module returning
  ``[2, B]``; ``bootstrap_target`` takes the minimum of the two target values at
  ``mu'(s')`` plus clipped noise from a device generator; ``actor_loss`` uses the first
  critic; the delayed policy update is an agent-side counter that runs
  :meth:`ActorCriticAgent.critic_step` alone on the off steps.
* SAC (Haarnoja et al. 2018): the actor returns an action and its log-probability;
  ``bootstrap_target`` subtracts ``alpha log pi(a'|s')`` at a fresh ``a' ~ pi(s')`` (the
  actor target goes unused), ``actor_loss`` is ``mean(alpha log pi - min Q)``, and the
  temperature has its own optimizer in the agent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from rlwb import agent_kit as kit
from rlwb.agent import StepAgent
from rlwb.engine.base import EngineSpec
from rlwb.nn import CudaGraphStep, FusedAdamStep, fused_adam_available, soft_update_

#: The networks and optimizers of a checkpoint, under these keys.
PARTS = ("actor", "critic", "actor_target", "critic_target", "actor_opt", "critic_opt")


class ActorCriticAgent(StepAgent):
    """Actor, critic, targets, optimizers and one gradient step (see the module docstring).

    A subclass calls :meth:`prelude` and :meth:`build_actor_critic` in its ``__init__``,
    implements :meth:`bootstrap_target` and :meth:`actor_loss`, and names the rest of its
    checkpoint in :attr:`saved_parts`; ``state_dict`` and the policy file are written here.
    """

    #: Checkpoint format this agent writes (and the newest it reads).
    format_version: ClassVar[int] = 1
    #: Attributes with a ``state_dict`` saved beside the networks (replay, noise ...).
    saved_parts: ClassVar[tuple[str, ...]] = ("replay",)
    #: What ``act(obs)`` needs: the policy file's networks.
    policy_parts: ClassVar[tuple[str, ...]] = ("actor",)

    config: Any
    generator: torch.Generator
    updates: int
    actor: nn.Module
    critic: nn.Module
    actor_target: nn.Module
    critic_target: nn.Module
    actor_opt: torch.optim.Adam
    critic_opt: torch.optim.Adam

    def prelude(
        self, config: Any, spec: EngineSpec, device: torch.device | str, images: bool = False
    ) -> tuple[int, int]:
        """What every actor-critic sets first: ``config``, ``spec``, ``device``, its CPU
        threads (``config.torch_threads``), the map from [-1, 1] to the action bounds and
        its generator (``config.seed``); returns ``(obs_dim, act_dim)`` (``obs_dim``: the
        first axis of the observation shape, which may be an image's ``(C, H, W)`` where
        the agent takes ``images``)."""
        self.config, self.spec = config, spec
        self.device = torch.device(device)
        kit.apply_torch_threads(config.torch_threads, self.device)
        who = type(self).__name__
        self.action_scale, self.action_bias = kit.unit_action_map(spec, self.device, who, images)
        self.generator = kit.seeded_generator(config.seed, self.device)
        self.updates = 0
        return spec.observation_shape[0], spec.action_dim

    def build_actor_critic(
        self,
        make_actor: Callable[[], nn.Module],
        make_critic: Callable[[], nn.Module],
        fields: Sequence[str],
    ) -> None:
        """Build the four networks (in the order actor, critic, actor target, critic
        target: each draws its initial weights from torch's global generator), the
        optimizers and the step. ``fields`` names the batch tensors the step is called
        with, in order (``obs`` and ``action`` among them).

        Settings come from ``self.config``: ``actor_lr``, ``critic_lr``, ``tau``,
        ``cuda_graph``, and where the config has them ``critic_l2`` (L2 weight decay on the
        critic's weight matrices, not its biases; else 0) and ``compile`` (else off)."""
        cfg = self.config
        tau, actor_lr, critic_lr = cfg.tau, cfg.actor_lr, cfg.critic_lr
        critic_l2 = getattr(cfg, "critic_l2", 0.0)
        compile, cuda_graph = getattr(cfg, "compile", False), cfg.cuda_graph
        dev = self.device
        self.tau = float(tau)
        self.batch_fields = tuple(fields)
        self.actor = make_actor().to(dev)
        self.critic = make_critic().to(dev)
        self.actor_target = make_actor().to(dev).eval()
        self.critic_target = make_critic().to(dev).eval()
        self.actor_target.load_state_dict(self.actor.state_dict())
        self.critic_target.load_state_dict(self.critic.state_dict())
        for p in (*self.actor_target.parameters(), *self.critic_target.parameters()):
            p.requires_grad_(False)
        self._actor_params = list(self.actor.parameters())
        self._critic_params = list(self.critic.parameters())
        online, target = (self.actor, self.critic), (self.actor_target, self.critic_target)
        self._targets = [p for m in target for p in m.parameters()]
        self._sources = [p for m in online for p in m.parameters()]
        self._target_stats = [b for m in target for b in m.buffers()]
        self._source_stats = [b for m in online for b in m.buffers()]

        self._graphed = dev.type == "cuda" and cuda_graph
        opt_kw: dict[str, Any] = {"fused": True} if fused_adam_available(dev) else {"foreach": True}
        if self._graphed:
            opt_kw["capturable"] = True
        weights = [p for p in self._critic_params if p.ndim > 1]
        biases = [p for p in self._critic_params if p.ndim <= 1]
        self.actor_opt = torch.optim.Adam(self._actor_params, lr=actor_lr, **opt_kw)
        self.critic_opt = torch.optim.Adam(
            [{"params": weights, "weight_decay": critic_l2}, {"params": biases}],
            lr=critic_lr,
            **opt_kw,
        )
        self._actor_step = FusedAdamStep(self.actor_opt)
        self._critic_step = FusedAdamStep(self.critic_opt)

        self.mu, self.q = self.actor, self.critic
        self.mu_target, self.q_target = self.actor_target, self.critic_target
        if compile:
            self.mu, self.q = torch.compile(self.actor), torch.compile(self.critic)
            self.mu_target = torch.compile(self.actor_target)
            self.q_target = torch.compile(self.critic_target)
        self.train_step = self._new_train_step()

    def _new_train_step(self) -> Callable[..., tuple[torch.Tensor, ...]]:
        return CudaGraphStep(self.gradient_step) if self._graphed else self.gradient_step

    # ------------------------------------------------------------------ hooks
    def bootstrap_target(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``[B]`` the critic's regression target for ``batch`` (called without gradients)."""
        raise NotImplementedError

    def actor_loss(self, batch: dict[str, torch.Tensor], action: torch.Tensor) -> torch.Tensor:
        """The scalar the actor minimises, given ``action = mu(batch["obs"])``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ one step
    def gradient_step(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Critic step, actor step, target update on one batch (``batch_fields`` order);
        returns both losses as detached 0-dim tensors (no host sync)."""
        batch = dict(zip(self.batch_fields, tensors, strict=True))
        critic_loss = self.critic_step(batch)
        actor_loss = self.actor_loss(batch, self.mu(batch["obs"]))
        self._actor_step.zero_grad()
        actor_loss.backward(inputs=self._actor_params)
        self._actor_step.step()
        self.update_targets()
        return critic_loss, actor_loss.detach()

    def critic_step(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """One Adam step of the critic on ``mean (Q(s, a) - y)^2``; the detached loss."""
        with torch.no_grad():
            target = self.bootstrap_target(batch)
        critic_loss = F.mse_loss(self.q(batch["obs"], batch["action"]), target)
        self._critic_step.zero_grad()
        critic_loss.backward(inputs=self._critic_params)
        self._critic_step.step()
        return critic_loss.detach()

    def update_targets(self) -> None:
        """``theta' <- (1 - tau) theta' + tau theta``; buffers (batch-norm statistics)
        copied from the online networks."""
        soft_update_(self._targets, self._sources, self.tau)
        if self._target_stats:
            torch._foreach_copy_(self._target_stats, self._source_stats)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "config": dataclasses.asdict(self.config),
            **kit.states_of(self, PARTS + self.saved_parts),
            "generator": self.generator.get_state(),
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output. A critic optimizer saved with one parameter
        group (as the goal agents' format-1 checkpoints hold it) is split into the weight
        and bias groups this core uses; each parameter keeps its own Adam moments."""
        who = type(self).__name__
        kit.check_format(state, self.format_version, who)
        with kit.checkpoint_fits(who):
            kit.load_states(self, state, PARTS[:4])
            _load_adam(self.actor_opt, state["actor_opt"], self._actor_params)
            _load_adam(self.critic_opt, state["critic_opt"], self._critic_params)
            self._actor_step.bind()
            self._critic_step.bind()
            if self._graphed:  # the optimizer state moved: capture again
                self.train_step = self._new_train_step()
            kit.load_states(self, state, self.saved_parts)
            self.generator.set_state(state["generator"])
            self.updates = int(state["updates"])

    def policy_state_dict(self) -> dict[str, Any]:
        """The networks of :attr:`policy_parts`: what ``rlwb eval`` needs."""
        return {"format_version": self.format_version, **kit.states_of(self, self.policy_parts)}

    def load_policy_state_dict(self, state: dict[str, Any]) -> None:
        who = type(self).__name__
        kit.check_format(state, self.format_version, who)
        with kit.checkpoint_fits(who):
            kit.load_states(self, state, self.policy_parts)


def _load_adam(opt: torch.optim.Adam, saved: dict[str, Any], params: list[nn.Parameter]) -> None:
    """``opt.load_state_dict(saved)`` that keeps ``opt``'s own kernel flags and puts Adam's
    step counters where its kernel reads them (an optimizer saved with other flags, such
    as the plain for-loop Adam, keeps its step counts on the CPU). ``params``: the
    optimizer's parameters in module order, for a ``saved`` with a single group."""
    if len(saved["param_groups"]) == 1 and len(opt.param_groups) > 1:
        saved = _split_group(opt, saved, params)
    flags = {k: opt.defaults[k] for k in ("fused", "foreach", "capturable") if k in opt.defaults}
    opt.load_state_dict(saved)
    on_device = bool(flags.get("fused") or flags.get("capturable"))
    for group in opt.param_groups:
        group.update(flags)
        for p in group["params"]:
            state = opt.state.get(p, {})
            if on_device and isinstance(state.get("step"), torch.Tensor):
                state["step"] = state["step"].to(p.device, torch.float32)


def _split_group(
    opt: torch.optim.Adam, saved: dict[str, Any], params: list[nn.Parameter]
) -> dict[str, Any]:
    """``saved``, one parameter group over ``params`` (module order), re-indexed into
    ``opt``'s groups, which hold the same parameters in another order; each group keeps
    its own weight decay."""
    (old,) = saved["param_groups"]
    if len(old["params"]) != len(params):
        raise ValueError(
            f"saved optimizer has {len(old['params'])} parameters, this one {len(params)}"
        )
    old_id = {id(p): i for p, i in zip(params, old["params"], strict=True)}
    state, groups, new_id = {}, [], 0
    for group in opt.param_groups:
        ids = []
        for p in group["params"]:
            if old_id[id(p)] in saved["state"]:
                state[new_id] = saved["state"][old_id[id(p)]]
            ids.append(new_id)
            new_id += 1
        groups.append({**old, "params": ids, "weight_decay": group["weight_decay"]})
    return {"state": state, "param_groups": groups}
