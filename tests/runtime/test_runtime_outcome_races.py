"""Issue 12 item 1: a shard's outcome agrees with its data under every interleaving of one success
path (deliver) and one failure path (record_failure), on the filesystem store."""

from __future__ import annotations

import runpy
from pathlib import Path
from types import SimpleNamespace

import pytest

from sim_serverless_sweep.local.fs_store import FilesystemStore

# Shared with the other store's test; run_path since tests are not importable modules.
il = SimpleNamespace(
    **runpy.run_path(str(Path(__file__).with_name("interleave.py")), run_name="_interleave")
)
REFERENCE: dict[str, bytes] = il.clean_data()
# Longest path (deliver's success) is 13 store operations on this one-point shard.
LONGEST = 14


def _run(tmp_path: Path, first: str, runs: tuple[int, ...]) -> str:
    root = tmp_path / f"{first}-{'-'.join(map(str, runs)) or 'solo'}"
    store = FilesystemStore(root)
    il.submit_manifest(store)
    turns = il.interleave(store, first, runs)
    state: str = il.settled_state(store, REFERENCE, f"{first} first, runs {runs}: {turns.trace}")
    return state


@pytest.mark.parametrize("first", il.PATHS)
def test_either_path_alone_settles_as_itself_then_the_other_keeps_it_consistent(
    tmp_path: Path, first: str
) -> None:
    # Sequential: a success then a late failure record keeps the success (and the
    # reverse ends in a success that removed the stale failure).
    assert _run(tmp_path, first, ()) == "success"


def test_pausing_one_path_at_every_step_while_the_other_runs(tmp_path: Path) -> None:
    states = {
        (first, runs): _run(tmp_path, first, runs) for first, runs in il.schedules(2, LONGEST)
    }
    # Both endings occur: the race is really exercised, and each is consistent.
    assert set(states.values()) == {"success", "failure"}


@pytest.mark.parametrize(
    ("first", "runs"),
    [
        # failure sees no success and finds its own record; success commits and verifies
        # its files and stops just before dropping the failure; failure then removes the
        # data and voids; the stale drop of the failure must not leave the shard bare.
        ("success", (6, 4, 5)),
        ("success", (6, 4, 6)),
        # the failure removes files between the success's data puts and its outcome
        ("success", (4, 9)),
        # the failure starts removing data before it is written and goes on after the
        # success committed and began checking its files
        ("failure", (5, 13)),
    ],
)
def test_schedules_with_more_switches(tmp_path: Path, first: str, runs: tuple[int, ...]) -> None:
    assert _run(tmp_path, first, runs) in ("success", "failure")
