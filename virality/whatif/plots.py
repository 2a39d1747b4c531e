"""What-if figures and display tables: they only draw or lay out a computed ``WhatIfResult``."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from virality.features import FEATURES
from virality.plotting import BLUE, GREEN, GREY, ORANGE
from virality.whatif.search import WhatIfResult


def before_after_figure(result: WhatIfResult, interval_level: float = 0.8) -> go.Figure:
    """Horizontal dots with interval whiskers: the original song and each suggestion, with the
    target as a dashed line (from ``result.comparison()``). TikTok fit (``target_kind`` "fit")
    has no interval: dots only, on a 0–100 % axis."""
    is_fit = result.target_kind == "fit"
    table = result.comparison().iloc[::-1]  # original on top
    colors = [GREY if name == "original" else (GREEN if score >= result.target else ORANGE)
              for name, score in zip(table["song"], table["score"])]
    whiskers = {} if is_fit else dict(error_x=dict(type="data", symmetric=False, array=table["high"] - table["score"],
                                                   arrayminus=table["score"] - table["low"], color=GREY, thickness=1.5))
    unit = "%" if is_fit else ""
    fig = go.Figure(go.Scatter(
        x=table["score"], y=table["song"], mode="markers+text", marker=dict(color=colors, size=14),
        text=[f"{s:.1f}{unit}" for s in table["score"]], textposition="top center", name="score",
        hovertemplate="%{y}: %{x:.1f}" + unit + "<extra></extra>", **whiskers))
    fig.add_vline(x=result.target, line_dash="dash", line_color=BLUE,
                  annotation_text=f"target {result.target:.1f}{unit}", annotation_position="top")
    fig.update_layout(height=120 + 45 * len(table), margin=dict(l=10, r=10, t=30, b=10), showlegend=False,
                      xaxis=dict(range=[0, 100], title="TikTok fit (%)" if is_fit else
                                 f"predicted popularity (whiskers: {interval_level:.0%} interval)"))
    return fig


def edits_frame(result: WhatIfResult) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(values, changed): rows = the 12 characteristics (labels), columns ``original`` and
    ``suggestion 1…k``, values in the user's units; ``changed`` is the same shape, True where a
    suggestion edits the original."""
    columns = {"original": {f.label: f.format(result.song[f.name]) for f in FEATURES}}
    changed = {"original": {f.label: False for f in FEATURES}}
    for i, s in enumerate(result.suggestions, 1):
        columns[f"suggestion {i}"] = {f.label: f.format(s.song[f.name]) for f in FEATURES}
        changed[f"suggestion {i}"] = {f.label: f.name in s.changes for f in FEATURES}
    return pd.DataFrame(columns), pd.DataFrame(changed)
