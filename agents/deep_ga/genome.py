"""The Deep GA's compact encoding: an individual is a list of integer seeds.

A genome ``[s0, s1, ..., sg]`` means ``theta = init(s0) + sigma * eps(s1) + ... + sigma *
eps(sg)``: an initialisation seed, then one seed per mutation (Such et al. 2017, section
3). A seed is an offset into a shared :class:`NoiseTable` of standard normal float32 values,
generated once from a fixed seed on the CPU with ``torch.Generator`` and then moved to the
device; ``eps(s) = table[s : s + D]`` and ``init(s) = table[s : s + D] * init_scale``. This is
the paper's released code's scheme (it used a 250M-entry table); we chose it over one seeded
generator per mutation because (a) a whole population's noise is one gather
(``index_select`` on an unfolded view), no Python loop over individuals, and (b) CPU and
CUDA generators draw different streams, while a table made on the CPU is the same numbers
on every device. Every operation is an elementwise float32 multiply or add, in the same
order when mutating a parent and when rebuilding from the list, so a rebuilt network is
bit-identical to the evolved one on any device (no fused multiply-add: ``noise * sigma`` and
the add are separate kernels).

Offsets of overlapping windows give shifted copies of the same numbers; as vectors assigned
to the weights they are uncorrelated (the table is i.i.d.), as in the paper's code.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from rlwb.errors import ConfigError

_TABLES: dict[tuple[int, int, str], torch.Tensor] = {}


def noise_table(size: int, seed: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``[size]`` float32 standard normals from ``torch.Generator().manual_seed(seed)`` on the
    CPU, moved to ``device`` (cached per process: workers and the driver share nothing but
    ``size`` and ``seed``)."""
    device = torch.device(device)
    key = (int(size), int(seed), str(device))
    if key not in _TABLES:
        cpu_key = (int(size), int(seed), "cpu")
        if cpu_key not in _TABLES:
            gen = torch.Generator().manual_seed(int(seed))
            _TABLES[cpu_key] = torch.randn(int(size), generator=gen, dtype=torch.float32)
        _TABLES[key] = _TABLES[cpu_key].to(device)
    return _TABLES[key]


class Genomes:
    """Seed lists <-> parameters ``[n, D]`` for networks of ``D`` parameters."""

    def __init__(
        self,
        num_params: int,
        init_scale: torch.Tensor,
        sigma: float,
        table_size: int,
        table_seed: int,
        device: torch.device | str,
    ) -> None:
        if table_size <= num_params:
            raise ConfigError(
                f"noise_table_size ({table_size}) must exceed the network's {num_params} "
                "parameters (the paper's code used 250M)"
            )
        self.num_params = int(num_params)
        self.table = noise_table(table_size, table_seed, device)
        self.windows = self.table.unfold(0, self.num_params, 1)  # [size - D + 1, D] view
        self.init_scale = init_scale.to(self.table.device, torch.float32)
        self.sigma = torch.tensor(float(sigma), dtype=torch.float32, device=self.table.device)

    @property
    def num_seeds(self) -> int:
        """Seeds are offsets in ``[0, num_seeds)``."""
        return int(self.windows.shape[0])

    def draw(self, n: int, generator: torch.Generator) -> list[int]:
        """``n`` fresh seeds from ``generator`` (a CPU generator)."""
        return torch.randint(self.num_seeds, (n,), generator=generator).tolist()

    def noise(self, seeds: Sequence[int]) -> torch.Tensor:
        index = torch.as_tensor(list(seeds), dtype=torch.int64, device=self.table.device)
        return self.windows.index_select(0, index)

    def init(self, seeds: Sequence[int]) -> torch.Tensor:
        """``[n, D]`` initial networks."""
        return self.noise(seeds) * self.init_scale

    def mutate(self, parents: torch.Tensor, seeds: Sequence[int]) -> torch.Tensor:
        """``parents[n, D] + sigma * eps(seeds)``: one mutation per row."""
        return parents + self.noise(seeds) * self.sigma

    def build(self, genomes: Sequence[Sequence[int]]) -> torch.Tensor:
        """``[n, D]`` networks rebuilt from their seed lists, batched over the population
        (one loop step per generation, not per individual)."""
        if not genomes or any(len(g) == 0 for g in genomes):
            raise ValueError("every genome needs at least its initialisation seed")
        params = self.init([g[0] for g in genomes])
        longest = max(len(g) for g in genomes)
        for k in range(1, longest):
            rows = [i for i, g in enumerate(genomes) if len(g) > k]
            index = torch.as_tensor(rows, dtype=torch.int64, device=params.device)
            mutated = self.mutate(params.index_select(0, index), [genomes[i][k] for i in rows])
            params = params.index_copy(0, index, mutated)
        return params

    def compression_ratio(self, genome: Sequence[int]) -> float:
        """Bytes of the float32 network over bytes of its seed list (int64 seeds)."""
        return 4.0 * self.num_params / (8.0 * len(genome))
