"""`sweep report RUN_ID`: a self-contained HTML report with matplotlib charts.

Reads the results folder through ``analytics.views.connect`` (never runs the
simulation) and writes ``out/report.html`` (images embedded as data URIs, so the file
stands alone) plus the same charts as PNG files beside it.

Three steps: :func:`load_run` reads the run (manifest, shard outcomes, per-point
statistics, missing points), :func:`build_context` turns it and the charts into plain
values, and :func:`render` fills the Jinja2 template ``templates/report.html.j2``
(autoescaped: every text from the data is HTML-escaped).

Charts per key metric, over the swept dimensions: x = commission_rate when swept (else
the dimension with most values), colour = the next dimension, one panel per value of a
third (small multiples); further dimensions are averaged. With replications > 1 a
shaded band shows the 95% confidence interval across replications (from point_summary),
clipped to [0, 1] for shares. Points without data (their shard failed or is pending)
break the lines and are marked on the chart.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import io
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from sim_serverless_sweep.analytics.compare import (
    Comparison,
    by_metric,
    compare_runs,
    difference_table,
    load_manifest,
    metric_table,
    overview,
    swept_parameters,
)
from sim_serverless_sweep.analytics.options import WAIT_BOUND_MIN, WAIT_COLUMNS, WAIT_METRICS
from sim_serverless_sweep.analytics.views import connect
from sim_serverless_sweep.core.keys import KeyLayoutError, check_prefix
from sim_serverless_sweep.core.messages import RunManifest
from sim_serverless_sweep.core.sharding import Plan
from sim_serverless_sweep.sim import METRICS_SCHEMA, PARAMETERS

# Metrics charted, in order, with a readable name. Units come from the writer schema.
KEY_METRICS: dict[str, str] = {
    "platform_revenue": "Platform revenue",
    "wait_mean_min": "Mean rider wait",
    "wait_p95_min": "95th-percentile rider wait",
    "completion_rate": "Completion rate",
    "utilisation": "Driver utilisation",
    "driver_net_hourly_earnings": "Driver net hourly earnings",
    "mean_online_drivers": "Drivers online",
}
_WAIT_NAMES = {"mean": "mean wait", "p50": "median (p50) wait", "p95": "p95 wait"}

FLEET_DIM = "num_drivers"
COMMISSION_DIM = "commission_rate"
MISSING_ROWS_SHOWN = 200  # the missing-points table stays readable on huge grids
FLAGGED_ROWS_SHOWN = 200  # likewise the comparison's flagged differences


@dataclass(frozen=True, slots=True)
class Question:
    """One 'best point' question answered in the report's table."""

    title: str
    metric: str
    maximise: bool
    max_wait: float | None = None
    wait_column: str = "wait_mean_min"


@dataclass(frozen=True, slots=True)
class PointStat:
    """Mean and 95% CI of one metric at one point."""

    point_index: int
    params: dict[str, float]
    n: int
    mean: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """One shard outcome row."""

    shard_id: int
    status: str
    duration_s: float
    points: int
    attempts: int
    first_point_index: int
    last_point_index: int
    error_type: str | None
    error_message: str | None


@dataclass(frozen=True, slots=True)
class MissingPoint:
    """A grid point with no data; params is None when the run has no manifest."""

    point_index: int
    shard_id: int
    params: dict[str, float] | None
    reason: str


@dataclass(frozen=True, slots=True)
class RunData:
    """Everything the report shows about one run, read once."""

    run_id: str
    where: Path
    manifest: RunManifest | None
    outcomes: list[Outcome]
    stats: dict[str, list[PointStat]]
    dims: list[str]
    replications: int
    missing: list[MissingPoint]
    series: list[tuple[int, float, float, float, float]]


@dataclass(frozen=True, slots=True)
class FleetAnswer:
    """Best commission for one fleet size (and value of every other swept dimension)."""

    group: dict[str, float]
    best: PointStat | None  # platform revenue at the best point, None if none qualifies
    wait: float | None
    points: int  # grid points of the group with data
    missing: int  # grid points of the group without data


@dataclass(frozen=True, slots=True)
class Chart:
    """A chart as the template shows it."""

    data: str  # base64 PNG
    name: str
    alt: str
    caption: str


@dataclass(frozen=True, slots=True)
class Table:
    """Header and string cells; the ``numeric`` columns are right-aligned."""

    header: list[str]
    rows: list[list[str]]
    numeric: tuple[int, ...] = ()


def check_options(max_wait: float, wait_metric: str) -> None:
    """Raise ValueError naming the option for a bad wait bound or wait metric.

    >>> check_options(0, "mean")
    Traceback (most recent call last):
    ...
    ValueError: max_wait must be a positive, finite number of minutes, got 0
    """
    if wait_metric not in WAIT_METRICS:
        raise ValueError(
            f"wait_metric must be one of {', '.join(WAIT_METRICS)}, got {wait_metric!r}"
        )
    if not math.isfinite(max_wait) or max_wait <= 0:
        raise ValueError(f"max_wait must be a positive, finite number of minutes, got {max_wait!r}")


def questions(max_wait: float = WAIT_BOUND_MIN, wait_metric: str = "mean") -> tuple[Question, ...]:
    """The best-point questions, the bounded one with the given wait bound."""
    wait_column = WAIT_COLUMNS[wait_metric]
    return (
        Question("Highest platform revenue", "platform_revenue", True),
        Question(
            f"Highest platform revenue with {_WAIT_NAMES[wait_metric]} ≤ {max_wait:g} min",
            "platform_revenue",
            True,
            max_wait,
            wait_column,
        ),
        Question("Shortest mean wait", "wait_mean_min", False),
        Question("Shortest 95th-percentile wait", "wait_p95_min", False),
        Question("Highest completion rate", "completion_rate", True),
        Question("Highest driver net hourly earnings", "driver_net_hourly_earnings", True),
        Question("Highest driver utilisation", "utilisation", True),
    )


def metric_unit(metric: str) -> str:
    """Unit of a metric column from the writer schema's field metadata.

    >>> metric_unit("wait_p95_min")
    'minutes'
    """
    meta: dict[bytes, bytes] = METRICS_SCHEMA.field(metric).metadata or {}
    return meta.get(b"unit", b"-").decode()


def metric_bounds(metric: str) -> tuple[float, float] | None:
    """Range a metric's value can take: [0, 1] for shares (rates), else unbounded.

    >>> metric_bounds("completion_rate"), metric_bounds("platform_revenue")
    ((0.0, 1.0), None)
    """
    return (0.0, 1.0) if metric_unit(metric) == "share" else None


def _clip(value: float | None, bounds: tuple[float, float] | None) -> float | None:
    if value is None or bounds is None:
        return value
    return min(max(value, bounds[0]), bounds[1])


def _unit_label(unit: str) -> str:
    return {"share": "share, 0–1", "currency": "currency units", "-": "dimensionless"}.get(
        unit, unit
    )


def axis_label(name: str) -> str:
    """Axis label with unit for a metric or parameter column.

    >>> axis_label("commission_rate")
    'commission rate (share of fare)'
    """
    unit = PARAMETERS[name].unit if name in PARAMETERS else metric_unit(name)
    return f"{name.replace('_', ' ')} ({_unit_label(unit)})"


def _pretty(name: str) -> str:
    return KEY_METRICS.get(name, name.replace("_", " ").capitalize())


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _setting(params: Mapping[str, float], dims: Sequence[str]) -> str:
    return ", ".join(f"{d} = {params[d]:g}" for d in dims)


# --------------------------------------------------------------------------- data


def _swept_dimensions(manifest: RunManifest | None, stats: Sequence[PointStat]) -> list[str]:
    if manifest is not None:
        names = [n for n, v in manifest.request.dimensions.items() if len(v) > 1]
    else:
        names = [n for n in PARAMETERS if len({s.params[n] for s in stats}) > 1]
    counts = {n: len({s.params[n] for s in stats}) for n in names}
    names = [n for n in names if counts[n] > 1]  # a dimension with one value left in data
    return sorted(names, key=lambda n: (n != COMMISSION_DIM, -counts[n], n))


# Charted metrics plus every wait column a bound can use.
_LOADED_METRICS = (*KEY_METRICS, *(c for c in WAIT_COLUMNS.values() if c not in KEY_METRICS))


def _point_stats(
    con: Any, run_id: str, metrics: Sequence[str] = tuple(KEY_METRICS)
) -> dict[str, list[PointStat]]:
    params = ", ".join(PARAMETERS)
    wanted = ", ".join(f"'{m}'" for m in metrics)
    rows = con.execute(
        f"SELECT metric, point_index, {params}, n, mean, ci95_low, ci95_high "
        f"FROM point_summary WHERE run_id = ? AND metric IN ({wanted}) "
        "ORDER BY metric, point_index",
        [run_id],
    ).fetchall()
    out: dict[str, list[PointStat]] = defaultdict(list)
    width = len(PARAMETERS)
    for row in rows:
        values = row[2 : 2 + width]
        n, mean, low, high = row[2 + width :]
        out[row[0]].append(
            PointStat(
                int(row[1]), dict(zip(PARAMETERS, values, strict=True)), int(n), mean, low, high
            )
        )
    return out


def _outcomes(con: Any, run_id: str) -> list[Outcome]:
    rows = con.execute(
        "SELECT shard_id, status, duration_s, points, attempts, first_point_index, "
        "last_point_index, error_type, error_message FROM shard_outcomes "
        "WHERE run_id = ? ORDER BY shard_id, status DESC",
        [run_id],
    ).fetchall()
    return [Outcome(*row) for row in rows]


def _shard_reasons(manifest: RunManifest | None, outcomes: Sequence[Outcome]) -> dict[int, str]:
    """Why each shard without a success outcome has no data (failed or pending)."""
    succeeded = {o.shard_id for o in outcomes if o.status == "success"}
    failed = {
        o.shard_id: o for o in outcomes if o.status == "failure" and o.shard_id not in succeeded
    }
    injected = set(manifest.request.failure_injection_shards) if manifest else set()
    shard_ids = range(manifest.shard_count) if manifest else sorted(failed)
    reasons: dict[int, str] = {}
    for shard_id in shard_ids:
        if shard_id in succeeded:
            continue
        outcome = failed.get(shard_id)
        if outcome is None:
            reasons[shard_id] = "pending (no outcome yet)"
        elif shard_id in injected:
            reasons[shard_id] = "failed (failure-injected)"
        else:
            reasons[shard_id] = f"failed ({outcome.error_type or 'error'})"
    return reasons


def missing_points(
    manifest: RunManifest | None, outcomes: Sequence[Outcome], present: set[int]
) -> list[MissingPoint]:
    """Grid points without data, with their shard and why (from manifest and outcomes).

    Without a manifest only the ranges of failed shards are known (no parameter values).
    """
    reasons = _shard_reasons(manifest, outcomes)
    if manifest is None:
        ranges = {o.shard_id: range(o.first_point_index, o.last_point_index + 1) for o in outcomes}
        return [
            MissingPoint(i, shard_id, None, reason)
            for shard_id, reason in reasons.items()
            for i in ranges[shard_id]
            if i not in present
        ]
    plan = Plan.from_request(manifest.request)
    missing: list[MissingPoint] = []
    for shard_id in range(plan.shard_count):
        reason = reasons.get(shard_id, "no data (shard succeeded)")
        for i in plan.shard_range(shard_id):
            if i not in present:
                params = {**{n: p.default for n, p in PARAMETERS.items()}, **plan.point(i)}
                missing.append(MissingPoint(i, shard_id, params, reason))
    return missing


def load_run(results: Path, prefix: str, run_id: str) -> RunData:
    """Read one run from the results folder; ValueError if there is no such run."""
    try:
        prefix = check_prefix(prefix)
    except KeyLayoutError as exc:
        raise ValueError(str(exc)) from None
    manifest = load_manifest(results, prefix, run_id)
    con = connect(results, prefix)
    outcomes = _outcomes(con, run_id)
    where = results / prefix if prefix else results
    if manifest is None and not outcomes:
        raise ValueError(f"no run {run_id!r} under {where} (no manifest, no shard outcomes)")
    stats = _point_stats(con, run_id, _LOADED_METRICS)
    all_stats = [s for metric_stats in stats.values() for s in metric_stats]
    replications = (
        manifest.request.replications if manifest else max((s.n for s in all_stats), default=1)
    )
    present = {s.point_index for s in all_stats}
    revenue_best = best_points(stats)[0][1]
    series: list[tuple[int, float, float, float, float]] = []
    if revenue_best is not None:
        series = con.execute(
            "SELECT minute, avg(CAST(drivers_idle AS DOUBLE)), "
            "avg(CAST(drivers_en_route AS DOUBLE)), avg(CAST(drivers_on_trip AS DOUBLE)), "
            "avg(CAST(riders_waiting AS DOUBLE)) FROM snapshot_counts "
            "WHERE run_id = ? AND point_index = ? GROUP BY minute ORDER BY minute",
            [run_id, revenue_best.point_index],
        ).fetchall()
    return RunData(
        run_id=run_id,
        where=where,
        manifest=manifest,
        outcomes=outcomes,
        stats=stats,
        dims=_swept_dimensions(manifest, all_stats),
        replications=replications,
        missing=missing_points(manifest, outcomes, present),
        series=series,
    )


# --------------------------------------------------------------------------- answers


def _best(
    candidates: Sequence[PointStat],
    maximise: bool,
    waits: Mapping[int, float | None],
    bound: float | None,
) -> PointStat | None:
    """Best mean (ties: lowest point_index) among points within the wait bound, if any."""
    usable = [s for s in candidates if s.mean is not None]
    if bound is not None:
        usable = [s for s in usable if (w := waits.get(s.point_index)) is not None and w <= bound]
    sign = -1.0 if maximise else 1.0
    return min(usable, key=lambda s: (sign * (s.mean or 0.0), s.point_index), default=None)


def _means(stats: Mapping[str, Sequence[PointStat]], metric: str) -> dict[int, float | None]:
    return {s.point_index: s.mean for s in stats.get(metric, [])}


def best_points(
    stats: Mapping[str, Sequence[PointStat]],
    max_wait: float = WAIT_BOUND_MIN,
    wait_metric: str = "mean",
) -> list[tuple[Question, PointStat | None]]:
    """Answer each of :func:`questions`: the best point (ties: lowest point_index) or None."""
    answers: list[tuple[Question, PointStat | None]] = []
    for question in questions(max_wait, wait_metric):
        waits = _means(stats, question.wait_column)
        best = _best(stats.get(question.metric, []), question.maximise, waits, question.max_wait)
        answers.append((question, best))
    return answers


def fleet_dimensions(dims: Sequence[str]) -> list[str]:
    """Columns a per-fleet answer is grouped by: num_drivers, then the other swept
    dimensions except commission (the choice being answered).

    >>> fleet_dimensions(["commission_rate", "num_riders", "num_drivers"])
    ['num_drivers', 'num_riders']
    """
    return [FLEET_DIM, *(d for d in dims if d not in (FLEET_DIM, COMMISSION_DIM))]


def best_per_fleet(
    run: RunData, max_wait: float = WAIT_BOUND_MIN, wait_metric: str = "mean"
) -> list[FleetAnswer]:
    """Per fleet size: the highest-revenue point whose wait metric (mean over
    replications) is ≤ max_wait, or None when no point of that fleet qualifies."""
    keys = fleet_dimensions(run.dims)
    waits = _means(run.stats, WAIT_COLUMNS[wait_metric])
    groups: dict[tuple[float, ...], list[PointStat]] = defaultdict(list)
    for s in run.stats.get("platform_revenue", []):
        groups[tuple(s.params[k] for k in keys)].append(s)
    missing: dict[tuple[float, ...], int] = defaultdict(int)
    for m in run.missing:
        if m.params is not None:
            missing[tuple(m.params[k] for k in keys)] += 1
    answers = []
    for group in sorted(set(groups) | set(missing)):
        best = _best(groups.get(group, []), True, waits, max_wait)
        answers.append(
            FleetAnswer(
                dict(zip(keys, group, strict=True)),
                best,
                waits.get(best.point_index) if best else None,
                len(groups.get(group, [])),
                missing.get(group, 0),
            )
        )
    return answers


# --------------------------------------------------------------------------- charts


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


Band = tuple[float, float | None, float | None, int]
Cell = tuple[float, ...]


def group_bands(
    stats: Sequence[PointStat], keys: Sequence[str], bounds: tuple[float, float] | None = None
) -> dict[Cell, Band]:
    """Mean over points sharing ``keys``; CI half-width combined as sqrt(sum hw^2)/k.

    The band is clipped to ``bounds`` (a share's CI from a t interval can leave [0, 1]).
    """
    buckets: dict[Cell, list[PointStat]] = defaultdict(list)
    for s in stats:
        if s.mean is not None:
            buckets[tuple(s.params[k] for k in keys)].append(s)
    grouped: dict[Cell, Band] = {}
    for key, members in buckets.items():
        k = len(members)
        mean = sum(m.mean or 0.0 for m in members) / k
        halves = [(m.high - m.low) / 2 for m in members if m.high is not None and m.low is not None]
        if len(halves) == k:
            half = math.sqrt(sum(h * h for h in halves)) / k
            grouped[key] = (mean, _clip(mean - half, bounds), _clip(mean + half, bounds), k)
        else:
            grouped[key] = (mean, None, None, k)
    return grouped


def _runs(xs: Sequence[float], bands: Sequence[Band | None]) -> list[list[tuple[float, Band]]]:
    """Consecutive x positions that have a band (a missing cell splits the run)."""
    runs: list[list[tuple[float, Band]]] = [[]]
    for x, band in zip(xs, bands, strict=True):
        if band is None or band[1] is None:
            runs.append([])
        else:
            runs[-1].append((x, band))
    return [r for r in runs if r]


_MISSING_LABEL = "no data (failed or pending shard)"
_PARTIAL_LABEL = "mean over fewer points (some missing)"


def _draw_line(
    ax: Any,
    line: Sequence[Cell],
    grouped: Mapping[Cell, Band],
    holes: set[Cell],
    shade: Any,
    label: str | None,
    row: int,
) -> tuple[bool, bool]:
    """One colour's line in one panel; returns (cells without data, partial cells) seen."""
    xs = [k[-1] for k in line]
    bands = [grouped.get(k) for k in line]
    # NaN where a cell has no mean: matplotlib breaks the line there instead of joining
    # the neighbours across the gap.
    means = [b[0] if b is not None else math.nan for b in bands]
    ax.plot(xs, means, "o-", color=shade, label=label, linewidth=1.8, markersize=5)
    for run in _runs(xs, bands):
        ax.fill_between(
            [x for x, _ in run],
            [b[1] for _, b in run],
            [b[2] for _, b in run],
            color=shade,
            alpha=0.2,
            linewidth=0,
        )
    gone = [k[-1] for k in line if k in holes and k not in grouped]
    if gone:  # crosses at the foot of the panel (x in data, y in axes units), one row a line
        ax.plot(
            gone,
            [0.04 + 0.05 * row] * len(gone),
            "x",
            color=shade,
            markersize=10,
            markeredgewidth=2.5,
            transform=ax.get_xaxis_transform(),
            clip_on=False,
        )
    partial = [(k[-1], grouped[k][0]) for k in line if k in holes and k in grouped]
    if partial:
        ax.plot(
            [p[0] for p in partial],
            [p[1] for p in partial],
            "o",
            markerfacecolor="none",
            markeredgecolor=shade,
            markersize=11,
            markeredgewidth=1.5,
        )
    return bool(gone), bool(partial)


def _legend(ax: Any, title: str | None, gone: bool, partial: bool) -> None:
    from matplotlib.lines import Line2D

    handles, labels = ax.get_legend_handles_labels()
    grey = "#555555"
    if gone:
        handles.append(
            Line2D([], [], color=grey, linestyle="none", marker="x", markeredgewidth=2.5)
        )
        labels.append(_MISSING_LABEL)
    if partial:
        handles.append(
            Line2D([], [], color=grey, linestyle="none", marker="o", markerfacecolor="none")
        )
        labels.append(_PARTIAL_LABEL)
    if handles:
        ax.legend(handles, labels, title=title, fontsize=8, title_fontsize=8)


def _figure_title(
    metric: str, dims: Sequence[str], replications: int, holes: bool, subject: str | None = None
) -> str:
    words = [d.replace("_", " ") for d in dims]
    title = f"{subject or _pretty(metric)} vs {words[0]}"
    if len(words) > 1:
        title += f" by {words[1]}"
    if len(words) > 3:
        title += f"\n(mean over {', '.join(words[3:])})"
    if replications > 1:
        what = "of the difference" if subject else f"across {replications} replications"
        title += f"\nbands: 95% CI {what}"
    if holes:
        title += "\n× at the foot: no data (failed or pending shard)"
    return title


def _single_point_figure(metric: str, band: Band) -> Any:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.0, 4.4), layout="constrained")
    ax = figure.subplots()
    mean, low, high, _ = band
    yerr = [[mean - low], [high - mean]] if low is not None and high is not None else None
    ax.bar([0], [mean], yerr=yerr, capsize=6, color="#4C72B0", width=0.5)
    ax.set_xticks([0], ["single point"])
    ax.set_ylabel(axis_label(metric))
    ax.set_title(f"{_pretty(metric)} (one grid point)")
    return figure


def metric_figure(
    metric: str,
    stats: Sequence[PointStat],
    dims: Sequence[str],
    replications: int,
    missing: Sequence[Mapping[str, float]] = (),
    *,
    difference: tuple[str, str] | None = None,
) -> Any:
    """Figure of one metric over up to three swept dimensions (others averaged).

    ``missing`` holds the parameters of points without data: no line runs through their
    cells, which get a cross at the foot of the panel (or a ring on the mean when other
    points of an averaged cell have data). With ``difference=(run_a, run_b)`` the stats
    are B − A (mean and interval of the difference): a share's band is clipped to
    [-1, 1], the axis says B − A and a dashed line marks 0.
    """
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    keys = list(reversed(dims[:3]))  # facet, colour, x: the x value is a cell's last
    bounds = metric_bounds(metric)
    if difference is not None and bounds is not None:
        bounds = (bounds[0] - bounds[1], bounds[1] - bounds[0])
    grouped = group_bands(stats, keys, bounds)
    if not dims:
        figure = _single_point_figure(metric, next(iter(grouped.values())))
        return figure if difference is None else _as_difference(figure, metric, difference)
    holes = {tuple(m[k] for k in keys) for m in missing}
    cells = set(grouped) | holes
    facets: list[float | None] = [None]
    colours: list[float | None] = [None]
    if len(dims) > 2:
        facets = [*sorted({k[0] for k in cells})]
    if len(dims) > 1:
        colours = [*sorted({k[-2] for k in cells})]
    ncols = min(len(facets), 3)
    nrows = math.ceil(len(facets) / ncols)
    figure = Figure(
        figsize=(4.6 * ncols if ncols > 1 else 7.0, 3.8 * nrows + 0.6), layout="constrained"
    )
    axes = figure.subplots(nrows, ncols, sharey=True, squeeze=False).ravel()
    palette = colormaps["viridis"]
    any_gone = any_partial = False
    for ax, facet in zip(axes, facets, strict=False):
        for row, colour in enumerate(colours):
            line = sorted(
                k
                for k in cells
                if (facet is None or k[0] == facet) and (colour is None or k[-2] == colour)
            )
            if line:
                shade = palette(row / max(len(colours) - 1, 1) * 0.85)
                label = f"{colour:g}" if colour is not None else None
                gone, partial = _draw_line(ax, line, grouped, holes, shade, label, row)
                any_gone, any_partial = any_gone or gone, any_partial or partial
        ax.set_xlabel(axis_label(dims[0]))
        ax.grid(True, alpha=0.3)
        if facet is not None:
            ax.set_title(f"{dims[2].replace('_', ' ')} = {facet:g}", fontsize=10)
    for ax in axes[len(facets) :]:
        ax.set_visible(False)
    for r in range(nrows):
        axes[r * ncols].set_ylabel(axis_label(metric))
    _legend(axes[0], axis_label(dims[1]) if len(dims) > 1 else None, any_gone, any_partial)
    subject = f"{_pretty(metric)}: {difference[1]} − {difference[0]}" if difference else None
    title = _figure_title(metric, dims, replications, bool(holes), subject)
    figure.suptitle(title, fontsize=12)
    return figure if difference is None else _as_difference(figure, metric, difference)


def _as_difference(figure: Any, metric: str, runs: tuple[str, str]) -> Any:
    """A metric figure turned into a B − A figure: zero line, axis label saying B − A."""
    for ax in figure.axes:
        if ax.get_visible():
            ax.axhline(0.0, color="#444444", linewidth=1.0, linestyle="--", zorder=1)
            if ax.get_ylabel():
                ax.set_ylabel(f"B − A: {axis_label(metric)}")
            if ax.get_title().endswith("(one grid point)"):
                ax.set_title(f"{_pretty(metric)}: {runs[1]} − {runs[0]} (one grid point)")
    return figure


def outcomes_figure(outcomes: Sequence[Outcome]) -> Any:
    """Shard outcome panel: counts by status and the duration of each shard."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 3.6), layout="constrained")
    left, right = figure.subplots(1, 2, width_ratios=[1, 2.4])
    colours = {"success": "#55A868", "failure": "#C44E52"}
    statuses = ["success", "failure"]
    shard_counts = [sum(1 for o in outcomes if o.status == s) for s in statuses]
    point_counts = [sum(o.points for o in outcomes if o.status == s) for s in statuses]
    positions = range(len(statuses))
    left.bar(
        [p - 0.2 for p in positions],
        shard_counts,
        width=0.4,
        color=[colours[s] for s in statuses],
        label="shards",
    )
    left.bar(
        [p + 0.2 for p in positions],
        point_counts,
        width=0.4,
        color=[colours[s] for s in statuses],
        alpha=0.5,
        hatch="//",
        label="points",
    )
    left.set_xticks(list(positions), ["succeeded", "failed"])
    left.set_ylabel("count (shards / points)")
    left.set_title("Shards and points by outcome")
    left.legend(fontsize=8)
    ordered = sorted(outcomes, key=lambda o: (o.shard_id, o.status))
    right.barh(
        [f"shard {o.shard_id}" for o in ordered],
        [o.duration_s for o in ordered],
        color=[colours.get(o.status, "#888888") for o in ordered],
    )
    right.invert_yaxis()
    for row, o in enumerate(ordered):
        if o.status == "failure" and len(ordered) <= 40:
            right.text(
                o.duration_s,
                row,
                f"  failed after {o.attempts} attempt(s)",
                va="center",
                color=colours["failure"],
                fontsize=9,
            )
    right.set_xlabel("shard duration (seconds, last attempt)")
    right.set_title("Duration per shard (green = succeeded, red = failed)")
    right.grid(True, axis="x", alpha=0.3)
    if len(ordered) > 40:
        right.set_yticks([])
        right.set_ylabel(f"{len(ordered)} shards")
    return figure


def timeseries_figure(
    rows: Sequence[tuple[int, float, float, float, float]], point_label: str
) -> Any:
    """Driver states and waiting riders minute by minute at one point."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 3.8), layout="constrained")
    ax = figure.subplots()
    minutes = [r[0] for r in rows]
    for column, name, colour in (
        (1, "drivers idle", "#4C72B0"),
        (2, "drivers en route", "#DD8452"),
        (3, "drivers on trip", "#55A868"),
        (4, "riders waiting", "#C44E52"),
    ):
        ax.plot(minutes, [r[column] for r in rows], label=name, color=colour, linewidth=1.3)
    ax.set_xlabel("simulated minute (minutes)")
    ax.set_ylabel("count (drivers / riders)")
    ax.set_title(f"Marketplace over time at the highest-revenue point ({point_label})")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, ncols=4, loc="upper center")
    return figure


def _chart(out: Path, name: str, figure: Any, alt: str, caption: str) -> Chart:
    png = _png(figure)
    (out / name).write_bytes(png)
    return Chart(base64.b64encode(png).decode(), name, alt, caption)


def draw_charts(run: RunData, out: Path) -> dict[str, list[Chart]]:
    """Write every chart PNG into ``out``; return them by report section."""
    missing = [m.params for m in run.missing if m.params is not None]
    metrics: list[Chart] = []
    for metric in KEY_METRICS:
        metric_stats = run.stats.get(metric, [])
        if not any(s.mean is not None for s in metric_stats):
            continue
        caption = (
            f"{_pretty(metric)} ({_unit_label(metric_unit(metric))}): mean over "
            f"{run.replications} replication(s) per point."
        )
        if run.replications > 1:
            caption += " Shaded: 95% confidence interval across replications"
            caption += ", clipped to [0, 1]." if metric_bounds(metric) else "."
        if missing:
            caption += (
                f" {len(missing)} point(s) have no data (see Missing points): the lines are"
                " broken there and a cross marks them."
            )
        figure = metric_figure(metric, metric_stats, run.dims, run.replications, missing)
        metrics.append(_chart(out, f"{metric}.png", figure, f"{_pretty(metric)} chart", caption))
    charts: dict[str, list[Chart]] = {"metrics": metrics, "outcomes": [], "timeseries": []}
    if run.outcomes:
        charts["outcomes"].append(
            _chart(
                out,
                "shard_outcomes.png",
                outcomes_figure(run.outcomes),
                "Shard outcomes chart",
                "Shard outcomes: succeeded and failed shards and points; duration of "
                "each shard's last attempt (seconds).",
            )
        )
    revenue_best = best_points(run.stats)[0][1]
    if run.series and revenue_best is not None:
        label = _setting(revenue_best.params, run.dims) or "the point"
        charts["timeseries"].append(
            _chart(
                out,
                "timeseries.png",
                timeseries_figure(run.series, label),
                "Snapshot time series chart",
                f"Point #{revenue_best.point_index}: counts at the end of each minute, "
                "mean over replications (warm-up included).",
            )
        )
    return charts


def compare_charts(comparison: Comparison, out: Path) -> list[Chart]:
    """One B − A chart per compared metric over the matched points' swept parameters."""
    dims = swept_parameters(comparison)
    a, b = comparison.a.run_id, comparison.b.run_id
    replications = max(comparison.a.replications, comparison.b.replications)
    kind = (
        "paired over replicates"
        if comparison.paired_points == comparison.matched
        else "Welch"
        if comparison.paired_points == 0
        else "paired or Welch by point, see above"
    )
    charts: list[Chart] = []
    for metric, differences in by_metric(comparison).items():
        stats = [
            PointStat(d.point_a, d.params, d.n_a, d.difference, d.low, d.high)
            for d in differences
            if d.difference is not None
        ]
        if not stats:
            continue
        summary = comparison.summaries[metric]
        caption = (
            f"{_pretty(metric)}, {b} − {a} ({_unit_label(metric_unit(metric))}) at "
            f"{len(stats)} matched point(s): {summary.moved} moved ({summary.up} up, "
            f"{summary.down} down), i.e. their 95% interval excludes 0 (dashed line)."
        )
        if summary.compared:
            caption += f" Shaded: the 95% interval of the difference ({kind})."
        if summary.without_interval:
            caption += (
                f" {summary.without_interval} point(s) have no interval (fewer than two "
                "replications with a value)."
            )
        figure = metric_figure(metric, stats, dims, replications, difference=(a, b))
        alt = f"{_pretty(metric)} difference chart"
        charts.append(_chart(out, f"compare_{metric}.png", figure, alt, caption))
    return charts


# --------------------------------------------------------------------------- context


def compare_context(comparison: Comparison, charts: Sequence[Chart]) -> dict[str, Any]:
    """Plain values of the comparison panel: sentences, tables and charts."""
    header, rows = metric_table(comparison)
    flagged = [d for d in comparison.differences if d.flagged]
    flagged_header, flagged_rows = difference_table(comparison, flagged[:FLAGGED_ROWS_SHOWN])
    return {
        "run_b": comparison.b.run_id,
        "overview": overview(comparison),
        "metrics": Table(header, rows, numeric=(1, 2, 3, 4, 5, 6)),
        "flagged": Table(flagged_header, flagged_rows, numeric=(3, 4, 5, 6, 7)),
        "flagged_count": len(flagged),
        "charts": list(charts),
    }


def _ci_text(metric: str, point: PointStat) -> str:
    bounds = metric_bounds(metric)
    low, high = _clip(point.low, bounds), _clip(point.high, bounds)
    return "–" if low is None or high is None else f"{_fmt(low)} – {_fmt(high)}"


def _summary_table(run: RunData) -> Table:
    all_stats = [s for metric_stats in run.stats.values() for s in metric_stats]
    point_count = len({s.point_index for s in all_stats})
    manifest = run.manifest
    expected = manifest.points if manifest else point_count + len(run.missing)
    succeeded = {o.shard_id for o in run.outcomes if o.status == "success"}
    failed = {o.shard_id for o in run.outcomes if o.status == "failure"} - succeeded
    shards = f"{len(succeeded)} succeeded, {len(failed)} failed"
    if manifest:
        pending = manifest.shard_count - len(succeeded) - len(failed)
        shards = f"{manifest.shard_count} planned: {shards}, {pending} pending"
    counts = {d: len({s.params[d] for s in all_stats}) for d in run.dims}
    if manifest:  # the grid's values, including those only failed shards hold
        counts = {d: len(manifest.request.dimensions[d]) for d in run.dims}
    rows = [
        ["run", run.run_id],
        ["run date", manifest.run_date.isoformat() if manifest else "–"],
        ["swept dimensions", ", ".join(f"{d} ({n} values)" for d, n in counts.items()) or "none"],
        ["grid points with results", f"{point_count} of {expected}"],
        ["replications per point", str(run.replications)],
        ["shards", shards],
    ]
    return Table(["item", "value"], rows)


def _best_table(run: RunData, max_wait: float, wait_metric: str) -> Table:
    rows = []
    for question, point in best_points(run.stats, max_wait, wait_metric):
        if point is None:
            rows.append([question.title, "no point qualifies", "–", "–"])
            continue
        rows.append(
            [
                question.title,
                f"#{point.point_index}: {_setting(point.params, run.dims) or 'the only point'}",
                f"{_fmt(point.mean)} {_unit_label(metric_unit(question.metric))}",
                _ci_text(question.metric, point),
            ]
        )
    header = ["question", "point (index: swept values)", "value (mean)", "95% CI"]
    return Table(header, rows, numeric=(2, 3))


def _fleet_table(run: RunData, max_wait: float, wait_metric: str) -> Table:
    keys = fleet_dimensions(run.dims)
    wait_name = _WAIT_NAMES[wait_metric]
    rows = []
    for answer in best_per_fleet(run, max_wait, wait_metric):
        group = [f"{answer.group[k]:g}" for k in keys]
        with_data = f"{answer.points} of {answer.points + answer.missing}"
        if answer.best is None:
            why = "no data" if answer.points == 0 else f"none qualifies ({wait_name} > bound)"
            rows.append([*group, why, "–", "–", "–", with_data])
            continue
        rows.append(
            [
                *group,
                f"{answer.best.params[COMMISSION_DIM]:g}",
                f"{_fmt(answer.best.mean)} {_unit_label(metric_unit('platform_revenue'))}",
                f"{_fmt(answer.wait)} min",
                f"#{answer.best.point_index}",
                with_data,
            ]
        )
    header = [
        *(axis_label(k) for k in keys),
        "best commission rate",
        "platform revenue (mean)",
        f"{wait_name} (mean)",
        "point",
        "points with data",
    ]
    return Table(header, rows, numeric=tuple(range(len(header))))


def _missing_table(run: RunData) -> Table:
    # Every swept dimension of the request, even one a failure left with one value in data.
    swept = run.manifest.request.dimensions if run.manifest else {}
    names = [*run.dims, *sorted(n for n, v in swept.items() if len(v) > 1 and n not in run.dims)]
    rows = [
        [
            f"#{m.point_index}",
            *(f"{m.params[d]:g}" if m.params else "–" for d in names),
            str(m.shard_id),
            m.reason,
        ]
        for m in run.missing[:MISSING_ROWS_SHOWN]
    ]
    return Table(["point", *names, "shard", "why"], rows, numeric=tuple(range(1, len(names) + 2)))


def build_context(
    run: RunData,
    charts: Mapping[str, Sequence[Chart]],
    max_wait: float = WAIT_BOUND_MIN,
    wait_metric: str = "mean",
    generated: dt.datetime | None = None,
    comparison: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Plain values for the template: strings, tables and charts (no markup).

    ``comparison`` is the panel from :func:`compare_context`, or None for no panel.
    """
    when = generated or dt.datetime.now(dt.UTC)
    errors = Table(
        ["shard", "attempts", "points", "error"],
        [
            [
                str(o.shard_id),
                str(o.attempts),
                f"{o.first_point_index}–{o.last_point_index}",
                f"{o.error_type}: {o.error_message}",
            ]
            for o in run.outcomes
            if o.status == "failure"
        ],
        numeric=(1,),
    )
    missing_shards: dict[int, str] = {m.shard_id: m.reason for m in run.missing}
    return {
        "run_id": run.run_id,
        "where": str(run.where),
        "generated": when.strftime("%Y-%m-%d %H:%M UTC"),
        "summary": _summary_table(run),
        "best": _best_table(run, max_wait, wait_metric),
        "wait_bound": f"{_WAIT_NAMES[wait_metric]} ≤ {max_wait:g} min",
        "fleet": _fleet_table(run, max_wait, wait_metric),
        "fleet_dims": [d.replace("_", " ") for d in fleet_dimensions(run.dims)[1:]],
        "missing": _missing_table(run),
        "missing_count": len(run.missing),
        "missing_shards": [f"shard {s}: {r}" for s, r in sorted(missing_shards.items())],
        "missing_params_known": run.manifest is not None,
        "charts": charts,
        "errors": errors,
        "comparison": comparison,
    }


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("sim_serverless_sweep", "analytics/templates"),
        autoescape=True,  # names end .html.j2, which select_autoescape's suffix test misses
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render(context: Mapping[str, Any]) -> str:
    """The report page for a context from :func:`build_context`."""
    return _environment().get_template("report.html.j2").render(context)


def build_report(
    results: Path,
    prefix: str,
    run_id: str,
    out: Path,
    *,
    max_wait: float = WAIT_BOUND_MIN,
    wait_metric: str = "mean",
    compare: str | None = None,
    compare_ignore: Sequence[str] = (),
) -> Path:
    """Write ``out/report.html`` and the chart PNGs for one run; return the HTML path.

    ``max_wait`` (minutes) bounds ``wait_metric`` (one of WAIT_METRICS) in the "best
    revenue within a wait bound" answers. Raises ValueError naming the option for a bad
    one, and naming the run and folder when the run has no manifest and no shard
    outcomes there; nothing is written then.

    ``compare`` names a second run: the report then has a comparison panel with this run
    as A and that one as B (``analytics.compare.compare_runs`` over the key metrics,
    points matched on every parameter except those in ``compare_ignore``), with one
    B − A chart per metric (``compare_METRIC.png``). A bad second run or parameter is a
    ValueError before anything is written.

    >>> build_report(Path("/nonexistent"), "sweeps", "no-such-run", Path("/tmp/r"))
    Traceback (most recent call last):
    ...
    ValueError: no run 'no-such-run' under /nonexistent/sweeps (no manifest, no shard outcomes)
    """
    check_options(max_wait, wait_metric)
    run = load_run(results, prefix, run_id)
    comparison = None
    if compare is not None:
        comparison = compare_runs(
            results, prefix, run_id, compare, metrics=tuple(KEY_METRICS), ignore=compare_ignore
        )
    out.mkdir(parents=True, exist_ok=True)
    charts = draw_charts(run, out)
    panel = (
        None if comparison is None else compare_context(comparison, compare_charts(comparison, out))
    )
    page = render(build_context(run, charts, max_wait, wait_metric, comparison=panel))
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
