"""Schemathesis against a real local server (serve_forever, what `sweep serve` runs, in its
own process with one worker and a tmp results folder).

Each operation gets schema-valid and schema-violating requests. Every response must: not
be a 5xx, arrive within the request timeout, conform to the OpenAPI document (status,
content type, headers, body schema), have the Problem shape when it is a 4xx, and a 4xx
must leave the results folder without a trace: no manifest changes, and no file of a run
that was never accepted. Then the Schemathesis CLI's examples and coverage phases run
against the same server with all its checks.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from sim_serverless_sweep.service.models import Problem
from sim_serverless_sweep.service.openapi import openapi_document

SCHEMA = schemathesis.openapi.from_dict(openapi_document())
DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
EXAMPLES = 100  # per operation
TIMEOUT = 15  # seconds per request: a hang fails the test
# Small limits keep what accepted runs simulate in the background bounded.
LIMITS = {"MAX_POINTS": "8", "MAX_SHARDS": "4"}
SERVE = (
    "import sys; from pathlib import Path; "
    "from sim_serverless_sweep.local.server import serve_forever; "
    "serve_forever('127.0.0.1', 0, Path(sys.argv[1]), 'sweeps', 1)"
)
# Valid per the schema is not valid per the contract: cross-field rules (warm-up below
# horizon, demand cap, shard_count <= points) and deployment limits are not in JSON Schema,
# so schema-valid requests may get a (documented) 400.
EXCLUDED_CHECKS = [positive_data_acceptance]


@dataclass
class Served:
    url: str
    results: Path
    accepted: set[str] = field(default_factory=set)  # run_ids answered 2xx to a POST
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    work = tmp_path_factory.mktemp("fuzz")
    results = work / "results"
    log = work / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAX_", "SWEEP_"))}
    # stderr to a file, not a pipe: the access log of hundreds of requests would fill it.
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-c", SERVE, str(results)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env={**env, **LIMITS},
            start_new_session=True,  # its own process group, pool workers included
        )
    try:
        deadline = time.monotonic() + 30
        while not (match := re.search(r"listening on (http://\S+) ", log.read_text())):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield Served(match.group(1), results)
    finally:
        # Accepted runs may still be simulating; they are not what is under test here.
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def _manifests(results: Path) -> dict[str, bytes]:
    # Not runner.json: the server renews and releases a run's lease in the background.
    return {p.as_posix(): p.read_bytes() for p in results.glob("sweeps/manifests/*/manifest.json")}


def _unowned(results: Path, accepted: set[str]) -> list[str]:
    """Files that belong to no accepted run (every key carries run_id=...)."""
    stray = []
    # os.walk, not rglob: background shards create folders and files while this looks.
    for folder, _, files in os.walk(results):
        owners = [p.removeprefix("run_id=") for p in Path(folder).parts if p.startswith("run_id=")]
        if files and (not owners or owners[0] not in accepted):
            stray.extend((Path(folder) / name).relative_to(results).as_posix() for name in files)
    return stray


def _check(served: Served, case: schemathesis.Case, session: requests.Session) -> int:
    before = _manifests(served.results)
    response = case.call(base_url=served.url, session=session, timeout=TIMEOUT)
    served.statuses[(case.operation.label, response.status_code)] += 1
    assert response.status_code < 500, response.text
    case.validate_response(response, excluded_checks=EXCLUDED_CHECKS)
    if 400 <= response.status_code < 500:
        Problem.model_validate_json(response.content)  # subclasses add fields only on 5xx
        assert _manifests(served.results) == before, "a rejected request changed a manifest"
    elif case.operation.method.upper() == "POST":
        run_id = response.json()["run_id"]
        served.accepted.add(run_id)
        # Its status right away, so every accepted run's 200 is checked against the document.
        status = GET.Case(path_parameters={"run_id": run_id})
        assert _check(served, status, session) == 200
    assert _unowned(served.results, served.accepted) == []
    return response.status_code


POST = SCHEMA["/sweep-run"]["POST"]
GET = SCHEMA["/sweep-run/{run_id}"]["GET"]
# Contract-valid POSTs share a few run_ids: resubmits (200/202) and conflicts (409).
RUN_IDS = st.sampled_from(["fz-a", "fz-b", "fz-c"])


def _valid_request(drivers: list[int]) -> st.SearchStrategy[dict[str, object]]:
    return st.fixed_dictionaries(
        {
            "run_id": RUN_IDS,
            "dimensions": st.just(
                {"num_drivers": drivers, "horizon_min": [40], "warmup_min": [10]}
            ),
            "shard_count": st.integers(1, len(drivers)),
            "seed": st.integers(0, 2),
        },
        optional={"replications": st.integers(1, 2), "failure_injection_shards": st.just([0])},
    )


def _cases() -> st.SearchStrategy[schemathesis.Case]:
    drivers = st.lists(st.integers(1, 60), min_size=1, max_size=4, unique=True)
    return st.one_of(
        POST.as_strategy(GenerationMode.POSITIVE),
        POST.as_strategy(GenerationMode.NEGATIVE),
        drivers.flatmap(_valid_request).flatmap(lambda body: POST.as_strategy(body=body)),
        GET.as_strategy(GenerationMode.POSITIVE),
        GET.as_strategy(GenerationMode.NEGATIVE),
    )


def test_fuzz_the_api(served: Served) -> None:
    session = requests.Session()
    began = time.monotonic()

    @settings(
        max_examples=2 * EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking/targeting: bounded time
        suppress_health_check=list(HealthCheck),
    )
    @given(case=_cases())
    def run(case: schemathesis.Case) -> None:
        _check(served, case, session)

    run()
    print(f"{served.statuses.total()} requests in {time.monotonic() - began:.1f}s")
    for (label, status), count in sorted(served.statuses.items()):
        print(f"  {label} {status}: {count}")
    # The contract-valid strategy reaches the paths that write, read back and refuse.
    expected = {("POST /sweep-run", s) for s in (202, 400, 409)}
    expected |= {("GET /sweep-run/{run_id}", s) for s in (200, 400, 404)}
    assert expected <= set(served.statuses), served.statuses


def test_schemathesis_coverage_phase(served: Served, tmp_path: Path) -> None:
    # The CLI's coverage phase sends what the fuzzing phase does not: boundary values,
    # missing or wrong headers, methods the document does not list (it found QUERY's 501).
    result = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            str(DOCUMENT),
            "--url",
            served.url,
            "--phases",
            "examples,coverage",
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",  # see EXCLUDED_CHECKS
            "--request-timeout",
            str(TIMEOUT),
            "--generation-database",
            ":memory:",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    summary = result.stdout[-3000:]
    assert result.returncode == 0, summary
    assert "No issues found" in summary
    match = re.search(r"(\d+) generated, \1 passed", summary)
    assert match and int(match.group(1)) > 100, summary
    print(f"schemathesis examples+coverage: {match.group(0)}")
