"""The vectorised matcher equals the textbook greedy: all pairs sorted by distance."""

from __future__ import annotations

import numpy as np
import pytest

from sim_serverless_sweep.sim.model import match_dense, match_greedy, nearest_km

_match = match_dense


def greedy_reference(
    ox: np.ndarray, oy: np.ndarray, dx: np.ndarray, dy: np.ndarray, max_km: float
) -> dict[int, int]:
    pairs = sorted(
        (float((ox[i] - dx[j]) ** 2 + (oy[i] - dy[j]) ** 2), i, j)
        for i in range(ox.size)
        for j in range(dx.size)
    )
    taken_r: set[int] = set()
    taken_c: set[int] = set()
    out: dict[int, int] = {}
    for d2, i, j in pairs:
        if d2 <= max_km * max_km and i not in taken_r and j not in taken_c:
            taken_r.add(i)
            taken_c.add(j)
            out[i] = j
    return out


@pytest.mark.parametrize("seed", range(4))
def test_matches_sorted_pair_greedy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(150):
        w, i = int(rng.integers(0, 14)), int(rng.integers(0, 14))
        max_km = float(rng.uniform(0.2, 10.0))
        ox, oy, dx, dy = (rng.random(n) * 8.0 for n in (w, w, i, i))
        r, c, d = _match(ox, oy, dx, dy, max_km)
        assert dict(zip(r.tolist(), c.tolist(), strict=True)) == greedy_reference(
            ox, oy, dx, dy, max_km
        )
        assert np.allclose(d, np.hypot(ox[r] - dx[c], oy[r] - dy[c]))
        assert (d <= max_km).all()


def test_ties_still_give_a_greedy_matching() -> None:
    """On a lattice many distances tie; size and distances must still be the greedy's."""
    rng = np.random.default_rng(9)
    for _ in range(200):
        w, i = int(rng.integers(1, 10)), int(rng.integers(1, 10))
        ox, oy, dx, dy = (np.floor(rng.random(n) * 4.0) for n in (w, w, i, i))
        r, c, d = _match(ox, oy, dx, dy, 2.0)
        ref = greedy_reference(ox, oy, dx, dy, 2.0)
        assert r.size == len(ref)
        assert len(set(r.tolist())) == r.size and len(set(c.tolist())) == c.size
        ref_d = sorted(float(np.hypot(ox[a] - dx[b], oy[a] - dy[b])) for a, b in ref.items())
        assert sorted(d.tolist()) == pytest.approx(ref_d)


@pytest.mark.parametrize("seed", range(6))
def test_grid_matcher_takes_exactly_the_dense_rules_pairs(seed: int) -> None:
    """Large enough for the grid path; every shape of market, reach short and long."""
    rng = np.random.default_rng(100 + seed)
    for _ in range(12):
        w, i = int(rng.integers(20, 400)), int(rng.integers(20, 3000))
        side = float(rng.uniform(2.0, 20.0))
        max_km = float(rng.uniform(0.05, 1.5)) * side
        ox, oy, dx, dy = (rng.random(n) * side for n in (w, w, i, i))
        if seed % 2:  # demand in a corner, drivers everywhere: many go to phase B
            ox, oy = ox * 0.2, oy * 0.2
        r, c, d = match_greedy(ox, oy, dx, dy, max_km, side)
        r0, c0, _ = match_dense(ox, oy, dx, dy, max_km)
        got = dict(zip(r.tolist(), c.tolist(), strict=True))
        assert got == dict(zip(r0.tolist(), c0.tolist(), strict=True))
        assert np.allclose(d, np.hypot(ox[r] - dx[c], oy[r] - dy[c]))


def test_grid_matcher_on_a_lattice_of_ties() -> None:
    rng = np.random.default_rng(7)
    for _ in range(20):
        ox, oy = (np.floor(rng.random(150) * 10.0) for _ in range(2))
        dx, dy = (np.floor(rng.random(400) * 10.0) for _ in range(2))
        r, c, _ = match_greedy(ox, oy, dx, dy, 3.0, 10.0)
        r0, c0, _ = match_dense(ox, oy, dx, dy, 3.0)
        assert dict(zip(r.tolist(), c.tolist(), strict=True)) == dict(
            zip(r0.tolist(), c0.tolist(), strict=True)
        )


def test_nearest_km_is_the_true_nearest_distance() -> None:
    rng = np.random.default_rng(3)
    for n_q, n_d in ((5, 10), (300, 2000), (50, 0), (200, 30)):
        qx, qy, dx, dy = (rng.random(n) * 8.0 for n in (n_q, n_q, n_d, n_d))
        got = nearest_km(qx, qy, dx, dy, 8.0)
        if n_d:
            want = np.sqrt(np.subtract.outer(qx, dx) ** 2 + np.subtract.outer(qy, dy) ** 2).min(1)
            assert np.allclose(got, want)
        else:
            assert np.isinf(got).all()
