"""``python -m virality {train,score,explain,whatif,features,download}``.

Exit status: 0 success, 1 nothing could be done with valid input (e.g. no row scored),
2 unusable input or usage error. Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from virality.config import ARTIFACTS_DIR
from virality.data.errors import MESSAGE_PATH_CHARS


class CliError(Exception):
    """A one-line message for stderr; exits with status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m virality",
                                     description="Will this song take off on TikTok, and what would help it?")
    parser.add_argument("--artifacts", default=str(ARTIFACTS_DIR), help="model bundle folder (default: artifacts/)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train the model on a tracks CSV and write the bundle")
    p.add_argument("--data", required=True, help="tracks CSV (e.g. ../shared/data/tiktok_tracks.csv)")
    p.add_argument("--catalogue", help="catalogue CSV (e.g. ../shared/data/spotify_songs.csv): also train TikTok fit")
    p.add_argument("--out", default=str(ARTIFACTS_DIR), help="output folder (default: artifacts/)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--arch", default=None, help="network (default: the shipped one); e.g. additive, tabm")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("score", help="score every row of a CSV of tracks")
    p.add_argument("input", help="CSV with the 12 characteristics (duration or duration_ms)")
    p.add_argument("-o", "--output", required=True, help="output CSV")
    p.add_argument("--fill", action="store_true",
                   help="fill missing characteristics with the typical track's value; a 'filled' column names them")
    p.add_argument("--threads", type=_count, default=1,
                   help="torch threads, at most the machine's cores (default 1: on a shared machine a second "
                        "thread waits for a busy core; see benchmarks/results/score.md)")

    p = sub.add_parser("explain", help="which characteristics push a song's score up or down")
    p.add_argument("--song", required=True, help="song as inline JSON or a JSON file")
    p.add_argument("--method", default="ig")
    p.add_argument("--baseline", default="typical")
    p.add_argument("--target", choices=("popularity", "fit"), default="popularity",
                   help="what to explain: the popularity score (points) or TikTok fit (percentage points)")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("whatif", help="small changes that would raise a song's score")
    p.add_argument("--song", required=True, help="song as inline JSON or a JSON file")
    goal = p.add_mutually_exclusive_group(required=True)
    goal.add_argument("--gain", type=float, help="points to add to the current score")
    goal.add_argument("--target", type=float, help="score to reach (0–100)")
    p.add_argument("--vary", help="comma-separated characteristics allowed to change")
    p.add_argument("--max-changes", type=int, default=3)
    p.add_argument("-k", type=int, default=4, help="number of suggestions")
    p.add_argument("--target-kind", choices=("popularity", "fit"), default="popularity",
                   help="what --gain/--target aim at: the popularity score or TikTok fit (percent)")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("features", help="measure characteristics from an audio file")
    p.add_argument("audio", help="WAV, FLAC, OGG or MP3 file")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("download", help="fetch the published data set with gdown")
    p.add_argument("--dest", default="data", help="folder to save into (git-ignored)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = {"train": _train, "score": _score, "download": _download, "explain": _explain,
               "whatif": _whatif, "features": _features}[args.command]
    try:
        return handler(args)
    except CliError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (ValueError, OSError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _train(args: argparse.Namespace) -> int:
    from virality.config import TrainConfig, preset
    from virality.model.metadata import BundleMetadata
    from virality.model.training import train

    config = preset(args.arch, seed=args.seed) if args.arch else TrainConfig(seed=args.seed)
    info = BundleMetadata.from_dict(train(args.data, args.out, config, progress=not args.quiet,
                                          catalogue_path=args.catalogue))
    print(f"trained on all {info.data.train_tracks} tracks ({info.data.songs} songs) in {info.train_seconds:.0f} s; "
          f"on tracks it never saw ({info.data.evaluation}):")
    for name, values in dataclasses.asdict(info.metrics).items():
        print(f"  {name:15s} " + "  ".join(f"{k} {v:7.3f}" for k, v in values.items()))
    interval = info.interval
    print(f"  {interval.level:.0%} interval ±{interval.half_width:.1f} points on average "
          f"(covers {interval.fitted_coverage:.1%} of the out-of-fold scores it was fitted to)")
    if info.fit is not None:
        overall, era = info.fit.overall, info.fit.era
        print(f"TikTok fit ({info.fit.data['evaluation']}): AUC {overall.auc:.3f}, log loss {overall.log_loss:.3f}, "
              f"Brier {overall.brier:.3f}, ECE {overall.ece:.3f}; against catalogue tracks from "
              f"{info.fit.data['era_year']} on: AUC {era.auc:.3f}")
    print(f"saved to {args.out}")
    return 0


def load_predictor_for_cli(args: argparse.Namespace):
    """The predictor on one thread: single-song commands are latency-bound, not throughput-bound."""
    import torch

    from virality.model.prediction import load_predictor

    torch.set_num_threads(1)
    return load_predictor(Path(args.artifacts))


def machine_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS says it, else all)."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _count(text: str) -> int:
    """An argparse type: a whole number, quoted at most ~200 characters in the error."""
    from virality.data.errors import clipped

    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {clipped(repr(text))}") from None


def _score(args: argparse.Namespace) -> int:
    import torch

    from virality.batch.score import renamed_note, reuse_freed_memory, score_file
    from virality.data.errors import DataError, clipped
    from virality.model.prediction import load_predictor

    cores = machine_cores()
    if not 1 <= args.threads <= cores:
        raise CliError(f"--threads must be between 1 and {cores} (the cores of this machine), not "
                       f"{clipped(args.threads)}")
    torch.set_num_threads(args.threads)  # a throughput job, but one thread per busy shared core (see --help)
    reuse_freed_memory()
    predictor = load_predictor(Path(args.artifacts))
    try:
        summary = score_file(args.input, args.output, predictor, fill=args.fill)
    except DataError as err:
        raise CliError(str(err)) from None
    print(f"scored {summary.n_scored} of {summary.n_rows} rows → {clipped(args.output)}", file=sys.stderr)
    for note in (*summary.reading.notes(), *summary.columns.choice_notes()):
        print(f"note: {note}", file=sys.stderr)
    if summary.renamed:
        print(f"note: {renamed_note(summary.renamed)}", file=sys.stderr)
    if summary.n_filled:
        print(f"{summary.n_filled} row(s) had missing characteristics filled with the typical track's value "
              "(named in the 'filled' column)", file=sys.stderr)
    if summary.n_problems:
        print(f"{summary.n_problem_rows} row(s) not scored (row numbers as in a spreadsheet, "
              f"header = row {summary.reading.header_row}):", file=sys.stderr)
        for line in summary.problem_lines():
            print(f"  {line}", file=sys.stderr)
    return 0 if summary.n_scored else 1


def _download(args: argparse.Namespace) -> int:
    from virality.data.reading import DataError
    from virality.data.tracks import download

    try:
        path, data = download(args.dest)
    except DataError as err:
        raise CliError(str(err)) from None
    print(f"saved {path}: {data.n_rows} rows, {len(data.tracks)} tracks, {data.n_bad_rows} bad rows dropped")
    return 0


def _song(text: str) -> dict[str, float]:
    """Parse ``--song`` (inline JSON or a file, ``features --json`` output included); the
    characteristics it leaves out take their typical value and are named on stderr."""
    from virality.features import load_song_arg

    song, filled = load_song_arg(text)
    if filled:
        print(f"note: not given, using the typical value: {', '.join(filled)}", file=sys.stderr)
    return song


def _explain(args: argparse.Namespace) -> int:
    """``explain --song SONG [--method ig] [--baseline typical] [--json]``."""
    from virality.explain.explanation import explain_song, explanation_text, resolve_baseline
    from virality.explain.methods import method_key

    method = method_key(args.method)
    song = _song(args.song)
    predictor = load_predictor_for_cli(args)
    label, baseline = resolve_baseline(predictor, args.baseline)
    explanation = explain_song(predictor, song, baseline, method=method, baseline_label=label, target=args.target)
    if args.json:
        print_json(explanation.to_json())
    else:
        print(explanation_text(explanation))
    return 0


def _whatif(args: argparse.Namespace) -> int:
    """``whatif``: print suggestions (or JSON); exit 0 when the target is reached, 1 when only
    a best effort was found."""
    from virality.whatif.search import search

    song = _song(args.song)
    vary = [v.strip() for v in args.vary.split(",") if v.strip()] if args.vary else None
    predictor = load_predictor_for_cli(args)
    result = search(predictor, song, target=args.target, gain=args.gain, vary=vary,
                    max_changes=args.max_changes, k=args.k, target_kind=args.target_kind)
    if args.json:
        print_json(result.to_json())
        return 0 if result.reached else 1
    fit = result.target_kind == "fit"
    where = "" if fit else f" (interval {result.original_low:.0f}–{result.original_high:.0f})"
    print(f"current {'TikTok fit' if fit else 'score'} {result.original_score:.1f}{'%' if fit else ''}{where}; "
          f"target {result.target:.1f}")
    if result.message:
        print(result.message)
    for i, s in enumerate(result.suggestions, 1):
        flags = ("" if s.reached else "  [short of target]") + ("  [unusual for real tracks]" if s.out_of_distribution else "")
        interval = "" if fit else f"; interval {s.low:.0f}–{s.high:.0f}"
        print(f"{i}. {s.score:.1f} ({s.score - result.original_score:+.1f}{interval}): "
              f"{', '.join(s.edits())}{flags}")
    return 0 if result.reached else 1


def _features(args: argparse.Namespace) -> int:
    """``features AUDIO [--json]``: print the characteristics measured from an audio file."""
    from virality.audio.analysis import MEASURED, NOT_MEASURED, analyse, describe_measurement
    from virality.audio.decode import AudioError, quiet_native_stderr
    from virality.features import BY_NAME, format_duration, shown

    name = shown(args.audio, PATH_CHARS)
    try:
        with quiet_native_stderr():
            analysis = analyse(args.audio)
    except AudioError as err:
        raise CliError(f"{name}: {err}") from None
    for note in analysis.notes:
        print(f"note: {note}", file=sys.stderr)
    if args.json:
        print_json(analysis.to_json())
        print(f"not measured (Spotify's own model outputs; typical values are used unless you set them): "
              f"{', '.join(NOT_MEASURED)}", file=sys.stderr)
        print(f"note: {LUFS_NOTE}", file=sys.stderr)
        return 0
    print(f"{name}: {format_duration(analysis.analysed_seconds * 1000)} analysed of "
          f"{format_duration(analysis.file_seconds * 1000)}")
    for measured in MEASURED:
        print(f"  {BY_NAME[measured].label.lower():9s} {describe_measurement(measured, analysis.values[measured])}")
    print(f"not measured (Spotify's own model outputs; set them yourself): {', '.join(NOT_MEASURED)}")
    print(f"note: {LUFS_NOTE}")
    return 0


PATH_CHARS = MESSAGE_PATH_CHARS
"""An error line quotes at most this many characters of a path (one limit for every command)."""
LUFS_NOTE = ("loudness is BS.1770 integrated loudness in LUFS, not Spotify's loudness in dB (their relation is "
             "unknown); the Predict page shows it beside its control and applies it only if asked")


def print_json(payload: dict) -> None:
    """JSON to stdout, UTF-8, stable key order."""
    json.dump(payload, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
