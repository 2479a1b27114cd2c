"""`sweep compare`: matching, Welch and paired intervals, false positives, a real shift.

Every run here is a real (small) sweep. The model is still changing, so nothing here
hard-codes a model output: the tests check statistical properties (false-positive rate
under no change, the sign of a commission shift) and recompute intervals from the
Parquet rows read with pyarrow.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import math
import re
import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from sim_serverless_sweep.analytics.compare import (
    DEFAULT_METRICS,
    FALSE_POSITIVE_RATE,
    Comparison,
    compare_runs,
    overview,
    t_quantile_975,
)
from sim_serverless_sweep.analytics.report import (
    KEY_METRICS,
    build_context,
    build_report,
    load_run,
    render,
)
from sim_serverless_sweep.cli import main as sweep_main
from sim_serverless_sweep.cli.compare import add_compare_parser
from sim_serverless_sweep.cli.support import UsageError

Rows = list[dict[str, Any]]
PNG = b"\x89PNG\r\n\x1a\n"

# 4 x 4 x 6 = 96 small points (an hour each, six replications): many (point, metric)
# pairs for the false-positive rate at a few seconds per run.
NULL_GRID: dict[str, list[int | float]] = {
    "commission_rate": [0.1, 0.2, 0.3, 0.4],
    "num_drivers": [8, 12, 16, 24],
    "num_riders": [60, 90, 120, 160, 200, 240],
    "horizon_min": [60],
    "warmup_min": [15],
}
SHIFT_GRID: dict[str, list[int | float]] = {
    "commission_rate": [0.1],
    "num_drivers": [8, 12, 16, 24],
    "num_riders": [80, 120, 160],
    "horizon_min": [120],
    "warmup_min": [15],
}


def _run(results: Path, run_id: str, seed: int, dims: dict[str, Any], reps: int) -> None:
    request = {
        "run_id": run_id,
        "dimensions": dims,
        "shard_count": 4 if math.prod(len(v) for v in dims.values()) >= 4 else 1,
        "seed": seed,
        "replications": reps,
    }
    path = results.parent / f"{run_id}.json"
    path.write_text(json.dumps(request))
    with contextlib.redirect_stdout(io.StringIO()):
        code = sweep_main(["run", str(path), "--results", str(results), "--workers", "2", "--json"])
    assert code == 0


@pytest.fixture(scope="module")
def null_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Runs of one grid: two seeds; a grid that differs; one sharing seeds with part of it."""
    results = tmp_path_factory.mktemp("compare-null") / "results"
    _run(results, "null-a", 1, NULL_GRID, 6)
    _run(results, "null-b", 2, NULL_GRID, 6)
    # Shares commission 0.2 and 0.3 at 60/90 riders with null-a; 0.5 is new; 4 replications.
    other = {**NULL_GRID, "commission_rate": [0.2, 0.3, 0.5], "num_riders": [60, 90]}
    _run(results, "grid-c", 3, other, 4)
    # Same seed and replications as null-a, a smaller grid: only commission 0.1 with 8
    # drivers keeps null-a's point indices (0 and 1), so only those two share seeds.
    mixed = {**NULL_GRID, "commission_rate": [0.1, 0.3], "num_riders": [60, 90]}
    _run(results, "mixed", 1, mixed, 6)
    single = {**NULL_GRID, "commission_rate": [0.1], "num_drivers": [8, 12], "num_riders": [60]}
    _run(results, "single", 1, single, 1)
    return results


@pytest.fixture(scope="module")
def shift_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Commission 0.1 (shift-a) against 0.2 with the same seed (shift-b) and another (shift-c)."""
    results = tmp_path_factory.mktemp("compare-shift") / "results"
    _run(results, "shift-a", 7, SHIFT_GRID, 6)
    _run(results, "shift-b", 7, {**SHIFT_GRID, "commission_rate": [0.2]}, 6)
    _run(results, "shift-c", 8, {**SHIFT_GRID, "commission_rate": [0.2]}, 6)
    return results


@pytest.fixture(scope="module")
def null_ab(null_results: Path) -> Comparison:
    return compare_runs(null_results, "sweeps", "null-a", "null-b")


# --------------------------------------------------------------------------- t quantile


@pytest.mark.parametrize(
    ("df", "expected", "tolerance"),
    [
        (1, 12.706, 0.0005),
        (2, 4.303, 0.0005),
        (10, 2.228, 0.0005),
        (30, 2.042, 0.0005),
        (math.inf, 1.960, 0.0005),
        # scipy.stats.t.ppf(0.975, df): fractional df, as Welch's ν is.
        (1.5, 6.0167, 0.03 * 6.0167),
        (2.5, 3.5747, 0.005 * 3.5747),
        (4.7, 2.6207, 0.0011 * 2.6207),
        (7.3, 2.3451, 0.0011 * 2.3451),
        (12.5, 2.1692, 0.0011 * 2.1692),
        (45.5, 2.0135, 0.0011 * 2.0135),
    ],
)
def test_t_quantile_matches_known_values(df: float, expected: float, tolerance: float) -> None:
    value = t_quantile_975(df)
    assert abs(value - expected) <= tolerance
    if math.isfinite(df) and df != math.floor(df):
        # between integers the interval errs on the wide side (up to the table's rounding)
        assert value >= expected - 0.0005


def test_t_quantile_decreases_with_df_and_refuses_df_below_one() -> None:
    values = [t_quantile_975(1 + k / 10) for k in range(400)]
    assert all(a > b for a, b in itertools.pairwise(values))
    for bad in (0.5, 0, math.nan):
        with pytest.raises(ValueError, match="degrees of freedom"):
            t_quantile_975(bad)


# --------------------------------------------------------------------------- statistics


def _values(rows: Rows, run_id: str, metric: str) -> dict[int, dict[int, float]]:
    """{point_index: {replicate: value}} of one run and metric, from pyarrow rows."""
    out: dict[int, dict[int, float]] = defaultdict(dict)
    for row in rows:
        if row["run_id"] == run_id and row[metric] is not None:
            out[row["point_index"]][row["replicate"]] = float(row[metric])
    return out


def test_welch_interval_recomputed_from_the_parquet_rows(
    null_results: Path, null_ab: Comparison, read_rows: Callable[[Path, str], Rows]
) -> None:
    rows = read_rows(null_results, "shard_metrics")
    checked = 0
    for metric in ("platform_revenue", "wait_mean_min", "utilisation"):
        a, b = _values(rows, "null-a", metric), _values(rows, "null-b", metric)
        for d in (d for d in null_ab.differences if d.metric == metric):
            xa, xb = list(a[d.point_a].values()), list(b[d.point_b].values())
            assert (d.n_a, d.n_b) == (len(xa), len(xb))
            if min(len(xa), len(xb)) < 2:
                assert d.method is None and d.low is None and not d.flagged
                continue
            va, vb = statistics.variance(xa) / len(xa), statistics.variance(xb) / len(xb)
            diff = statistics.fmean(xb) - statistics.fmean(xa)
            assert d.method == "welch"
            assert d.difference == pytest.approx(diff, abs=1e-9)
            if va + vb == 0:
                assert d.low == d.high == pytest.approx(diff)
                continue
            nu = (va + vb) ** 2 / (va**2 / (len(xa) - 1) + vb**2 / (len(xb) - 1))
            half = t_quantile_975(nu) * math.sqrt(va + vb)
            assert d.low == pytest.approx(diff - half, rel=1e-9, abs=1e-9)
            assert d.high == pytest.approx(diff + half, rel=1e-9, abs=1e-9)
            assert d.flagged == (d.low > 0 or d.high < 0)
            checked += 1
    assert checked > 200


def test_paired_interval_over_replicate_differences(
    shift_results: Path, read_rows: Callable[[Path, str], Rows]
) -> None:
    comparison = compare_runs(
        shift_results, "sweeps", "shift-a", "shift-b", ignore=["commission_rate"]
    )
    assert comparison.paired_points == comparison.matched == 12
    rows = read_rows(shift_results, "shard_metrics")
    a, b = (
        _values(rows, "shift-a", "platform_revenue"),
        _values(rows, "shift-b", "platform_revenue"),
    )
    for d in (d for d in comparison.differences if d.metric == "platform_revenue"):
        assert d.method == "paired" and d.point_a == d.point_b
        diffs = [b[d.point_b][r] - a[d.point_a][r] for r in range(6)]
        half = t_quantile_975(5) * statistics.stdev(diffs) / math.sqrt(6)
        assert d.difference == pytest.approx(statistics.fmean(diffs), abs=1e-9)
        assert (d.low, d.high) == pytest.approx((d.difference - half, d.difference + half))
        assert d.changed == {"commission_rate": (0.1, 0.2)}


# --------------------------------------------------------------------------- behaviour


def test_same_request_other_seed_flags_no_more_than_chance(null_ab: Comparison) -> None:
    assert null_ab.matched == 96 and not null_ab.only_a and not null_ab.only_b
    assert null_ab.paired_points == 0
    assert null_ab.pairing == "Welch at every matched point (seeds differ: 1 vs 2)"
    compared = null_ab.compared
    assert compared >= 0.9 * 96 * len(DEFAULT_METRICS)
    share = null_ab.moved / compared
    p = FALSE_POSITIVE_RATE
    # Binomial bound over the pairs; metrics of one point are correlated (revenue and
    # bookings move together at a fixed commission), which the 3 sigma margin absorbs.
    assert share <= p + 3 * math.sqrt(p * (1 - p) / compared), share
    for summary in null_ab.summaries.values():
        # Per metric, 96 points: each is a run of (nearly) independent tests.
        bound = p + 3 * math.sqrt(p * (1 - p) / summary.compared)
        assert summary.moved / summary.compared <= bound, summary
        assert summary.up + summary.down == summary.moved
    assert null_ab.expected_by_chance == pytest.approx(p * compared)


@pytest.mark.parametrize("run_b", ["shift-b", "shift-c"])
def test_commission_shift_detected_with_the_right_sign(shift_results: Path, run_b: str) -> None:
    comparison = compare_runs(shift_results, "sweeps", "shift-a", run_b, ignore=["commission_rate"])
    assert comparison.matched == 12
    assert comparison.paired_points == (12 if run_b == "shift-b" else 0)
    revenue = comparison.summaries["platform_revenue"]
    assert revenue.down == 0 and revenue.up >= revenue.compared / 2, revenue
    assert revenue.overall_moved and (revenue.mean_low or 0) > 0
    assert revenue.largest is not None and (revenue.largest.difference or 0) > 0
    for metric in ("driver_net_hourly_earnings", "mean_online_drivers"):
        summary = comparison.summaries[metric]
        assert summary.up == 0, summary
        assert summary.overall_moved and (summary.mean_high or 0) < 0, summary


def test_different_grids_compare_on_common_points(null_results: Path) -> None:
    comparison = compare_runs(null_results, "sweeps", "null-a", "grid-c")
    # common: commission {0.2, 0.3} x 4 fleets x riders {60, 90}
    assert comparison.matched == 16
    assert len(comparison.only_a) == 96 - 16 and len(comparison.only_b) == 8
    assert comparison.b.points == 24 and comparison.b.replications == 4
    assert {
        (d.params["commission_rate"], d.params["num_riders"]) for d in comparison.differences
    } == {(c, r) for c in (0.2, 0.3) for r in (60, 90)}
    assert all(d.method in ("welch", None) for d in comparison.differences)
    assert comparison.pairing.startswith("Welch at every matched point (seeds differ: 1 vs 3")
    assert comparison.differing == ("commission_rate", "num_riders")
    assert "other values in one run than in the other: commission_rate, num_riders" in (
        "\n".join(overview(comparison))
    )


def test_nothing_matched_says_which_parameter_to_ignore(shift_results: Path) -> None:
    comparison = compare_runs(shift_results, "sweeps", "shift-a", "shift-b")
    assert comparison.matched == 0 and len(comparison.only_a) == len(comparison.only_b) == 12
    assert comparison.compared == 0 and comparison.pairing == "no matched points"
    assert "match without them: --ignore commission_rate" in "\n".join(overview(comparison))


def test_pairing_needs_same_seed_replications_and_point_index(null_results: Path) -> None:
    comparison = compare_runs(null_results, "sweeps", "null-a", "mixed")
    assert comparison.matched == 16 and comparison.paired_points == 2
    assert "paired at 2 matched point(s)" in comparison.pairing
    assert "Welch at 14 (point_index differs, so the seeds do)" in comparison.pairing
    same_setting_other_seeds = []
    for d in comparison.differences:
        if d.point_a == d.point_b:
            # Same seeds and parameters: the same simulation, so B − A is exactly 0.
            assert d.method == "paired" and d.params["num_drivers"] == 8
            assert d.difference == 0 and not d.flagged
        else:
            assert d.method in ("welch", None)
            if d.params["commission_rate"] == 0.1 and d.difference is not None:
                same_setting_other_seeds.append(d.difference)
    # Same parameters at another point_index: other seeds, so other values.
    assert any(x != 0 for x in same_setting_other_seeds)


def test_one_replication_gives_no_interval_and_no_flag(null_results: Path) -> None:
    comparison = compare_runs(null_results, "sweeps", "null-a", "single")
    assert comparison.matched == 2
    assert all(d.method is None and d.low is None for d in comparison.differences)
    assert comparison.compared == 0 and comparison.moved == 0
    assert all(s.without_interval == 2 for s in comparison.summaries.values())
    assert "replications differ: 6 vs 1" in comparison.pairing


def test_bad_names_and_ambiguous_matches_are_value_errors(null_results: Path) -> None:
    with pytest.raises(ValueError, match="did you mean 'platform_revenue'"):
        compare_runs(null_results, "sweeps", "null-a", "null-b", metrics=["platform_revenu"])
    with pytest.raises(ValueError, match="ignore 'comission_rate' is not a parameter"):
        compare_runs(null_results, "sweeps", "null-a", "null-b", ignore=["comission_rate"])
    with pytest.raises(ValueError, match="differ only in commission_rate"):
        compare_runs(null_results, "sweeps", "null-a", "null-b", ignore=["commission_rate"])
    with pytest.raises(ValueError, match="no run 'nope'"):
        compare_runs(null_results, "sweeps", "null-a", "nope")


# --------------------------------------------------------------------------- CLI


def _cli(argv: Sequence[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="sweep")
    add_compare_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["compare", *argv])
    code: int = args.func(args)
    return code, capsys.readouterr().out


def test_cli_prints_summary_and_flagged_table(
    shift_results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    where = ["--results", str(shift_results)]
    code, out = _cli(["shift-a", "shift-b", "--ignore", "commission_rate", *where], capsys)
    assert code == 0
    assert "shift-b − shift-a (B − A)" in out
    assert "12 point(s) matched on every parameter except commission_rate" in out
    assert "paired over replicates at every matched point (same seed 7" in out
    assert "commission_rate 0.1 → 0.2" in out
    assert re.search(r"platform_revenue\s+│\s+12\s+│\s+\d+\s+│", out)
    assert "flagged differences" in out and " *" in out

    code, out = _cli(["shift-a", "shift-b", "--ignore", "commission_rate", "--all", *where], capsys)
    assert f"{12 * len(DEFAULT_METRICS)} row(s)" in out

    argv = [
        "shift-a",
        "shift-c",
        "--ignore",
        "commission_rate",
        "--json",
        "--metric",
        "utilisation",
    ]
    code, out = _cli([*argv, *where], capsys)
    data = json.loads(out)
    assert data["metrics"] == ["utilisation"] and data["matched"] == 12
    assert data["pairing"] == "Welch at every matched point (seeds differ: 7 vs 8)"
    assert all(d["flagged"] for d in data["differences"])  # flagged only without --all
    assert data["summaries"]["utilisation"]["moved"] == len(data["differences"])


def test_cli_unknown_runs_metrics_and_parameters_are_one_line_errors(
    shift_results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    where = ["--results", str(shift_results)]
    with pytest.raises(UsageError, match=r"no run 'shift-x'.*did you mean .*'shift-a'"):
        _cli(["shift-a", "shift-x", *where], capsys)
    with pytest.raises(UsageError, match=r"no run 'shft-a'.*did you mean 'shift-a'"):
        _cli(["shft-a", "shift-b", *where], capsys)
    with pytest.raises(UsageError, match="compare: metric 'revenue' is not a metric"):
        _cli(["shift-a", "shift-b", "--metric", "revenue", *where], capsys)
    with pytest.raises(
        UsageError, match=r"compare: run 'shift-a' has several points .* differ only in num_drivers"
    ):
        _cli(["shift-a", "shift-b", "--ignore", "num_drivers", *where], capsys)
    with pytest.raises(UsageError, match="--results"):
        _cli(["shift-a", "shift-b", "--results", str(shift_results / "missing")], capsys)


# --------------------------------------------------------------------------- report


@pytest.fixture(scope="module")
def compare_report(shift_results: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("compare-report")
    return build_report(
        shift_results,
        "sweeps",
        "shift-a",
        out,
        compare="shift-b",
        compare_ignore=["commission_rate"],
    )


def test_report_has_a_comparison_panel(compare_report: Path) -> None:
    text = compare_report.read_text()
    panel = text[text.index('id="comparison"') : text.index('id="comparison-flagged"')]
    assert "Comparison with shift-b" in text
    assert "B − A = shift-b − shift-a" in panel
    assert "12 point(s) matched on every parameter except commission_rate" in panel
    for metric in KEY_METRICS:
        assert (compare_report.parent / f"compare_{metric}.png").read_bytes().startswith(PNG)
        assert f'data-file="compare_{metric}.png"' in panel
    flagged = text[text.index('id="comparison-flagged"') :]
    assert re.search(r"<td>platform_revenue</td><td>#\d+</td>", flagged)


def test_report_without_compare_has_no_panel_and_bad_compare_writes_nothing(
    shift_results: Path, tmp_path: Path
) -> None:
    run = load_run(shift_results, "sweeps", "shift-a")
    page = render(build_context(run, {"metrics": [], "outcomes": [], "timeseries": []}))
    assert "Sweep report: shift-a" in page and 'id="comparison"' not in page
    with pytest.raises(ValueError, match="no run 'shift-z'"):
        build_report(shift_results, "sweeps", "shift-a", tmp_path / "bad", compare="shift-z")
    assert not (tmp_path / "bad").exists()


def test_comparison_panel_renders_in_chromium(
    compare_report: Path, open_in_chromium: Callable[[Path], dict[str, Any]]
) -> None:
    page = open_in_chromium(compare_report)
    assert page["errors"] == []
    differences = [i for i in page["images"] if i["alt"].endswith("difference chart")]
    assert len(differences) == len(KEY_METRICS)
    for image in page["images"]:
        assert image["complete"] and image["width"] > 0, image
    assert "Comparison with shift-b" in page["text"]
