"""Model: how well the model does on tracks it never saw, and what the additive network learned."""

import streamlit as st

from ui.layout import chart, page_header
from ui.state import get_predictor
from virality.model import additive, fit_report
from virality.model import report as model_report
from virality.model.plots import coverage_figure, heldout_figure, reliability_figure, shape_figure, surface_figure
from virality.plotting import FIT_MEANING, signed

page_header("Model", "How good is the score, how honest is its interval, and which combinations of "
            "characteristics go with popularity?")
predictor = get_predictor()
shipped = predictor.info.model.arch

try:
    results = model_report.load_results()
except model_report.NoResults as error:
    st.warning(str(error))
    results = None

if results is not None:
    meta = results["meta"]
    if sentence := model_report.headline(results, shipped):
        st.markdown(f"#### {sentence}")
    st.subheader("Against baselines, on tracks it never saw")
    numbers = st.expander("Every model's scores on tracks it never saw, and the paired differences")
    numbers.caption(f"{meta['folds']}-fold cross-validation grouped by track (a track is never on both sides), "
                    f"repeated with {len(meta['seeds'])} seeds, {meta['tracks']:,} tracks. Mean ± std over folds "
                    f"and seeds; RMSE and MAE in popularity points. Shipped: **{shipped}**. "
                    f"Reproduce: `{meta['command']}`.")
    table = model_report.benchmark_table(results)
    table["80 % coverage"] = model_report.coverage_labels(table["80 % coverage"])
    numbers.dataframe(table, hide_index=True, width="stretch",
                      column_config={c: st.column_config.NumberColumn(format="%.3f")
                                     for c in ("R²", "R² ±", "RMSE", "RMSE ±", "MAE", "MAE ±", "Spearman",
                                               "Spearman ±")})
    numbers.markdown("Network minus baseline RMSE, paired by fold (negative: the network is better; within two "
                     "standard errors of 0 reads as level):")
    numbers.dataframe(model_report.paired_table(results), hide_index=True, width="stretch")
    if shipped != "additive" and {"additive", shipped} <= set(results["records"]):
        gap = model_report.paired_difference(results, "additive", shipped)
        numbers.caption(f"The additive network (drawn below) is {signed(gap['mean'], 2)} ± {gap['se']:.2f} RMSE "
                        f"points against the shipped {shipped} (better in {gap['a_better']} of {gap['n']} folds), "
                        "so the better scorer ships and the additive one explains.")

    if shipped in results["candidates"]:
        left, right = st.columns(2, gap="large")
        with left:
            st.subheader("Predicted vs actual (held out)")
            chart(heldout_figure(model_report.heldout_bins(results, shipped),
                                 model_report.heldout_histogram(results, shipped)), "heldout")
            st.caption("Grey cells count held-out tracks; the blue line is the average real popularity of the "
                       "tracks in each tenth of predicted scores. A flat line would mean no signal.")
        with right:
            st.subheader("Is the 80 % interval honest?")
            if "coverage" in results["candidates"][shipped]:
                chart(coverage_figure(model_report.coverage_table(results, shipped)), "coverage")
                st.caption("Share of held-out tracks whose real popularity fell inside their interval, per tenth "
                           "of predicted score (bars: mean over seeds, whiskers: ± std); the grey band is "
                           "80 % ± 3 points. "
                           + model_report.interval_facts(results, shipped, predictor.info.interval,
                                                         model_report.load_coverage_noise()))

st.subheader("TikTok fit: does the song sound like the songs that trend on TikTok?")
fit = predictor.info.fit
if fit is None:
    st.info("This model bundle has no TikTok-fit model: train it with `python -m virality train --catalogue PATH`.")
else:
    st.markdown(f"TikTok fit is {FIT_MEANING}: the chance, each side weighing half, that a track with these "
                f"characteristics comes from the {fit.data['tiktok']['tracks']:,} TikTok-trending tracks rather than "
                f"the {fit.data['catalogue']['tracks']:,} catalogue tracks.")
    for sentence in fit_report.fit_headline(fit):
        st.markdown(sentence)
    st.markdown("**Are its percentages honest?**")
    chart(reliability_figure(fit_report.reliability_frame(fit)), "fit_reliability")
    st.caption(f"Each dot: tracks the model gave about the same fit, scored by a model trained without them "
               f"({fit.data['evaluation']}); on the diagonal, a fit of 70 % really is TikTok's side 70 % of the "
               "time (each side weighing half). Bigger dots hold more tracks.")
    if limit := fit_report.fit_limit_sentence(fit_report.load_fit_curves()):
        st.markdown(limit)
    numbers = st.expander("TikTok fit in numbers: the era check and the benchmark against classical models")
    numbers.caption(f"The shipped fit model, out of fold ({fit.data['evaluation']}). Era check: against the "
                    f"{fit.data['era_catalogue_tracks']:,} catalogue tracks released {fit.data['era_year']} or "
                    "later. ECE and Brier on a 0–1 scale.")
    numbers.dataframe(fit_report.fit_facts(fit), width="stretch", key="fit_facts",
                      column_config={c: st.column_config.NumberColumn(format="%.3f")
                                     for c in fit_report.FIT_METRICS.values()})
    try:
        benchmark = fit_report.load_fit_results()
    except model_report.NoResults as error:
        numbers.info(str(error))
        benchmark = None
    if benchmark is not None:
        meta = benchmark["meta"]
        if meta.get("quick"):
            numbers.warning("These are a --quick run's figures (a small sample, tiny models), not the real "
                            "comparison: rerun without --quick.")
        numbers.markdown(f"**Against classical models**: {meta['folds']}-fold cross-validation grouped by song × "
                         f"{len(meta['seeds'])} seeds, {meta['tiktok_tracks']:,} TikTok and "
                         f"{meta['catalogue_tracks']:,} catalogue tracks; mean and ± std over folds. Reproduce: "
                         f"`{meta['command']}`.")
        table = fit_report.fit_benchmark_table(benchmark)
        numbers.dataframe(table, hide_index=True, width="stretch", key="fit_benchmark",
                          column_config={c: st.column_config.NumberColumn(format="%.3f") for c in table.columns[1:]})
        if sentence := fit_report.fit_margin_sentence(benchmark):
            numbers.markdown(f"{sentence} Inside {model_report.LEVEL_WITHIN_SE:.0f} standard errors of 0 reads as level.")
            numbers.dataframe(fit_report.fit_margin_table(benchmark), hide_index=True, width="stretch",
                              key="fit_margin")

st.subheader("Which characteristics, and which combinations, go with popularity")
try:
    model = additive.load_additive(additive.ADDITIVE_DIR) if shipped != "additive" else predictor
except Exception as error:  # a missing or damaged bundle must not take the page down
    st.info(f"The additive network is not available: {error}")
    st.stop()
st.caption("From the additive network: it scores a song as a sum of one curve per characteristic plus a "
           "surface per pair, so each part can be drawn. Points are against a typical track; these are "
           "associations in the training tracks, not causes."
           + ("" if shipped == "additive" else " It is bundled beside the shipped model for explanation; "
              "the score you see elsewhere comes from the shipped model."))
strengths = additive.term_strengths(model)
shapes = additive.shape_functions(model)
ordered = [t for t in strengths.loc[strengths["kind"] == "main", "term"]]
for i, name in enumerate(ordered):
    if i % 3 == 0:  # rows of three: on a phone they stack in order of strength
        columns = st.columns(3)
    with columns[i % 3]:
        chart(shape_figure(shapes[shapes["characteristic"] == name], name), f"shape_{name}")
        st.caption(additive.describe_shape(shapes, name))
pairs = additive.pairs(model)
if pairs:
    st.markdown("**Strongest interactions** (what a pair adds beyond its two curves)")
    ranked = [p for p in (tuple(t.split(" × ")) for t in strengths.loc[strengths["kind"] == "pair", "term"])]
    for i, pair in enumerate(ranked):
        surface = additive.interaction_surface(model, pair)
        if i % 2 == 0:
            columns = st.columns(2)
        with columns[i % 2]:
            chart(surface_figure(surface, pair), f"pair_{'_'.join(pair)}")
            st.caption(additive.describe_surface(surface, pair))
