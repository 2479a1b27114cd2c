"""Shared fixtures: the spec's example request and its path."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEMO_REQUEST = ROOT / "examples" / "demo-run-001.json"


@pytest.fixture
def demo_request_path() -> Path:
    return DEMO_REQUEST


@pytest.fixture
def demo_request_body() -> bytes:
    return DEMO_REQUEST.read_bytes()
