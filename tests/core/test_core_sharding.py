"""Plan properties: exact balanced partition, index <-> point round trip, stable seeds."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim_serverless_sweep.core.sharding import Plan, point_seed

NAMES = ["num_riders", "commission_rate", "num_drivers", "speed_kmh"]

dimensions_st = st.dictionaries(
    st.sampled_from(NAMES),
    st.lists(st.integers(1, 10_000), min_size=1, max_size=6, unique=True),
    min_size=1,
    max_size=4,
)


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    dimensions = draw(dimensions_st)
    points = math.prod(len(v) for v in dimensions.values())
    if draw(st.booleans()):
        return Plan.build(dimensions, shard_count=draw(st.integers(1, points)))
    return Plan.build(dimensions, shard_size=draw(st.integers(1, points + 3)))


@given(plans())
@settings(max_examples=300, deadline=None)
def test_shards_partition_points_exactly_and_balanced(plan: Plan) -> None:
    ranges = [plan.shard_range(s) for s in range(plan.shard_count)]
    covered = [i for r in ranges for i in r]
    assert covered == list(range(plan.points))  # contiguous, ordered, no gap, no overlap
    sizes = [len(r) for r in ranges]
    assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1
    for shard_id, span in enumerate(ranges):
        assert all(plan.shard_of(i) == shard_id for i in (span.start, span.stop - 1))


@given(dimensions_st, st.integers(1, 50))
@settings(max_examples=200, deadline=None)
def test_shard_size_gives_ceiling_shards(dimensions: dict[str, list[int]], size: int) -> None:
    points = math.prod(len(v) for v in dimensions.values())
    plan = Plan.build(dimensions, shard_size=size)
    assert plan.shard_count == -(-points // size)
    assert max(len(plan.shard_range(s)) for s in range(plan.shard_count)) <= size


@given(plans(), st.data())
@settings(max_examples=300, deadline=None)
def test_index_point_round_trip(plan: Plan, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, plan.points - 1))
    point = plan.point(index)
    assert list(point) == sorted(point)
    assert plan.index_of(point) == index


@given(dimensions_st)
@settings(max_examples=100, deadline=None)
def test_canonical_order_is_row_major_over_sorted_names(dimensions: dict[str, list[int]]) -> None:
    plan = Plan.build(dimensions, shard_count=1)
    names = sorted(dimensions)
    expected = [
        dict(zip(names, combo, strict=True))
        for combo in itertools.product(*(dimensions[n] for n in names))
    ]
    assert [plan.point(i) for i in range(plan.points)] == expected


def test_spec_example_plan() -> None:
    plan = Plan.build(
        {"commission_rate": [0.1, 0.2], "num_drivers": [100, 200], "num_riders": [500, 800]},
        shard_count=4,
    )
    assert plan.points == 8
    assert [list(plan.shard_range(s)) for s in range(4)] == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert plan.point(1) == {"commission_rate": 0.1, "num_drivers": 100, "num_riders": 800}
    assert plan.point(7) == {"commission_rate": 0.2, "num_drivers": 200, "num_riders": 800}


def test_huge_grid_is_not_materialised() -> None:
    plan = Plan.build(
        {"num_riders": list(range(1, 1001)), "num_drivers": list(range(1, 1001))}, shard_count=1000
    )
    assert plan.points == 1_000_000
    assert plan.point(999_999) == {"num_drivers": 1000, "num_riders": 1000}
    assert len(plan.shard_range(999)) == 1000


def test_invalid_plans_rejected() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Plan.build({"a": [1]}, shard_count=1, shard_size=1)
    with pytest.raises(ValueError, match="shard_count"):
        Plan.build({"a": [1]}, shard_count=2)
    with pytest.raises(IndexError):
        Plan.build({"a": [1]}, shard_count=1).point(1)


def test_point_seeds_depend_on_seed_point_and_replicate_only() -> None:
    def state(seed: int, point: int, rep: int) -> tuple[int, ...]:
        return tuple(int(x) for x in point_seed(seed, point, rep).generate_state(4))

    cells = [(s, p, r) for s in (0, 42) for p in (0, 1, 2, 1000) for r in (0, 1, 2)]
    states = {cell: state(*cell) for cell in cells}
    assert len(set(states.values())) == len(cells)  # incl. seed 0 and (1, 2) vs (2, 1)
    for (seed, point, rep), got in states.items():
        spec = np.random.SeedSequence(entropy=seed, spawn_key=(point, rep))
        assert got == tuple(int(x) for x in spec.generate_state(4))
