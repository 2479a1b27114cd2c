"""`sweep report RUN_ID`: a self-contained HTML report with matplotlib charts.

Reads the results folder through ``analytics.views.connect`` (never runs the
simulation) and writes ``out/report.html`` (images embedded as data URIs, so the file
stands alone) plus the same charts as PNG files beside it.

Charts per key metric, over the swept dimensions: x = commission_rate when swept (else
the dimension with most values), colour = the next dimension, one panel per value of a
third (small multiples); further dimensions are averaged. With replications > 1 a
shaded band shows the 95% confidence interval across replications (from point_summary).
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim_serverless_sweep.analytics.views import connect
from sim_serverless_sweep.core.keys import KeyLayoutError, check_prefix, manifest_key
from sim_serverless_sweep.core.messages import RunManifest
from sim_serverless_sweep.sim import METRICS_SCHEMA, PARAMETERS

# Metrics charted, in order, with a readable name. Units come from the writer schema.
KEY_METRICS: dict[str, str] = {
    "platform_revenue": "Platform revenue",
    "wait_p95_min": "95th-percentile rider wait",
    "completion_rate": "Completion rate",
    "utilisation": "Driver utilisation",
    "driver_net_hourly_earnings": "Driver net hourly earnings",
    "mean_online_drivers": "Drivers online",
}
WAIT_BOUND_MIN = 10.0  # the wait bound of the "best revenue within a wait bound" question


@dataclass(frozen=True, slots=True)
class Question:
    """One 'best point' question answered in the report's table."""

    title: str
    metric: str
    maximise: bool
    max_wait_p95_min: float | None = None


QUESTIONS: tuple[Question, ...] = (
    Question("Highest platform revenue", "platform_revenue", True),
    Question(
        f"Highest platform revenue with p95 wait ≤ {WAIT_BOUND_MIN:g} min",
        "platform_revenue",
        True,
        WAIT_BOUND_MIN,
    ),
    Question("Shortest 95th-percentile wait", "wait_p95_min", False),
    Question("Highest completion rate", "completion_rate", True),
    Question("Highest driver net hourly earnings", "driver_net_hourly_earnings", True),
    Question("Highest driver utilisation", "utilisation", True),
)


@dataclass(frozen=True, slots=True)
class PointStat:
    """Mean and 95% CI of one metric at one point."""

    point_index: int
    params: dict[str, float]
    n: int
    mean: float | None
    low: float | None
    high: float | None


def metric_unit(metric: str) -> str:
    """Unit of a metric column from the writer schema's field metadata.

    >>> metric_unit("wait_p95_min")
    'minutes'
    """
    meta: dict[bytes, bytes] = METRICS_SCHEMA.field(metric).metadata or {}
    return meta.get(b"unit", b"-").decode()


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


# --------------------------------------------------------------------------- data


def _load_manifest(results: Path, prefix: str, run_id: str) -> RunManifest | None:
    try:
        path = results / manifest_key(prefix, run_id)
    except KeyLayoutError as exc:
        raise ValueError(f"run_id {run_id!r}: {exc}") from None
    if not path.is_file():
        return None
    return RunManifest.from_bytes(path.read_bytes())


def _swept_dimensions(manifest: RunManifest | None, stats: Sequence[PointStat]) -> list[str]:
    if manifest is not None:
        names = [n for n, v in manifest.request.dimensions.items() if len(v) > 1]
    else:
        names = [n for n in PARAMETERS if len({s.params[n] for s in stats}) > 1]
    counts = {n: len({s.params[n] for s in stats}) for n in names}
    names = [n for n in names if counts[n] > 1]  # a dimension with one value left in data
    return sorted(names, key=lambda n: (n != "commission_rate", -counts[n], n))


def _point_stats(con: Any, run_id: str) -> dict[str, list[PointStat]]:
    params = ", ".join(PARAMETERS)
    metrics = ", ".join(f"'{m}'" for m in KEY_METRICS)
    rows = con.execute(
        f"SELECT metric, point_index, {params}, n, mean, ci95_low, ci95_high "
        f"FROM point_summary WHERE run_id = ? AND metric IN ({metrics}) "
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


def best_points(stats: dict[str, list[PointStat]]) -> list[tuple[Question, PointStat | None]]:
    """Answer each of QUESTIONS: the best point (ties: lowest point_index) or None."""
    waits = {s.point_index: s.mean for s in stats.get("wait_p95_min", [])}
    answers: list[tuple[Question, PointStat | None]] = []
    for question in QUESTIONS:
        candidates = [s for s in stats.get(question.metric, []) if s.mean is not None]
        if question.max_wait_p95_min is not None:
            bound = question.max_wait_p95_min
            candidates = [
                s for s in candidates if (w := waits.get(s.point_index)) is not None and w <= bound
            ]
        sign = -1.0 if question.maximise else 1.0
        best = min(candidates, key=lambda s: (sign * (s.mean or 0.0), s.point_index), default=None)
        answers.append((question, best))
    return answers


# --------------------------------------------------------------------------- charts


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


Band = tuple[float, float | None, float | None, int]


def _group(stats: Sequence[PointStat], keys: Sequence[str]) -> dict[tuple[float, ...], Band]:
    """Mean over points sharing ``keys``; CI half-width combined as sqrt(sum hw^2)/k."""
    buckets: dict[tuple[float, ...], list[PointStat]] = defaultdict(list)
    for s in stats:
        if s.mean is not None:
            buckets[tuple(s.params[k] for k in keys)].append(s)
    grouped: dict[tuple[float, ...], Band] = {}
    for key, members in buckets.items():
        k = len(members)
        mean = sum(m.mean or 0.0 for m in members) / k
        halves = [(m.high - m.low) / 2 for m in members if m.high is not None and m.low is not None]
        if len(halves) == k:
            half = math.sqrt(sum(h * h for h in halves)) / k
            grouped[key] = (mean, mean - half, mean + half, k)
        else:
            grouped[key] = (mean, None, None, k)
    return grouped


def metric_figure(
    metric: str, stats: Sequence[PointStat], dims: Sequence[str], replications: int
) -> Any:
    """Figure of one metric over up to three swept dimensions (others averaged)."""
    from matplotlib.figure import Figure

    x_dim = dims[0] if dims else None
    colour_dim = dims[1] if len(dims) > 1 else None
    facet_dim = dims[2] if len(dims) > 2 else None
    averaged = list(dims[3:])
    keys = [d for d in (facet_dim, colour_dim, x_dim) if d is not None]
    grouped = _group(stats, keys)
    facets = sorted({k[0] for k in grouped}) if facet_dim else [None]
    ncols = min(len(facets), 3)
    nrows = math.ceil(len(facets) / ncols)
    figure = Figure(
        figsize=(4.6 * ncols if ncols > 1 else 7.0, 3.8 * nrows + 0.6), layout="constrained"
    )
    axes = figure.subplots(nrows, ncols, sharey=True, squeeze=False).ravel()
    title = f"{_pretty(metric)}"
    if x_dim is None:
        mean, low, high, _ = next(iter(grouped.values()))
        ax = axes[0]
        yerr = [[mean - low], [high - mean]] if low is not None and high is not None else None
        ax.bar([0], [mean], yerr=yerr, capsize=6, color="#4C72B0", width=0.5)
        ax.set_xticks([0], ["single point"])
        ax.set_ylabel(axis_label(metric))
        ax.set_title(f"{title} (one grid point)")
        return figure
    colour_values = sorted({k[-2] for k in grouped}) if colour_dim else [None]
    from matplotlib import colormaps

    palette = colormaps["viridis"]
    for ax, facet in zip(axes, facets, strict=False):
        for ci, colour in enumerate(colour_values):
            points = sorted(
                (k[-1], v)
                for k, v in grouped.items()
                if (facet is None or k[0] == facet) and (colour is None or k[-2] == colour)
            )
            if not points:
                continue
            xs = [p[0] for p in points]
            means = [p[1][0] for p in points]
            shade = palette(ci / max(len(colour_values) - 1, 1) * 0.85)
            label = f"{colour:g}" if colour is not None else None
            ax.plot(xs, means, "o-", color=shade, label=label, linewidth=1.8, markersize=5)
            if all(p[1][1] is not None for p in points):
                ax.fill_between(
                    xs,
                    [p[1][1] for p in points],
                    [p[1][2] for p in points],
                    color=shade,
                    alpha=0.2,
                    linewidth=0,
                )
        ax.set_xlabel(axis_label(x_dim))
        ax.grid(True, alpha=0.3)
        if facet is not None and facet_dim is not None:
            ax.set_title(f"{facet_dim.replace('_', ' ')} = {facet:g}", fontsize=10)
    for ax in axes[len(facets) :]:
        ax.set_visible(False)
    for row in range(nrows):
        axes[row * ncols].set_ylabel(axis_label(metric))
    if colour_dim is not None:
        axes[0].legend(title=axis_label(colour_dim), fontsize=8, title_fontsize=8)
    title += f" vs {x_dim.replace('_', ' ')}"
    if colour_dim:
        title += f" by {colour_dim.replace('_', ' ')}"
    if averaged:
        title += f"\n(mean over {', '.join(a.replace('_', ' ') for a in averaged)})"
    if replications > 1:
        title += f"\nbands: 95% CI across {replications} replications"
    figure.suptitle(title, fontsize=12)
    return figure


def outcomes_figure(outcomes: Sequence[tuple[int, str, float, int, int]]) -> Any:
    """Shard outcome panel: counts by status and the duration of each shard."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 3.6), layout="constrained")
    left, right = figure.subplots(1, 2, width_ratios=[1, 2.4])
    colours = {"success": "#55A868", "failure": "#C44E52"}
    statuses = ["success", "failure"]
    shard_counts = [sum(1 for o in outcomes if o[1] == s) for s in statuses]
    point_counts = [sum(o[3] for o in outcomes if o[1] == s) for s in statuses]
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
    ordered = sorted(outcomes)
    right.barh(
        [f"shard {o[0]}" for o in ordered],
        [o[2] for o in ordered],
        color=[colours.get(o[1], "#888888") for o in ordered],
    )
    right.invert_yaxis()
    for row, o in enumerate(ordered):
        if o[1] == "failure" and len(ordered) <= 40:
            right.text(
                o[2],
                row,
                f"  failed after {o[4]} attempt(s)",
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


# --------------------------------------------------------------------------- html

_CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, Roboto, sans-serif; margin: 2rem auto;
       max-width: 1100px; color: #222; padding: 0 1rem; }
h1 { margin-bottom: 0.2rem; } .sub { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 0.8rem 0 1.5rem; font-size: 0.92rem; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: left; }
th { background: #f2f2f2; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1rem 0 2rem; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9rem; }
"""


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], numeric_from: int = 1) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{html.escape(c)}</td>'
            if i >= numeric_from
            else f"<td>{html.escape(c)}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _image(png: bytes, name: str, alt: str, caption: str) -> str:
    data = base64.b64encode(png).decode()
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(alt)}" '
        f'data-file="{html.escape(name)}"><figcaption>{html.escape(caption)}'
        "</figcaption></figure>"
    )


def build_report(results: Path, prefix: str, run_id: str, out: Path) -> Path:
    """Write ``out/report.html`` and the chart PNGs for one run; return the HTML path.

    Raises ValueError naming the run and folder when the run has no manifest and no
    shard outcomes there.

    >>> build_report(Path("/nonexistent"), "sweeps", "no-such-run", Path("/tmp/r"))
    Traceback (most recent call last):
    ...
    ValueError: no run 'no-such-run' under /nonexistent/sweeps (no manifest, no shard outcomes)
    """
    try:
        prefix = check_prefix(prefix)
    except KeyLayoutError as exc:
        raise ValueError(str(exc)) from None
    manifest = _load_manifest(results, prefix, run_id)
    con = connect(results, prefix)
    outcomes = [
        (int(r[0]), str(r[1]), float(r[2]), int(r[3]), int(r[4]))
        for r in con.execute(
            "SELECT shard_id, status, duration_s, points, attempts FROM shard_outcomes "
            "WHERE run_id = ? ORDER BY shard_id",
            [run_id],
        ).fetchall()
    ]
    where = results / prefix if prefix else results
    if manifest is None and not outcomes:
        raise ValueError(f"no run {run_id!r} under {where} (no manifest, no shard outcomes)")
    stats = _point_stats(con, run_id)
    all_stats = [s for metric_stats in stats.values() for s in metric_stats]
    dims = _swept_dimensions(manifest, all_stats)
    replications = (
        manifest.request.replications if manifest else max((s.n for s in all_stats), default=1)
    )
    out.mkdir(parents=True, exist_ok=True)

    sections: list[str] = []
    figures_html: list[str] = []
    for metric in KEY_METRICS:
        metric_stats = stats.get(metric, [])
        if not any(s.mean is not None for s in metric_stats):
            continue
        png = _png(metric_figure(metric, metric_stats, dims, replications))
        name = f"{metric}.png"
        (out / name).write_bytes(png)
        caption = (
            f"{_pretty(metric)} ({_unit_label(metric_unit(metric))}): mean over "
            f"{replications} replication(s) per point."
        )
        if replications > 1:
            caption += " Shaded: 95% confidence interval across replications."
        figures_html.append(_image(png, name, f"{_pretty(metric)} chart", caption))

    point_count = len({s.point_index for s in all_stats})
    expected = manifest.points if manifest else point_count
    failed = [o for o in outcomes if o[1] == "failure"]
    summary_rows = [
        ["run", run_id],
        ["run date", manifest.run_date.isoformat() if manifest else "–"],
        [
            "swept dimensions",
            ", ".join(f"{d} ({len({s.params[d] for s in all_stats})} values)" for d in dims)
            or "none",
        ],
        ["grid points with results", f"{point_count} of {expected}"],
        ["replications per point", str(replications)],
        [
            "shards",
            f"{len(outcomes)} recorded, {len(failed)} failed"
            + (f" of {manifest.shard_count}" if manifest else ""),
        ],
    ]
    sections.append("<h2>Run</h2>" + _table(["item", "value"], summary_rows, numeric_from=2))

    best_rows = []
    for question, point in best_points(stats):
        if point is None:
            best_rows.append([question.title, "no point qualifies", "–", "–"])
            continue
        setting = ", ".join(f"{d} = {point.params[d]:g}" for d in dims) or "the only point"
        ci = (
            "–"
            if point.low is None or point.high is None
            else f"{_fmt(point.low)} – {_fmt(point.high)}"
        )
        best_rows.append(
            [
                question.title,
                f"#{point.point_index}: {setting}",
                f"{_fmt(point.mean)} {_unit_label(metric_unit(question.metric))}",
                ci,
            ]
        )
    sections.append(
        "<h2>Best points</h2>"
        + _table(
            ["question", "point (index: swept values)", "value (mean)", "95% CI"],
            best_rows,
            numeric_from=2,
        )
    )
    sections.append("<h2>Metrics over the swept dimensions</h2>" + "".join(figures_html))

    if outcomes:
        png = _png(outcomes_figure([(o[0], o[1], o[2], o[3], o[4]) for o in outcomes]))
        (out / "shard_outcomes.png").write_bytes(png)
        block = _image(
            png,
            "shard_outcomes.png",
            "Shard outcomes chart",
            "Shard outcomes: succeeded and failed shards and points; duration of "
            "each shard's last attempt (seconds).",
        )
        errors = con.execute(
            "SELECT shard_id, attempts, first_point_index, last_point_index, error_type, "
            "error_message FROM shard_outcomes WHERE run_id = ? AND status = 'failure' "
            "ORDER BY shard_id",
            [run_id],
        ).fetchall()
        if errors:
            block += _table(
                ["shard", "attempts", "points", "error"],
                [[str(e[0]), str(e[1]), f"{e[2]}–{e[3]}", f"{e[4]}: {e[5]}"] for e in errors],
                numeric_from=1,
            )
        sections.append("<h2>Shard outcomes</h2>" + block)

    revenue_best = dict((q.title, p) for q, p in best_points(stats)).get(QUESTIONS[0].title)
    if revenue_best is not None:
        series = con.execute(
            "SELECT minute, avg(CAST(drivers_idle AS DOUBLE)), "
            "avg(CAST(drivers_en_route AS DOUBLE)), avg(CAST(drivers_on_trip AS DOUBLE)), "
            "avg(CAST(riders_waiting AS DOUBLE)) FROM snapshot_counts "
            "WHERE run_id = ? AND point_index = ? GROUP BY minute ORDER BY minute",
            [run_id, revenue_best.point_index],
        ).fetchall()
        if series:
            label = ", ".join(f"{d} = {revenue_best.params[d]:g}" for d in dims) or "the point"
            png = _png(timeseries_figure(series, label))
            (out / "timeseries.png").write_bytes(png)
            sections.append(
                "<h2>Marketplace over time</h2>"
                + _image(
                    png,
                    "timeseries.png",
                    "Snapshot time series chart",
                    f"Point #{revenue_best.point_index}: counts at the end of each minute, "
                    "mean over replications (warm-up included).",
                )
            )

    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Sweep report – {html.escape(run_id)}</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{_CSS}</style></head><body>"
        f"<h1>Sweep report: {html.escape(run_id)}</h1>"
        f'<p class="sub">Results in {html.escape(str(where))}; generated {generated}.</p>'
        + "".join(sections)
        + "</body></html>"
    )
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
