"""Figures of the model: the Predict page's score bar and the Model page's charts.

Each takes results computed elsewhere (a ``Prediction``, DataFrames) and only draws."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from virality.features import BY_NAME
from virality.model.prediction import Prediction, Predictor
from virality.plotting import BLUE, GREY, LIGHT, RED, axis_ticks, axis_values


def heldout_figure(bins: pd.DataFrame, histogram: pd.DataFrame) -> go.Figure:
    """Predicted vs actual on held-out tracks: a 2-D histogram of counts, the mean actual
    and its 10–90 % band per decile of predicted score, and the diagonal."""
    fig = go.Figure()
    wide = histogram.pivot(index="actual", columns="predicted", values="count")
    fig.add_trace(go.Heatmap(x=wide.columns, y=wide.index, z=wide.to_numpy(), colorscale="Greys",
                             colorbar=dict(title="tracks"), hovertemplate="predicted %{x}<br>actual %{y}<br>%{z} tracks"))
    fig.add_trace(go.Scatter(x=bins["predicted"], y=bins["actual_p90"], mode="lines", line=dict(width=0),
                             showlegend=False, hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=bins["predicted"], y=bins["actual_p10"], mode="lines", line=dict(width=0),
                             fill="tonexty", fillcolor="rgba(31,111,235,0.2)", name="10–90 % of actual"))
    fig.add_trace(go.Scatter(x=bins["predicted"], y=bins["actual_mean"], mode="lines+markers",
                             line=dict(color=BLUE), name="mean actual per decile of prediction"))
    fig.add_trace(go.Scatter(x=[0, 100], y=[0, 100], mode="lines", line=dict(color=RED, dash="dot"),
                             name="perfect prediction"))
    fig.update_layout(height=420, margin=dict(l=10, r=10, t=10, b=10), legend=dict(orientation="h", y=-0.2),
                      xaxis=dict(title="predicted popularity", range=[0, 100]),
                      yaxis=dict(title="actual popularity", range=[0, 100]))
    return fig


def coverage_figure(table: pd.DataFrame, level: float = 0.8) -> go.Figure:
    """Held-out coverage per decile of predicted score (bars, ± std over seeds), with the
    target and ±3 points; when ``table`` has ``constant_coverage``, the constant interval as dots."""
    fig = go.Figure()
    fig.add_hrect(y0=level - 0.03, y1=level + 0.03, fillcolor=GREY, opacity=0.2, line_width=0)
    fig.add_hline(y=level, line=dict(color=RED, dash="dot"))
    fig.add_trace(go.Bar(x=table["decile"], y=table["coverage"], marker_color=BLUE,
                         error_y=dict(type="data", array=table["std"]), name="held-out coverage",
                         hovertemplate="decile %{x}: %{y:.1%}<extra></extra>"))
    if "constant_coverage" in table:
        fig.add_trace(go.Scatter(x=table["decile"], y=table["constant_coverage"], mode="markers",
                                 marker=dict(color=GREY, symbol="diamond", size=9),
                                 name="constant interval (10th–90th percentile of popularity)",
                                 hovertemplate="decile %{x}, constant interval: %{y:.1%}<extra></extra>"))
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=10, b=10), legend=dict(orientation="h", y=-0.3),
                      yaxis=dict(range=[0.5, 1], tickformat=".0%", title="share of tracks inside"),
                      xaxis=dict(title="decile of predicted score (1 = lowest)", dtick=1))
    return fig


def shape_figure(rows: pd.DataFrame, name: str) -> go.Figure:
    """One characteristic's learned shape (points against a typical track) over real values."""
    feature = BY_NAME[name]
    labels = [feature.format(v) for v in rows["value"]]
    fig = go.Figure()
    if feature.is_discrete:  # at their numbers, named by axis_ticks: "F♯" and "minor" fit a small panel
        fig.add_trace(go.Bar(x=rows["value"], y=rows["points"], marker_color=BLUE, text=labels, textposition="none",
                             hovertemplate="%{text}: %{y:+.1f} points<extra></extra>"))
        x_title = feature.unit
    else:
        x, x_title = axis_values(name, rows["value"])
        fig.add_trace(go.Scatter(x=x, y=rows["points"], mode="lines", line=dict(color=BLUE),
                                 text=labels, hovertemplate="%{text}: %{y:+.1f} points<extra></extra>"))
    fig.add_hline(y=0, line=dict(color=GREY, dash="dot"))
    fig.update_layout(height=240, margin=dict(l=10, r=10, t=30, b=10), title=dict(text=feature.label, x=0),
                      yaxis=dict(title="points"), xaxis=dict(title=dict(text=x_title, font=dict(size=11)),
                                                             **axis_ticks(name)),
                      showlegend=False)
    return fig


def surface_figure(surface: pd.DataFrame, pair: tuple[str, str]) -> go.Figure:
    """A pair's interaction term as a heat map (points added beyond the two shapes)."""
    a, b = (BY_NAME[n] for n in pair)
    wide = surface.pivot(index="y", columns="x", values="points")
    x, x_title = axis_values(pair[0], wide.columns.to_numpy())
    y, y_title = axis_values(pair[1], wide.index.to_numpy())
    hover = [[f"{a.label} {a.format(vx)}<br>{b.label} {b.format(vy)}" for vx in wide.columns] for vy in wide.index]
    limit = float(max(abs(surface["points"].min()), abs(surface["points"].max()), 0.1))
    fig = go.Figure(go.Heatmap(x=x, y=y, z=wide.to_numpy(), colorscale="RdBu", zmid=0, zmin=-limit, zmax=limit,
                               colorbar=dict(title="points"), text=hover,
                               hovertemplate="%{text}<br>%{z:+.1f} points<extra></extra>"))
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=30, b=10), title=dict(text=f"{a.label} × {b.label}", x=0),
                      xaxis=dict(title=x_title, **axis_ticks(pair[0])), yaxis=dict(title=y_title, **axis_ticks(pair[1])))
    return fig


def score_figure(prediction: Prediction, predictor: Predictor) -> go.Figure:
    """A 0–100 bar: where real TikTok tracks score (middle 50 % / 80 %), this song's
    interval as a band and its score as a marker.

    Built from one dict, not ``add_trace``/``update_layout`` calls: the same figure, checked
    once, at a fifth of the cost (it is redrawn on every Predict rerun; benchmarks/load.py)."""
    quantiles = predictor.info.scores.predicted_quantiles
    bands = [(10, 90, LIGHT, "80 % of real TikTok tracks"), (25, 75, GREY, "middle 50 % of real TikTok tracks")]
    data = [dict(type="bar", x=[quantiles[high] - quantiles[low]], base=[quantiles[low]], y=["real tracks"],
                 orientation="h", marker=dict(color=color), name=name, hoverinfo="name")
            for low, high, color, name in bands]
    data.append(dict(type="bar", x=[prediction.high - prediction.low], base=[prediction.low], y=["this song"],
                     orientation="h", marker=dict(color=BLUE), opacity=0.35,
                     name=f"{predictor.interval_level:.0%} interval {prediction.low:.0f}–{prediction.high:.0f}"))
    data.append(dict(type="scatter", x=[prediction.score], y=["this song"], mode="markers+text",
                     marker=dict(color=BLUE, size=16, symbol="diamond"), text=[f"{prediction.score:.1f}"],
                     textposition="top center", name="score"))
    layout = dict(barmode="overlay", height=300, margin=dict(l=10, r=10, t=10, b=10),
                  xaxis=dict(range=[0, 100], title=dict(text="popularity (0–100)")),
                  legend=dict(orientation="h", yanchor="top", y=-0.3, x=0), showlegend=True)
    return go.Figure(dict(data=data, layout=layout))


def reliability_figure(bins: pd.DataFrame) -> go.Figure:
    """TikTok fit's reliability curve (``fit_report.reliability_frame``, percent): the share of
    tracks that were TikTok tracks against the mean predicted fit per bin, dots sized by the
    bin's share of tracks, over the diagonal of perfect calibration."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 100], y=[0, 100], mode="lines", line=dict(color=RED, dash="dot"),
                             name="perfectly calibrated"))
    fig.add_trace(go.Scatter(
        x=bins["predicted"], y=bins["observed"], mode="lines+markers", line=dict(color=BLUE), name="TikTok fit",
        marker=dict(size=6 + 40 * bins["weight"] ** 0.5, color=BLUE), customdata=bins[["n"]].to_numpy(),
        hovertemplate="predicted %{x:.0f}%: %{y:.0f}% were TikTok tracks (%{customdata[0]:,} tracks)<extra></extra>"))
    fig.update_layout(height=360, margin=dict(l=10, r=10, t=10, b=10), legend=dict(orientation="h", y=-0.2),
                      xaxis=dict(title="predicted TikTok fit (%)", range=[0, 100]),
                      yaxis=dict(title="share that were TikTok tracks (%)", range=[0, 100]))
    return fig
