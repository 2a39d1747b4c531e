"""Plotly figures for Batch: the ranked scores with intervals, and two tracks compared.

Each function only draws results computed by ``virality.batch.ranking``. Track names come from
the user's file: plotly reads tags such as ``<a href>`` in text, so they are HTML-escaped (plotly
shows the entities as the characters they stand for).
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from virality.model.prediction import Predictor
from virality.plotting import BLUE, GREY, LIGHT, ORANGE


def ranked_figure(table: pd.DataFrame, labels: pd.Series, predictor: Predictor, limit: int = 40,
                  by: str = "predicted_popularity") -> go.Figure:
    """The ``limit`` highest-ranked scored tracks, best at the top: each score as a dot with
    its interval as a bar, over a band where the middle 80 % of real TikTok tracks score.
    ``by="tiktok_fit"`` (a table ranked by fit) draws each track's TikTok fit (0–100 %, no
    interval) over the band of the TikTok tracks' fit. ``table`` is ``BatchResult.table``
    (sorted by rank)."""
    scored = table[table["predicted_popularity"].notna()].head(limit)
    names = [html.escape(f"{rank}. {labels[i]}") for i, rank in zip(scored.index, scored["rank"])]
    fit = by == "tiktok_fit"
    quantiles = predictor.info.fit.tiktok_quantiles if fit else predictor.info.scores.predicted_quantiles
    fig = go.Figure()
    fig.add_vrect(x0=quantiles[10], x1=quantiles[90], fillcolor=LIGHT, opacity=0.45, line_width=0)
    fig.add_annotation(x=(quantiles[10] + quantiles[90]) / 2, y=1.0, yref="paper", yanchor="bottom", showarrow=False,
                       text=f"80 % of real TikTok tracks {'fit' if fit else 'score'} here", font=dict(color=GREY))
    if fit:
        fig.add_trace(go.Scatter(
            x=scored["tiktok_fit"], y=names, mode="markers", marker=dict(color=BLUE, size=9), name="TikTok fit",
            customdata=scored[["predicted_popularity"]].to_numpy(),
            hovertemplate="%{y}<br>TikTok fit %{x:.0f}%<br>popularity score %{customdata[0]:.1f}<extra></extra>"))
    else:
        fig.add_trace(go.Scatter(
            x=scored["predicted_popularity"], y=names, mode="markers", marker=dict(color=BLUE, size=9),
            error_x=dict(type="data", symmetric=False, array=scored["high"] - scored["predicted_popularity"],
                         arrayminus=scored["predicted_popularity"] - scored["low"], color=BLUE, thickness=1.5),
            customdata=np.stack([scored["low"], scored["high"], scored["percentile"]], axis=1),
            hovertemplate="%{y}<br>score %{x:.1f}<br>interval %{customdata[0]:.0f}–%{customdata[1]:.0f}"
                          "<br>percentile %{customdata[2]:.0f}<extra></extra>",
            name=f"score with {predictor.interval_level:.0%} interval"))
    fig.update_layout(height=max(260, 26 * len(scored) + 110), margin=dict(l=10, r=10, t=40, b=40),
                      xaxis=dict(range=[0, 100], title="TikTok fit (0–100 %)" if fit else "predicted popularity (0–100)"),
                      yaxis=dict(autorange="reversed", automargin=True), showlegend=False)
    return fig


def compare_figure(characteristics: pd.DataFrame) -> go.Figure:
    """Attribution bars (points) of two tracks per characteristic, side by side.
    ``characteristics`` is the second frame ``virality.batch.compare_tracks`` returns."""
    effects = [c for c in characteristics.columns if c.endswith(": effect (points)")]
    fig = go.Figure()
    for column, color in zip(effects, (BLUE, ORANGE)):
        fig.add_trace(go.Bar(y=characteristics["characteristic"], x=characteristics[column], orientation="h",
                             name=html.escape(column.removesuffix(": effect (points)")), marker_color=color,
                             hovertemplate="%{y}: %{x:+.2f} points<extra>%{fullData.name}</extra>"))
    fig.add_vline(x=0, line_color=GREY)
    fig.update_layout(barmode="group", height=460, margin=dict(l=10, r=10, t=10, b=40),
                      xaxis=dict(title="effect on the score vs a typical track (points)"),
                      yaxis=dict(autorange="reversed"), legend=dict(orientation="h", y=-0.15))
    return fig
