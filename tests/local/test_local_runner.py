"""Embedded runner end to end: spec layout, failure injection, invariance, resume, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sim_serverless_sweep.cli import main
from sim_serverless_sweep.core.keys import parse_key

# Small model settings so each point takes milliseconds.
SMALL = {"horizon_min": [150], "warmup_min": [30], "num_riders": [300, 400]}


def write_request(tmp: Path, name: str = "req.json", **fields: Any) -> Path:
    body = {
        "run_id": "t-run",
        "dimensions": {**SMALL, "num_drivers": [20, 30, 40]},
        "shard_count": 2,
        "seed": 11,
        **fields,
    }
    body = {k: v for k, v in body.items() if v is not None}  # None removes a field
    path = tmp / name
    path.write_text(json.dumps(body))
    return path


def data_files(results: Path) -> list[Path]:
    return sorted(
        p for p in results.rglob("part-0.parquet") if "dataset=shard_outcomes" not in str(p)
    )


def relative_keys(results: Path) -> list[str]:
    return sorted(p.relative_to(results).as_posix() for p in results.rglob("*") if p.is_file())


def per_point_tables(results: Path, dataset: str) -> dict[int, pa.Table]:
    tables: dict[int, pa.Table] = {}
    for path in results.rglob(f"dataset={dataset}/**/part-0.parquet"):
        parsed = parse_key(path.relative_to(results).as_posix())
        assert parsed.point_index is not None
        tables[parsed.point_index] = pq.read_table(path).drop_columns(["shard_id"])
    return tables


def test_spec_example_end_to_end(
    demo_request_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"
    code = main(
        ["run", str(demo_request_path), "--results", str(results), "--json", "--workers", "2"]
    )
    assert code == 0  # only the injected shard failed
    summary = json.loads(capsys.readouterr().out)
    assert summary["points"] == 8 and summary["shards"] == 4
    assert summary["succeeded"] == 3 and summary["failed_shard_ids"] == [1]

    keys = relative_keys(results)
    date = summary["run_date"]
    base = f"sweeps/dataset={{}}/run_date={date}/run_id=demo-run-001"
    expected = {
        "sweeps/manifests/run_id=demo-run-001/manifest.json",
        "sweeps/manifests/run_id=demo-run-001/runner.json",  # the finished runner's lease
    }
    for shard_id, points in ((0, (0, 1)), (2, (4, 5)), (3, (6, 7))):
        for dataset in ("shard_metrics", "trip_data", "snapshot_counts"):
            for point in points:
                expected.add(
                    base.format(dataset)
                    + f"/status=success/shard_id={shard_id}/point_index={point}/part-0.parquet"
                )
        expected.add(
            base.format("shard_outcomes") + f"/status=success/shard_id={shard_id}/part-0.parquet"
        )
    expected.add(base.format("shard_outcomes") + "/status=failure/shard_id=1/part-0.parquet")
    assert set(keys) == expected  # exactly the spec's keys: nothing for shard 1 but its failure

    failure = pq.read_table(
        results / (base.format("shard_outcomes") + "/status=failure/shard_id=1/part-0.parquet")
    ).to_pylist()
    assert len(failure) == 1
    assert failure[0]["error_type"] == "InjectedFailure" and failure[0]["attempts"] == 3

    con = duckdb.connect()
    root = (results / "sweeps").as_posix()

    def view(name: str) -> str:
        return f"read_parquet('{root}/dataset={name}/**/*.parquet', hive_partitioning = true)"

    joined = con.execute(
        f"""SELECT count(DISTINCT m.point_index), count(*), bool_and(o.status = 'success')
            FROM {view("shard_metrics")} m
            JOIN {view("shard_outcomes")} o USING (run_id, shard_id)
            JOIN {view("trip_data")} t USING (run_id, shard_id, point_index)
            JOIN (SELECT run_id, shard_id, point_index, max(minute) AS last_minute
                  FROM {view("snapshot_counts")} GROUP BY ALL) s
              USING (run_id, shard_id, point_index)"""
    ).fetchone()
    trips = con.execute(f"SELECT count(*) FROM {view('trip_data')}").fetchone()
    assert joined is not None and trips is not None
    assert joined[0] == 6 and joined[1] == trips[0] and joined[2] is True

    assert main(["status", "demo-run-001", "--results", str(results), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["failed_shards"] == [1] and status["pending"] == 0


def test_shard_layout_does_not_change_results(tmp_path: Path) -> None:
    layouts = {
        "count1": {"shard_count": 1},
        "count4": {"shard_count": 4},
        "size3": {"shard_size": 3},
    }
    tables: dict[str, dict[str, dict[int, pa.Table]]] = {}
    for name, sharding in layouts.items():
        request = write_request(tmp_path, f"{name}.json", **{"shard_count": None, **sharding})
        results = tmp_path / name
        assert main(["run", str(request), "--results", str(results), "--json"]) == 0
        tables[name] = {
            d: per_point_tables(results, d)
            for d in ("shard_metrics", "trip_data", "snapshot_counts")
        }
    reference = tables["count1"]
    assert len(reference["shard_metrics"]) == 6
    for name in ("count4", "size3"):
        for dataset, per_point in tables[name].items():
            assert per_point.keys() == reference[dataset].keys()
            for point, table in per_point.items():
                assert table.equals(reference[dataset][point]), (name, dataset, point)


def test_rerun_is_byte_identical_and_resume_skips(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request = write_request(tmp_path)
    results = tmp_path / "results"
    assert main(["run", str(request), "--results", str(results), "--json"]) == 0
    first = {p: p.read_bytes() for p in data_files(results)}
    capsys.readouterr()

    assert main(["run", str(request), "--results", str(results), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["succeeded"] == 2
    assert {p: p.read_bytes() for p in data_files(results)} == first

    assert main(["run", str(request), "--results", str(results), "--json", "--force"]) == 0
    assert {p: p.read_bytes() for p in data_files(results)} == first  # same bytes, same keys


def test_same_run_id_different_request_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"
    assert main(["run", str(write_request(tmp_path)), "--results", str(results), "--json"]) == 0
    before = relative_keys(results)
    capsys.readouterr()
    changed = write_request(tmp_path, "other.json", seed=12)
    assert main(["run", str(changed), "--results", str(results)]) == 2
    assert "already exists with a different request" in capsys.readouterr().err
    assert relative_keys(results) == before


@pytest.mark.parametrize(
    "fields",
    [{"seed": "11"}, {"shard_sise": 2}, {"run_id": "../x"}, {"dimensions": {"num_drivers": [0]}}],
)
def test_invalid_request_exits_2_and_writes_nothing(
    tmp_path: Path, fields: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"
    assert main(["run", str(write_request(tmp_path, **fields)), "--results", str(results)]) == 2
    err = capsys.readouterr().err
    assert "nothing was written" in err
    assert not results.exists()


def test_missing_request_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(tmp_path / "nope.json"), "--results", str(tmp_path / "r")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_unexpected_failure_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A shard that fails without being injected: make its results folder unwritable.
    request = write_request(tmp_path, shard_count=2)
    results = tmp_path / "results"
    (results / "sweeps").mkdir(parents=True)
    (results / "sweeps" / "dataset=trip_data").write_text("not a folder")
    assert main(["run", str(request), "--results", str(results), "--json"]) == 3
    summary = json.loads(capsys.readouterr().out)
    assert summary["failed"] == 2 and summary["failed_shard_ids"] == [0, 1]


def test_plan_decodes_points_without_running(
    demo_request_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    os.chdir(tmp_path)
    assert main(["plan", str(demo_request_path), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["points"] == 8 and plan["shards"] == 4
    assert plan["first_points"][1] == {
        "point_index": 1,
        "commission_rate": 0.1,
        "num_drivers": 100,
        "num_riders": 800,
        "shard_id": 0,
    }
    assert list(tmp_path.iterdir()) == []


def test_interrupted_run_then_rerun_completes_without_duplicates(tmp_path: Path) -> None:
    body = {
        "run_id": "kill-me",
        "seed": 5,
        "shard_count": 12,
        "dimensions": {
            "horizon_min": [240],
            "warmup_min": [60],
            "num_drivers": [40, 60, 80, 100],
            "num_riders": [400, 600, 800],
        },
    }
    request = tmp_path / "req.json"
    request.write_text(json.dumps(body))
    results = tmp_path / "results"
    outcomes = results / "sweeps" / "dataset=shard_outcomes"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sim_serverless_sweep.cli",
            "run",
            str(request),
            "--results",
            str(results),
            "--workers",
            "1",
            "--json",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(outcomes.rglob("part-0.parquet"))) < 2:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole group: CLI and its pool workers
    proc.wait()
    done_before = len(list(outcomes.rglob("part-0.parquet")))
    assert 2 <= done_before < 12, "the kill must land mid-run"

    assert main(["run", str(request), "--results", str(results), "--json"]) == 0
    con = duckdb.connect()
    root = (results / "sweeps").as_posix()
    counts = con.execute(
        f"""SELECT count(*), count(DISTINCT point_index) FROM read_parquet(
            '{root}/dataset=shard_metrics/**/*.parquet', hive_partitioning = true)"""
    ).fetchone()
    assert counts == (12, 12)
    outcome_rows = con.execute(
        f"""SELECT count(*), count(DISTINCT shard_id) FROM read_parquet(
            '{root}/dataset=shard_outcomes/**/*.parquet', hive_partitioning = true)"""
    ).fetchone()
    assert outcome_rows == (12, 12)


def test_query_formats_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "results"
    assert main(["run", str(write_request(tmp_path)), "--results", str(results), "--json"]) == 0
    capsys.readouterr()
    sql = "SELECT point_index, num_drivers FROM shard_metrics ORDER BY point_index"
    assert main(["query", sql, "--results", str(results), "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == '"point_index","num_drivers"' and len(lines) == 7
    assert main(["query", sql, "--results", str(results), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["num_drivers"] for r in rows] == [20, 20, 30, 30, 40, 40]
    assert main(["query", "SELECT nope FROM shard_metrics", "--results", str(results)]) == 2
    assert "query failed" in capsys.readouterr().err
    assert (
        main(["report", "no-such-run", "--results", str(results), "--out", str(tmp_path / "rep")])
        == 2
    )
    assert "no run 'no-such-run'" in capsys.readouterr().err
    assert not (tmp_path / "rep").exists()


def test_dead_worker_costs_one_attempt_not_the_run(tmp_path: Path) -> None:
    import multiprocessing

    from sim_serverless_sweep.core.contract import parse_request
    from sim_serverless_sweep.local.fs_store import FilesystemStore
    from sim_serverless_sweep.local.memory import MemoryQueue
    from sim_serverless_sweep.local.pool import ShardEvent, run_messages
    from sim_serverless_sweep.runtime.status import run_status
    from sim_serverless_sweep.runtime.submit import submit

    request = parse_request(write_request(tmp_path, shard_count=6).read_bytes())
    results = tmp_path / "results"
    queue = MemoryQueue()
    submit(request, FilesystemStore(results), queue, "sweeps")
    killed: list[int] = []

    def kill_a_worker(event: ShardEvent) -> None:
        if not killed:  # after the first shard: SIGKILL a worker, as the OOM killer would
            victim = multiprocessing.active_children()[0]
            killed.append(victim.pid or 0)
            os.kill(victim.pid or 0, signal.SIGKILL)

    report = run_messages(queue.messages, results, "sweeps", workers=2, on_event=kill_a_worker)
    assert killed
    # A shard whose worker died after its success outcome is ALREADY_DONE on the retry.
    assert sorted(report.succeeded + report.already_done) == [0, 1, 2, 3, 4, 5]
    assert not report.failed
    # At most the shard the victim held is retried (it may have been idle); exact
    # attempt accounting under crashes is in test_local_pool.py.
    assert max(report.attempts.values()) <= 2
    status = run_status(FilesystemStore(results), "sweeps", "t-run")
    assert status is not None and status.succeeded == [0, 1, 2, 3, 4, 5]


def test_queries_ignore_data_of_shards_without_success(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"
    assert main(["run", str(write_request(tmp_path)), "--results", str(results), "--json"]) == 0
    capsys.readouterr()
    sql = "SELECT count(DISTINCT point_index) AS n FROM trip_data"
    assert main(["query", sql, "--results", str(results), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"n": 6}]
    # As if shard 1 were still running (or had crashed): data files, no success outcome.
    success = next(results.rglob("dataset=shard_outcomes/**/shard_id=1/part-0.parquet"))
    success.unlink()
    assert main(["query", sql, "--results", str(results), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"n": 3}]


def test_every_bad_request_exits_2_through_the_cli_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bad_request: tuple[str, Any, str, str]
) -> None:
    case, raw, field, rule = bad_request
    request = tmp_path / "bad.json"
    request.write_text(raw if isinstance(raw, str) else json.dumps(raw))
    results = tmp_path / "results"
    assert main(["run", str(request), "--results", str(results)]) == 2, case
    err = capsys.readouterr().err
    assert f"- {field}" in err and rule in err, (case, err)
    assert "nothing was written" in err
    assert not results.exists()


def test_json_run_skips_the_progress_ui_and_pins_blas_to_one_thread(tmp_path: Path) -> None:
    # A --json run shows nothing on stderr, so it should not pay for rich's import.
    request = write_request(tmp_path)
    code = (
        "import os, sys\n"
        "from sim_serverless_sweep.cli import main\n"
        f"code = main(['run', {str(request)!r}, '--results', {str(tmp_path / 'r')!r}, '--json'])\n"
        "print(code, 'rich' in sys.modules, os.environ['OPENBLAS_NUM_THREADS'], file=sys.stderr)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
    )
    assert out.stderr.split() == ["0", "False", "1"]
    assert json.loads(out.stdout)["succeeded"] == 2
