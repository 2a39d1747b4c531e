"""Plotly figures. Each takes computed results (dataclasses or DataFrames) and only draws."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from virality.features import BY_NAME
from virality.predict import Prediction, Predictor

BLUE, GREY, LIGHT = "#1f6feb", "#8b949e", "#d0d7de"
MS_PER_MINUTE = 60_000.0


def axis_unit(name: str) -> str:
    """The unit a characteristic is drawn in on a figure's axis: length in minutes (it is
    stored in ms), every other characteristic in its own unit."""
    feature = BY_NAME[name]
    return "minutes" if feature.kind == "duration" else feature.unit


def axis_values(name: str, values):
    """Values (array, Series or scalar, Spotify units) → (values in ``axis_unit``, the axis
    title "Label (unit)")."""
    feature = BY_NAME[name]
    scale = MS_PER_MINUTE if feature.kind == "duration" else 1.0
    return values / scale, f"{feature.label} ({axis_unit(name)})"


def score_figure(prediction: Prediction, predictor: Predictor) -> go.Figure:
    """A 0–100 bar: where real TikTok tracks score (middle 50 % / 80 %), this song's
    interval as a band and its score as a marker."""
    quantiles = np.asarray(predictor.metadata["scores"]["predicted_quantiles"])
    fig = go.Figure()
    bands = [(10, 90, LIGHT, "80 % of real TikTok tracks"), (25, 75, GREY, "middle 50 % of real TikTok tracks")]
    for low, high, color, name in bands:
        fig.add_trace(go.Bar(x=[quantiles[high] - quantiles[low]], base=[quantiles[low]], y=["real tracks"],
                             orientation="h", marker_color=color, name=name, hoverinfo="name"))
    fig.add_trace(go.Bar(x=[prediction.high - prediction.low], base=[prediction.low], y=["this song"],
                         orientation="h", marker_color=BLUE, opacity=0.35,
                         name=f"{predictor.interval_level:.0%} interval {prediction.low:.0f}–{prediction.high:.0f}"))
    fig.add_trace(go.Scatter(x=[prediction.score], y=["this song"], mode="markers+text",
                             marker=dict(color=BLUE, size=16, symbol="diamond"),
                             text=[f"{prediction.score:.1f}"], textposition="top center", name="score"))
    fig.update_layout(barmode="overlay", height=300, margin=dict(l=10, r=10, t=10, b=10),
                      xaxis=dict(range=[0, 100], title="popularity (0–100)"),
                      legend=dict(orientation="h", yanchor="top", y=-0.3, x=0), showlegend=True)
    return fig
