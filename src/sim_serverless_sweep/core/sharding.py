"""Deterministic plan: canonical point order, balanced shards, per-point seeds.

Nothing here materialises the point list: a plan is O(dimensions) in memory and
decoding an index to its point is O(dimensions).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from sim_serverless_sweep.core.contract import SweepRequest

PointValue = int | float


@dataclass(frozen=True, slots=True)
class Plan:
    """The expansion of a request into points and shards.

    Canonical order: dimension names sorted, values in the given order, the last
    name varies fastest; ``point_index`` is that row-major index.

    >>> plan = Plan.build({"b": [1, 2], "a": [0.1, 0.2, 0.3]}, shard_count=2)
    >>> plan.point(1), [len(plan.shard_range(s)) for s in range(plan.shard_count)]
    ({'a': 0.1, 'b': 2}, [3, 3])
    """

    names: tuple[str, ...]
    values: tuple[tuple[PointValue, ...], ...]
    shard_count: int

    @classmethod
    def build(
        cls,
        dimensions: Mapping[str, Sequence[PointValue]],
        shard_count: int | None = None,
        shard_size: int | None = None,
    ) -> Plan:
        """Plan from dimensions and exactly one of shard_count / shard_size."""
        names = tuple(sorted(dimensions))
        values = tuple(tuple(dimensions[name]) for name in names)
        points = math.prod(len(v) for v in values)
        if (shard_count is None) == (shard_size is None):
            raise ValueError("give exactly one of shard_count or shard_size")
        if shard_size is not None:
            if shard_size < 1:
                raise ValueError("shard_size must be >= 1")
            shard_count = -(-points // shard_size)
        assert shard_count is not None
        if not 1 <= shard_count <= max(points, 1):
            raise ValueError(f"shard_count {shard_count} must be in [1, {points}]")
        return cls(names, values, shard_count)

    @classmethod
    def from_request(cls, request: SweepRequest) -> Plan:
        return cls.build(request.dimensions, request.shard_count, request.shard_size)

    @property
    def points(self) -> int:
        return math.prod(len(v) for v in self.values)

    def shard_range(self, shard_id: int) -> range:
        """Contiguous index range of a shard; sizes differ by at most one."""
        if not 0 <= shard_id < self.shard_count:
            raise IndexError(f"shard_id {shard_id} outside [0, {self.shard_count})")
        base, extra = divmod(self.points, self.shard_count)
        start = shard_id * base + min(shard_id, extra)
        return range(start, start + base + (1 if shard_id < extra else 0))

    def shard_of(self, point_index: int) -> int:
        """The shard that holds ``point_index`` (inverse of shard_range)."""
        base, extra = divmod(self.points, self.shard_count)
        boundary = extra * (base + 1)
        if point_index < boundary:
            return point_index // (base + 1)
        return extra + (point_index - boundary) // base

    def point(self, point_index: int) -> dict[str, PointValue]:
        """Decode a point index into {name: value}, in O(dimensions)."""
        if not 0 <= point_index < self.points:
            raise IndexError(f"point_index {point_index} outside [0, {self.points})")
        decoded: dict[str, PointValue] = {}
        remainder = point_index
        for name, vals in zip(reversed(self.names), reversed(self.values), strict=True):
            remainder, position = divmod(remainder, len(vals))
            decoded[name] = vals[position]
        return {name: decoded[name] for name in self.names}

    def index_of(self, point: Mapping[str, PointValue]) -> int:
        """Encode a point back to its index (inverse of :meth:`point`)."""
        index = 0
        for name, vals in zip(self.names, self.values, strict=True):
            index = index * len(vals) + vals.index(point[name])
        return index


def point_seed(request_seed: int, point_index: int, replicate: int) -> np.random.SeedSequence:
    """Seed of one simulation; depends only on (request seed, point, replicate).

    >>> a, b = point_seed(42, 3, 0), point_seed(42, 3, 0)
    >>> bool(a.generate_state(1)[0] == b.generate_state(1)[0])
    True
    """
    return np.random.SeedSequence(entropy=request_seed, spawn_key=(point_index, replicate))
