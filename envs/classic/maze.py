"""A 2D point mass in a walled grid maze, batched in torch, with exact (tunnel-free) walls.

Maps are text grids in the style of Gymnasium-Robotics' maze maps: ``#`` or ``1`` wall,
``.`` or ``0`` open, ``r`` reset cell, ``g`` goal cell, ``c`` both. A list of rows of
Gymnasium-Robotics' ``[1, 0, "r", "g", "c"]`` entries works too. Cell ``(i, j)`` (row i from
the top) has its centre at ``x = (j + 0.5) s - W s / 2``, ``y = H s / 2 - (i + 0.5) s`` with
cell size ``s`` (``maze_size_scaling``), as in Gymnasium-Robotics; the border must be wall.

State ``[x, y, vx, vy, goal_x, goal_y]``. Action: acceleration command ``a`` in [-1, 1]^2.
Integrator: semi-implicit Euler, ``dt = 0.1`` s::

    v' = clip(v + accel * a * dt, -max_speed, max_speed)      (per axis)
    p' = sweep(p, v' dt)                                       (collision below)

Walls. The agent is an axis-aligned square of half-width ``radius`` (in cells, < 0.4). Each
(sub)step moves it along x, then along y; along one axis the cells its leading edge enters
are checked in both rows (columns) it overlaps, and if one is a wall the agent stops a skin
of ``1e-3`` cell in front of that wall and its velocity on that axis becomes 0.

Why nothing tunnels: the speed clip and ``substeps = ceil(max_speed dt / (s / 2))`` bound the
displacement per substep and axis by half a cell. The leading edge then advances by at most
one column, so the only cells it can newly enter are the column (row) just checked; every
other cell it overlaps after the move it already overlapped before (free, by induction from
a free reset). A square narrower than a cell (2 radius + skin < 1) overlaps at most two rows
(columns), both checked. The skin keeps float32 round-off (~1e-6 cell) from landing an edge
exactly on a wall face, where the cell lookup would be ambiguous. Moving x then y may stop
at a corner that a straight diagonal sweep would slide past: it is conservative, never
penetrating.

Rewards (``reward_type``): ``dense`` = minus the distance to the goal; ``sparse`` = 1 within
``0.45 s`` of the goal else 0 (Gymnasium-Robotics' threshold). ``goal_conditioned=True``
makes the observation ``[observation(4), achieved_goal(2), desired_goal(2)]`` (slices in
``GOAL_SLICES``, Dict space from :meth:`PointMaze.goal_observation_space`) and samples the
goal uniformly over open cells; otherwise the observation is ``[x, y, vx, vy]`` and the goal
is the ``g`` cell's centre. The episode never terminates unless ``terminate_on_success``
(Gymnasium-Robotics' ``continuing_task=True`` default). Reset: a ``r`` cell (uniformly, or any
open cell if none) centre plus ``U(-d, d) s`` noise per axis with ``d = min(0.25, 0.5 - radius
- 0.002)`` (Gymnasium-Robotics' 0.25, shrunk so a wide agent starts clear of walls), zero
velocity.

Minimum start-to-goal distance (``min_goal_distance``, in cells, Euclidean between centres
of start and goal): without it 2-13% of goal-conditioned episodes start already solved.
Each member draws ``_GOAL_TRIES`` goal candidates (goal-conditioned) or start candidates
(fixed goal) and keeps the first far enough, else the farthest: vectorized, no rejection
loop. ``observation_slices`` names the parts of the flat goal observation as
``(start, stop)`` columns; :meth:`PointMaze.goal_reached` is the success test and
:meth:`PointMaze.steps_to_goal` a ground-truth distance (shortest 4-connected cell path,
in cells) for probing learned distances.

Behaviour descriptor for novelty search: the final ``(x, y)``, the first two observation
entries in every variant (:func:`behavior_descriptor`; ``info`` also carries
``x_position``/``y_position``).

This is not Gymnasium-Robotics' MuJoCo PointMaze (no ball inertia, friction or contact
softness): the dynamics are the analytic ones above, chosen to be fast and differentiable.
Non-smooth parts: the speed clip, the wall stops (zero gradient through a blocked axis) and
the sparse reward (zero gradient everywhere).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch

from rlwb.envs.classic.base import TorchTask
from rlwb.errors import ConfigError

OPEN = """
#######
#.....#
#..r..#
#...g.#
#######
"""

U_MAZE = """
#####
#g..#
###.#
#r..#
#####
"""

# The straight line from r to g runs into the cup under g: greedy distance-following gets
# trapped at the cup's top (2 cells from g); the way round leaves through the bottom row.
DECEPTIVE = """
###########
#....g....#
#.#######.#
#.#.....#.#
#.#.....#.#
#.#.....#.#
#....r....#
###########
"""

MAZES = {"open": OPEN, "umaze": U_MAZE, "deceptive": DECEPTIVE}

GOAL_SLICES = {
    "observation": slice(0, 4),
    "achieved_goal": slice(4, 6),
    "desired_goal": slice(6, 8),
}

_SKIN = 1e-3
_GOAL_TRIES = 32
_CODES = {"#": 1, "1": 1, ".": 0, "0": 0, "r": "r", "g": "g", "c": "c"}


def parse_maze(maze: str | Sequence[Sequence[object]]) -> list[list[object]]:
    """Text grid (or Gymnasium-Robotics list map) -> rows of ``1``, ``0``, ``"r"``, ``"g"``,
    ``"c"``; raises ConfigError naming the problem."""
    if isinstance(maze, str):
        lines = [line.strip() for line in maze.strip().splitlines() if line.strip()]
        rows: list[list[object]] = []
        for i, line in enumerate(lines):
            bad = sorted({ch for ch in line.lower() if ch not in _CODES})
            if bad:
                raise ConfigError(f"maze row {i} has unknown characters {bad}; use # . r g c")
            rows.append([_CODES[ch] for ch in line.lower()])
    else:
        rows = [[(c.lower() if isinstance(c, str) else int(c)) for c in row] for row in maze]
    if not rows or any(len(r) != len(rows[0]) for r in rows):
        raise ConfigError("maze must be a non-empty rectangular grid")
    for i, row in enumerate(rows):
        for c in row:
            if c not in (0, 1, "r", "g", "c"):
                raise ConfigError(f"maze row {i} has unknown entry {c!r}")
    border = rows[0] + rows[-1] + [r[0] for r in rows] + [r[-1] for r in rows]
    if any(c != 1 for c in border):
        raise ConfigError("the maze border must be wall (# or 1) all round")
    if not any(c != 1 for row in rows for c in row):
        raise ConfigError("the maze has no open cell")
    return rows


def split_goal_obs(obs: torch.Tensor) -> dict[str, torch.Tensor]:
    """Views of a goal-conditioned flat observation ``[..., 8]`` under Gymnasium-Robotics'
    keys ``observation``, ``achieved_goal`` and ``desired_goal``."""
    return {key: obs[..., sl] for key, sl in GOAL_SLICES.items()}


def behavior_descriptor(obs: torch.Tensor) -> torch.Tensor:
    """``[..., 2]`` final (x, y) position from maze observations (e.g.
    ``RolloutResult.final_obs``), the behaviour characterisation of novelty search."""
    return obs[..., 0:2]


@dataclass
class PointMaze(TorchTask):
    """Point mass in a grid maze; see the module docstring for the exact rules."""

    maze_map: str | Sequence[Sequence[object]] = "umaze"
    reward_type: str = "dense"
    goal_conditioned: bool = False
    terminate_on_success: bool = False
    maze_size_scaling: float = 1.0
    max_episode_steps: int = 300
    dt: float = 0.1
    accel: float = 5.0
    max_speed: float = 2.5
    radius: float = 0.1
    success_distance: float = 0.45
    min_goal_distance: float = 0.0
    """Least start-to-goal distance in cells (Euclidean); 0 = Gymnasium-Robotics' draw."""
    goal_cell_prob: float = 0.0
    """Goal-conditioned: probability that a goal comes from the ``g`` cells (e.g. the
    deceptive goal) rather than uniformly from all open cells."""

    state_names = ("x", "y", "vx", "vy", "goal_x", "goal_y")
    action_low = (-1.0, -1.0)
    action_high = (1.0, 1.0)

    def __post_init__(self) -> None:
        text = (
            MAZES.get(self.maze_map, self.maze_map)
            if isinstance(self.maze_map, str)
            else self.maze_map
        )
        self.grid = parse_maze(text)
        if self.reward_type not in ("dense", "sparse"):
            raise ConfigError(f"reward_type must be 'dense' or 'sparse', got {self.reward_type!r}")
        if not 0 <= self.radius < 0.4:
            raise ConfigError(f"radius must be in [0, 0.4) cells, got {self.radius}")
        if self.maze_size_scaling <= 0 or self.dt <= 0 or self.max_speed <= 0:
            raise ConfigError("maze_size_scaling, dt and max_speed must be positive")
        self.rows, self.cols = len(self.grid), len(self.grid[0])
        # Displacement per substep and axis <= half a cell (see the module docstring).
        self.substeps = max(1, math.ceil(self.max_speed * self.dt / (0.5 * self.maze_size_scaling)))
        self.obs_dim = 8 if self.goal_conditioned else 4
        self.obs_slices = dict(GOAL_SLICES) if self.goal_conditioned else None
        self.observation_slices: dict[str, tuple[int, int]] | None = (
            {k: (v.start, v.stop) for k, v in GOAL_SLICES.items()}
            if self.goal_conditioned
            else None
        )
        if not 0 <= self.goal_cell_prob <= 1:
            raise ConfigError(f"goal_cell_prob must be in [0, 1], got {self.goal_cell_prob}")
        if self.min_goal_distance < 0:
            raise ConfigError(f"min_goal_distance must be >= 0, got {self.min_goal_distance}")
        self._cell_paths = self._all_pairs_steps()
        self.bind(torch.device("cpu"), torch.float32)

    # ---------------------------------------------------------------- geometry
    def cell_center(self, i: int, j: int) -> tuple[float, float]:
        s = self.maze_size_scaling
        return (j + 0.5) * s - self.cols * s / 2, self.rows * s / 2 - (i + 0.5) * s

    def _cells(self, kinds: tuple[object, ...]) -> list[tuple[float, float]]:
        return [
            self.cell_center(i, j)
            for i, row in enumerate(self.grid)
            for j, c in enumerate(row)
            if c in kinds
        ]

    def bind(self, device: torch.device, dtype: torch.dtype) -> None:
        super().bind(device, dtype)
        walls = torch.tensor([[c == 1 for c in row] for row in self.grid], dtype=torch.bool)
        self.walls = walls.reshape(-1).to(self.device)
        opts = dict(device=self.device, dtype=self.dtype)
        self.reset_cells = torch.tensor(
            self._cells(("r", "c")) or self._cells((0, "r", "g", "c")), **opts
        )
        goals = self._cells(("g", "c")) or self._cells((0, "r", "g", "c"))
        self.goal_cells = torch.tensor(goals, **opts)
        self.open_cells = torch.tensor(self._cells((0, "r", "g", "c")), **opts)

    def is_wall_at(self, xy: torch.Tensor) -> torch.Tensor:
        """``[B]`` bool: the square agent at ``xy[B, 2]`` overlaps a wall cell (for tests)."""
        u, v = self._to_grid(xy[:, 0], xy[:, 1])
        r = self.radius
        hit = torch.zeros(xy.shape[0], dtype=torch.bool, device=xy.device)
        for col in (torch.floor(u - r), torch.ceil(u + r) - 1):
            for row in (torch.floor(v - r), torch.ceil(v + r) - 1):
                hit = hit | self._wall(row, col)
        return hit

    def _to_grid(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.maze_size_scaling
        return x / s + self.cols / 2, self.rows / 2 - y / s

    def _wall(self, row: torch.Tensor, col: torch.Tensor) -> torch.Tensor:
        row = row.clamp(0, self.rows - 1)
        col = col.clamp(0, self.cols - 1)
        return self.walls[(row * self.cols + col).long()]

    def _sweep(
        self,
        pos: torch.Tensor,
        vel: torch.Tensor,
        delta: torch.Tensor,
        other: torch.Tensor,
        along_x: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Move grid coordinate ``pos`` by ``delta`` (|delta| <= 1/2) against walls; ``other``
        is the agent's coordinate on the other axis. Returns (new pos, velocity)."""
        r = self.radius
        new = pos + delta
        forward = delta >= 0
        lead = torch.where(forward, torch.ceil(new + r) - 1, torch.floor(new - r))
        lo, hi = torch.floor(other - r), torch.ceil(other + r) - 1
        if along_x:
            blocked = self._wall(lo, lead) | self._wall(hi, lead)
        else:
            blocked = self._wall(lead, lo) | self._wall(lead, hi)
        stop = torch.where(forward, lead - r - _SKIN, lead + 1 + r + _SKIN)
        return torch.where(blocked, stop, new), torch.where(blocked, torch.zeros_like(vel), vel)

    # ---------------------------------------------------------------- task math
    def reset_state(self, n: int, generator: torch.Generator) -> torch.Tensor:
        s = self.maze_size_scaling
        noise = min(0.25, 0.5 - self.radius - 2 * _SKIN) * s  # the agent starts inside its cell
        tries = _GOAL_TRIES if self.min_goal_distance > 0 else 1
        k = torch.randint(len(self.reset_cells), (n,), generator=generator, device=self.device)
        pos = self.reset_cells[k] + self.uniform(generator, n, -noise, noise, dim=2)
        if self.goal_conditioned:
            g = torch.randint(
                len(self.open_cells), (tries, n), generator=generator, device=self.device
            )
            cells = self.open_cells[g]
            if self.goal_cell_prob > 0:
                h = torch.randint(
                    len(self.goal_cells), (tries, n), generator=generator, device=self.device
                )
                pick = self.uniform(generator, n, 0.0, 1.0)[:, 0] < self.goal_cell_prob
                cells = torch.where(pick[None, :, None], self.goal_cells[h], cells)
            jitter = self.uniform(generator, tries * n, -noise, noise, dim=2).reshape(tries, n, 2)
            goal = self._far_enough(cells + jitter, pos)
        else:
            g = torch.randint(len(self.goal_cells), (n,), generator=generator, device=self.device)
            goal = self.goal_cells[g]
            if tries > 1:
                k = torch.randint(
                    len(self.reset_cells), (tries, n), generator=generator, device=self.device
                )
                jitter = self.uniform(generator, tries * n, -noise, noise, dim=2)
                pos = self._far_enough(self.reset_cells[k] + jitter.reshape(tries, n, 2), goal)
        return torch.cat([pos, torch.zeros_like(pos), goal], dim=1)

    def probe_state(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``[n, S]`` states at rest with position and goal both uniform over open cells
        (jittered like resets): a probe set that spans every distance in the maze."""
        noise = min(0.25, 0.5 - self.radius - 2 * _SKIN) * self.maze_size_scaling
        k = torch.randint(len(self.open_cells), (2, n), generator=generator, device=self.device)
        xy = self.open_cells[k] + self.uniform(generator, 2 * n, -noise, noise, dim=2).reshape(
            2, n, 2
        )
        return torch.cat([xy[0], torch.zeros_like(xy[0]), xy[1]], dim=1)

    def _far_enough(self, candidates: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        """From ``[K, n, 2]`` candidates per member, the first at least
        ``min_goal_distance`` cells from ``other[n, 2]``, else the farthest."""
        dist = torch.linalg.vector_norm(candidates - other, dim=-1)  # [K, n]
        ok = dist >= self.min_goal_distance * self.maze_size_scaling
        first = torch.where(ok.any(0), ok.to(torch.int8).argmax(0), dist.argmax(0))
        return candidates[first, torch.arange(candidates.shape[1], device=candidates.device)]

    # ---------------------------------------------------------------- goal helpers
    def goal_reached(self, achieved: torch.Tensor, desired: torch.Tensor) -> torch.Tensor:
        """``[...]`` bool: ``achieved`` lies within the success distance of ``desired``."""
        dist = torch.linalg.vector_norm(achieved - desired, dim=-1)
        return dist <= self.success_distance * self.maze_size_scaling

    def _all_pairs_steps(self) -> torch.Tensor:
        """``[R*C, R*C]`` shortest 4-connected path lengths between cells (inf via walls)."""
        n = self.rows * self.cols
        dist = torch.full((n, n), math.inf, dtype=torch.float64)
        free = [i * self.cols + j for i, row in enumerate(self.grid)
                for j, c in enumerate(row) if c != 1]  # fmt: skip
        for a in free:
            dist[a, a] = 0.0
            for b in (a + 1, a - 1, a + self.cols, a - self.cols):
                if b in free and (abs(b - a) != 1 or b // self.cols == a // self.cols):
                    dist[a, b] = 1.0
        for k in free:  # Floyd-Warshall on a few dozen cells
            dist = torch.minimum(dist, dist[:, k : k + 1] + dist[k : k + 1, :])
        return dist

    def steps_to_goal(self, xy: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """``[B]`` shortest path length in cells from the cell of ``xy[B, 2]`` to that of
        ``goal[B, 2]`` (ground truth for learned distances)."""

        def cell(p: torch.Tensor) -> torch.Tensor:
            u, v = self._to_grid(p[:, 0], p[:, 1])
            row = v.floor().clamp(0, self.rows - 1).long()
            return row * self.cols + u.floor().clamp(0, self.cols - 1).long()

        table = self._cell_paths.to(xy.device)
        return table[cell(xy), cell(goal)].to(xy.dtype)

    def dynamics(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        s, h = self.maze_size_scaling, self.dt / self.substeps
        a = action.clamp(-1.0, 1.0)
        vel = (state[:, 2:4] + self.accel * a * self.dt).clamp(-self.max_speed, self.max_speed)
        vx, vy = vel[:, 0], vel[:, 1]
        u, v = self._to_grid(state[:, 0], state[:, 1])
        for _ in range(self.substeps):
            u, vx = self._sweep(u, vx, vx * h / s, v, along_x=True)
            v, vy = self._sweep(v, vy, -vy * h / s, u, along_x=False)
        x = (u - self.cols / 2) * s
        y = (self.rows / 2 - v) * s
        return self.pack([x, y, vx, vy, state[:, 4], state[:, 5]])

    def compute_reward(
        self, achieved_goal: torch.Tensor, desired_goal: torch.Tensor
    ) -> torch.Tensor:
        """Reward for (achieved, desired) goal pairs ``[..., 2]``, for hindsight relabelling."""
        dist = torch.linalg.vector_norm(achieved_goal - desired_goal, dim=-1)
        if self.reward_type == "dense":
            return -dist
        return (dist <= self.success_distance * self.maze_size_scaling).to(achieved_goal.dtype)

    def _distance(self, state: torch.Tensor) -> torch.Tensor:
        return torch.linalg.vector_norm(state[:, 0:2] - state[:, 4:6], dim=1)

    def reward(
        self, state: torch.Tensor, action: torch.Tensor, next_state: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        dist = self._distance(next_state)
        success = (dist <= self.success_distance * self.maze_size_scaling).to(dist.dtype)
        reward = -dist if self.reward_type == "dense" else success
        info = {
            "distance": dist,
            "success": success,
            "x_position": next_state[:, 0],
            "y_position": next_state[:, 1],
        }
        return reward, info

    def terminated(self, next_state: torch.Tensor) -> torch.Tensor:
        if not self.terminate_on_success:
            return super().terminated(next_state)
        return self._distance(next_state) <= self.success_distance * self.maze_size_scaling

    def observation(self, state: torch.Tensor) -> torch.Tensor:
        if self.goal_conditioned:
            return torch.cat([state[:, 0:4], state[:, 0:2], state[:, 4:6]], dim=1).contiguous()
        return state[:, 0:4].contiguous()

    def goal_observation_space(self) -> gym.spaces.Dict:
        """Gymnasium-Robotics' Dict space of the goal-conditioned observation."""
        box = lambda n: gym.spaces.Box(-np.inf, np.inf, shape=(n,), dtype=np.float32)  # noqa: E731
        return gym.spaces.Dict(
            {"observation": box(4), "achieved_goal": box(2), "desired_goal": box(2)}
        )
