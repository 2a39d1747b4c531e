"""Plotly figures for the Explain page. Each takes computed results and only draws."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from virality.explain.explanation import Explanation
from virality.features import BY_NAME, FEATURES
from virality.plotting import (
    BAND,
    BLUE,
    GREEN,
    LIGHT,
    RED,
    TARGET_AXES,
    TARGET_UNITS,
    axis_ticks,
    axis_unit,
    axis_values,
    signed,
)

UP, DOWN = GREEN, RED

def baseline_name(label: str) -> str:
    """``"typical"`` → ``"typical track"``; a demo title or scored song as it is."""
    return "typical track" if label == "typical" else label


def bar_label(row) -> str:
    """``"Tempo 128 BPM"``: the characteristic and this song's value, short enough for a phone;
    the bar's text gives the points, its hover the baseline's value (``bar_hover``)."""
    return f"{row.label} {row.value_text}"


def bar_hover(row, baseline_label: str, units: str = "points") -> str:
    """``"Tempo 128 BPM vs typical track 122 BPM: +2.1 points"`` (``units``: the target's)."""
    return (f"{row.label} {row.value_text} vs {baseline_name(baseline_label)} {row.baseline_text}: "
            f"{signed(row.attribution)} {units}")


def waterfall_figure(explanation: Explanation) -> go.Figure:
    """From the baseline's score (top) to this song's (bottom), one bar per characteristic,
    largest |attribution| first, in the explained target's units (points of popularity, or
    percentage points of TikTok fit)."""
    table = explanation.table.reindex(explanation.table["attribution"].abs().sort_values(ascending=False).index)
    labels = [bar_label(row) for row in table.itertuples()]
    total = explanation.baseline_score + table["attribution"].sum()
    start, end = baseline_name(explanation.baseline_label), "this song"
    fig = go.Figure(go.Waterfall(
        orientation="h", measure=["absolute", *["relative"] * len(table), "total"],
        y=[start, *labels, end], x=[explanation.baseline_score, *table["attribution"], total],
        text=[f"{explanation.baseline_score:.1f}", *[signed(a) for a in table["attribution"]], f"{total:.1f}"],
        hovertext=[f"{start}: {explanation.baseline_score:.1f}",
                   *[bar_hover(row, explanation.baseline_label, TARGET_UNITS[explanation.target])
                     for row in table.itertuples()], f"{end}: {total:.1f}"],
        hoverinfo="text", textposition="outside", increasing=dict(marker_color=UP),
        decreasing=dict(marker_color=DOWN), totals=dict(marker_color=BLUE), connector=dict(line=dict(color=LIGHT))))
    path = explanation.baseline_score + np.concatenate([[0.0], np.cumsum(table["attribution"])])
    margin = max(2.0, 0.15 * float(path.max() - path.min()))
    low, high = float(path.min()) - margin, float(path.max()) + margin
    fig.update_layout(height=520, margin=dict(l=10, r=30, t=10, b=10), showlegend=False,
                      xaxis=dict(title=TARGET_AXES[explanation.target], range=[max(low, 0), min(high, 100)]),
                      yaxis=dict(autorange="reversed", automargin=True))
    return fig


def sensitivity_figure(curves: pd.DataFrame, interval_level: float = 0.8, target: str = "popularity") -> go.Figure:
    """A small panel per characteristic: the score (or TikTok fit) as it sweeps its range, the
    interval as a band where there is one, the song's own value as a dot."""
    fig = make_subplots(rows=4, cols=3, subplot_titles=[f.label for f in FEATURES], shared_yaxes=True,
                        horizontal_spacing=0.04, vertical_spacing=0.09)  # three across: still legible on a phone
    for index, feature in enumerate(FEATURES):
        part = curves[curves["feature"] == feature.name]
        row, col = index // 3 + 1, index % 3 + 1
        x, _ = axis_values(feature.name, part["value"])
        shape = "hv" if feature.is_discrete else "linear"
        if part["low"].notna().any():
            fig.add_trace(go.Scatter(x=x, y=part["high"], mode="lines", line=dict(width=0, shape=shape),
                                     showlegend=False, hoverinfo="skip"), row=row, col=col)
            fig.add_trace(go.Scatter(x=x, y=part["low"], mode="lines", fill="tonexty", fillcolor=BAND,
                                     line=dict(width=0, shape=shape), name=f"{interval_level:.0%} interval",
                                     showlegend=index == 0, hoverinfo="skip"), row=row, col=col)
        fig.add_trace(go.Scatter(x=x, y=part["score"], mode="lines", line=dict(color=BLUE, shape=shape),
                                 name="score" if target == "popularity" else "TikTok fit", showlegend=index == 0,
                                 text=[feature.format(v) for v in part["value"]],
                                 hovertemplate="%{text}: %{y:.1f}<extra></extra>"), row=row, col=col)
        current = part[part["current"]].head(1)
        fig.add_trace(go.Scatter(x=x[current.index], y=current["score"], mode="markers",
                                 marker=dict(color="black", size=9), name="this song", showlegend=index == 0,
                                 hovertemplate="this song: %{y:.1f}<extra></extra>"), row=row, col=col)
        fig.update_xaxes(title_text=axis_unit(feature.name), title_font_size=10, row=row, col=col,
                         **axis_ticks(feature.name, narrow=True))
    fig.update_yaxes(range=[0, 100])
    fig.update_yaxes(title_text=TARGET_AXES[target], title_font_size=10, col=1)
    fig.update_annotations(font_size=12)  # the panel titles
    fig.update_layout(height=900, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.06))
    return fig


def global_figure(importance: pd.DataFrame, target: str = "popularity") -> go.Figure:
    """Grouped horizontal bars: mean |attribution| per characteristic for each column
    other than ``feature``/``label``."""
    ordered = importance.iloc[::-1]
    fig = go.Figure()
    for column in [c for c in importance.columns if c not in ("feature", "label")]:
        fig.add_trace(go.Bar(y=ordered["label"], x=ordered[column], orientation="h", name=column,
                             hovertemplate="%{y}: %{x:.2f} " + TARGET_UNITS[target] + "<extra>" + column + "</extra>"))
    fig.update_layout(barmode="group", height=460, margin=dict(l=10, r=10, t=10, b=10),
                      xaxis_title=f"mean |attribution| ({TARGET_UNITS[target]})", legend=dict(orientation="h", y=-0.15))
    return fig


def interaction_heatmap(matrix: pd.DataFrame, title: str, diverging: bool = True,
                        floor: float = 0.5, target: str = "popularity") -> go.Figure:
    """A (12, 12) symmetric interaction matrix in ``target``'s points; the colour scale spans at
    least ±``floor`` points so negligible interactions stay pale."""
    labels = [BY_NAME[n].label for n in matrix.index]
    values = matrix.to_numpy()
    limit = max(float(np.abs(values).max()), floor)
    scale = dict(colorscale="RdBu", zmid=0, zmin=-limit, zmax=limit) if diverging else \
        dict(colorscale="Blues", zmin=0, zmax=limit)
    unit = "points" if target == "popularity" else "fit points"
    fig = go.Figure(go.Heatmap(z=values, x=labels, y=labels, colorbar=dict(title=unit),
                               hovertemplate="%{y} × %{x}: %{z:+.2f} " + unit + "<extra></extra>", **scale))
    fig.update_layout(title=title, height=480, margin=dict(l=10, r=10, t=40, b=10), yaxis_autorange="reversed")
    return fig


def pair_figure(grid: pd.DataFrame, first: str, second: str, song: Mapping[str, float],
                target: str = "popularity") -> go.Figure:
    """The score (or TikTok fit) over two characteristics (a heatmap) with the current song marked."""
    a, x_title = axis_values(first, np.unique(grid["first"]))
    b, y_title = axis_values(second, np.unique(grid["second"]))
    wide = grid.pivot(index="second", columns="first", values="score")
    fa, fb = BY_NAME[first], BY_NAME[second]
    hover = [[f"{fa.label} {fa.format(va)}, {fb.label} {fb.format(vb)}" for va in wide.columns] for vb in wide.index]
    fig = go.Figure(go.Heatmap(x=a, y=b, z=wide.to_numpy(), colorscale="Viridis",
                               colorbar=dict(title="score" if target == "popularity" else "fit %"),
                               text=hover, hovertemplate="%{text}: %{z:.1f}<extra></extra>"))
    fig.add_trace(go.Scatter(x=[axis_values(first, song[first])[0]], y=[axis_values(second, song[second])[0]],
                             mode="markers", marker=dict(color="white", size=14, symbol="x", line=dict(color="black", width=2)),
                             name="this song"))
    fig.update_layout(height=460, margin=dict(l=10, r=10, t=10, b=10), showlegend=False,
                      xaxis=dict(title=x_title, **axis_ticks(first)), yaxis=dict(title=y_title, **axis_ticks(second)))
    return fig
