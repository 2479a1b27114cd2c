"""Shared fixtures: the spec's example request and its path."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEMO_REQUEST = ROOT / "examples" / "demo-run-001.json"


@pytest.fixture
def demo_request_path() -> Path:
    return DEMO_REQUEST


@pytest.fixture
def demo_request_body() -> bytes:
    return DEMO_REQUEST.read_bytes()


CONTRACT_TESTS = ROOT / "tests" / "core" / "test_core_contract.py"


def _bad_request_table() -> list[tuple[str, Any, str, str]]:
    """The contract suite's bad-request table: (case, body, field, rule words)."""
    spec = importlib.util.spec_from_file_location("_contract_cases", CONTRACT_TESTS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    table: list[tuple[str, Any, str, str]] = module.BAD_REQUESTS
    return table


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Any test taking `bad_request` runs once per row of the contract's table, so the
    # CLI and the API are held to exactly the same cases as the parser.
    if "bad_request" in metafunc.fixturenames:
        table = _bad_request_table()
        metafunc.parametrize("bad_request", table, ids=[row[0] for row in table])
