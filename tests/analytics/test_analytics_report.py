"""`sweep report`: charts over the swept dimensions, opened in headless Chromium."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sim_serverless_sweep.analytics.report import KEY_METRICS, best_points, build_report
from sim_serverless_sweep.analytics.report import _point_stats as point_stats
from sim_serverless_sweep.analytics.views import connect
from sim_serverless_sweep.cli import main as sweep_main

Rows = list[dict[str, Any]]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def demo_report(demo_results: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo-report")
    code = sweep_main(["report", "demo-run-001", "--results", str(demo_results), "--out", str(out)])
    assert code == 0
    return out / "report.html"


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
    for metric in KEY_METRICS:
        assert (folder / f"{metric}.png").read_bytes().startswith(PNG)
    assert (folder / "shard_outcomes.png").read_bytes().startswith(PNG)
    sources = re.findall(r'<img src="([^"]+)"', text)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "http://" not in text and "https://" not in text
    assert "InjectedFailure" in text  # the failed shard's error is listed
    assert "6 of 8" in text  # grid points with results (shard 1 failed)


def test_best_points_match_pyarrow(
    demo_results: Path, read_rows: Callable[[Path, str], Rows]
) -> None:
    metrics = read_rows(demo_results, "shard_metrics")
    stats = point_stats(connect(demo_results, "sweeps"), "demo-run-001")
    answers = {q.title: p for q, p in best_points(stats) if p is not None}
    assert len(answers) == len(best_points(stats))
    by_point: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in metrics:
        by_point[row["point_index"]].append(row)

    def pick(metric: str, maximise: bool, max_wait: float | None = None) -> int:
        ranked = []
        for point, rows in by_point.items():
            value = sum(float(r[metric]) for r in rows) / len(rows)
            wait = sum(float(r["wait_p95_min"]) for r in rows) / len(rows)
            if max_wait is None or wait <= max_wait:
                ranked.append((-value if maximise else value, point))
        return min(ranked)[1]

    assert answers["Highest platform revenue"].point_index == pick("platform_revenue", True)
    assert answers["Highest platform revenue with p95 wait ≤ 10 min"].point_index == pick(
        "platform_revenue", True, 10.0
    )
    assert answers["Shortest 95th-percentile wait"].point_index == pick("wait_p95_min", False)
    assert answers["Highest completion rate"].point_index == pick("completion_rate", True)
    best = answers["Highest platform revenue"]
    expected = [float(r["platform_revenue"]) for r in by_point[best.point_index]]
    assert best.mean == pytest.approx(sum(expected) / len(expected))


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


def test_unknown_run_is_a_clear_error(demo_results: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no run 'nope' under .*sweeps"):
        build_report(demo_results, "sweeps", "nope", tmp_path)
    with pytest.raises(ValueError, match="run_id"):
        build_report(demo_results, "sweeps", "../etc", tmp_path)
    assert not (tmp_path / "report.html").exists()
