import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.cli import run
from tests.test_fuzz import within
from virality.batch.score import score_file
from virality.data.demo import DEMO_CSV
from virality.data.reading import DataError
from virality.features import BY_NAME, FEATURE_NAMES


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


# --- never destroy the input; write OUT whole or not at all -------------------------------------

def _workbook(path: Path) -> Path:
    frame = pd.read_csv(DEMO_CSV)
    frame.to_excel(path, index=False)
    return path


@pytest.mark.parametrize("how", ["same path", "another path", "hard link", "symbolic link"])
@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_output_that_is_the_input_is_refused_and_the_input_kept(tmp_path, how, kind):
    source = tmp_path / f"in.{kind}"
    if kind == "csv":
        source.write_bytes(DEMO_CSV.read_bytes())
    else:
        _workbook(source)
    before = source.read_bytes()
    (tmp_path / "sub").mkdir()
    out = {"same path": source, "another path": tmp_path / "sub" / ".." / source.name,
           "hard link": tmp_path / f"hard.{kind}", "symbolic link": tmp_path / f"soft.{kind}"}[how]
    if how == "hard link":
        os.link(source, out)
    elif how == "symbolic link":
        out.symlink_to(source)
    done = run("score", str(source), "-o", str(out))
    assert done.code == 2 and "is the input file" in done.stderr and len(done.stderr.splitlines()) == 1
    assert source.read_bytes() == before


def test_a_failure_part_way_leaves_the_older_output_and_no_temporary_file(tmp_path, bundled):
    source, out = tmp_path / "in.csv", tmp_path / "out.csv"
    rows = [",".join(FEATURE_NAMES)] + [",".join(f"{BY_NAME[n].default:g}" for n in FEATURE_NAMES)] * 9
    source.write_text("\n".join([*rows, rows[1] + ",extra"]) + "\n")
    out.write_text("an older result\n")
    os.chmod(out, 0o640)
    with pytest.raises(DataError, match="line 11"):
        score_file(source, out, bundled, chunk_rows=2)  # the first chunks are written before the bad row
    assert out.read_text() == "an older result\n" and sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv"]
    source.write_text("\n".join(rows) + "\n")
    score_file(source, out, bundled)
    assert out.read_text().startswith("danceability,") and stat.S_IMODE(out.stat().st_mode) == 0o640


def test_writing_through_a_symbolic_link_replaces_its_target_and_keeps_the_link(tmp_path, bundled):
    target, link = tmp_path / "real.csv", tmp_path / "link.csv"
    target.write_text("old\n")
    link.symlink_to(target)
    score_file(DEMO_CSV, link, bundled)
    assert link.is_symlink() and target.read_text().startswith("title,artist,")


def test_an_output_folder_is_one_line(tmp_path):
    done = run("score", str(DEMO_CSV), "-o", str(tmp_path))
    assert done.code == 2 and "it is a folder" in done.stderr and len(done.stderr.splitlines()) == 1


# --- bounded input -------------------------------------------------------------------------------

def test_a_fifo_input_is_refused_at_once(tmp_path):
    fifo = tmp_path / "in.csv"
    os.mkfifo(fifo)
    with within(30):  # the FIFO is never opened: nothing to wait for
        done = run("score", str(fifo), "-o", str(tmp_path / "out.csv"))
    assert done.code == 2 and "named pipe" in done.stderr and not (tmp_path / "out.csv").exists()


def test_threads_beyond_the_cores_are_refused_naming_the_limit(tmp_path):
    from virality.cli import machine_cores

    done = run("score", str(DEMO_CSV), "-o", str(tmp_path / "out.csv"), "--threads", "100000")
    assert done.code == 2 and f"between 1 and {machine_cores()}" in done.stderr
    assert not (tmp_path / "out.csv").exists()


def test_long_arguments_are_cut_in_error_lines(tmp_path):
    done = run("score", "/nonexistent/" + "/".join(["x" * 200] * 15) + ".csv", "-o", str(tmp_path / "o.csv"))
    assert done.code == 2 and len(done.stderr) < 300 and done.stderr.rstrip().endswith(".csv: no such file")
    done = run("score", str(DEMO_CSV), "-o", str(tmp_path / "o.csv"), "--threads", "9" * 5000 + "x")
    assert done.code == 2 and len(done.stderr.splitlines()[-1]) < 400


# --- formula cells, notes ------------------------------------------------------------------------

def test_score_output_neutralises_formula_cells_and_headers_but_keeps_numbers(tmp_path):
    frame = pd.read_csv(DEMO_CSV, dtype=str)
    frame.loc[0, "title"] = "=HYPERLINK(\"http://x\",\"y\")"
    frame.loc[1, "artist"] = "@SUM(A1)"
    frame["-note"] = ["+1", "-", "-2+3", "ok", "+x", "=1", "-6.5", "-1e3"]
    source, out = tmp_path / "in.csv", tmp_path / "out.csv"
    frame.to_csv(source, index=False)
    assert run("score", str(source), "-o", str(out)).code == 0
    scored = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert scored.columns[len(frame.columns) - 1] == "'-note"
    assert scored.loc[0, "title"] == "'" + frame.loc[0, "title"] and scored.loc[1, "artist"] == "'@SUM(A1)"
    assert scored["'-note"].tolist() == ["+1", "'-", "'-2+3", "ok", "'+x", "'=1", "-6.5", "-1e3"]
    assert scored["loudness"].tolist() == frame["loudness"].tolist()  # negative numbers stay numbers
    untouched = [c for c in frame.columns if c not in ("title", "artist", "-note")]
    assert (scored[untouched] == frame[untouched]).all().all()


def test_decimal_comma_numbers_are_kept_in_a_semicolon_file(tmp_path):
    frame = pd.read_csv(DEMO_CSV, dtype=str)
    frame["loudness"] = frame["loudness"].str.replace(".", ",")
    source, out = tmp_path / "in.csv", tmp_path / "out.csv"
    frame.to_csv(source, index=False, sep=";")
    done = run("score", str(source), "-o", str(out))
    assert done.code == 0 and "scored 8 of 8" in done.stderr
    assert pd.read_csv(out, dtype=str)["loudness"].tolist() == frame["loudness"].tolist()  # '-7,8' stays -7,8


def test_stderr_names_the_column_chosen_and_the_blank_rows(tmp_path):
    frame = pd.read_csv(DEMO_CSV, dtype=str)
    frame.insert(3, "BPM", "99")
    source = tmp_path / "in.csv"
    source.write_text(frame.to_csv(index=False).replace("\n", "\n" + "," * (len(frame.columns) - 1) + "\n", 1))
    done = run("score", str(source), "-o", str(tmp_path / "out.csv"))
    assert done.code == 0 and "scored 8 of 8 rows" in done.stderr
    assert "note: two columns mean tempo: 'tempo' is read, 'BPM' kept as it is" in done.stderr
    assert "note: 1 blank row(s) skipped, not scored (row 2)" in done.stderr


# --- streaming equals one pass ------------------------------------------------------------------------

def _awkward_file(tmp_path: Path, separator: str = ",") -> Path:
    """Bad cells, blank rows, a title row, quoted text, a formula, a renamed column, a
    duration whose unit only the values tell."""
    frame = pd.concat([pd.read_csv(DEMO_CSV, dtype=str)] * 5, ignore_index=True).rename(
        columns={"duration_ms": "length"})
    frame["length"] = (frame["length"].astype(int) // 1000).astype(str)
    frame.loc[3, "tempo"], frame.loc[7, "energy"], frame.loc[11, "key"] = "fast", None, "H"
    frame.loc[5, "title"], frame.loc[9, "artist"], frame["low"] = 'a, "quoted"\nline', "=cmd", "x"
    if separator == ";":
        frame["loudness"] = frame["loudness"].str.replace(".", ",")
    text = frame.to_csv(index=False, sep=separator).splitlines(keepends=True)
    blank = separator * (len(frame.columns) - 1) + "\n"
    path = tmp_path / f"awkward{len(separator)}.csv"
    path.write_text("Release plan\n" + "".join(text[:4]) + blank + "".join(text[4:20]) + blank * 2 + "".join(text[20:]))
    return path


@pytest.mark.parametrize("separator", [",", ";"])
@pytest.mark.parametrize("fill", [False, True])
def test_scoring_in_chunks_writes_the_bytes_of_one_pass(tmp_path, bundled, separator, fill):
    source = _awkward_file(tmp_path, separator)
    whole = score_file(source, tmp_path / "whole.csv", bundled, fill=fill, chunk_rows=10**9)
    assert whole.n_rows == 40 and whole.reading.blank_rows == 3 and whole.n_problems
    for chunk_rows in (1, 3, 7):
        parts = score_file(source, tmp_path / "parts.csv", bundled, fill=fill, chunk_rows=chunk_rows)
        assert (tmp_path / "parts.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
        for name in ("n_rows", "n_scored", "n_filled", "n_problem_rows", "n_problems", "renamed", "reading"):
            assert getattr(parts, name) == getattr(whole, name), name
        assert parts.problem_lines() == whole.problem_lines() and parts.columns == whole.columns


def test_a_score_does_not_depend_on_the_rows_sharing_its_pass(bundled):
    from virality.batch.score import predict_rows
    from virality.explain.views import sample_typical_tracks

    X = sample_typical_tracks(bundled.info.distribution, 3000, seed=2).to_numpy()
    whole = predict_rows(bundled, X)
    for start, stop in ((0, 1), (5, 22), (1000, 1047), (2047, 3000)):
        for full, part in zip(whole, predict_rows(bundled, X[start:stop])):
            assert np.array_equal(full[start:stop], part)


def test_an_output_that_is_a_pipe_is_written_through_not_replaced(tmp_path, bundled):
    """``-o /dev/stdout`` or a named pipe: renaming a file over it would replace it."""
    import threading

    fifo = tmp_path / "out.csv"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    with within(60):
        score_file(DEMO_CSV, fifo, bundled)
    reader.join(30)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and received and received[0].startswith(b"title,artist,")
