"""Many users on one server: N simulated sessions over Streamlit's own websocket protocol.

    python -m benchmarks.load                      # N = 1, 5, 10, 25, 50; writes benchmarks/results/load.{md,json}
    python -m benchmarks.load --sessions 5 --seconds 10 --upload-rows 2000 --no-write   # a quick look
    python -m benchmarks.load --sessions 25 50 --servers 1 2 --out-name load_servers      # 1 and 2 processes

For each N a fresh ``streamlit run app.py`` (the repo's ``.streamlit/config.toml``; only
``server.disconnectedSessionTTL`` is lowered to ``SESSION_TTL`` s so closed sessions are really
dropped before memory is read again; one more visitor comes and goes after that, since Streamlit
drops expired sessions when another session leaves) is warmed up by one visitor (model loaded,
Batch imported),
then N visitors (``benchmarks.stclient``, no browser) arrive within a second, open Predict and
move the Danceability slider once a second for ``--seconds``: each waits for the new score
before its next move, so a slow server gets fewer moves, never overlapping ones. Latency is from
sending the move to the run's ``script_finished`` (the score's own element arrives a little
earlier; both are kept). Then visitor 0 opens Batch and uploads ``--upload-rows`` invented tracks
(``benchmarks.score.invented_tracks``) while the others keep moving; their latencies while the
upload is read and scored are reported apart.

With ``--servers K`` each round runs K ``streamlit run app.py`` processes on K free ports and
visitor i talks to server i mod K (the uploading visitor 0 to server 0), as a reverse proxy with
sticky sessions (nginx ``ip_hash``) would send them; RSS and CPU are summed over the K processes
and reported per process in the JSON. Several K are interleaved per N, like ``--compare``'s two
apps, so each meets the same machine load.

Every score a visitor sees is checked against the bundled model's score for the song that
visitor set (a session showing another session's song counts as an error), and the upload's
"scored n of n" line is checked too. Server RSS is read from ``/proc/<pid>/status`` (VmRSS)
four times a second; server CPU from ``/proc/<pid>/stat``. The 1-minute load average is recorded
before and after each N: the machine is shared.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path

import numpy as np

from benchmarks.common import parser, write_result
from benchmarks.predict import _free_port, _wait_healthy
from benchmarks.stclient import Session, SessionError

ROOT = Path(__file__).resolve().parent.parent
SESSIONS = (1, 5, 10, 25, 50)
SECONDS = 60.0
UPLOAD_ROWS = 100_000
SESSION_TTL = 5  # s a closed session's state is kept (Streamlit's default is 120)
SLIDER, SCORE = "Danceability", "Predicted popularity"
MOVE_EVERY = 1.0
UPLOAD_TIMEOUT = 900.0  # s for the upload's run (a move that takes 120 s counts as an error)
GOAL_SESSIONS, GOAL_P95, GOAL_UPLOAD_P95, GOAL_RSS_MB = 25, 1.0, 2.0, 300


# --- the server ----------------------------------------------------------------------------

@contextlib.contextmanager
def server(log: Path, app_dir: Path = ROOT) -> Iterator[tuple[str, int]]:
    """``streamlit run app.py`` in ``app_dir`` (its own ``.streamlit/config.toml``) on a free port;
    yields ``(base URL, pid)``."""
    port = _free_port()
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
             "--server.address", "127.0.0.1", "--server.headless", "true",
             "--server.disconnectedSessionTTL", str(SESSION_TTL)],
            cwd=app_dir, stdout=sink, stderr=subprocess.STDOUT)
        try:
            _wait_healthy(port, timeout=120)
            yield f"http://127.0.0.1:{port}", process.pid
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()


@contextlib.contextmanager
def servers(k: int, n: int, app_dir: Path = ROOT) -> Iterator[list[tuple[str, int]]]:
    """``k`` servers (``server``), started one after another so each port is taken before the next
    is chosen; yields their ``(base URL, pid)``s. Logs in the temp folder, named by ``n`` and ``k``."""
    logs = Path(tempfile.gettempdir())
    names = [f"virality-load-server-{n}.log"] if k == 1 else [
        f"virality-load-server-{n}-of-{k}-{j}.log" for j in range(k)]
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(server(logs / name, app_dir)) for name in names]


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` in MB (``VmRSS``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds ``pid`` has used (all threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Memory:
    """RSS samples of the server processes, MB (one per pid, read together), tagged with the phase
    they were taken in."""

    pids: list[int]
    samples: list[tuple[str, tuple[float, ...]]] = field(default_factory=list)
    phase: str = "warm"

    async def watch(self, every: float = 0.25) -> None:
        while True:
            self.samples.append((self.phase, tuple(rss_mb(pid) for pid in self.pids)))
            await asyncio.sleep(every)

    def peak(self, *phases: str) -> float:
        """The highest summed RSS of the samples taken in ``phases``."""
        return max(sum(mbs) for phase, mbs in self.samples if phase in phases)

    def peaks(self, *phases: str) -> list[float]:
        """Each process's own highest RSS in ``phases`` (one per pid)."""
        return [max(column) for column in zip(*(mbs for phase, mbs in self.samples if phase in phases))]


# --- the visitors ----------------------------------------------------------------------------

class ExpectedScores:
    """The score the page must show for the typical song with danceability ``value``."""

    def __init__(self):
        import torch

        from virality.features import default_song
        from virality.model.prediction import load_predictor

        torch.set_num_threads(1)
        self.predictor, self.song, self.known = load_predictor(), default_song(), {}

    def __call__(self, value: float) -> str:
        if value not in self.known:
            self.known[value] = f"{self.predictor.predict_song({**self.song, 'danceability': value}).score:.1f}"
        return self.known[value]


def slider_values(index: int) -> Iterator[float]:
    """Visitor ``index``'s own sequence of Danceability values (0.00–1.00, never twice in a row)."""
    step = 0
    while True:
        yield round(((index * 37 + step * 13) % 101) / 100, 2)
        step += 1


@dataclass
class Sample:
    phase: str
    seconds: float  # move sent → script_finished
    score_seconds: float  # move sent → the score's element


@dataclass
class Visitor:
    index: int
    base_url: str
    expected: ExpectedScores
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    first_load: float | None = None
    session: Session | None = None
    slider_id: str = ""

    async def arrive(self) -> None:
        self.session = Session(self.base_url)
        await self.session.open()
        run = await self.session.rerun()
        self.first_load = run.seconds
        self.slider_id = run.widget("slider", SLIDER).id

    async def move(self, phases: dict, stop: asyncio.Event, offset: float) -> None:
        """Move the slider once a second (after ``offset`` s) until ``stop``; each move waits for its score."""
        values = slider_values(self.index)
        next_at = time.monotonic() + offset
        while not stop.is_set():
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            if stop.is_set():
                return
            value, phase = next(values), phases["now"]
            self.session.set_slider(self.slider_id, value)
            try:
                run = await self.session.rerun()
            except SessionError as err:
                self.errors.append(f"visitor {self.index}: {err}")
                return
            shown, wanted = run.metric(SCORE), self.expected(value)
            if shown != wanted:
                self.errors.append(f"visitor {self.index}: danceability {value} shows {shown}, its own song scores "
                                   f"{wanted} (another session's song?)")
            self.samples.append(Sample(phase, run.seconds, run.arrival(run.widget_index("metric", SCORE))))
            next_at = max(next_at + MOVE_EVERY, time.monotonic())

    async def upload(self, data: bytes, n_rows: int) -> float:
        """Open Batch, upload ``data``; seconds from the upload's start to the scored page."""
        run = await self.session.rerun(page="Batch")
        uploader = run.widget("file_uploader", "A CSV")
        self.session.timeout = UPLOAD_TIMEOUT
        start = time.monotonic()
        await self.session.upload(uploader.id, "invented_tracks.csv", data)
        run = await self.session.rerun()
        seconds = time.monotonic() - start
        if not any(f"scored {n_rows:,} of {n_rows:,}" in text for text in run.texts()):
            raise SessionError(f"the upload did not end with 'scored {n_rows:,} of {n_rows:,}'")
        return seconds


def upload_bytes(n_rows: int) -> bytes:
    from benchmarks.score import invented_tracks

    return invented_tracks(n_rows, seed=1).to_csv(index=False).encode()


async def warm_up(base_url: str) -> None:
    """One visitor loads Predict (the model) and Batch (its imports), then leaves."""
    async with Session(base_url) as session:
        await session.rerun()
        await session.rerun(page="Batch")


def own_cpu_seconds() -> float:
    """CPU seconds this client process has used (it shares the machine with the server)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def one_round(n: int, seconds: float, data: bytes, n_rows: int, expected: ExpectedScores,
                    app_dir: Path = ROOT, label: str = "this branch", k: int = 1) -> dict:
    """One N on ``k`` fresh servers (visitor i on server i mod k); the round's JSON entry."""
    with servers(k, n, app_dir) as running:
        urls, pids = [url for url, _ in running], [pid for _, pid in running]
        for url in urls:
            await warm_up(url)
        memory = Memory(pids)
        watcher = asyncio.create_task(memory.watch())
        await asyncio.sleep(0.5)
        load_before, rss_start = os.getloadavg()[0], [rss_mb(pid) for pid in pids]
        visitors = [Visitor(i, urls[i % k], expected) for i in range(n)]
        memory.phase = "arrive"
        arrivals = await asyncio.gather(*(_arrive_after(v, i / n) for i, v in enumerate(visitors)),
                                        return_exceptions=True)
        errors = [f"visitor {i} could not open Predict: {err}" for i, err in enumerate(arrivals) if err]
        present = [v for v, err in zip(visitors, arrivals) if not err]
        phases, stop_all, stop_first = {"now": "moving"}, asyncio.Event(), asyncio.Event()
        memory.phase, cpu_start, moving_start = "moving", [cpu_seconds(pid) for pid in pids], time.monotonic()
        client_cpu_start = own_cpu_seconds()
        movers = [asyncio.create_task(v.move(phases, stop_first if v.index == 0 else stop_all, i / n))
                  for i, v in enumerate(present)]
        await asyncio.sleep(seconds)
        cpu_moving = [cpu_seconds(pid) - before for pid, before in zip(pids, cpu_start)]
        moving_seconds = time.monotonic() - moving_start
        client_cpu = own_cpu_seconds() - client_cpu_start
        phases["now"] = memory.phase = "upload"
        stop_first.set()
        upload_seconds = None
        if present and present[0].index == 0:
            await movers[0]
            try:
                upload_seconds = await present[0].upload(data, n_rows)
            except SessionError as err:
                errors.append(f"upload: {err}")
        phases["now"] = "after"
        stop_all.set()
        await asyncio.gather(*movers)
        memory.phase = "open"
        await asyncio.sleep(1.0)
        rss_open = [rss_mb(pid) for pid in pids]
        await asyncio.gather(*(v.session.close() for v in present))
        memory.phase = "closed"
        await asyncio.sleep(SESSION_TTL + 1)
        for url in urls:  # a later visitor: Streamlit drops expired sessions when another one leaves
            await warm_up(url)
        await asyncio.sleep(10)  # ui.sessions collects 5 s after a session ends
        rss_closed, load_after = [rss_mb(pid) for pid in pids], os.getloadavg()[0]
        watcher.cancel()
    rss = {"start": rss_start, "peak_moving": memory.peaks("arrive", "moving"),
           "peak_upload": memory.peaks("upload") if upload_seconds else None,
           "sessions_open_end": rss_open, "after_close": rss_closed}
    moves = sum(1 for v in present for s in v.samples if s.phase == "moving")
    return {
        "app": label, "sessions": n, "servers": k, "load_average_before": round(load_before, 2),
        "load_average_after": round(load_after, 2),
        **latencies(present),
        "moves_per_session_per_s": round(moves / max(len(present), 1) / moving_seconds, 3),
        **server_cpu(sum(cpu_moving), moves, moving_seconds),
        "client_cpu_share_moving": round(client_cpu / moving_seconds, 3),
        "upload_rows": n_rows, "upload_s": None if upload_seconds is None else round(upload_seconds, 2),
        "errors": len(errors) + sum(len(v.errors) for v in visitors),
        "error_examples": (errors + [e for v in visitors for e in v.errors])[:5],
        "rss_mb": {**rss_entry(rss, sum), "peak_moving": round(memory.peak("arrive", "moving"), 1),
                   "peak_upload": round(memory.peak("upload"), 1) if upload_seconds else None},
        "per_server": [per_server(j, urls[j], present, cpu_moving[j], moving_seconds, rss) for j in range(k)],
    }


def latencies(visitors: list[Visitor]) -> dict:
    """The latency summaries (``summary``, s) of these visitors' first loads and moves, by phase."""
    def moves(phase: str, seconds: str = "seconds") -> dict:
        return summary([getattr(s, seconds) for v in visitors for s in v.samples if s.phase == phase])

    return {"first_load_s": summary([v.first_load for v in visitors]), "moving": moves("moving"),
            "moving_to_score": moves("moving", "score_seconds"), "during_upload": moves("upload")}


def server_cpu(cpu_moving: float, moves: int, moving_seconds: float) -> dict:
    """Server CPU (s) while the visitors moved, per move and as a share of one core."""
    return {"server_cpu_s_per_move": round(cpu_moving / moves, 4) if moves else None,
            "server_cpu_share_moving": round(cpu_moving / moving_seconds, 3)}


def rss_entry(rss: dict, pick) -> dict:
    """``rss`` (each value one MB figure per server, or None) reduced by ``pick`` (``sum``, or one
    server's ``itemgetter``) and rounded to 0.1 MB."""
    return {key: None if values is None else round(pick(values), 1) for key, values in rss.items()}


def per_server(j: int, url: str, present: list[Visitor], cpu_moving: float, moving_seconds: float,
               rss: dict) -> dict:
    """Server ``j``'s own figures: its visitors' latencies, its CPU and RSS (MB)."""
    mine = [v for v in present if v.base_url == url]
    moves = sum(1 for v in mine for s in v.samples if s.phase == "moving")
    return {"server": j, "url": url, "visitors": len(mine), **latencies(mine),
            **server_cpu(cpu_moving, moves, moving_seconds), "rss_mb": rss_entry(rss, itemgetter(j))}


async def _arrive_after(visitor: Visitor, delay: float) -> None:
    await asyncio.sleep(delay)
    await visitor.arrive()


def summary(values: list[float | None]) -> dict:
    """``{"n", "median", "p95", "max"}`` in seconds (None when there are no values)."""
    values = [v for v in values if v is not None]
    if not values:
        return {"n": 0, "median": None, "p95": None, "max": None}
    return {"n": len(values), "median": round(statistics.median(values), 3),
            "p95": round(float(np.percentile(values, 95)), 3), "max": round(max(values), 3)}


# --- the report ------------------------------------------------------------------------------

def seconds_text(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def markdown(rounds: list[dict], command: str, seconds: float, n_rows: int) -> str:
    counts = sorted({r["servers"] for r in rounds})
    several = counts != [1]
    lines = [
        f"# Many users on {', '.join(map(str, counts))} server processes" if several else "# Many users on one server",
        "",
        f"`{command}` — each N on a fresh `streamlit run app.py`; N visitors speak Streamlit's websocket protocol "
        f"(`benchmarks/stclient.py`, no browser), open Predict and move a slider once a second for {seconds:.0f} s "
        f"(each waits for its new score before moving again), then visitor 0 uploads {n_rows:,} invented tracks on "
        "Batch while the others keep moving. Latency: move sent → the run's `script_finished` (seconds). "
        "RSS: the server process (`/proc/<pid>/status` VmRSS, MB). Server CPU: user + system of the server "
        "process while the visitors move, per move. Client CPU: this benchmark's own process, as a share of one "
        "core (it runs on the same 2 cores). Load average: 1-minute, before → after each round, on a machine "
        "shared with other jobs.",
        *(["", f"Servers K = {', '.join(map(str, counts))}: each round runs K `streamlit run app.py` processes on K "
            "ports and visitor i talks to server i mod K (visitor 0, the uploader, to server 0), as a reverse proxy "
            "with sticky sessions would send them; the K of one N run one after another, so they meet the same "
            "machine load. RSS and server CPU are summed over the K processes (each process's own figures are in "
            "the JSON's `per_server`)."] if several else []),
        "",
        "| app | N | servers | moves/session/s | median | p95 | max | others' p95 during upload | upload → scored page "
        "| errors | RSS start → peak (moving) → peak (upload) → after close | server CPU per move | client CPU "
        "| load avg |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rounds:
        rss, moving, upload = r["rss_mb"], r["moving"], r["during_upload"]
        cpu = r["server_cpu_s_per_move"]
        lines.append(
            f"| {r['app']} | {r['sessions']} | {r['servers']} | {r['moves_per_session_per_s']:.2f} | {seconds_text(moving['median'])} | "
            f"{seconds_text(moving['p95'])} | {seconds_text(moving['max'])} | {seconds_text(upload['p95'])} "
            f"({upload['n']} moves) | {seconds_text(r['upload_s'])} s | {r['errors']} | {rss['start']:.0f} → "
            f"{rss['peak_moving']:.0f} → {rss['peak_upload'] or 0:.0f} → {rss['after_close']:.0f} | "
            f"{'–' if cpu is None else f'{cpu * 1000:.0f} ms'} | {r['client_cpu_share_moving']:.0%} | "
            f"{r['load_average_before']:.1f} → {r['load_average_after']:.1f} |")
    for app, k in dict.fromkeys((r["app"], r["servers"]) for r in rounds):
        name = f"{app}, {k} server{'s' if k > 1 else ''}" if several else app
        lines += ["", *goal_lines([r for r in rounds if (r["app"], r["servers"]) == (app, k)], name)]
    examples = [f"{r['app']}, N = {r['sessions']}" + (f", K = {r['servers']}" if several else "") + f": {e}"
                for r in rounds for e in r["error_examples"]]
    if examples:
        lines += ["", "First errors:", *(f"- {e}" for e in examples[:8])]
    return "\n".join(lines)


def goal_lines(rounds: list[dict], app: str) -> list[str]:
    at_goal = next((r for r in rounds if r["sessions"] == GOAL_SESSIONS), None)
    if at_goal is None:
        return [f"{app}: N = {GOAL_SESSIONS} not run, no goal verdict."]
    rss = at_goal["rss_mb"]
    growth = max(rss["peak_moving"], rss["peak_upload"] or 0) - rss["start"]
    checks = [
        (f"p95 under {GOAL_P95:.0f} s with {GOAL_SESSIONS} sessions", at_goal["moving"]["p95"] < GOAL_P95,
         f"{at_goal['moving']['p95']:.2f} s"),
        ("no errors", at_goal["errors"] == 0, str(at_goal["errors"])),
        (f"server RSS growth under {GOAL_RSS_MB} MB", growth < GOAL_RSS_MB, f"{growth:.0f} MB (peak − start)"),
        (f"others' p95 under {GOAL_UPLOAD_P95:.0f} s during a {at_goal['upload_rows']:,}-row upload",
         (at_goal["during_upload"]["p95"] or 0) < GOAL_UPLOAD_P95, f"{seconds_text(at_goal['during_upload']['p95'])} s"),
    ]
    return [f"Goals at N = {GOAL_SESSIONS} ({app}):",
            *(f"- {what}: **{'met' if ok else 'not met'}** ({value})" for what, ok, value in checks)]


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--sessions", type=int, nargs="+", default=list(SESSIONS))
    p.add_argument("--seconds", type=float, default=SECONDS, help="how long the visitors move before the upload")
    p.add_argument("--upload-rows", type=int, default=UPLOAD_ROWS)
    p.add_argument("--compare", metavar="DIR", help="another checkout of the app (e.g. `git archive main`): each N "
                   "runs there first, then here, so both meet the same machine load")
    p.add_argument("--servers", type=int, nargs="+", default=[1], metavar="K",
                   help="server processes per round, visitor i on server i mod K; several K run one after "
                   "another for each N")
    p.add_argument("--out-name", default="load", help="write benchmarks/results/<name>.{md,json}")
    p.add_argument("--no-write", action="store_true", help="print the table, leave benchmarks/results alone")
    args = p.parse_args(argv)
    if min(args.servers) < 1:
        p.error(f"--servers: each K must be at least 1 (got {min(args.servers)})")
    data, expected = upload_bytes(args.upload_rows), ExpectedScores()
    apps = [(Path(args.compare).resolve(), "before"), (ROOT, "after")] if args.compare else [(ROOT, "this branch")]
    rounds = []
    for n in args.sessions:
        for app_dir, label in apps:
            for k in args.servers:
                rounds.append(asyncio.run(one_round(n, args.seconds, data, args.upload_rows, expected, app_dir,
                                                    label, k)))
                print(rounds[-1], flush=True)
    command = " ".join(["python -m benchmarks.load", *(sys.argv[1:] if argv is None else argv)])
    report = markdown(rounds, command, args.seconds, args.upload_rows)
    payload = {"command": command, "seconds": args.seconds, "upload_rows": args.upload_rows,
               "upload_mb": round(len(data) / 1e6, 1), "session_ttl_s": SESSION_TTL, "compare": args.compare,
               "servers": args.servers, "rounds": rounds}
    if args.no_write:
        print(report)
    else:
        write_result(args.out_name, payload, report)


if __name__ == "__main__":
    main()
