"""The fast paths behind `python -m virality score` give what the plain paths give, and the
command's optional flags (``--fill``, ``--threads``) keep its contract."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.cli import run
from virality.batch.ranking import DRIVER_METHODS, batch_attributions, driver_attributions
from virality.batch.score import FILLED_COLUMN, _fast_body, float_text, write_csv
from virality.data.demo import DEMO_CSV
from virality.data.reading import read_csv_file
from virality.data.validation import _arrow_numbers, check_rows
from virality.explain.methods import METHODS
from virality.features import FEATURE_NAMES

# ---------------------------------------------------------------- CSV writer


def _same_as_pandas(table: pd.DataFrame, tmp_path: Path) -> bool:
    write_csv(table, tmp_path / "fast.csv")
    table.to_csv(tmp_path / "pandas.csv", index=False)
    return (tmp_path / "fast.csv").read_bytes() == (tmp_path / "pandas.csv").read_bytes()


def test_scored_table_takes_the_fast_writer_and_writes_pandas_bytes(tmp_path, bundled):
    from virality.batch.score import score_frame

    frame = read_csv_file(DEMO_CSV)
    frame.loc[2, "tempo"] = "fast"  # an unscored row: empty prediction cells, a problem text
    table = score_frame(frame, bundled).table
    assert _fast_body(table) is not None
    assert _same_as_pandas(table, tmp_path)


@pytest.mark.parametrize("cell", ["x, feat. y", 'say "hi"', "two\nlines", "cr\rhere", "tab\there"],
                         ids=["comma", "quote", "newline", "carriage-return", "tab"])
def test_rows_pandas_would_quote_are_written_as_pandas_writes_them(cell, tmp_path):
    table = pd.DataFrame({"title": pd.array(["plain", cell, None, "after"], dtype="str"),
                          "score": [1.5, 2.0, np.nan, 0.0]})
    assert _fast_body(table) is not None
    assert _same_as_pandas(table, tmp_path)


@pytest.mark.parametrize("table", [
    pd.DataFrame({"a": [1, 2], "f": [1.0, 2.0]}),
    pd.DataFrame({"a": ["q", "r"], "f": np.array([0.1, 2.0], np.float32)}),
    pd.DataFrame({"a": ["q", 3.5], "f": [1.0, 2.0]}),
    pd.DataFrame({"lonely": ["", "b"]}),
], ids=["int-column", "float32", "number-in-text-column", "one-column"])
def test_columns_pandas_formats_otherwise_go_through_pandas(table, tmp_path):
    assert _fast_body(table) is None
    assert _same_as_pandas(table, tmp_path)


TEXT = st.one_of(st.none(), st.text(st.characters(blacklist_categories=("Cs",)), max_size=8),
                 st.sampled_from([",", '"', "\n", "\r", "a, b", ' "q" ', "\r\n", ""]))
FLOAT = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**6, 10**6).map(lambda i: i / 1000))


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(rows=st.lists(st.tuples(TEXT, FLOAT, TEXT), min_size=0, max_size=12),
       header=st.sampled_from(["title", "a,b", 'q"', "=cmd", "tïtle"]))
def test_writer_bytes_always_equal_pandas(rows, header, tmp_path_factory):
    table = pd.DataFrame({header: pd.array([r[0] for r in rows], dtype="str"),
                          "score": np.array([r[1] for r in rows], dtype=np.float64),
                          "problem": pd.Series([r[2] for r in rows], dtype=object)})
    assert _same_as_pandas(table, tmp_path_factory.mktemp("w"))



def test_number_cells_are_written_as_pythons_repr_writes_them():
    """``float_text`` (the writer's number column) against ``repr``: thousandths as the scores
    are rounded, every edge it hands to ``repr``, and doubles that are not thousandths at all."""
    import pyarrow as pa

    rng = np.random.default_rng(11)
    columns = [np.round(rng.uniform(-200, 200, 20_000), 3), np.round(rng.uniform(0, 100, 20_000), 3),
               rng.standard_normal(2_000) * 10.0 ** rng.integers(-8, 20, 2_000),
               rng.integers(-10**15, 10**15, 2_000) / 1000,
               np.array([0.0, -0.0, np.nan, np.inf, -np.inf, 1e-5, 1e16, 1e12, 999_999_999_999.999, 0.1234, 5e-324,
                         -0.001, 0.0005, 100.0, 1e-4, 0.1 + 0.2]),
               np.full(3, np.nan), np.array([])]
    for numbers in columns:
        expected = [None if np.isnan(v) else repr(v) for v in numbers.tolist()]
        assert float_text(numbers, pa).to_pylist() == expected


# ---------------------------------------------------------------- validation fast path


def test_number_cells_read_the_same_whether_or_not_a_text_cell_forces_the_slow_path():
    rng = np.random.default_rng(3)
    cells = [f"{v:.{d}f}" for v, d in zip(rng.uniform(40, 220, 200), rng.integers(0, 6, 200))]
    cells += ["1_000", "١٢٠", " 99.5", "1e2", "nan", "inf", "", None, "250.0000001"]
    plain = pd.DataFrame({"tempo": pd.array(cells, dtype="str")})
    forced = pd.DataFrame({"tempo": pd.array([*cells, "fast"], dtype="str")})
    fast_values, fast_problems = check_rows(plain, ("tempo",))
    slow_values, slow_problems = check_rows(forced, ("tempo",))
    assert fast_values["tempo"].equals(slow_values["tempo"].iloc[:-1])
    pd.testing.assert_frame_equal(fast_problems, slow_problems.iloc[:-1])
    assert set(fast_problems["why"]) == {"missing", "not a number", "outside the valid range 0–250 BPM"}



def python_floats(cells: list) -> np.ndarray | None:
    """What Python's ``float`` reads of every non-empty cell (None: one it refuses)."""
    try:
        return np.array([np.nan if c is None else float(c) for c in cells], dtype=np.float64)
    except ValueError:
        return None


def test_arrow_reads_a_column_only_when_python_float_reads_it_the_same():
    """Arrow's cast (the fast path) gives a value only when ``float`` gives the same value for every
    cell, over strings made of the characters numbers are written with, and the edge cases."""
    rng = np.random.default_rng(5)
    odd = list("+-.eE _,x٣") + ["inf", "nan", "nan(1)", "Infinity", "\u00a0"]

    def written() -> str:  # a number as people write it, one time in three with an odd character slipped in
        text = (rng.choice(["", "-", "+"]) + str(rng.integers(0, 10 ** int(rng.integers(1, 4))))
                + rng.choice(["", "." + str(rng.integers(0, 1000))]) + rng.choice(["", f"e{rng.integers(-5, 5)}"]))
        if rng.random() < 1 / 3:
            at = int(rng.integers(0, len(text) + 1))
            text = text[:at] + str(rng.choice(odd)) + text[at:]
        return text

    columns = [[written() for _ in range(2)] for _ in range(2000)]
    columns += [["1e500"], ["-1e-400"], ["4.9e-324"], ["0.1000000000000000055511151231257827"], ["+1"],
                ["-0"], ["00012"], ["1.", ".5"], ["nan(1)", "1"], ["1", None]]
    fast_columns = 0
    for cells in columns:
        fast = _arrow_numbers(pd.Series(cells, dtype="str"))
        if fast is not None:
            fast_columns += 1
            np.testing.assert_array_equal(fast, python_floats(cells), err_msg=repr(cells))
            assert list(np.signbit(fast)) == list(np.signbit(python_floats(cells))), cells
    assert fast_columns > 300  # the fast path was really taken, not refused every time


# ---------------------------------------------------------------- CLI flags


def _damaged_demo(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    frame = pd.read_csv(DEMO_CSV, dtype=str).drop(columns=["liveness"])
    frame.loc[1, "energy"] = None
    frame.loc[2, "tempo"] = "fast"
    source = tmp_path / "in.csv"
    frame.to_csv(source, index=False)
    return source, frame


def test_fill_scores_rows_with_typical_values_and_flags_them(tmp_path, bundled):
    source, frame = _damaged_demo(tmp_path)
    done = run("score", str(source), "-o", str(tmp_path / "out.csv"), "--fill")
    assert done.code == 0, done.stderr
    out = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)
    assert list(out.columns) == [*frame.columns, "predicted_popularity", "low", "high", "percentile",
                                 "tiktok_fit", FILLED_COLUMN, "problem"]
    assert out.loc[1, FILLED_COLUMN] == "energy, liveness"
    assert (out.drop(index=1)[FILLED_COLUMN] == "liveness").all()
    assert out.loc[2, "predicted_popularity"] == "" and "tempo: not a number" in out.loc[2, "problem"]
    assert "scored 7 of 8 rows" in done.stderr and "filled" in done.stderr
    songs = frame.rename(columns={"duration_ms": "duration"}).drop(index=2).assign(liveness="nan")
    songs = songs[list(FEATURE_NAMES)].astype(float)
    songs["liveness"] = bundled.typical_song["liveness"]
    songs.loc[1, "energy"] = bundled.typical_song["energy"]
    expected = bundled.predict_frame(songs)
    scored = out.drop(index=2)
    for column in ("predicted_popularity", "low", "high", "percentile"):
        assert scored[column].astype(float).tolist() == pytest.approx(expected[column].tolist(), abs=1e-3)


def test_without_fill_the_absent_column_is_still_an_error(tmp_path):
    source, _ = _damaged_demo(tmp_path)
    done = run("score", str(source), "-o", str(tmp_path / "out.csv"))
    assert done.code == 2 and "liveness" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_two_threads_write_the_same_bytes_and_zero_threads_is_refused(tmp_path):
    one = run("score", str(DEMO_CSV), "-o", str(tmp_path / "one.csv"))
    two = run("score", str(DEMO_CSV), "-o", str(tmp_path / "two.csv"), "--threads", "2")
    assert one.code == two.code == 0
    assert (tmp_path / "one.csv").read_bytes() == (tmp_path / "two.csv").read_bytes()
    zero = run("score", str(DEMO_CSV), "-o", str(tmp_path / "zero.csv"), "--threads", "0")
    assert zero.code == 2 and zero.stderr.startswith("error: --threads") and not (tmp_path / "zero.csv").exists()


# ---------------------------------------------------------------- batch drivers


@pytest.fixture(scope="module")
def many_tracks(bundled) -> pd.DataFrame:
    from virality.explain.views import sample_typical_tracks

    return sample_typical_tracks(bundled.info.distribution, 600, seed=11)


@pytest.mark.parametrize("method", list(DRIVER_METHODS))
def test_driver_attributions_add_up_to_the_score_difference(method, many_tracks, bundled):
    X = many_tracks.to_numpy()
    attr, delta = driver_attributions(bundled, X, method)
    gap = bundled.raw_scores(X) - bundled.raw_scores(np.array([list(bundled.typical_song.values())]))[0]
    assert attr.shape == (len(X), len(FEATURE_NAMES))
    assert np.allclose(attr.sum(1) - gap, delta, atol=1e-3)
    # DeepLift's Rescale rule is exact; 8 IG steps are for ranking (the benchmark's largest
    # |delta| over 6,000 rows is about 1 point)
    assert np.abs(delta).max() <= (METHODS["deeplift"].tolerance if method == "deeplift" else 1.5)


def test_pass_size_does_not_change_the_drivers(many_tracks, bundled, monkeypatch):
    import virality.explain.methods as explain

    small = batch_attributions(bundled, many_tracks)
    monkeypatch.setattr(explain, "PATH_POINTS_PER_PASS", 40_000)
    large = batch_attributions(bundled, many_tracks)
    assert np.allclose(small.to_numpy(), large.to_numpy(), atol=1e-4)
    assert (small.index == many_tracks.index).all()


def test_unknown_driver_method_is_a_plain_error(bundled, typical_song):
    with pytest.raises(ValueError, match="unknown driver method"):
        driver_attributions(bundled, np.array([[typical_song[n] for n in FEATURE_NAMES]]), "lime")
