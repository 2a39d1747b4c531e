"""Figures for the Model page. Each takes a DataFrame computed elsewhere and only draws."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from virality.features import BY_NAME

BLUE, GREY, RED = "#1f6feb", "#8b949e", "#cf222e"


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
    """Held-out coverage per decile of predicted score, with the target and ±3 points."""
    fig = go.Figure()
    fig.add_hrect(y0=level - 0.03, y1=level + 0.03, fillcolor=GREY, opacity=0.2, line_width=0)
    fig.add_hline(y=level, line=dict(color=RED, dash="dot"))
    fig.add_trace(go.Bar(x=table["decile"], y=table["coverage"], marker_color=BLUE,
                         error_y=dict(type="data", array=table["std"]), name="held-out coverage"))
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=10, b=10), yaxis=dict(range=[0.5, 1], tickformat=".0%",
                      title="share of tracks inside"), xaxis=dict(title="decile of predicted score (1 = lowest)",
                                                                 dtick=1))
    return fig


def shape_figure(rows: pd.DataFrame, name: str) -> go.Figure:
    """One characteristic's learned shape (points against a typical track) over real values."""
    feature = BY_NAME[name]
    labels = [feature.format(v) for v in rows["value"]]
    fig = go.Figure()
    if feature.is_discrete:
        fig.add_trace(go.Bar(x=labels, y=rows["points"], marker_color=BLUE))
    else:
        fig.add_trace(go.Scatter(x=rows["value"], y=rows["points"], mode="lines", line=dict(color=BLUE),
                                 text=labels, hovertemplate="%{text}: %{y:+.1f} points"))
    fig.add_hline(y=0, line=dict(color=GREY, dash="dot"))
    fig.update_layout(height=220, margin=dict(l=10, r=10, t=30, b=10), title=dict(text=feature.label, x=0),
                      yaxis=dict(title="points"), showlegend=False)
    return fig


def surface_figure(surface: pd.DataFrame, pair: tuple[str, str]) -> go.Figure:
    """A pair's interaction term as a heat map (points added beyond the two shapes)."""
    a, b = (BY_NAME[n] for n in pair)
    wide = surface.pivot(index="y", columns="x", values="points")
    limit = float(max(abs(surface["points"].min()), abs(surface["points"].max()), 0.1))
    fig = go.Figure(go.Heatmap(x=wide.columns, y=wide.index, z=wide.to_numpy(), colorscale="RdBu", zmid=0,
                               zmin=-limit, zmax=limit, colorbar=dict(title="points"),
                               hovertemplate=f"{a.label} %{{x}}<br>{b.label} %{{y}}<br>%{{z:+.1f}} points"))
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=30, b=10), title=dict(text=f"{a.label} × {b.label}", x=0),
                      xaxis=dict(title=a.label), yaxis=dict(title=b.label))
    return fig
