"""Deep GA and GA-NS: neuroevolution by a simple genetic algorithm (Such et al. 2017).

"Deep Neuroevolution: Genetic Algorithms Are a Competitive Alternative for Training Deep
Neural Networks for Reinforcement Learning".

One generation (the paper's Algorithm 1):

1. N - 1 children: generation 0 draws N - 1 random networks; afterwards each child is a
   parent drawn uniformly (with replacement) from the T parents, plus Gaussian noise of
   power sigma on every weight. No crossover.
2. Fitness: the mean return of ``episodes`` episodes per child (paper: 1), all children in
   one closed-loop rollout of one sibling engine (``(N - 1) * episodes`` members).
3. Elite: the top ``elite_candidates`` children by fitness (the previous elite takes the
   last place after generation 0) are re-evaluated over ``elite_episodes`` episodes on a
   second sibling engine of ``elite_candidates * elite_episodes`` members; the best mean is
   the elite, carried unchanged into the next generation (the paper does so; the released
   GPU code only keeps it as a parent). Its validation mean is the reported score and the
   policy that ``act``, the runner's evaluation and ``rlwb eval`` run.
4. Parents of the next generation: the elite, then the best T - 1 other children.

Validation episodes count against the frame budget (``env_steps``, the runner's
``total_steps``), as in the paper. The budget is never exceeded: a generation starts only if
it fits even when every episode runs to the horizon (:meth:`DeepGA.worst_case_frames`), so a
run stops at most one such worst-case generation short of it (episodes that end early, as
Humanoid's falls, leave more unused); a budget below one generation is a ConfigError. The
population size is this config's ``population``, not the runner's ``num_envs``.

GA-NS (``novelty=True``): children are ranked by novelty instead of reward (the behaviour is
the final (x, y), see :mod:`rlwb.agents.deep_ga.evaluation`; novelty and archive in
:mod:`rlwb.agents.deep_ga.novelty`), and the T most novel are the parents; the elite is still
chosen by reward as above and reported, but not forced into the parents (novelty search
ignores reward). The paper does not say how its GA-NS reports a policy; this is our choice.

Encoding: every individual is its seed list (:mod:`rlwb.agents.deep_ga.genome`); checkpoints and
saved policies hold seed lists, never weights, and rebuild bit-identical networks on any
device. ``charts/compression_ratio`` logs the elite's weights bytes over its seed bytes.

Choices where the paper is silent or does not apply, stated:

* Networks are MLPs (:class:`rlwb.policies.PopulationMLP`) on vector observations:
  ``hidden`` widths, tanh (or ReLU) hidden units, a tanh output rescaled to the action
  bounds, LeCun-normal weights and zero biases at initialisation. On image observations
  with discrete actions (Atari on the ``envpool`` backend) they are the paper's conv
  networks (:class:`rlwb.policies.PopulationConv`, ``conv`` names the architecture: the
  paper's ``large`` DQN network by default) acting by the argmax of their outputs, with the
  authors' initialisation; ``hidden`` and ``activation`` do not apply there. Engines that
  cannot read states (EnvPool) start each chunk from ``reset(seed)`` instead of restoring
  the start states; the chunks are the same computations either way.
* Observation normalisation (``obs_norm``; default on for MuJoCo tasks, off for the others):
  what the authors' released MuJoCo code does, with the rule of
  :mod:`rlwb.agents.deep_ga.obs_norm`: running sums of the observations of a fraction
  ``obs_stat_prob`` (their 0.01) of the children's episodes; every network of a generation
  reads ``clip((obs - mean) / std, -5, 5)`` with the mean and std from before that
  generation; its recorded sums are added once it is evaluated. Where we differ: the
  episodes that record are drawn from the agent's generator per generation (theirs: each
  worker's own random stream), and the elite keeps the mean and std it was validated with
  (saved in the policy with its seed list, so ``act``, the runner's evaluation and
  ``rlwb eval`` reproduce that validation's policy; their saved policy holds the statistics
  current when it was saved). A carried elite is re-validated with the new statistics, as in
  their code. Checkpoints from before normalisation (format 1) load with it off.
* Evaluation in chunks: the children (and the elite candidates) are evaluated ``chunk``
  networks at a time, one engine rollout per chunk, from the start states of that engine's
  reset with a seed from the agent's generator (independent episodes per child, as in the
  paper). Chunks are the same whether one process or Ray actors evaluate them
  (:mod:`rlwb.agents.deep_ga.evaluation`, :mod:`rlwb.agents.deep_ga.ray_shards`), so Ray runs equal
  one-process runs bit for bit; between chunks the agent reports progress
  (``phase("generation", done, total)``) and, when the run is asked to stop, abandons the
  generation with its state unchanged, so the checkpoint then written redoes the generation
  exactly on resume.
* Presets carry the paper's numbers as recorded in our references, some of them unverified
  there (see each preset). The plain ``DeepGAConfig()`` is a small setting for small
  networks (N = 128, sigma 0.5 on LeCun-initialised 64-64 tanh networks): with 10 elite
  episodes it solves MountainCarContinuous-v0 in 2-3 generations (experiments/
  deep_ga_control.py); Pendulum-v1 learns slowly (one-episode fitness is noisy there).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any

import torch

from rlwb import agent_kit as kit
from rlwb import policies, tasks
from rlwb.agent import IterationAgent, PhaseInterrupted, PolicyNetwork
from rlwb.agents.deep_ga.evaluation import LocalEvaluator, Norm, PopulationResult, horizon_of
from rlwb.agents.deep_ga.genome import Genomes
from rlwb.agents.deep_ga.novelty import grow_archive, novelty
from rlwb.agents.deep_ga.obs_norm import ObsStat
from rlwb.engine import Engine
from rlwb.engine.base import EngineSpec
from rlwb.errors import CheckpointError, ConfigError, UnknownTaskError
from rlwb.policies import ACTIVATIONS, CONV_NETWORKS, PopulationConv, PopulationMLP

FORMAT_VERSION = 2  # 2: observation normalisation (format 1 loads with it off)


@dataclass
class DeepGAConfig:
    """Deep GA hyperparameters. The defaults suit small control tasks; see the presets."""

    population: int = 128
    """N: individuals per generation, the elite included (N - 1 new children each time)."""
    truncation: int = 20
    """T: how many of the best become the parents of the next generation."""
    sigma: float = 0.5
    """Mutation power: standard deviation of the Gaussian noise added to every weight."""
    episodes: int = 1
    """Episodes per child for its fitness (the paper: 1)."""
    elite_candidates: int = 10
    """Children re-evaluated to choose the elite (the paper: 10, the old elite included)."""
    elite_episodes: int = 30
    """Episodes per elite candidate (the paper: 30)."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden layer widths of every network."""
    activation: str = "tanh"
    """Hidden activation: tanh or relu."""
    conv: str = "large"
    """Network on image observations: large (the paper's), nature or small (see
    rlwb.policies.CONV_NETWORKS)."""
    horizon: int | None = None
    """Cap on episode length (default: the task's time limit; the paper's Atari cap: 5000)."""
    novelty: bool = False
    """GA-NS: select parents by novelty of the final (x, y) instead of by reward."""
    novelty_k: int = 10
    """Nearest neighbours in population + archive that define novelty."""
    archive_probability: float = 0.01
    """Chance of each child to enter the novelty archive (the paper: 0.01)."""
    noise_table_size: int = 2**24
    """Entries of the shared noise table the seeds index (64 MiB of float32)."""
    noise_table_seed: int = 12345
    """Seed that generates the noise table (driver and Ray workers must agree)."""
    obs_norm: bool | None = None
    """Normalise observations by running statistics (None: on for MuJoCo tasks)."""
    obs_stat_prob: float = 0.01
    """Chance of each child's episode to add its observations to the statistics."""
    chunk: int = 64
    """Networks per engine rollout: a generation is evaluated in chunks of this many (the
    run can stop between chunks; Ray actors take chunks; results do not depend on who
    evaluates a chunk)."""
    num_workers: int = 0
    """Ray actors evaluating chunks of each generation (0: evaluate in this process;
    needs ``pip install rlwb[ray]``)."""
    torch_threads: int = 1
    """torch.set_num_threads on CPU (0: leave it); one thread is robust on a shared machine."""
    seed: int | None = None
    """Seed of the agent's generator (parents, mutations, episode seeds); None: drawn from
    torch's global generator, which the runner seeds."""

    def __post_init__(self) -> None:
        self.hidden = tuple(int(h) for h in self.hidden)
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first bad field."""

        def bad(name: str, why: str) -> ConfigError:
            return ConfigError(f"DeepGAConfig.{name} {why}, got {getattr(self, name)!r}")

        if self.population < 2:
            raise bad("population", "must be >= 2 (the elite and at least one child)")
        if not 1 <= self.truncation <= self.population:
            raise bad("truncation", f"must be in [1, population={self.population}]")
        if not (math.isfinite(self.sigma) and self.sigma > 0):
            raise bad("sigma", "must be a finite number > 0")
        for name in ("episodes", "elite_candidates", "elite_episodes", "novelty_k"):
            if getattr(self, name) < 1:
                raise bad(name, "must be >= 1")
        if any(h < 1 for h in self.hidden):
            raise bad("hidden", "must hold positive widths")
        if self.activation not in ACTIVATIONS:
            raise bad("activation", f"must be one of {', '.join(ACTIVATIONS)}")
        if self.conv not in CONV_NETWORKS:
            raise bad("conv", f"must be one of {', '.join(CONV_NETWORKS)}")
        if self.horizon is not None and self.horizon < 1:
            raise bad("horizon", "must be >= 1 or None")
        if not 0 <= self.archive_probability <= 1:
            raise bad("archive_probability", "must be in [0, 1]")
        if not 0 <= self.obs_stat_prob <= 1:
            raise bad("obs_stat_prob", "must be in [0, 1]")
        if self.chunk < 1:
            raise bad("chunk", "must be >= 1")
        if self.num_workers < 0 or self.torch_threads < 0:
            raise ConfigError("DeepGAConfig.num_workers and torch_threads must be >= 0")

    @classmethod
    def humanoid(cls) -> DeepGAConfig:
        """The paper's Humanoid locomotion setting (our references mark N, T, sigma and the
        5 episodes as unverified recollections): N = 12,500 + 1 elite, T = 625,
        sigma = 0.00224, 256-256 tanh networks as in the ES work."""
        return cls(population=12_501, truncation=625, sigma=0.00224, episodes=5, hidden=(256, 256))

    @classmethod
    def atari(cls) -> DeepGAConfig:
        """The paper's Atari setting (its released code's configuration): N = 1000, T = 20,
        sigma = 0.002, one episode per child, the elite from 10 candidates over 30
        episodes, the large DQN network. The 5,000-step episode cap is the engine's time
        limit (experiments/deep_ga_atari.py)."""
        return cls(population=1000, truncation=20, sigma=0.002, conv="large")

    @classmethod
    def hard_maze(cls) -> DeepGAConfig:
        """GA-NS on the paper's Image Hard Maze (unverified in our references): N = 20,000,
        T = 61, sigma = 0.005, archive probability 0.01. The paper's network reads pixels;
        here the numbers apply to an MLP on the point maze's state."""
        return cls(
            population=20_000, truncation=61, sigma=0.005, novelty=True, archive_probability=0.01
        )


class Children:
    """A generation's children as parameter rows made on demand (``children[rows]``): each
    row's parent plus its mutation (generation 0: fresh initialisations), elementwise the
    same numbers as making them all at once. The generation then holds one chunk of networks
    at a time, not all N (the paper's Atari generation is 1000 networks of 16 MB)."""

    def __init__(
        self, genomes: Genomes, seeds: list[int], parents: torch.Tensor | None = None,
        pick: torch.Tensor | None = None,
    ) -> None:  # fmt: skip
        self.genomes, self.seeds, self.parents, self.pick = genomes, seeds, parents, pick

    def __len__(self) -> int:
        return len(self.seeds)

    def __getitem__(self, index: slice | torch.Tensor) -> torch.Tensor:
        if isinstance(index, slice):
            rows = torch.arange(len(self.seeds))[index]
        else:
            rows = torch.as_tensor(index, dtype=torch.int64).reshape(-1).cpu()
        seeds = [self.seeds[i] for i in rows.tolist()]
        if self.parents is None:
            return self.genomes.init(seeds)
        parents = self.pick[rows].to(getattr(self.parents, "device", "cpu"))  # (or Children)
        return self.genomes.mutate(self.parents[parents], seeds)


def _speed(frames: int, seconds: float, network: float) -> dict[str, float]:
    """A generation's agent steps per second, overall and split into the time in the
    networks and the rest (the emulator, and the engine's bookkeeping)."""
    emulator = max(seconds - network, 1e-9)
    return {
        "frames_per_second": frames / max(seconds, 1e-9),
        "network_seconds": network,
        "emulator_seconds": emulator,
        "network_frames_per_second": frames / max(network, 1e-9),
        "emulator_frames_per_second": frames / emulator,
    }


def _is_mujoco_task(task_id: str) -> bool:
    try:
        return "mujoco" in tasks.get(task_id).backends
    except UnknownTaskError:  # a Gymnasium id outside rlwb's registry
        return False


class DeepGA(IterationAgent):
    """The paper's GA over seed-list genomes; see the module docstring."""

    def __init__(self, config: DeepGAConfig, spec: EngineSpec, device: torch.device) -> None:
        config.validate()
        self.config, self.spec, self.device = config, spec, torch.device(device)
        kit.apply_torch_threads(config.torch_threads, self.device)
        obs_dim = math.prod(spec.observation_shape)
        self.net = self._population_net()
        self.genomes = Genomes(
            self.net.num_params, self.net.init_scale(), config.sigma,
            config.noise_table_size, config.noise_table_seed, self.device,
        )  # fmt: skip
        self.generator = kit.seeded_generator(config.seed)  # on the CPU wherever the agent runs
        self.generation = 0
        self.env_steps = 0
        self.parents: list[list[int]] = []
        self.parent_params: torch.Tensor | None = None
        normalise = _is_mujoco_task(spec.task_id) if config.obs_norm is None else config.obs_norm
        if normalise and self._on_images():
            raise ConfigError("DeepGAConfig.obs_norm applies to vector observations, not frames")
        self.obs_stat: ObsStat | None = ObsStat.start(obs_dim) if normalise else None
        self._set_elite(self.genomes.draw(1, self.generator), math.nan, norm=self._norm())
        self.archive = torch.zeros(0, 0, dtype=torch.float64)
        self.last_result: PopulationResult | None = None
        self._evaluator: Any = None

    def _on_images(self) -> bool:
        """Whether the networks are conv nets over ``[C, H, W]`` frames."""
        return len(self.spec.observation_shape) == 3

    def net_recipe(self) -> tuple[str, dict[str, Any]]:
        """``(class name in rlwb.policies, keyword arguments)`` of one-network population
        modules as this agent builds them (Ray actors build theirs from it)."""
        spec, cfg = self.spec, self.config
        if self._on_images():
            if spec.num_actions < 1:
                raise ConfigError(
                    f"Deep GA on image observations needs discrete actions ({spec.task_id} "
                    "has continuous ones)"
                )
            return "PopulationConv", dict(
                observation_shape=tuple(spec.observation_shape), num_actions=spec.num_actions,
                population=1, architecture=cfg.conv,
            )  # fmt: skip
        if spec.num_actions > 0:
            raise ConfigError(
                f"Deep GA acts on discrete actions only from image observations; "
                f"{spec.task_id} has {spec.num_actions} actions and vector observations"
            )
        return "PopulationMLP", dict(
            obs_dim=math.prod(spec.observation_shape), action_dim=spec.action_dim,
            hidden=tuple(cfg.hidden), population=1, action_low=spec.action_low.cpu(),
            action_high=spec.action_high.cpu(), activation=cfg.activation,
        )  # fmt: skip

    def _population_net(self) -> PopulationMLP | PopulationConv:
        name, kwargs = self.net_recipe()
        return getattr(policies, name)(**kwargs, device=self.device)

    def _norm(self) -> Norm:
        """This generation's observation normalisation (None: off)."""
        return None if self.obs_stat is None else self.obs_stat.mean_std()

    # ------------------------------------------------------------------ acting
    def _set_elite(
        self, genome: list[int], score: float, params: torch.Tensor | None = None,
        norm: Norm = None,
    ) -> None:  # fmt: skip
        self.elite, self.elite_score, self.elite_norm = list(genome), float(score), norm
        self.net.set_params(self.genomes.build([self.elite]) if params is None else params)
        self.net.set_obs_norm(*(norm or (None, None)))

    def act(self, obs: torch.Tensor, explore: bool = False) -> torch.Tensor:
        """The elite's action for every member (the GA explores by mutation, not noise)."""
        with torch.no_grad():
            return self.net(obs.to(self.device) if self._on_images() else
                            obs.to(self.device).flatten(1))  # fmt: skip

    def policy_network(self) -> PolicyNetwork:
        """The elite's network as ``act`` runs it (flattened observations in; frames as
        they are)."""
        if self._on_images():
            return PolicyNetwork(self.net)
        return PolicyNetwork(torch.nn.Sequential(torch.nn.Flatten(1), self.net))

    # ------------------------------------------------------------------ one generation
    def evaluator(self, engine: Engine) -> Any:
        """Local sibling engines, or Ray actors with ``num_workers > 0`` (built once)."""
        if self._evaluator is None:
            cfg = self.config
            if cfg.num_workers > 0:
                from rlwb.agents.deep_ga.ray_shards import RayEvaluator

                self._evaluator = RayEvaluator(
                    engine, cfg, cfg.num_workers, lambda done, total: self.phase(
                        "starting Ray actors", done, total), self.net_recipe(),
                )  # fmt: skip
            else:
                net = self._population_net()
                self._evaluator = LocalEvaluator(engine.spawn, net, cfg.horizon, cfg.chunk)
        return self._evaluator

    def _children(self, n: int) -> tuple[list[list[int]], Children]:
        seeds = self.genomes.draw(n, self.generator)
        if self.parent_params is None:
            return [[s] for s in seeds], Children(self.genomes, seeds)
        pick = torch.randint(len(self.parents), (n,), generator=self.generator)
        genomes = [self.parents[i] + [s] for i, s in zip(pick.tolist(), seeds, strict=True)]
        return genomes, Children(self.genomes, seeds, self.parent_params, pick)

    def _candidates(self) -> int:
        """Networks re-evaluated for the elite this generation (the old one included)."""
        cfg, carried = self.config, int(self.generation > 0)
        return min(cfg.elite_candidates - carried, cfg.population - 1) + carried

    def worst_case_frames(self, engine: Engine) -> int:
        """Env steps of one generation if every episode ran to the horizon (its most)."""
        cfg = self.config
        members = (cfg.population - 1) * cfg.episodes + self._candidates() * cfg.elite_episodes
        return members * horizon_of(engine, cfg.horizon)

    def iterate(self, engine: Engine) -> dict[str, float] | None:
        """One generation. Stopped between chunks (:class:`PhaseInterrupted`), it leaves the
        agent as it was before the call."""
        if self.step_budget is not None:
            worst = self.worst_case_frames(engine)
            if self.env_steps + worst > self.step_budget:
                if self.generation == 0:
                    raise ConfigError(
                        f"total_steps={self.step_budget:,} is less than one Deep GA "
                        f"generation can use ({worst:,} env steps if every episode runs to "
                        "the horizon): raise it, or lower population, episodes or horizon"
                    )
                return None  # the next generation might overshoot: the run ends here
        before = self.generator.get_state()
        try:
            return self._generation(engine)
        except PhaseInterrupted:
            self.generator.set_state(before)  # nothing else changes before the end
            raise

    def _generation(self, engine: Engine) -> dict[str, float]:
        cfg, start = self.config, time.perf_counter()
        evaluator = self.evaluator(engine)
        local_net = getattr(evaluator, "net", None)
        network_before = getattr(local_net, "network_seconds", None)
        n = cfg.population - 1
        genomes, params = self._children(n)
        pop_seed, val_seed = torch.randint(2**31, (2,), generator=self.generator).tolist()
        norm, record = self._norm(), None
        if self.obs_stat is not None:
            record = torch.rand(n * cfg.episodes, generator=self.generator) < cfg.obs_stat_prob
        pop_chunks = -(-n // cfg.chunk)
        chunks = pop_chunks + -(-self._candidates() // cfg.chunk)

        def progress(offset: int) -> Any:
            return lambda done, _: self.phase("generation", offset + done, chunks)

        result = evaluator.evaluate(params, genomes, cfg.episodes, pop_seed, norm, record,
                                    progress(0))  # fmt: skip
        fitness = result.fitness
        metrics: dict[str, float] = {}
        if cfg.novelty:
            behaviors = result.behaviors.mean(1)
            archive = self.archive
            if archive.numel() == 0:
                archive = torch.zeros(0, behaviors.shape[1], dtype=torch.float64)
            score = novelty(behaviors, archive, cfg.novelty_k)
        else:
            score = fitness
        winner, validation = self._validate(evaluator, genomes, params, fitness, val_seed, norm,
                                            progress(pop_chunks))  # fmt: skip
        # the generation is evaluated: from here on the agent's state changes
        if cfg.novelty:
            self.archive = grow_archive(archive, behaviors, cfg.archive_probability,
                                        self.generator)  # fmt: skip
            metrics.update(
                novelty_max=float(score.max()),
                novelty_mean=float(score.mean()),
                archive_size=float(len(self.archive)),
            )
        self._set_elite(*winner, norm=norm)
        self._choose_parents(genomes, params, score, fitness)
        if self.obs_stat is not None and result.obs_stat is not None:
            self.obs_stat = self.obs_stat.plus(result.obs_stat)
        self.env_steps += result.frames + validation.frames
        self.generation += 1
        self.last_result = result
        metrics.update(
            generation=float(self.generation),
            fitness_max=float(fitness.max()),
            fitness_mean=float(fitness.mean()),
            fitness_median=float(fitness.median()),
            elite_score=self.elite_score,
            frames=float(self.env_steps),
            generation_seconds=time.perf_counter() - start,
            compression_ratio=self.genomes.compression_ratio(self.elite),
        )
        if network_before is not None:  # conv populations time their forward passes
            metrics.update(_speed(result.frames + validation.frames, metrics["generation_seconds"],
                                  local_net.network_seconds - network_before))  # fmt: skip
        if self.obs_stat is not None:
            metrics["obs_stat_count"] = float(self.obs_stat.count)
        if "success" in result.goal:  # goal tasks: did any child end at the goal?
            metrics["success_max"] = float(result.goal["success"].max())
        if "distance" in result.goal:
            metrics["distance_min"] = float(result.goal["distance"].min())
        return metrics

    def _validate(
        self,
        evaluator: Any,
        genomes: list[list[int]],
        params: Children,
        fitness: torch.Tensor,
        seed: int,
        norm: Norm,
        progress: Any,
    ) -> tuple[tuple[list[int], float, torch.Tensor], PopulationResult]:
        """Re-evaluate the best children (and the old elite) over ``elite_episodes``;
        returns the winner ``(genome, score, params[1, D])`` and the validation result."""
        cfg = self.config
        carried = self.generation > 0
        k = self._candidates() - int(carried)
        best = torch.argsort(fitness, descending=True, stable=True)[:k].tolist()
        cand_genomes = [genomes[i] for i in best]
        cand_params = params[torch.as_tensor(best, dtype=torch.int64, device=self.device)]
        if carried:
            cand_genomes.append(self.elite)
            cand_params = torch.cat([cand_params, self.net.params])
        validation = evaluator.evaluate(cand_params, cand_genomes, cfg.elite_episodes, seed,
                                        norm, None, progress)  # fmt: skip
        w = int(torch.argmax(validation.fitness))
        winner = (cand_genomes[w], float(validation.fitness[w]), cand_params[w : w + 1])
        return winner, validation

    def _choose_parents(
        self,
        genomes: list[list[int]],
        params: Children,
        score: torch.Tensor,
        fitness: torch.Tensor,
    ) -> None:
        """Truncation selection: GA keeps the elite first, then the best other children."""
        order = torch.argsort(score, descending=True, stable=True).tolist()
        t = self.config.truncation
        if self.config.novelty:
            chosen = order[:t]
            self.parents = [genomes[i] for i in chosen]
            self.parent_params = params[torch.as_tensor(chosen, device=self.device)]
            return
        others = [i for i in order if genomes[i] != self.elite][: t - 1]
        self.parents = [self.elite] + [genomes[i] for i in others]
        rows = torch.as_tensor(others, dtype=torch.int64, device=self.device)
        self.parent_params = torch.cat([self.net.params, params[rows]])

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Seed lists, generator, counters, archive and observation sums: networks are
        rebuilt on load."""
        return {
            **self.policy_state_dict(),
            "generation": self.generation,
            "env_steps": self.env_steps,
            "parents": [list(g) for g in self.parents],
            "archive": self.archive.clone(),
            "generator": self.generator.get_state(),
            "obs_stat": None if self.obs_stat is None else self.obs_stat.state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.load_policy_state_dict(state)
        with kit.checkpoint_fits("Deep GA"):
            self.generation = int(state["generation"])
            self.env_steps = int(state["env_steps"])
            self.parents = [[int(s) for s in g] for g in state["parents"]]
            self.archive = state["archive"].to(torch.float64)
            self.generator.set_state(state["generator"])
            saved = state.get("obs_stat")  # format 1 has none: normalisation stays off
            self.obs_stat = None if saved is None else ObsStat.from_state(saved)
        self.parent_params = self.genomes.build(self.parents) if self.parents else None

    def policy_state_dict(self) -> dict[str, Any]:
        """The elite as a seed list and the observation normalisation it was validated
        with (plus what it takes to check the rebuild)."""
        norm = self.elite_norm
        return {
            "format_version": FORMAT_VERSION,
            "elite": list(self.elite),
            "elite_score": self.elite_score,
            "obs_mean": None if norm is None else norm[0].cpu().clone(),
            "obs_std": None if norm is None else norm[1].cpu().clone(),
            "num_params": self.net.num_params,
            "config": dataclasses.asdict(self.config),
        }

    def load_policy_state_dict(self, state: dict[str, Any]) -> None:
        kit.check_format(state, FORMAT_VERSION, "Deep GA")
        if state.get("num_params") != self.net.num_params:
            raise CheckpointError(
                f"Deep GA checkpoint has {state.get('num_params')} parameters per network, "
                f"this agent {self.net.num_params}"
            )
        mean, std = state.get("obs_mean"), state.get("obs_std")  # format 1: none
        norm = None if mean is None or std is None else (mean.float(), std.float())
        if norm is None:
            self.obs_stat = None  # an elite without statistics acts on raw observations
        self._set_elite([int(s) for s in state["elite"]], float(state["elite_score"]), norm=norm)
