"""Where the engine's time goes: py-spy profiles of the latency run and the throughput run, on
SQLite and on PostgreSQL, in-process as ``bench/run.py`` measures them.

    python bench/profile.py [--stores sqlite,postgresql] [--phases latency,throughput]
                            [--latency-runs 500] [--runs 5000] [--rate 250]

For each store and phase, ``py-spy record`` (``--format raw``: collapsed stacks, active
threads only) samples a child process that runs that phase alone on a fresh database: the
latency phase starts ``--latency-runs`` 3-step runs one after the other, the throughput phase
``--runs`` at once. The stacks go to ``bench/results/profile-<store>-<phase>.folded`` (open
them with speedscope or flamegraph.pl), and the top frames, by own time and by time including
callees (file and function, line numbers merged), to ``….txt`` next to them and to the screen.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results"
PG_BASE = os.environ.get("LEGATO_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
FRAME = re.compile(r"^(?P<fn>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


#: frames under everything (the event loop, thread start-up, this script): left out of the
#: "including callees" list, where they would only say 100 %
PLUMBING = (
    "(asyncio/runners.py)",
    "(asyncio/base_events.py)",
    "(asyncio/events.py)",
    "(threading.py)",
    "(concurrent/futures/thread.py)",
    "(bench/profile.py)",
)


IDLE = "_worker (concurrent/futures/thread.py"


def short(frame: str) -> str:
    """``function (path:line)`` → ``function (package/module.py)``."""
    m = FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    path = m["file"]
    for marker in ("site-packages/", "/lib/python3", str(ROOT) + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{m['fn']} ({path})"


def top_frames(folded: Path, count: int = 20) -> str:
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in folded.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit() or "handshake (" in stack:
            continue
        if stack.rsplit(";", 1)[-1].startswith(IDLE):
            continue  # a step thread of the pool waiting for work
        k = int(n)
        samples += k
        frames = [short(f) for f in stack.split(";")]
        own[frames[-1]] += k
        for f in set(frames):
            if not f.endswith(PLUMBING):
                total[f] += k
    if not samples:
        return "no samples\n"
    lines = [
        f"{samples} samples (py-spy's active threads; step threads waiting for work left out)",
        "",
        "own time:",
    ]
    lines += [f"  {100 * k / samples:5.1f}%  {f}" for f, k in own.most_common(count)]
    lines += ["", "including callees:"]
    lines += [f"  {100 * k / samples:5.1f}%  {f}" for f, k in total.most_common(count)]
    return "\n".join(lines) + "\n"


# -- the profiled child ------------------------------------------------------------------


def handshake(word: str) -> None:
    """Tell the parent where the child stands; wait until it answers."""
    print(word, flush=True)
    sys.stdin.readline()


async def target(store: str, phase: str, url: str, opts: argparse.Namespace) -> None:
    from bench import engine
    from legato.engine.worker import WorkerConfig
    from legato.model.starts import StartRun

    async with engine.opened(url) as (app, p):
        app.start_engine(workers=1, config=WorkerConfig(concurrency=32))
        for _ in range(3):
            await engine.one_run(app, p, 600)
        handshake("ready")  # the parent attaches py-spy now
        if phase == "latency":
            for _ in range(opts.latency_runs):
                await engine.one_run(app, p, 600)
        else:
            run = SimpleNamespace(start_concurrency=16, timeout=900.0)
            await engine.burst(app, p, StartRun(engine.WORKFLOW), opts.runs, 3, run)
        handshake("done")  # the parent stops py-spy before the teardown


def record(spy: str, child: list[str], folded: Path, rate: int) -> int:
    """Run the child; sample it with py-spy from its "ready" to its "done" only."""
    proc = subprocess.Popen(
        child, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdin is not None and proc.stdout is not None
    spy_proc = None
    try:
        for line in proc.stdout:
            word = line.strip()
            if word == "ready":
                cmd = [spy, "record", "--format", "raw", "-r", str(rate), "-o", str(folded)]
                cmd += ["--pid", str(proc.pid)]
                print(f"   {' '.join(cmd)}", flush=True)
                spy_proc = subprocess.Popen(cmd)
                time.sleep(1.5)  # py-spy attaches
            elif word == "done" and spy_proc is not None:
                spy_proc.send_signal(signal.SIGINT)  # py-spy writes its file and exits
                spy_proc.wait(60)
            else:
                continue
            proc.stdin.write("go\n")
            proc.stdin.flush()
        proc.wait(120)
    finally:
        if proc.poll() is None:
            proc.kill()
    if proc.returncode != 0:
        return proc.returncode
    return spy_proc.returncode if spy_proc is not None else 1


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="profile", description=__doc__.split("\n\n")[0])
    ap.add_argument("--stores", default="sqlite,postgresql")
    ap.add_argument("--phases", default="latency,throughput")
    ap.add_argument("--latency-runs", type=int, default=500)
    ap.add_argument("--runs", type=int, default=5000)
    ap.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    ap.add_argument("--pg-url", default=PG_BASE)
    ap.add_argument("--target", nargs=2, metavar=("STORE", "PHASE"), help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    if opts.target:
        workdir = Path(tempfile.mkdtemp(prefix="legato-profile-"))
        from bench import engine
        from legato.runtime import run_event_loop

        store, phase = opts.target
        url = engine.fresh_store(store, SimpleNamespace(pg_url=opts.pg_url), workdir, "profile")
        try:
            run_event_loop(target(store, phase, url, opts))  # the loop the bench measures on
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
            if store == "postgresql":
                asyncio.run(engine.recreate_pg(opts.pg_url, "legato_bench_profile", True))
        return 0
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        print("py-spy is not installed: pip install -e '.[bench]'", file=sys.stderr)
        return 1
    RESULTS.mkdir(parents=True, exist_ok=True)
    failed = 0
    for store in opts.stores.split(","):
        for phase in opts.phases.split(","):
            folded = RESULTS / f"profile-{store}-{phase}.folded"
            child = [
                sys.executable,
                str(Path(__file__).resolve()),
                f"--latency-runs={opts.latency_runs}",
                f"--runs={opts.runs}",
                f"--pg-url={opts.pg_url}",
                "--target",
                store,
                phase,
            ]
            print(f"== {store} {phase}: {' '.join(child[1:])}", flush=True)
            folded.unlink(missing_ok=True)
            code = record(spy, child, folded, opts.rate)
            if code != 0 or not folded.exists():
                print(f"   py-spy exited {code}", file=sys.stderr)
                failed += 1
                continue
            summary = top_frames(folded)
            folded.with_suffix(".txt").write_text(summary)
            print(summary, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
