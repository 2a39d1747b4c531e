import pandas as pd
import pytest

from tests.cli import run
from virality.data.demo import DEMO_CSV
from virality.features import FEATURE_NAMES


@pytest.fixture(scope="module")
def scored_with_bad_rows(tmp_path_factory):
    folder = tmp_path_factory.mktemp("score")
    frame = pd.read_csv(DEMO_CSV, dtype=str)
    frame.loc[1, "tempo"] = "fast"
    frame.loc[2, "energy"] = ""
    frame.loc[3, "loudness"] = "12"
    source, out = folder / "in.csv", folder / "out.csv"
    frame.to_csv(source, index=False)
    return frame, run("score", str(source), "-o", str(out)), pd.read_csv(out, dtype=str, keep_default_na=False)


def test_score_keeps_every_row_and_column_and_adds_the_contract(scored_with_bad_rows):
    frame, done, out = scored_with_bad_rows
    assert done.code == 0, done.stderr
    assert list(out.columns) == [*frame.columns, "predicted_popularity", "low", "high", "percentile", "tiktok_fit", "problem"]
    assert out["title"].tolist() == frame["title"].tolist()
    assert out["tempo"].tolist() == frame["tempo"].fillna("").tolist()


def test_bad_rows_have_empty_scores_and_a_reason(scored_with_bad_rows):
    _, done, out = scored_with_bad_rows
    assert out.loc[[1, 2, 3], "predicted_popularity"].tolist() == ["", "", ""]
    assert "tempo: not a number" in out.loc[1, "problem"]
    assert "energy: missing" in out.loc[2, "problem"]
    assert "loudness: outside the valid range" in out.loc[3, "problem"]
    assert (out.drop(index=[1, 2, 3])["problem"] == "").all()
    for row, column in ((3, "tempo"), (4, "energy"), (5, "loudness")):
        assert f"row {row}, {column}" in done.stderr
    assert "scored 5 of 8 rows" in done.stderr


def test_scores_equal_the_engine(scored_with_bad_rows, bundled):
    _, _, out = scored_with_bad_rows
    good = out[out["predicted_popularity"] != ""]
    songs = good.rename(columns={"duration_ms": "duration"})[list(FEATURE_NAMES)].astype(float)
    expected = bundled.predict_frame(songs)
    assert good["predicted_popularity"].astype(float).tolist() == pytest.approx(
        expected["predicted_popularity"].tolist(), abs=1e-3)


@pytest.mark.parametrize("content", [None, b"", b"\x00\x01binary\xff" * 50])
def test_unreadable_input_is_one_line_and_status_2(tmp_path, content):
    source = tmp_path / "in.csv"
    if content is not None:
        source.write_bytes(content)
    done = run("score", str(source), "-o", str(tmp_path / "out.csv"))
    assert done.code == 2
    assert done.stderr.startswith("error: ") and len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr


def test_no_scorable_row_exits_1(tmp_path):
    source = tmp_path / "in.csv"
    source.write_text(",".join(FEATURE_NAMES) + "\n" + ",".join(["x"] * 12) + "\n")
    done = run("score", str(source), "-o", str(tmp_path / "out.csv"))
    assert done.code == 1 and "scored 0 of 1 rows" in done.stderr


def test_rescoring_a_scored_file_keeps_the_earlier_scores(tmp_path):
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    assert run("score", str(DEMO_CSV), "-o", str(first)).code == 0
    again = run("score", str(first), "-o", str(second))
    assert again.code == 0 and "'low' → 'low (input)'" in again.stderr
    before, after = pd.read_csv(first, dtype=str), pd.read_csv(second, dtype=str)
    for column in ("predicted_popularity", "low", "high", "percentile"):
        assert list(after[f"{column} (input)"]) == list(before[column])
        assert list(after[column]) == list(before[column])  # same model, same scores
