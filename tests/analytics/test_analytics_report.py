"""`sweep report`: charts over the swept dimensions, opened in headless Chromium."""

from __future__ import annotations

import dataclasses
import math
import os
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sim_serverless_sweep.analytics.options import WAIT_METRICS
from sim_serverless_sweep.analytics.report import (
    KEY_METRICS,
    MissingPoint,
    PointStat,
    best_per_fleet,
    best_points,
    build_context,
    build_report,
    group_bands,
    load_run,
    metric_figure,
    render,
)
from sim_serverless_sweep.analytics.report import _point_stats as point_stats
from sim_serverless_sweep.analytics.views import connect
from sim_serverless_sweep.cli import main as sweep_main
from sim_serverless_sweep.core.keys import manifest_key

Rows = list[dict[str, Any]]
PNG = b"\x89PNG\r\n\x1a\n"
CONFTEST = Path(__file__).with_name("conftest.py")
WAIT_COLUMNS = {"mean": "wait_mean_min", "p50": "wait_p50_min", "p95": "wait_p95_min"}


@pytest.fixture(scope="module")
def demo_report(demo_results: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo-report")
    code = sweep_main(["report", "demo-run-001", "--results", str(demo_results), "--out", str(out)])
    assert code == 0
    return out / "report.html"


def _point_means(rows: Rows) -> dict[int, dict[str, float]]:
    """Per point, the mean over replications of every numeric shard_metrics column."""
    by_point: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_point[row["point_index"]].append(row)
    means: dict[int, dict[str, float]] = {}
    for point, members in by_point.items():
        means[point] = {
            column: sum(float(m[column]) for m in members) / len(members)
            for column in members[0]
            if isinstance(members[0][column], int | float) or column == "platform_revenue"
        }
    return means


def test_demo_report_renders_in_chromium_with_every_image(
    demo_report: Path, open_in_chromium: Callable[[Path], dict[str, Any]]
) -> None:
    page = open_in_chromium(demo_report)
    assert page["title"] == "Sweep report – demo-run-001"
    assert page["errors"] == []
    # one chart per key metric + shard outcomes + time series
    assert len(page["images"]) == len(KEY_METRICS) + 2
    for image in page["images"]:
        assert image["complete"] and image["width"] > 0, image
    # the failed shard's points are listed where a reader sees them
    assert "Missing points" in page["text"]
    assert re.search(r"#2\s+0\.1\s+200\s+500\s+1\s+failed \(failure-injected\)", page["text"])
    assert "mean wait ≤ 10 min" in page["text"]


def test_chromium_check_catches_broken_pages(
    tmp_path: Path, open_in_chromium: Callable[[Path], dict[str, Any]]
) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><body><img src='missing.png'>"
        "<script>console.error('boom')</script></body></html>"
    )
    page = open_in_chromium(bad)
    assert page["images"][0]["width"] == 0
    assert any("boom" in e for e in page["errors"])


def test_report_files_are_self_contained_and_labelled(demo_report: Path) -> None:
    text = demo_report.read_text()
    folder = demo_report.parent
    assert "wait_mean_min" in KEY_METRICS
    for metric in KEY_METRICS:
        assert (folder / f"{metric}.png").read_bytes().startswith(PNG)
        assert f'data-file="{metric}.png"' in text
    assert (folder / "shard_outcomes.png").read_bytes().startswith(PNG)
    sources = re.findall(r'<img src="([^"]+)"', text)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "http://" not in text and "https://" not in text
    assert "InjectedFailure" in text  # the failed shard's error is listed
    assert "6 of 8" in text  # grid points with results (shard 1 failed)


def test_demo_report_lists_the_failed_shards_points(demo_report: Path) -> None:
    text = demo_report.read_text()
    missing = text[text.index('id="missing-points"') :]
    rows = re.findall(r"<tr><td>#(\d+)</td>(.*?)</tr>", missing)
    cells = {int(i): re.findall(r">([^<]*)</td>", rest) for i, rest in rows}
    # demo plan: points 2 and 3 are shard 1 (commission 0.1, 200 drivers, 500/800 riders)
    assert cells == {
        2: ["0.1", "200", "500", "1", "failed (failure-injected)"],
        3: ["0.1", "200", "800", "1", "failed (failure-injected)"],
    }
    assert "2 grid point(s) have no data: shard 1: failed (failure-injected)" in text


def test_best_points_match_pyarrow(
    demo_results: Path, read_rows: Callable[[Path, str], Rows]
) -> None:
    means = _point_means(read_rows(demo_results, "shard_metrics"))
    stats = point_stats(connect(demo_results, "sweeps"), "demo-run-001", [*KEY_METRICS])
    answers = {q.title: p for q, p in best_points(stats) if p is not None}
    assert len(answers) == len(best_points(stats))

    def pick(metric: str, maximise: bool, max_wait: float | None = None) -> int:
        ranked = [
            (-m[metric] if maximise else m[metric], point)
            for point, m in means.items()
            if max_wait is None or m["wait_mean_min"] <= max_wait
        ]
        return min(ranked)[1]

    assert answers["Highest platform revenue"].point_index == pick("platform_revenue", True)
    assert answers["Highest platform revenue with mean wait ≤ 10 min"].point_index == pick(
        "platform_revenue", True, 10.0
    )
    assert answers["Shortest mean wait"].point_index == pick("wait_mean_min", False)
    assert answers["Shortest 95th-percentile wait"].point_index == pick("wait_p95_min", False)
    assert answers["Highest completion rate"].point_index == pick("completion_rate", True)
    best = answers["Highest platform revenue"]
    assert best.mean == pytest.approx(means[best.point_index]["platform_revenue"])


def _demo_groups(
    rows: Rows,
) -> tuple[dict[int, dict[str, float]], dict[int, tuple[int, int, float]]]:
    means = _point_means(rows)
    params = {
        r["point_index"]: (r["num_drivers"], r["num_riders"], r["commission_rate"]) for r in rows
    }
    return means, params


def _mixed_bound(rows: Rows, column: str) -> float:
    """A wait bound some (fleet, demand) groups meet and some do not, from the data."""
    means, params = _demo_groups(rows)
    best: dict[tuple[int, int], float] = {}
    for p, (d, r, _) in params.items():
        best[(d, r)] = min(best.get((d, r), math.inf), means[p][column])
    low, high = sorted(best.values())[0], sorted(best.values())[-1]
    assert low < high, "the demo's groups must differ in their best wait"
    return (low + high) / 2


@pytest.mark.parametrize(
    ("max_wait", "wait_metric"), [(10.0, "mean"), (None, "mean"), (8.5, "p95")]
)
def test_best_commission_per_fleet_matches_pyarrow(
    demo_results: Path,
    read_rows: Callable[[Path, str], Rows],
    max_wait: float | None,
    wait_metric: str,
) -> None:
    rows = read_rows(demo_results, "shard_metrics")
    means, params = _demo_groups(rows)
    column = WAIT_COLUMNS[wait_metric]
    bound = _mixed_bound(rows, column) if max_wait is None else max_wait
    expected: dict[tuple[int, int], float | None] = {}
    for drivers in (100, 200):
        for riders in (500, 800):
            feasible = [
                (-means[p]["platform_revenue"], p)
                for p, (d, r, _) in params.items()
                if (d, r) == (drivers, riders) and means[p][column] <= bound
            ]
            expected[(drivers, riders)] = params[min(feasible)[1]][2] if feasible else None
    answers = best_per_fleet(load_run(demo_results, "sweeps", "demo-run-001"), bound, wait_metric)
    got = {
        (int(a.group["num_drivers"]), int(a.group["num_riders"])): (
            a.best.params["commission_rate"] if a.best else None
        )
        for a in answers
    }
    assert got == expected
    if max_wait is None:  # the mixed bound: some groups qualify, some do not
        assert None in expected.values() and any(v is not None for v in expected.values())
    # shard 1 held one commission of each 200-driver group
    assert {(a.group["num_drivers"], a.missing) for a in answers} == {(100, 0), (200, 1)}


def test_report_states_the_wait_bound_and_says_when_none_qualifies(
    demo_results: Path, tmp_path: Path, read_rows: Callable[[Path, str], Rows]
) -> None:
    rows = read_rows(demo_results, "shard_metrics")
    bound = round(_mixed_bound(rows, "wait_mean_min"), 2)
    means, params = _demo_groups(rows)
    groups = {(d, r) for d, r, _ in params.values()}
    none_qualify = sum(
        1
        for g in groups
        if all(means[p]["wait_mean_min"] > bound for p, v in params.items() if v[:2] == g)
    )
    assert none_qualify >= 1
    path = build_report(
        demo_results, "sweeps", "demo-run-001", tmp_path, max_wait=bound, wait_metric="mean"
    )
    text = path.read_text()
    shown = f"{bound:g}"
    assert f"Wait bound: <strong>mean wait ≤ {shown} min</strong>" in text
    fleet = text[text.index('id="best-per-fleet"') : text.index("<h2>Metrics")]
    assert fleet.count("none qualifies (mean wait &gt; bound)") == none_qualify
    assert f"Highest platform revenue with mean wait ≤ {shown} min" in text
    p95 = build_report(demo_results, "sweeps", "demo-run-001", tmp_path / "p95", wait_metric="p95")
    assert "p95 wait ≤ 10 min" in p95.read_text()


def test_wait_metrics_are_columns_of_the_data(demo_results: Path) -> None:
    assert WAIT_METRICS == ("mean", "p50", "p95")
    con = connect(demo_results, "sweeps")
    columns = {row[0] for row in con.execute("DESCRIBE shard_metrics").fetchall()}
    assert {WAIT_COLUMNS[w] for w in WAIT_METRICS} <= columns


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"wait_metric": "p90"}, r"wait_metric must be one of mean, p50, p95, got 'p90'"),
        ({"max_wait": 0.0}, r"max_wait must be a positive, finite number of minutes, got 0.0"),
        ({"max_wait": -5.0}, r"max_wait .* got -5.0"),
        ({"max_wait": math.nan}, r"max_wait .* got nan"),
        ({"max_wait": math.inf}, r"max_wait .* got inf"),
    ],
)
def test_bad_report_options_are_clear_errors(
    demo_results: Path, tmp_path: Path, options: dict[str, Any], message: str
) -> None:
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=message):
        build_report(demo_results, "sweeps", "demo-run-001", out, **options)
    assert not out.exists()


def test_replicated_report_has_confidence_bands(
    reps_results: Path, tmp_path: Path, open_in_chromium: Callable[[Path], dict[str, Any]]
) -> None:
    html_path = build_report(reps_results, "sweeps", "analytics-reps", tmp_path)
    text = html_path.read_text()
    assert "95% confidence interval across replications" in text
    assert "<td>replications per point</td><td>3</td>" in text
    page = open_in_chromium(html_path)
    assert page["errors"] == []
    assert page["images"] and all(i["width"] > 0 for i in page["images"])


def _band_limits(figure: Any) -> tuple[float, float]:
    ys = [
        y
        for ax in figure.axes
        for collection in ax.collections
        for path in collection.get_paths()
        for y in path.vertices[:, 1]
    ]
    assert ys, "no confidence band drawn"
    return min(ys), max(ys)


def test_rate_confidence_bands_are_clipped_to_0_1(reps_results: Path, tmp_path: Path) -> None:
    run = load_run(reps_results, "sweeps", "analytics-reps")
    rates = run.stats["completion_rate"]
    # the t interval of this sweep leaves [0, 1]: clipping has work to do
    assert max(s.high or 0.0 for s in rates) > 1.0
    low, high = _band_limits(metric_figure("completion_rate", rates, run.dims, 3))
    assert low >= 0.0 and high <= 1.0
    assert high == pytest.approx(1.0)
    bands = group_bands(rates, ["num_drivers", "commission_rate"], (0.0, 1.0))
    assert all(0.0 <= b[1] <= b[2] <= 1.0 for b in bands.values() if b[1] is not None and b[2])
    # a currency metric keeps its interval as computed
    revenue = run.stats["platform_revenue"]
    _, revenue_high = _band_limits(metric_figure("platform_revenue", revenue, run.dims, 3))
    assert revenue_high > 1.0
    # the best-points table shows the clipped interval too
    text = build_report(reps_results, "sweeps", "analytics-reps", tmp_path).read_text()
    completion = re.search(r"<td>Highest completion rate</td>.*?</tr>", text)
    assert completion is not None and completion.group(0).endswith(" – 1</td></tr>")


def _stat(index: int, commission: float, mean: float) -> PointStat:
    return PointStat(
        index, {"commission_rate": commission, "num_drivers": 50.0}, 1, mean, None, None
    )


def test_charts_break_lines_at_missing_points_and_mark_them() -> None:
    stats = [_stat(0, 0.1, 10.0), _stat(2, 0.3, 30.0)]
    figure = metric_figure(
        "platform_revenue",
        stats,
        ["commission_rate"],
        1,
        [{"commission_rate": 0.2, "num_drivers": 50.0}],
    )
    ax = figure.axes[0]
    line, cross = ax.get_lines()
    assert list(line.get_xdata()) == [0.1, 0.2, 0.3]
    means = list(line.get_ydata())
    assert means[0] == 10.0 and math.isnan(means[1]) and means[2] == 30.0  # no 0.1-0.3 segment
    assert cross.get_marker() == "x" and list(cross.get_xdata()) == [0.2]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "no data (failed or pending shard)" in legend
    assert "no data" in figure.get_suptitle()
    # without missing points the same data joins up and nothing is marked
    plain = metric_figure("platform_revenue", stats, ["commission_rate"], 1).axes[0]
    assert len(plain.get_lines()) == 1 and list(plain.get_lines()[0].get_xdata()) == [0.1, 0.3]


def test_averaged_cells_that_lost_points_are_ringed() -> None:
    def stat(index: int, commission: float, riders: float) -> PointStat:
        params = {"commission_rate": commission, "num_drivers": 50.0, "num_riders": riders}
        params |= {"horizon_min": 60.0, "warmup_min": 10.0}
        return PointStat(index, params, 1, float(index), None, None)

    dims = ["commission_rate", "num_drivers", "num_riders", "horizon_min"]
    # horizon_min is averaged: the 0.2 cell keeps one of its two points
    stats = [stat(0, 0.1, 300.0), stat(1, 0.2, 300.0)]
    lost = {**stats[1].params, "horizon_min": 90.0}
    ax = metric_figure("platform_revenue", stats, dims, 1, [lost]).axes[0]
    line, ring = ax.get_lines()
    assert list(line.get_ydata()) == [0.0, 1.0]  # the cell still has a mean
    assert ring.get_marker() == "o" and list(ring.get_xdata()) == [0.2]
    assert ring.get_markerfacecolor() == "none"


def test_pending_shards_points_are_missing_too(demo_results: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    shutil.copytree(demo_results, results)
    outcome_files = list(results.glob("sweeps/dataset=shard_outcomes/**/shard_id=3/**/*.parquet"))
    assert outcome_files
    for path in outcome_files:  # shard 3 still running: no outcome yet
        path.unlink()
    run = load_run(results, "sweeps", "demo-run-001")
    assert [(m.point_index, m.shard_id, m.reason) for m in run.missing] == [
        (2, 1, "failed (failure-injected)"),
        (3, 1, "failed (failure-injected)"),
        (6, 3, "pending (no outcome yet)"),
        (7, 3, "pending (no outcome yet)"),
    ]
    text = build_report(results, "sweeps", "demo-run-001", tmp_path / "out").read_text()
    assert "4 planned: 2 succeeded, 1 failed, 1 pending" in text
    assert "shard 3: pending (no outcome yet)" in text


def test_without_a_manifest_failed_shards_ranges_are_missing(
    demo_results: Path, tmp_path: Path
) -> None:
    results = tmp_path / "results"
    shutil.copytree(demo_results, results)
    (results / manifest_key("sweeps", "demo-run-001")).unlink()
    run = load_run(results, "sweeps", "demo-run-001")
    assert [(m.point_index, m.shard_id, m.params) for m in run.missing] == [
        (2, 1, None),
        (3, 1, None),
    ]
    text = build_report(results, "sweeps", "demo-run-001", tmp_path / "out").read_text()
    assert "no run manifest: parameter values unknown" in text
    assert "6 of 8" in text


def test_text_from_the_data_is_escaped(demo_results: Path, tmp_path: Path) -> None:
    attack = "<script>alert(1)<"
    results = tmp_path / attack  # the results folder name is shown in the page
    shutil.copytree(demo_results, results)
    text = build_report(results, "sweeps", "demo-run-001", tmp_path / "out").read_text()
    assert "<script>" not in text
    assert "&lt;script&gt;alert(1)&lt;" in text
    # run ids, error messages and reasons cannot hold markup today; render escapes them anyway
    run = load_run(demo_results, "sweeps", "demo-run-001")
    hostile = dataclasses.replace(
        run,
        run_id='<script>x()</script>"',
        outcomes=[dataclasses.replace(o, error_message="<b>bold</b>") for o in run.outcomes],
        missing=[MissingPoint(2, 1, run.missing[0].params, "<i>why</i>")],
    )
    page = render(build_context(hostile, {"metrics": [], "outcomes": [], "timeseries": []}))
    assert "<script>" not in page and "<b>" not in page and "<i>" not in page
    assert "<title>Sweep report – &lt;script&gt;x()&lt;/script&gt;&#34;</title>" in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page and "&lt;i&gt;why&lt;/i&gt;" in page


def test_unknown_run_is_a_clear_error(demo_results: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no run 'nope' under .*sweeps"):
        build_report(demo_results, "sweeps", "nope", tmp_path)
    with pytest.raises(ValueError, match="run_id"):
        build_report(demo_results, "sweeps", "../etc", tmp_path)
    assert not (tmp_path / "report.html").exists()


# ------------------------------------------------------ Chromium missing: skip or fail

# The real fixture, loaded by path into a throwaway suite's conftest.
SUITE_CONFTEST = """
import importlib.util

spec = importlib.util.spec_from_file_location("analytics_conftest", {conftest!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
open_in_chromium = module.open_in_chromium
"""
SUITE_TEST = """
def test_needs_browser(open_in_chromium):
    assert callable(open_in_chromium)
"""


def _run_browser_test(tmp_path: Path, path_dirs: list[Path], require: str | None) -> str:
    """Run a one-test suite using open_in_chromium with only ``path_dirs`` on PATH."""
    tmp_path.mkdir()
    (tmp_path / "conftest.py").write_text(SUITE_CONFTEST.format(conftest=str(CONFTEST)))
    (tmp_path / "test_browser.py").write_text(SUITE_TEST)
    env = {k: v for k, v in os.environ.items() if k != "SWEEP_REQUIRE_BROWSER"}
    env["PATH"] = os.pathsep.join(str(d) for d in path_dirs)
    env["COLUMNS"] = "400"  # the skip/fail reason is printed whole
    if require is not None:
        env["SWEEP_REQUIRE_BROWSER"] = require
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rsf", "-q", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.stdout + done.stderr


@pytest.mark.parametrize(
    ("require", "outcome"), [(None, "1 skipped"), ("0", "1 skipped"), ("1", "1 error")]
)
def test_missing_chromium_skips_unless_the_browser_is_required(
    tmp_path: Path, require: str | None, outcome: str
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    report = _run_browser_test(tmp_path / "suite", [empty], require)
    assert outcome in report, report
    assert (
        "headless Chromium not found: install it with "
        "`apt-get install -y --no-install-recommends chromium` (as root), "
        "or run `make test` as root, which installs it"
    ) in report
    if require == "1":
        assert "SWEEP_REQUIRE_BROWSER=1" in report


def test_found_chromium_is_used_even_when_required(tmp_path: Path) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    binary = fake / "chromium"
    binary.write_text("#!/bin/sh\nexit 0\n")
    binary.chmod(0o755)
    report = _run_browser_test(tmp_path / "suite", [fake], "1")
    assert "1 passed" in report, report
