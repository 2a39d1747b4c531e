"""Audio analysis: speed and peak memory on long and hostile files, accuracy on synthetic signals.

``python -m benchmarks.audio`` (``--data`` is accepted and ignored) writes
``benchmarks/results/audio.{md,json}``. Speed: median wall and CPU seconds of
``virality.audio.analysis.analyse`` on a 10-minute stereo 44.1 kHz song as WAV, FLAC and MP3 (and a
12-minute MP3, of which 10 minutes are analysed), with plain decoding of the WAV measured in the
same run as the baseline. Memory: peak RSS and wall time of one analysis in a fresh process
(its ``VmHWM`` from ``/proc/self/status``, read as it ends; Linux) for the 10-minute
WAV, a 10-minute 96 kHz 8-channel FLAC and a ~1 MB 11-minute 192 kHz 8-channel FLAC of
near-silence. Accuracy: tempo and key on the synthetic signals of tests/audio_signals.py.

``python -m benchmarks.audio --memory-only [--code DIR]`` measures only the memory table, with
the ``virality`` package of checkout ``DIR`` (default: this one) — e.g. a ``git worktree`` of an
older commit, for a before/after — and writes ``benchmarks/results/audio_memory[_<commit>].{md,json}``.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import parser, write_result
from tests.audio_signals import chord_progression, click_track, song, surround, wav_bytes, write_in_blocks
from virality.audio import analysis as audio
from virality.audio.decode import decode
from virality.audio.loudness import LoudnessMeter

ROOT = Path(__file__).resolve().parent.parent
SEVEN_ONE = (1.0, 0.9, 0.7, 0.3, 0.5, 0.5, 0.4, 0.4)
"""Channel gains of the 7.1 test file (L R C LFE Lb Rb Ls Rs)."""

REPEAT = 3


def timed(fn, repeat: int = REPEAT) -> dict:
    """Median wall and CPU seconds of ``repeat`` calls after one warm-up call."""
    fn()
    wall, cpu = [], []
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return {"wall_s": statistics.median(wall), "cpu_s": statistics.median(cpu), "repeat": repeat}


def write_files(folder: Path) -> dict[str, Path]:
    """The 10-minute song as WAV, FLAC, MP3 and a 12-minute MP3 (MP3s need ffmpeg)."""
    files = {"WAV 10 min": folder / "song.wav", "FLAC 10 min": folder / "song.flac"}
    files["WAV 10 min"].write_bytes(wav_bytes(song(123, 9, False, 600.0)))
    files["FLAC 10 min"].write_bytes(wav_bytes(song(123, 9, False, 600.0), fmt="FLAC"))
    if shutil.which("ffmpeg"):
        long_wav = folder / "long.wav"
        long_wav.write_bytes(wav_bytes(song(123, 9, False, 720.0)))
        for name, source in (("MP3 10 min", files["WAV 10 min"]), ("MP3 12 min (10 analysed)", long_wav)):
            target = folder / (source.stem + ".mp3")
            subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(source), "-b:a", "192k", str(target)],
                           check=True)
            files[name] = target
    return files


class _Discard:
    """A sink that only takes the blocks: decoding alone."""

    def __init__(self, fmt):
        pass

    def add(self, block):
        pass


class _LoudnessOnly:
    def __init__(self, fmt):
        self.meter = LoudnessMeter(fmt.sample_rate, fmt.channels)

    def add(self, block):
        self.meter.add(block)


def stages(path: Path) -> dict[str, float]:
    """Wall seconds of each step of one analysis (after the warm-up runs above); the blockwise
    steps are differences between decoding into sinks that do more and more."""
    out, t = {}, time.perf_counter()
    decode(path, _Discard)
    out["decode"], t = time.perf_counter() - t, time.perf_counter()
    decode(path, _LoudnessOnly)
    out["loudness (BS.1770)"], t = time.perf_counter() - t - out["decode"], time.perf_counter()
    sink, _ = decode(path, audio.AnalysisSink)
    mono = sink.analysis_signal()
    out["mono mix + resample"] = time.perf_counter() - t - out["decode"] - out["loudness (BS.1770)"]
    t = time.perf_counter()
    audio.measure_tempo(audio.onset_envelope(mono))
    out["onsets + tempo"], t = time.perf_counter() - t, time.perf_counter()
    audio.measure_key(audio.mean_chroma(mono))
    out["chroma + key"] = time.perf_counter() - t
    return out


def write_hostile_files(folder: Path) -> dict[str, Path]:
    """The two files of issue 14: 10 minutes of 96 kHz 8-channel music as 16-bit FLAC, and an
    11-minute 192 kHz 8-channel 16-bit FLAC of digital silence with a 10 ms burst of ±1 LSB
    noise every 15 s (below the −70 LUFS gate: silence to BS.1770), about 1 MB."""
    hires, silent = folder / "hires_96k_8ch_10min.flac", folder / "silent_192k_8ch_11min.flac"
    minute = surround(song(120, 9, False, 60.0, rate=96000)[:, 0], SEVEN_ONE)  # 120 BPM: a minute is whole beats
    write_in_blocks(hires, minute, 96000, repeat=10)
    rng = np.random.default_rng(0)
    quiet = np.zeros((192_000 * 15, 8), np.int16)
    quiet[:1920] = rng.integers(-1, 2, (1920, 8))
    write_in_blocks(silent, quiet, 192_000, repeat=44)
    return {"96 kHz × 8 ch FLAC, 10 min": hires, "192 kHz × 8 ch near-silent FLAC, 11 min": silent}


MEASURE_IN_CHILD = """
import json, sys, time
start = time.perf_counter()
from virality.audio.analysis import analyse
from virality.audio.decode import AudioError
try:
    outcome = {name: m.value for name, m in analyse(sys.argv[1]).values.items()}
except AudioError as err:
    outcome = "refused: " + str(err)
with open("/proc/self/status") as status:
    peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({"wall_s": time.perf_counter() - start, "cpu_s": time.process_time(), "outcome": outcome,
                  "peak_rss_mb": peak_kb / 1024}))
"""
# VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss across fork and exec, so a child of
# this process (which holds the 10-minute WAV it wrote) would report at least the parent's peak.


def peak_memory(path: Path, code: Path = ROOT) -> dict:
    """Peak RSS (MB, Linux ``VmHWM`` of the child), wall and CPU seconds (imports included) and outcome of one
    analysis of ``path`` in a fresh Python process using the ``virality`` package under ``code``."""
    done = subprocess.run([sys.executable, "-c", MEASURE_IN_CHILD, str(path)], cwd=code, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(code)}, check=True)
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "file_mb": path.stat().st_size / 1e6}


def memory_table(code: Path = ROOT) -> dict[str, dict]:
    """Peak memory of the 10-minute stereo WAV and the two hostile files."""
    with tempfile.TemporaryDirectory() as folder:
        files = {"WAV 44.1 kHz stereo, 10 min": Path(folder) / "song.wav", **write_hostile_files(Path(folder))}
        files["WAV 44.1 kHz stereo, 10 min"].write_bytes(wav_bytes(song(123, 9, False, 600.0)))
        return {name: peak_memory(path, code) for name, path in files.items()}


def memory_markdown(table: dict[str, dict], code: str, load: float) -> list[str]:
    lines = [f"### Peak memory of one analysis in a fresh process ({code})", "",
             f"Load average {load:.1f} on {os.cpu_count()} cores (wall times move with it).", "",
             "| file | size MB | peak RSS MB | wall s | CPU s | outcome |", "|---|---:|---:|---:|---:|---|"]
    for name, r in table.items():
        outcome = r["outcome"] if isinstance(r["outcome"], str) else ", ".join(
            f"{k} {v:g}" for k, v in r["outcome"].items())
        cpu = f"{r['cpu_s']:.1f}" if "cpu_s" in r else "—"
        lines.append(f"| {name} | {r['file_mb']:.1f} | {r['peak_rss_mb']:.0f} | {r['wall_s']:.1f} | {cpu} | {outcome} |")
    return lines


def _commit(code: Path) -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=code, capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def tempo_accuracy() -> list[dict]:
    """Click tracks and click+chord songs at 60–200 BPM: estimate, error, reported alternatives."""
    rows = []
    for bpm in range(60, 201, 10):
        for kind, samples in (("clicks", click_track(bpm)), ("song", song(bpm, bpm % 12, True, 20.0))):
            m = audio.analyse(wav_bytes(samples)).values["tempo"]
            alternatives = [a["value"] for a in m.alternatives]
            rows.append({"bpm": bpm, "signal": kind, "estimate": m.value, "confidence": round(m.confidence, 3),
                         "error": round(m.value - bpm, 2), "uncertain": bool(m.doubt),
                         "within_2": abs(m.value - bpm) <= 2,
                         "within_2_incl_alternatives": any(abs(v - bpm) <= 2 for v in [m.value, *alternatives])})
    return rows


def key_fit(samples: np.ndarray) -> float:
    """The best correlation of the signal's pitch profile with the 24 key profiles."""
    sink, _ = decode(wav_bytes(samples), audio.AnalysisSink)
    return float(audio.key_correlations(audio.mean_chroma(sink.analysis_signal())).max())


def key_accuracy() -> list[dict]:
    """All 24 keys as I–IV–V–I / i–iv–V–i progressions."""
    rows = []
    for tonic in range(12):
        for major in (True, False):
            samples = chord_progression(tonic, major)
            values = audio.analyse(wav_bytes(samples)).values
            rows.append({"tonic": tonic, "major": major, "key": values["key"].value, "mode": values["mode"].value,
                         "key_confidence": round(values["key"].confidence, 3),
                         "mode_confidence": round(values["mode"].confidence, 3), "fit": round(key_fit(samples), 3),
                         "uncertain": bool(values["key"].doubt or values["mode"].doubt),
                         "right": values["key"].value == tonic and values["mode"].value == float(major)})
    return rows


def loudness_agreement() -> list[dict]:
    """Blockwise BS.1770 (``LoudnessMeter``, the decoder's block size) against pyloudnorm on a
    10 s song-like mix with a quiet first third, mono / stereo / 5.1 at 44.1 and 96 kHz (5.1:
    pyloudnorm on its five channels L R C Ls Rs, as it takes no LFE)."""
    import pyloudnorm

    from virality.audio.decode import BLOCK_FRAMES

    rows = []
    for rate in (44100, 96000):
        mono = song(110, 4, True, 10.0, rate=rate)[:, 0]
        mono[: len(mono) // 3] *= 0.02
        for layout, gains in (("mono", (1.0,)), ("stereo", (1.0, 0.7)), ("5.1", (1.0, 0.8, 0.6, 0.9, 0.4, 0.3))):
            samples = surround(mono, gains)
            meter = LoudnessMeter(rate, samples.shape[1])
            for start in range(0, len(samples), BLOCK_FRAMES):
                meter.add(samples[start:start + BLOCK_FRAMES])
            reference = samples[:, [0, 1, 2, 4, 5]] if layout == "5.1" else samples
            expected = pyloudnorm.Meter(rate).integrated_loudness(reference.astype(np.float64))
            rows.append({"rate": rate, "layout": layout, "pyloudnorm": round(float(expected), 4),
                         "blockwise": round(meter.integrated(), 4),
                         "difference_lu": float(abs(meter.integrated() - expected))})
    return rows


def noise_uncertainty(n: int = 5) -> list[dict]:
    """White noise (no beat, no key): its tempo clarity, key fit and margins, and which are flagged uncertain."""
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(n):
        samples = rng.normal(0, 0.1, 44100 * 20).astype(np.float32)
        values = audio.analyse(wav_bytes(samples)).values
        rows.append({"tempo_confidence": round(values["tempo"].confidence, 3), "fit": round(key_fit(samples), 3),
                     "key_confidence": round(values["key"].confidence, 3),
                     "mode_confidence": round(values["mode"].confidence, 3),
                     "uncertain": sorted(name for name in ("tempo", "key", "mode") if values[name].doubt)})
    return rows


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--memory-only", action="store_true", help="only the peak-memory table")
    p.add_argument("--code", default=str(ROOT), help="checkout whose virality package the memory table measures")
    args = p.parse_args()
    code = Path(args.code).resolve()
    if args.memory_only:
        table = memory_table(code)
        label = f"commit {_commit(code)}"
        name = "audio_memory" if code == ROOT else f"audio_memory_{_commit(code)}"
        load = os.getloadavg()[0]
        write_result(name, {"code": str(code), "commit": _commit(code), "load_average": load, "memory": table},
                     "\n".join(memory_markdown(table, label, load)))
        return
    with tempfile.TemporaryDirectory() as folder:
        files = write_files(Path(folder))
        baseline = timed(lambda: decode(files["WAV 10 min"], _Discard))
        speed = {name: timed(lambda p=path: audio.analyse(p)) for name, path in files.items()}
        breakdown = stages(files["WAV 10 min"])
    memory = memory_table()
    tempo, keys, noise = tempo_accuracy(), key_accuracy(), noise_uncertainty()
    payload = {"load_average": os.getloadavg(), "decode_wav_baseline": baseline, "analyse": speed,
               "stages_wav_s": breakdown, "memory": memory, "commit": _commit(ROOT),
               "loudness_vs_pyloudnorm": loudness_agreement(), "tempo": tempo, "keys": keys, "noise": noise}
    write_result("audio", payload, markdown(payload))


def spread(rows: list[dict], key: str) -> str:
    """``"0.16–0.35"``: the range of ``key`` over ``rows``."""
    return f"{min(r[key] for r in rows):.2f}–{max(r[key] for r in rows):.2f}"


def markdown(p: dict) -> str:
    base = p["decode_wav_baseline"]["wall_s"]
    lines = ["### Audio analysis speed (10 minutes of stereo 44.1 kHz audio)", "",
             f"Median of {REPEAT} runs after a warm-up; load average during the run "
             f"{p['load_average'][0]:.1f} on {os.cpu_count()} cores (other jobs share them). "
             f"Baseline: decoding the WAV alone, {base:.2f} s.", "",
             "| file | wall s | CPU s | × decode-only |", "|---|---:|---:|---:|"]
    for name, r in p["analyse"].items():
        lines.append(f"| {name} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} | {r['wall_s'] / base:.1f} |")
    lines += ["", "Steps (WAV, one run, s): " + ", ".join(f"{k} {v:.2f}" for k, v in p["stages_wav_s"].items()), ""]
    lines += memory_markdown(p["memory"], f"commit {p['commit']}", p["load_average"][0]) + [""]
    agreement = p["loudness_vs_pyloudnorm"]
    lines.append(f"- Blockwise BS.1770 loudness against pyloudnorm ({len(agreement)} signals: mono, stereo, 5.1 at "
                 f"44.1 and 96 kHz): largest difference {max(r['difference_lu'] for r in agreement):.1e} LU.")
    tempo = p["tempo"]
    for kind in ("clicks", "song"):
        rows = [r for r in tempo if r["signal"] == kind]
        errors = [abs(r["error"]) for r in rows if r["within_2"]]
        lines.append(f"- Tempo, {kind} at 60–200 BPM (step 10, {len(rows)} signals): "
                     f"{sum(r['within_2'] for r in rows)} within 2 BPM, "
                     f"{sum(r['within_2_incl_alternatives'] for r in rows)} within 2 BPM counting the reported "
                     f"half/double; median error of the direct hits {statistics.median(errors):.2f} BPM.")
    keys = p["keys"]
    lines.append(f"- Key and mode, all 24 keys (I–IV–V–I / i–iv–V–i): {sum(r['right'] for r in keys)} of 24 right; "
                 f"key confidence {spread(keys, 'key_confidence')}, mode confidence {spread(keys, 'mode_confidence')}.")
    noise = p["noise"]
    songs = [r for r in tempo if r["signal"] == "song"]
    lines.append(f"- Tempo confidence (pulse clarity): white noise {spread(noise, 'tempo_confidence')}, "
                 f"click tracks {spread([r for r in tempo if r['signal'] == 'clicks'], 'confidence')}, "
                 f"songs {spread(songs, 'confidence')}; flagged uncertain (< {audio.TEMPO_MIN_CLARITY}): "
                 f"{sum('tempo' in r['uncertain'] for r in noise)} of {len(noise)} noises, "
                 f"{sum(r['uncertain'] for r in tempo)} of {len(tempo)} click tracks and songs.")
    lines.append(f"- Key fit (best key-profile correlation): white noise {spread(noise, 'fit')}, progressions "
                 f"{spread(keys, 'fit')}; key margin of noise {spread(noise, 'key_confidence')}, mode margin "
                 f"{spread(noise, 'mode_confidence')}. Flagged uncertain (fit < {audio.KEY_MIN_FIT} or margin < "
                 f"{audio.KEY_MIN_MARGIN}): key and mode of {sum({'key', 'mode'} <= set(r['uncertain']) for r in noise)} "
                 f"of {len(noise)} noises, {sum(r['uncertain'] for r in keys)} of 24 progressions.")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
