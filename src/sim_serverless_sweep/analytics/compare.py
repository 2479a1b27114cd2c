"""`sweep compare RUN_A RUN_B`: per matched point and metric, B − A with a 95% interval.

Points match by their parameter values (every model parameter, or every one except
those in ``ignore``), never by ``point_index``: two runs with different grids compare
on the points they share, and the rest are counted as unmatched.

The interval comes from the replications of each point:

- **paired** when the matched simulations used the same seeds: a point's seeds are
  ``SeedSequence(entropy=seed, spawn_key=(point_index, replicate))``, so replicate r of
  point A and replicate r of point B had the same seed exactly when both manifests have
  the same request ``seed``, the same ``replications``, and the two points have the same
  ``point_index``. Then the interval is a one-sample t interval over the replicate
  differences B_r − A_r (n − 1 degrees of freedom, n = replicates where both have a
  value). This is decided point by point: a grid that differs can leave some matched
  points at the same index and others not.
- **Welch** otherwise (seeds differ, replication counts differ, no manifest, or the index
  differs): ``(mean_B − mean_A) ± t(0.975, ν) · √(s_A²/n_A + s_B²/n_B)`` with the
  Welch–Satterthwaite ν.

A side with fewer than two values (one replication, or a metric that is null) gives no
interval, and such a difference is never flagged. A difference is *flagged* (the metric
"moved" at that point) when its interval excludes 0. When nothing changed, each
(point, metric) pair is flagged with probability about 5%, so a summary over many points
always shows some flags; the summary says how many to expect by chance.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from sim_serverless_sweep.analytics.summary import SUMMARY_METRICS, t975
from sim_serverless_sweep.analytics.views import connect
from sim_serverless_sweep.core.contract import did_you_mean
from sim_serverless_sweep.core.keys import KeyLayoutError, check_prefix, manifest_key
from sim_serverless_sweep.core.messages import RunManifest
from sim_serverless_sweep.sim import PARAMETERS

Method = Literal["paired", "welch"]
Floats = npt.NDArray[np.float64]

CONFIDENCE = 0.95
FALSE_POSITIVE_RATE = 1 - CONFIDENCE
DEFAULT_METRICS: tuple[str, ...] = (
    "platform_revenue",
    "gross_bookings",
    "driver_net_hourly_earnings",
    "completion_rate",
    "utilisation",
    "wait_mean_min",
    "wait_p95_min",
    "mean_online_drivers",
)
_LARGE_DF = 10**9  # beyond this t(0.975) is the normal quantile to the table's precision


def t_quantile_975(df: float) -> float:
    """t(0.975, df) for real df ≥ 1 (Welch's ν is not an integer).

    Integer df are :func:`summary.t975` (the point_summary view's values); between two
    integers log t is interpolated linearly in 1/df, which errs on the wide side (beyond
    the table's 3-decimal rounding): by < 3% for 1 < df < 2, < 0.5% for 2 < df < 3 and
    < 0.11% beyond.

    >>> t_quantile_975(10), round(t_quantile_975(2.5), 2), round(t_quantile_975(math.inf), 3)
    (2.228, 3.59, 1.96)
    """
    if not df >= 1:
        raise ValueError(f"degrees of freedom must be >= 1, not {df}")
    df = min(df, _LARGE_DF)
    below = math.floor(df)
    if below == df:
        return t975(int(below))
    low, high = t975(below), t975(below + 1)
    weight = (1 / below - 1 / df) / (1 / below - 1 / (below + 1))
    return math.exp(math.log(low) + (math.log(high) - math.log(low)) * weight)


def _excludes_zero(low: float | None, high: float | None) -> bool:
    return low is not None and high is not None and (low > 0 or high < 0)


def _relative(difference: float | None, base: float | None) -> float | None:
    return None if difference is None or not base else difference / abs(base)


@dataclass(frozen=True, slots=True)
class RunInfo:
    """What the comparison needs to know about one run."""

    run_id: str
    seed: int | None  # None without a manifest: pairing cannot be shown, so Welch
    replications: int
    points: int  # points with data


@dataclass(frozen=True, slots=True)
class Difference:
    """B − A of one metric at one matched point, with its 95% interval."""

    metric: str
    params: dict[str, float]  # run A's parameter values
    point_a: int
    point_b: int
    changed: dict[str, tuple[float, float]]  # ignored parameters whose values differ: (A, B)
    n_a: int  # values behind mean_a (paired: replicates with both values, also n_b)
    n_b: int
    mean_a: float | None
    mean_b: float | None
    difference: float | None
    low: float | None
    high: float | None
    method: Method | None  # None: no interval (fewer than two values on a side)

    @property
    def flagged(self) -> bool:
        """The interval excludes 0: the metric moved at this point."""
        return _excludes_zero(self.low, self.high)

    @property
    def relative(self) -> float | None:
        """Difference as a share of |mean_a|; None when A's mean is 0 or unknown."""
        return _relative(self.difference, self.mean_a)

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["changed"] = {k: {"a": a, "b": b} for k, (a, b) in self.changed.items()}
        return {**data, "relative": self.relative, "flagged": self.flagged}


@dataclass(frozen=True, slots=True)
class MetricSummary:
    """How one metric moved over the matched points."""

    metric: str
    compared: int  # matched points with an interval
    without_interval: int  # matched points without one (never flagged)
    moved: int
    up: int
    down: int
    largest: Difference | None  # the flagged difference largest in absolute value
    largest_relative: Difference | None  # ... and largest relative to A's mean
    # Over the points with an interval: the mean difference and a conservative 95%
    # interval (half-widths combined as sqrt(sum hw^2) / k, as the report averages bands).
    mean_difference: float | None
    mean_low: float | None
    mean_high: float | None
    mean_a: float | None  # A's mean over the same points, for the relative overall move

    @property
    def overall_moved(self) -> bool:
        """The mean difference's interval excludes 0."""
        return _excludes_zero(self.mean_low, self.mean_high)

    @property
    def mean_relative(self) -> float | None:
        return _relative(self.mean_difference, self.mean_a)

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        for key in ("largest", "largest_relative"):
            data[key] = data[key].to_dict() if data[key] is not None else None
        return {**data, "mean_relative": self.mean_relative, "overall_moved": self.overall_moved}


@dataclass(frozen=True, slots=True)
class Comparison:
    """Every matched (point, metric) difference of two runs, and their summary."""

    a: RunInfo
    b: RunInfo
    metrics: tuple[str, ...]
    ignored: tuple[str, ...]
    matched: int
    only_a: tuple[int, ...]  # point indices of A with no match in B
    only_b: tuple[int, ...]
    paired_points: int  # matched points compared with the paired interval
    differing: tuple[str, ...]  # matched parameters whose sets of values differ between runs
    differences: tuple[Difference, ...]  # by metric (in ``metrics`` order), then point_a
    summaries: dict[str, MetricSummary]

    @property
    def compared(self) -> int:
        """(point, metric) pairs with an interval."""
        return sum(s.compared for s in self.summaries.values())

    @property
    def moved(self) -> int:
        return sum(s.moved for s in self.summaries.values())

    @property
    def expected_by_chance(self) -> float:
        """Flags expected if nothing changed: 5% of the pairs with an interval."""
        return FALSE_POSITIVE_RATE * self.compared

    @property
    def points_moved(self) -> int:
        """Matched points where at least one metric moved."""
        return len({d.point_a for d in self.differences if d.flagged})

    @property
    def pairing(self) -> str:
        """Which interval was used where, and why, in one sentence."""
        a, b = self.a, self.b
        welch = self.matched - self.paired_points
        if self.matched == 0:
            return "no matched points"
        if self.paired_points == self.matched:
            return (
                f"paired over replicates at every matched point (same seed {a.seed}, "
                f"same replications {a.replications}, same point_index: the same seeds)"
            )
        if a.seed is None or b.seed is None:
            why = f"no manifest for {a.run_id if a.seed is None else b.run_id}: seeds unknown"
        elif a.seed != b.seed:
            why = f"seeds differ: {a.seed} vs {b.seed}"
        elif a.replications != b.replications:
            why = f"replications differ: {a.replications} vs {b.replications}"
        else:
            why = "point_index differs, so the seeds do"
        if self.paired_points == 0:
            return f"Welch at every matched point ({why})"
        return (
            f"paired at {self.paired_points} matched point(s) (same seed, replications and "
            f"point_index), Welch at {welch} ({why})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_a": _run_dict(self.a),
            "run_b": _run_dict(self.b),
            "metrics": list(self.metrics),
            "ignored": list(self.ignored),
            "matched": self.matched,
            "only_a": len(self.only_a),
            "only_b": len(self.only_b),
            "only_a_points": list(self.only_a),
            "only_b_points": list(self.only_b),
            "paired_points": self.paired_points,
            "differing": list(self.differing),
            "pairing": self.pairing,
            "confidence": CONFIDENCE,
            "compared": self.compared,
            "moved": self.moved,
            "expected_by_chance": self.expected_by_chance,
            "points_moved": self.points_moved,
            "summaries": {m: s.to_dict() for m, s in self.summaries.items()},
            "differences": [d.to_dict() for d in self.differences],
        }


def _run_dict(run: RunInfo) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "seed": run.seed,
        "replications": run.replications,
        "points": run.points,
    }


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class _RunValues:
    info: RunInfo
    point_index: npt.NDArray[np.int64]  # one entry per point with data, ascending
    params: list[dict[str, float]]  # per point, every parameter
    values: dict[str, Floats]  # metric -> (points, replications), NaN where null


def load_manifest(results: Path, prefix: str, run_id: str) -> RunManifest | None:
    """The run's manifest, or None when it has none; ValueError for a bad run_id."""
    try:
        path = results / manifest_key(prefix, run_id)
    except KeyLayoutError as exc:
        raise ValueError(f"run_id {run_id!r}: {exc}") from None
    if not path.is_file():
        return None
    return RunManifest.from_bytes(path.read_bytes())


def _read_runs(
    results: Path, prefix: str, run_ids: Sequence[str], metrics: Sequence[str]
) -> list[_RunValues]:
    """Both runs in one scan of shard_metrics; ValueError for a run that does not exist."""
    con = connect(results, prefix)
    manifests = [load_manifest(results, prefix, run_id) for run_id in run_ids]
    for run_id, manifest in zip(run_ids, manifests, strict=True):
        if (
            manifest is None
            and not con.execute(
                "SELECT count(*) FROM shard_outcomes WHERE run_id = ?", [run_id]
            ).fetchall()[0][0]
        ):
            where = results / prefix if prefix else results
            raise ValueError(f"no run {run_id!r} under {where} (no manifest, no shard outcomes)")
    names = list(PARAMETERS)
    params = ", ".join(names)
    columns = ", ".join(f"CAST({m} AS DOUBLE) AS {m}" for m in metrics)
    data = con.execute(
        f"SELECT run_id, point_index, replicate, {params}, {columns} "
        "FROM shard_metrics WHERE run_id IN (?, ?) ORDER BY run_id, point_index, replicate",
        [run_ids[0], run_ids[-1]],
    ).fetchnumpy()
    return [
        _run_values(run_id, manifest, data, data["run_id"] == run_id, names, metrics)
        for run_id, manifest in zip(run_ids, manifests, strict=True)
    ]


def _run_values(
    run_id: str,
    manifest: RunManifest | None,
    data: Mapping[str, Any],
    mine: npt.NDArray[np.bool_],
    names: Sequence[str],
    metrics: Sequence[str],
) -> _RunValues:
    index = np.asarray(data["point_index"][mine], dtype=np.int64)
    replicate = np.asarray(data["replicate"][mine], dtype=np.int64)
    points, row = np.unique(index, return_inverse=True)
    replications = manifest.request.replications if manifest else int(replicate.max(initial=0)) + 1
    first = np.searchsorted(index, points).tolist()  # parameters are constant within a point
    columns = {name: data[name][mine] for name in names}
    params = [{name: _plain(columns[name][i]) for name in names} for i in first]
    values: dict[str, Floats] = {}
    for metric in metrics:
        column = np.ma.filled(np.ma.asarray(data[metric][mine], dtype=np.float64), np.nan)
        grid = np.full((len(points), replications), np.nan)
        grid[row, replicate] = column
        values[metric] = grid
    seed = manifest.request.seed if manifest else None
    return _RunValues(RunInfo(run_id, seed, replications, len(points)), points, params, values)


def _plain(value: Any) -> Any:
    """A NumPy scalar (or masked: a parameter column an older run lacks) as Python."""
    if value is np.ma.masked:
        return None
    return value.item() if hasattr(value, "item") else value


# --------------------------------------------------------------------------- matching


def _keys(run: _RunValues, names: Sequence[str], ignored: Sequence[str]) -> dict[Any, int]:
    keys: dict[Any, int] = {}
    for row, params in enumerate(run.params):
        key = tuple(params[n] for n in names)
        if key in keys:
            other = run.params[keys[key]]
            differ = [n for n in ignored if params[n] != other[n]] or list(ignored)
            raise ValueError(
                f"run {run.info.run_id!r} has several points with the same values of the "
                f"matched parameters (points {int(run.point_index[keys[key]])} and "
                f"{int(run.point_index[row])} differ only in {', '.join(differ)}); "
                "ignore only parameters that have one value in each run"
            )
        keys[key] = row
    return keys


def check_names(metrics: Sequence[str], ignore: Sequence[str]) -> None:
    """ValueError naming the first unknown metric or parameter (with a 'did you mean').

    >>> check_names(["platform_revenu"], [])
    Traceback (most recent call last):
    ...
    ValueError: metric 'platform_revenu' is not a metric; did you mean 'platform_revenue'?
    """
    if not metrics:
        raise ValueError("metrics: give at least one metric")
    for metric in metrics:
        if metric not in SUMMARY_METRICS:
            raise ValueError(
                f"metric {metric!r} is not a metric{did_you_mean(metric, SUMMARY_METRICS)}"
            )
    for name in ignore:
        if name not in PARAMETERS:
            raise ValueError(f"ignore {name!r} is not a parameter{did_you_mean(name, PARAMETERS)}")


# --------------------------------------------------------------------------- statistics


def _moments(x: Floats) -> tuple[npt.NDArray[np.int64], Floats, Floats]:
    """Per row: count of non-NaN values, their mean and sample variance (NaN if n < 2)."""
    ok = ~np.isnan(x)
    n = ok.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(ok, x, 0.0).sum(axis=1) / n
        deviation = np.where(ok, x - mean[:, None], 0.0)
        var = (deviation**2).sum(axis=1) / (n - 1)
    return n, np.where(n > 0, mean, np.nan), np.where(n > 1, var, np.nan)


def _optional(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _interval(difference: float, se: float, df: float) -> tuple[float, float]:
    # se == 0 (no spread on either side) leaves a point interval: flagged iff nonzero.
    half = 0.0 if se == 0 else t_quantile_975(df) * se
    return difference - half, difference + half


def _metric_differences(
    metric: str,
    a: _RunValues,
    b: _RunValues,
    rows_a: Sequence[int],
    rows_b: Sequence[int],
    paired: Sequence[bool],
    ignored: Sequence[str],
) -> list[Difference]:
    xa, xb = a.values[metric][list(rows_a)], b.values[metric][list(rows_b)]
    n_a, mean_a, var_a = _moments(xa)
    n_b, mean_b, var_b = _moments(xb)
    if any(paired):  # paired implies equal replications, so the shapes agree
        n_d, mean_d, var_d = _moments(xb - xa)
    out: list[Difference] = []
    for k, (row_a, row_b) in enumerate(zip(rows_a, rows_b, strict=True)):
        low = high = None
        method: Method | None = None
        if paired[k]:
            counts = (int(n_d[k]), int(n_d[k]))
            difference = _optional(mean_d[k])
            if n_d[k] >= 2 and difference is not None:
                method = "paired"
                se = math.sqrt(var_d[k] / n_d[k])
                low, high = _interval(difference, se, float(n_d[k] - 1))
        else:
            counts = (int(n_a[k]), int(n_b[k]))
            difference = _optional(mean_b[k] - mean_a[k])
            if n_a[k] >= 2 and n_b[k] >= 2 and difference is not None:
                method = "welch"
                va, vb = var_a[k] / n_a[k], var_b[k] / n_b[k]
                se = math.sqrt(va + vb)
                df = (va + vb) ** 2 / (va**2 / (n_a[k] - 1) + vb**2 / (n_b[k] - 1)) if se else 1.0
                low, high = _interval(difference, se, float(df))
        params_a, params_b = a.params[row_a], b.params[row_b]
        out.append(
            Difference(
                metric=metric,
                params=params_a,
                point_a=int(a.point_index[row_a]),
                point_b=int(b.point_index[row_b]),
                changed={
                    n: (params_a[n], params_b[n]) for n in ignored if params_a[n] != params_b[n]
                },
                n_a=counts[0],
                n_b=counts[1],
                mean_a=_optional(mean_a[k]),
                mean_b=_optional(mean_b[k]),
                difference=difference,
                low=low,
                high=high,
                method=method,
            )
        )
    return out


def summarise(metric: str, differences: Sequence[Difference]) -> MetricSummary:
    """Counts, largest flagged moves and the mean move of one metric's differences."""
    moved = [d for d in differences if d.flagged]
    relative = [d for d in moved if d.relative is not None]
    tested = [d for d in differences if d.low is not None and d.high is not None]
    mean = low = high = base = None
    if tested:
        k = len(tested)
        mean = sum(d.difference or 0.0 for d in tested) / k
        half = math.sqrt(sum(((d.high or 0.0) - (d.low or 0.0)) ** 2 / 4 for d in tested)) / k
        low, high = mean - half, mean + half
        base = sum(d.mean_a or 0.0 for d in tested) / k
    return MetricSummary(
        metric=metric,
        compared=len(tested),
        without_interval=len(differences) - len(tested),
        moved=len(moved),
        up=sum(1 for d in moved if (d.difference or 0.0) > 0),
        down=sum(1 for d in moved if (d.difference or 0.0) < 0),
        largest=max(moved, key=lambda d: abs(d.difference or 0.0), default=None),
        largest_relative=max(relative, key=lambda d: abs(d.relative or 0.0), default=None),
        mean_difference=mean,
        mean_low=low,
        mean_high=high,
        mean_a=base,
    )


def compare_runs(
    results: Path,
    prefix: str,
    run_a: str,
    run_b: str,
    metrics: Sequence[str] = DEFAULT_METRICS,
    ignore: Sequence[str] = (),
) -> Comparison:
    """Compare run B with run A point by point: B − A per metric, 95% interval, flags.

    Points match when every parameter except those in ``ignore`` has the same value in
    both runs (so ``ignore=["commission_rate"]`` compares a commission-0.1 run with a
    commission-0.2 run over the same other settings). A run must not have two points
    that match the same key (ValueError naming them). Pairing is decided per matched
    point: same request seed, same replications and same point_index (module docstring).

    Raises ValueError naming an unknown metric or parameter, or a run with no manifest
    and no shard outcomes under ``results/prefix``.

    >>> compare_runs(Path("/nonexistent"), "sweeps", "a", "b")
    Traceback (most recent call last):
    ...
    ValueError: no run 'a' under /nonexistent/sweeps (no manifest, no shard outcomes)
    """
    check_names(metrics, ignore)
    try:
        prefix = check_prefix(prefix)
    except KeyLayoutError as exc:
        raise ValueError(str(exc)) from None
    metrics = tuple(dict.fromkeys(metrics))
    ignored = tuple(dict.fromkeys(ignore))
    a, b = _read_runs(results, prefix, [run_a, run_b], metrics)
    names = [n for n in PARAMETERS if n not in ignored]
    keys_a, keys_b = _keys(a, names, ignored), _keys(b, names, ignored)
    common = [key for key in keys_a if key in keys_b]
    rows_a = [keys_a[key] for key in common]
    rows_b = [keys_b[key] for key in common]
    same_seeds = (
        a.info.seed is not None
        and a.info.seed == b.info.seed
        and a.info.replications == b.info.replications
    )
    paired = [
        same_seeds and a.point_index[i] == b.point_index[j]
        for i, j in zip(rows_a, rows_b, strict=True)
    ]
    differences: list[Difference] = []
    summaries: dict[str, MetricSummary] = {}
    for metric in metrics:
        found = _metric_differences(metric, a, b, rows_a, rows_b, paired, ignored)
        differences.extend(sorted(found, key=lambda d: d.point_a))
        summaries[metric] = summarise(metric, found)
    return Comparison(
        a=a.info,
        b=b.info,
        metrics=metrics,
        ignored=ignored,
        matched=len(common),
        only_a=tuple(int(a.point_index[r]) for k, r in keys_a.items() if k not in keys_b),
        only_b=tuple(int(b.point_index[r]) for k, r in keys_b.items() if k not in keys_a),
        paired_points=sum(paired),
        differing=tuple(n for n in names if {p[n] for p in a.params} != {p[n] for p in b.params}),
        differences=tuple(differences),
        summaries=summaries,
    )


def by_metric(comparison: Comparison) -> Mapping[str, list[Difference]]:
    """The differences grouped by metric, in the comparison's metric order."""
    grouped: dict[str, list[Difference]] = {m: [] for m in comparison.metrics}
    for d in comparison.differences:
        grouped[d.metric].append(d)
    return grouped


# --------------------------------------------------------------------------- text


def fmt(value: float | None, signed: bool = False) -> str:
    """A number for a table: thousands separators from 100 up, else 3 significant digits.

    >>> fmt(1234.5), fmt(0.01234, signed=True), fmt(None)
    ('1,234', '+0.0123', '–')
    """
    if value is None or math.isnan(value):
        return "–"
    sign = "+" if signed else ""
    return f"{value:{sign},.0f}" if abs(value) >= 100 else f"{value:{sign}.3g}"


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value:+.1%}"


def swept_parameters(comparison: Comparison) -> list[str]:
    """Matched parameters that take more than one value over the matched points, ordered
    as the report's chart dimensions: commission_rate first, then most values first."""
    counts = {
        name: len({d.params[name] for d in comparison.differences})
        for name in PARAMETERS
        if name not in comparison.ignored
    }
    names = [name for name, count in counts.items() if count > 1]
    return sorted(names, key=lambda n: (n != "commission_rate", -counts[n], n))


def overview(comparison: Comparison) -> list[str]:
    """The summary as sentences (the CLI prints them, the report lists them)."""
    a, b = comparison.a.run_id, comparison.b.run_id
    on = (
        f"every parameter except {', '.join(comparison.ignored)}"
        if comparison.ignored
        else "every parameter"
    )
    lines = [
        f"{comparison.matched} point(s) matched on {on}; {len(comparison.only_a)} of {a}'s "
        f"{comparison.a.points} and {len(comparison.only_b)} of {b}'s {comparison.b.points} "
        "point(s) with data did not match",
        f"intervals (95%): {comparison.pairing}",
    ]
    if comparison.differing and (comparison.only_a or comparison.only_b):
        names = ", ".join(comparison.differing)
        line = f"parameters with other values in one run than in the other: {names}"
        if not comparison.matched:
            flags = " ".join(f"--ignore {n}" for n in comparison.differing)
            line += f" (to compare across them, match without them: {flags})"
        lines.append(line)
    changed = {k: v for d in comparison.differences for k, v in d.changed.items()}
    if changed:
        lines.append(
            "ignored parameters that differ: "
            + ", ".join(f"{k} {fmt(x)} → {fmt(y)}" for k, (x, y) in sorted(changed.items()))
        )
    compared = comparison.compared
    share = f" ({comparison.moved / compared:.1%})" if compared else ""
    lines.append(
        f"moved (interval excludes 0): {comparison.moved} of {compared} (point, metric) "
        f"pair(s){share} at {comparison.points_moved} point(s); about "
        f"{comparison.expected_by_chance:.1f} ({FALSE_POSITIVE_RATE:.0%}) expected by chance "
        "if nothing changed"
    )
    missing = sum(s.without_interval for s in comparison.summaries.values())
    if missing:
        lines.append(
            f"{missing} (point, metric) pair(s) have no interval (fewer than two replications "
            "with a value on a side) and are never flagged"
        )
    return lines


def metric_table(comparison: Comparison) -> tuple[list[str], list[list[str]]]:
    """Per metric: points compared and moved, the mean move and the largest ones."""
    header = [
        "metric",
        "compared",
        "moved",
        "up",
        "down",
        "mean B − A (95% CI)",
        "relative",
        "largest move",
        "largest relative move",
    ]
    rows = []
    for s in comparison.summaries.values():
        mean = fmt(s.mean_difference, signed=True)
        if s.mean_low is not None:
            mean += f" ({fmt(s.mean_low, True)} to {fmt(s.mean_high, True)})"
        if s.overall_moved:
            mean += " *"
        largest, relative = s.largest, s.largest_relative
        rows.append(
            [
                s.metric,
                str(s.compared),
                str(s.moved),
                str(s.up),
                str(s.down),
                mean,
                _share(s.mean_relative),
                f"{fmt(largest.difference, True)} (#{largest.point_a})" if largest else "–",
                f"{_share(relative.relative)} (#{relative.point_a})" if relative else "–",
            ]
        )
    return header, rows


def difference_table(
    comparison: Comparison, differences: Sequence[Difference]
) -> tuple[list[str], list[list[str]]]:
    """One row per difference: point, its swept settings, means, B − A and interval."""
    names = swept_parameters(comparison)
    # An ignored parameter's change that is the same at every point is said once, in the
    # overview, not on every row.
    changes = [set(d.changed.items()) for d in comparison.differences]
    everywhere = set.intersection(*changes) if changes else set()
    header = ["metric", "point", "setting", "A", "B", "B − A", "95% CI", "relative", "interval"]
    rows = []
    for d in differences:
        point = f"#{d.point_a}" if d.point_a == d.point_b else f"#{d.point_a} / #{d.point_b}"
        setting = [f"{n}={fmt(d.params[n])}" for n in names]
        setting += [
            f"{n} {fmt(x)}→{fmt(y)}"
            for n, (x, y) in d.changed.items()
            if (n, (x, y)) not in everywhere
        ]
        interval = "–" if d.low is None else f"{fmt(d.low, True)} to {fmt(d.high, True)}"
        method = "none" if d.method is None else f"{d.method}, n={d.n_a}/{d.n_b}"
        rows.append(
            [
                d.metric,
                point,
                ", ".join(setting) or "the only point",
                fmt(d.mean_a),
                fmt(d.mean_b),
                fmt(d.difference, signed=True) + (" *" if d.flagged else ""),
                interval,
                _share(d.relative),
                method,
            ]
        )
    return header, rows
