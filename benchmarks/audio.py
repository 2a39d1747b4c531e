"""Audio analysis: speed on 10 minutes of audio, and accuracy on synthetic signals of known truth.

``python -m benchmarks.audio`` (``--data`` is accepted and ignored) writes
``benchmarks/results/audio.{md,json}``. Speed: median wall and CPU seconds of
``virality.audio.analysis.analyse`` on a 10-minute stereo 44.1 kHz song as WAV, FLAC and MP3 (and a
12-minute MP3, of which 10 minutes are analysed), with plain decoding of the WAV measured in the
same run as the baseline. Accuracy: tempo and key on the synthetic signals of tests/audio_signals.py.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import parser, write_result
from tests.audio_signals import chord_progression, click_track, song, wav_bytes
from virality.audio import analysis as audio

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


def stages(path: Path) -> dict[str, float]:
    """Wall seconds of each step of one analysis (after the warm-up runs above)."""
    out, t = {}, time.perf_counter()
    decoded = audio.decode(path)
    out["decode"], t = time.perf_counter() - t, time.perf_counter()
    audio.measure_loudness(decoded.samples, decoded.sample_rate)
    out["loudness (BS.1770)"], t = time.perf_counter() - t, time.perf_counter()
    mono = audio.analysis_signal(decoded.samples, decoded.sample_rate)
    out["mono mix + resample"], t = time.perf_counter() - t, time.perf_counter()
    audio.measure_tempo(audio.onset_envelope(mono))
    out["onsets + tempo"], t = time.perf_counter() - t, time.perf_counter()
    audio.measure_key(audio.mean_chroma(mono))
    out["chroma + key"] = time.perf_counter() - t
    return out


def tempo_accuracy() -> list[dict]:
    """Click tracks and click+chord songs at 60–200 BPM: estimate, error, reported alternatives."""
    rows = []
    for bpm in range(60, 201, 10):
        for kind, samples in (("clicks", click_track(bpm)), ("song", song(bpm, bpm % 12, True, 20.0))):
            m = audio.analyse(wav_bytes(samples)).values["tempo"]
            alternatives = [a["value"] for a in m.alternatives]
            rows.append({"bpm": bpm, "signal": kind, "estimate": m.value, "confidence": round(m.confidence, 3),
                         "error": round(m.value - bpm, 2),
                         "within_2": abs(m.value - bpm) <= 2,
                         "within_2_incl_alternatives": any(abs(v - bpm) <= 2 for v in [m.value, *alternatives])})
    return rows


def key_accuracy() -> list[dict]:
    """All 24 keys as I–IV–V–I / i–iv–V–i progressions."""
    rows = []
    for tonic in range(12):
        for major in (True, False):
            values = audio.analyse(wav_bytes(chord_progression(tonic, major))).values
            rows.append({"tonic": tonic, "major": major, "key": values["key"].value, "mode": values["mode"].value,
                         "key_confidence": round(values["key"].confidence, 3),
                         "mode_confidence": round(values["mode"].confidence, 3),
                         "right": values["key"].value == tonic and values["mode"].value == float(major)})
    return rows


def noise_confidence(n: int = 5) -> list[float]:
    """Tempo confidence of white noise (no beat): how low it goes."""
    rng = np.random.default_rng(0)
    return [round(audio.analyse(wav_bytes(rng.normal(0, 0.1, 44100 * 20).astype(np.float32)))
                  .values["tempo"].confidence, 3) for _ in range(n)]


def main() -> None:
    parser(__doc__.splitlines()[0]).parse_args()
    with tempfile.TemporaryDirectory() as folder:
        files = write_files(Path(folder))
        baseline = timed(lambda: audio.decode(files["WAV 10 min"]))
        speed = {name: timed(lambda p=path: audio.analyse(p)) for name, path in files.items()}
        breakdown = stages(files["WAV 10 min"])
    tempo, keys, noise = tempo_accuracy(), key_accuracy(), noise_confidence()
    payload = {"load_average": os.getloadavg(), "decode_wav_baseline": baseline, "analyse": speed,
               "stages_wav_s": breakdown, "tempo": tempo, "keys": keys, "noise_tempo_confidence": noise}
    write_result("audio", payload, markdown(payload))


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
                 f"key confidence {min(r['key_confidence'] for r in keys):.2f}–{max(r['key_confidence'] for r in keys):.2f}, "
                 f"mode confidence {min(r['mode_confidence'] for r in keys):.2f}–{max(r['mode_confidence'] for r in keys):.2f}.")
    lines.append(f"- Tempo confidence of white noise (no beat): {', '.join(map(str, p['noise_tempo_confidence']))}; "
                 f"of the click tracks: {min(r['confidence'] for r in tempo if r['signal'] == 'clicks'):.2f} or more.")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
