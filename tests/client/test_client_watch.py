"""--watch polls a real local server until the run ends and rides out network blips."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from sim_serverless_sweep.client.api import ApiClient, ApiError, ErrorKind
from sim_serverless_sweep.client.watch import watch

from .conftest import Recorder, status_body

RUNNING = status_body("running", succeeded=1, pending=1, succeeded_shards=[0], pending_shards=[1])
UNAVAILABLE = (503, {"message": "Service Unavailable"})


def _watch(recorder: Recorder, max_failed_polls: int = 5) -> tuple[object, str, list[float]]:
    out = io.StringIO()
    sleeps: list[float] = []
    status = watch(
        ApiClient(recorder.url, None),
        "r1",
        interval=2.5,
        console=Console(file=out, width=120),
        max_failed_polls=max_failed_polls,
        sleep=sleeps.append,
    )
    return status, out.getvalue(), sleeps


def test_watch_polls_until_the_run_is_no_longer_running(recorder: Recorder) -> None:
    recorder.answers = [(200, RUNNING), (200, RUNNING), (200, status_body())]
    status, shown, sleeps = _watch(recorder)
    assert status.state == "succeeded"
    assert [r.path for r in recorder.requests] == ["/sweep-run/r1"] * 3
    assert sleeps == [2.5, 2.5]
    assert "2/2" in shown and "succeeded: 2 succeeded, 0 failed, 0 pending" in shown


def test_watch_retries_unavailable_polls_then_goes_on(recorder: Recorder) -> None:
    recorder.answers = [(200, RUNNING), UNAVAILABLE, UNAVAILABLE, (200, status_body("failed"))]
    status, shown, _ = _watch(recorder)
    assert status.state == "failed"
    assert "status poll 1/5 failed" in shown and "status poll 2/5 failed" in shown


def test_watch_gives_up_after_too_many_failed_polls_in_a_row(recorder: Recorder) -> None:
    recorder.answers = [UNAVAILABLE]
    with pytest.raises(ApiError) as caught:
        _watch(recorder, max_failed_polls=3)
    assert caught.value.kind is ErrorKind.UNAVAILABLE
    assert len(recorder.requests) == 3


def test_watch_stops_at_once_on_a_refusal(recorder: Recorder) -> None:
    recorder.answers = [(200, RUNNING), (403, {"message": "Forbidden"})]
    with pytest.raises(ApiError) as caught:
        _watch(recorder)
    assert caught.value.kind is ErrorKind.REFUSED
    assert len(recorder.requests) == 2
