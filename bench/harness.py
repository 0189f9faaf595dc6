#!/usr/bin/env python3
"""The performance harness: drives the release binaries on the real backing services with
wrk, beside a ceiling measured in the same run, and writes docs/performance.md.

Run through bench/run.sh, which installs the load generators, builds the binaries and starts
PostgreSQL, the broker and the S3 server. Settings (environment): RUNS (3), DURATION (10 s per
load run), CONNECTIONS (64), APPEND_CONNECTIONS (256), BATCH_CONNECTIONS (16),
OUT (docs/performance.md).

Nothing here asserts a time: it measures, prints and writes the figures, and marks each target
as met or missed.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / "target" / "release"
RUNS = int(os.environ.get("RUNS", "3"))
DURATION = int(os.environ.get("DURATION", "10"))
CONNECTIONS = int(os.environ.get("CONNECTIONS", "64"))
APPEND_CONNECTIONS = int(os.environ.get("APPEND_CONNECTIONS", "256"))
# figalize's outbox sends up to 16 batches at once (OUTBOX_CONCURRENCY).
BATCH_CONNECTIONS = int(os.environ.get("BATCH_CONNECTIONS", "16"))
OUT = ROOT / os.environ.get("OUT", "docs/performance.md")
ADMIN_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres:postgres@127.0.0.1:5432/postgres"
)
S3_KEY_ID = os.environ["S3_LOCAL_KEY_ID"]
S3_KEY_SECRET = os.environ["S3_LOCAL_KEY_SECRET"]
S3_BUCKET = os.environ["S3_LOCAL_BUCKET"]

PORTS = {
    "ceiling": 18099, "history": 18101, "figalize": 18102, "imagizer": 18103, "site": 18180,
    "figalize-baseline": 18104, "history-baseline": 18105, "site-baseline": 18181,
}
# An earlier commit's figalize, history and one-process site, built by bench/run.sh when
# BASELINE names it, measured in the same run, alternating with this commit's.
BASELINE_RELEASE = Path(os.environ["BASELINE_RELEASE"]) if os.environ.get("BASELINE_RELEASE") else None
BASELINE_COMMIT = os.environ.get("BASELINE_COMMIT", "")
FIGALIZE_BODY = '{"schema_id": 0, "phrase": "велосипед"}'
APPEND_BODY = '{"original": "велосипед", "figalized": "Фигосипед"}'
IMAGE_URL_BODY = '{"phrase": "Фигосипед"}'
# What figalize's outbox sends history at its maximum rate: full batches of fresh entries for
# FIGALIZE_BODY's phrase, as many as its defaults (.env.example's OUTBOX_BATCH_ENTRIES and
# OUTBOX_BATCH_BYTES) hold by its own measure: the id, both phrases, the request id and 64
# bytes of envelope each. The baseline's from its own .env.example, as its figalize sent them.
BATCH_PATH = "/api/append/batch/"
BATCH_ENTRY_BYTES = 36 + len("велосипед".encode()) + len("Фигосипед".encode()) + 36 + 64


def outbox_batch_entries(env_example: Path) -> int:
    settings = dict(line.split("=", 1) for line in env_example.read_text().splitlines()
                    if "=" in line and not line.startswith("#"))
    entries = int(settings.get("OUTBOX_BATCH_ENTRIES", "256"))
    return min(entries, int(settings["OUTBOX_BATCH_BYTES"]) // BATCH_ENTRY_BYTES)


BATCH_ENTRIES = outbox_batch_entries(Path(__file__).resolve().parent.parent / ".env.example")
BASELINE_BATCH_ENTRIES = (outbox_batch_entries(Path(os.environ["BASELINE_SOURCE"]) / ".env.example")
                          if os.environ.get("BASELINE_SOURCE") else BATCH_ENTRIES)
# A distroless/static base layer, as docker/services.Dockerfile uses (about 2 MB).
IMAGE_BASE_BYTES = 2_000_000

WORK = Path(tempfile.mkdtemp(prefix="figachechnaya-bench-"))
DATABASE = f"bench_{os.getpid()}"
BASELINE_DATABASE = f"bench_{os.getpid()}_baseline"
TOPIC = f"bench-{os.getpid()}"


def log(message: str) -> None:
    print(message, flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def psql(url: str, sql: str) -> str:
    return subprocess.run(
        ["psql", "-qtA", url, "-c", sql], check=True, capture_output=True, text=True
    ).stdout.strip()


def get(url: str, timeout: float = 0.5) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return 0


def post(url: str, body: str) -> tuple[int, str]:
    request = urllib.request.Request(
        url, data=body.encode(), headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


# ---------------------------------------------------------------------------------------------
# Processes


@dataclass
class Service:
    name: str
    binary: str
    port: int
    env: dict
    ready_path: str = "/api/healthz/"
    release: Path = RELEASE
    process: subprocess.Popen | None = None
    startup_ms: list[float] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> float:
        """Starts the binary and returns the milliseconds from spawn to its first ready answer."""
        if get(self.url(self.ready_path)) != 0:
            sys.exit(f"something already answers on port {self.port}: stop it first")
        logfile = open(WORK / f"{self.name}.log", "ab")
        env = {"PATH": os.environ["PATH"], "HOST": "127.0.0.1", **self.env}
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [str(self.release / self.binary)], env=env, stdout=logfile, stderr=subprocess.STDOUT
        )
        deadline = started + 60
        while get(self.url(self.ready_path), timeout=0.2) != 200:
            if self.process.poll() is not None:
                sys.exit(f"{self.name} exited at start-up: see {WORK / (self.name + '.log')}")
            if time.perf_counter() > deadline:
                sys.exit(f"{self.name} was not ready within 60 s")
            time.sleep(0.001)
        elapsed = (time.perf_counter() - started) * 1000
        self.startup_ms.append(elapsed)
        return elapsed

    def status(self, field_name: str) -> int:
        """A field of /proc/<pid>/status in bytes (VmRSS, VmHWM)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
        return 0

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def services() -> dict[str, Service]:
    # The load generator is one client with up to APPEND_CONNECTIONS connections.
    common = {"LOG_FORMAT": "json", "SHUTDOWN_DELAY_MS": "0", "SHUTDOWN_GRACE_MS": "10000",
              "MAX_CONNECTIONS_PER_CLIENT": "4096", "RATE_LIMIT_PER_SECOND": "0"}
    kafka = {"KAFKA_BOOTSTRAP": "127.0.0.1:9092", "KAFKA_TOPIC_NAME": TOPIC}
    def history(name: str, release: Path, database: str) -> Service:
        return Service(
            name,
            "history",
            PORTS[name],
            {
                **common,
                "HISTORY_API_PORT": str(PORTS[name]),
                "DATABASE_URL": ADMIN_URL.rsplit("/", 1)[0] + "/" + database,
            },
            release=release,
        )

    imagizer = Service(
        "imagizer",
        "imagizer",
        PORTS["imagizer"],
        {
            **common,
            **kafka,
            "IMAGIZER_API_PORT": str(PORTS["imagizer"]),
            "KAFKA_GROUP_ID": TOPIC,
            "KAFKA_SESSION_TIMEOUT_MS": "6000",
            "S3_BUCKET": S3_BUCKET,
            "S3_ENDPOINT": "http://127.0.0.1:3900",
            "S3_REGION": "garage",
            "S3_PATH": f"{TOPIC}/",
            "S3_ACCESS_KEY": S3_KEY_ID,
            "S3_SECRET_KEY": S3_KEY_SECRET,
            "S3_PUBLIC_URL": "http://127.0.0.1:3902/",
        },
    )

    def figalize(name: str, release: Path) -> Service:
        return Service(
            name,
            "figalize",
            PORTS[name],
            {
                **common,
                **kafka,
                "FIGALIZE_API_PORT": str(PORTS[name]),
                "HISTORY_APPEND_URL": f"http://127.0.0.1:{PORTS['history']}/api/append/",
                "JOURNAL_DIR": str(WORK / f"{name}-journal"),
            },
            release=release,
        )

    def site(name: str, release: Path) -> Service:
        env = {**common, "PORT": str(PORTS[name]), "DATA_DIR": str(WORK / f"{name}-data")}
        return Service(name, "figachechnaya", PORTS[name], env, release=release)

    ceiling = Service("ceiling", "examples/ceiling", PORTS["ceiling"], {"PORT": str(PORTS["ceiling"])})
    every = [history("history", RELEASE, DATABASE), imagizer, figalize("figalize", RELEASE),
             site("site", RELEASE), ceiling]
    if BASELINE_RELEASE:
        every += [figalize("figalize-baseline", BASELINE_RELEASE), site("site-baseline", BASELINE_RELEASE),
                  history("history-baseline", BASELINE_RELEASE, BASELINE_DATABASE)]
    return {s.name: s for s in every}


# ---------------------------------------------------------------------------------------------
# Load generators


@dataclass
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int  # non-2xx answers and socket errors
    requests: int = 0  # answers of any kind
    connections: int = 0
    cpu_us: float = float("nan")  # the server's CPU time per answer taken, microseconds


def to_ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", value)
    number, unit = float(match[1]), match[2]
    return {"us": number / 1000, "ms": number, "s": number * 1000}[unit]


def wrk(url: str, body: str | None, connections: int = CONNECTIONS, pause_ms: int = 0,
        duration: int = DURATION, script: str = "") -> Load:
    """wrk on one thread (the other core is the server's). With `pause_ms`, each connection
    waits that long after an answer before it asks again: a fixed rate of about
    connections / (pause + latency), at wrk's small cost per request. `script` is more of
    wrk's Lua, for requests that change."""
    args = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency"]
    if body is not None:
        script += (
            'wrk.method = "POST"\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = {json.dumps(body, ensure_ascii=False)}\n"
        )
    if pause_ms:
        script += f"function delay() return {pause_ms} end\n"
    if script:
        path = WORK / f"wrk-{hashlib.sha1(script.encode()).hexdigest()[:12]}.lua"
        path.write_text(script)
        args += ["-s", str(path)]
    out = subprocess.run(args + [url], check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])
    p50 = to_ms(re.search(r"^\s+50%\s+(\S+)", out, re.M)[1])
    p99 = to_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M)[1])
    requests = int(re.search(r"(\d+) requests in", out)[1])
    errors = int((re.search(r"Non-2xx or 3xx responses: (\d+)", out) or [0, 0])[1])
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if socket:
        errors += sum(int(n) for n in socket.groups())
    return Load(rps, p50, p99, errors, requests, connections)


PAUSE_MS = 4


def paced(url: str, body: str, rate: float) -> Load:
    """A fixed rate: wrk with PAUSE_MS between requests on each connection, the number of
    connections calibrated in a short run so that the rate comes out at `rate`."""
    connections = max(1, round(rate * PAUSE_MS / 1000))
    for _ in range(3):
        probe = wrk(url, body, connections, PAUSE_MS, duration=2)
        connections = max(1, round(connections * rate / max(probe.rps, 1.0)))
    return wrk(url, body, connections, PAUSE_MS)


TICK = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def machine_busy() -> float:
    """CPU seconds all cores have spent busy since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / TICK


def pids_of(pattern: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def cpu_split(procs: dict, scenario) -> tuple[Load, dict[str, float]]:
    """Runs `scenario` and returns its load and the cores each party used, on average."""
    parties = {name: [procs[name].process.pid] for name in ("figalize", "history", "imagizer")}
    parties["PostgreSQL"] = pids_of("^postgres")
    parties["Tansu (broker)"] = pids_of("tansu")
    before = {name: sum(process_cpu(p) for p in pids) for name, pids in parties.items()}
    busy, wall = machine_busy(), time.perf_counter()
    profiler = start_profile(procs["figalize"].process.pid)
    load = scenario()
    wall = time.perf_counter() - wall
    PROFILE.update(finish_profile(profiler))
    split = {name: (sum(process_cpu(p) for p in pids) - before[name]) / wall for name, pids in parties.items()}
    split["wrk and the rest"] = max(0.0, (machine_busy() - busy) / wall - sum(split.values()))
    return load, split


# Where figalize's own CPU time goes, by kind of work: share of perf's samples.
PROFILE: dict[str, float] = {}
PERF_DATA = WORK / "figalize.perf"
KINDS = [
    ("the kernel: sockets, wake-ups, scheduling", lambda dso, sym: dso.startswith("[kernel")),
    ("logging: formatting and the access log", lambda dso, sym: re.search(r"tracing|sharded_slab|telemetry|fmt::|Formatter|write_str|pad_integral|format_escaped|time::format|serialize_str|SerializableSpan", sym)),
    ("memory allocation", lambda dso, sym: re.search(r"\bmi_|_mi_|malloc|free\b|realloc", sym)),
    ("HTTP: hyper, axum, tower", lambda dso, sym: re.search(r"hyper|axum|tower|http::|httparse|bytes::", sym)),
    ("async runtime: tokio", lambda dso, sym: re.search(r"tokio|futures|parking|Notify|waker", sym)),
    ("Kafka producer: librdkafka", lambda dso, sym: "rdkafka" in sym or "rd_kafka" in sym or "libz" in dso or "crc32" in sym),
    ("metrics: prometheus", lambda dso, sym: "prometheus" in sym),
    ("figalize: transform, outbox, JSON", lambda dso, sym: re.search(r"figalize|common::|serde|uuid|md5|Md5|outbox", sym)),
    ("copies and the C library", lambda dso, sym: "libc" in dso or "memmove" in sym or "memcpy" in sym),
]


def start_profile(pid: int) -> subprocess.Popen | None:
    """Samples figalize with perf while the load runs, if perf works here."""
    if shutil.which("perf") is None:
        return None
    return subprocess.Popen(
        ["perf", "record", "-F", "999", "-p", str(pid), "-o", str(PERF_DATA)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def finish_profile(profiler: subprocess.Popen | None) -> dict[str, float]:
    if profiler is None:
        return {}
    profiler.send_signal(signal.SIGINT)
    profiler.wait(timeout=60)
    out = subprocess.run(
        ["perf", "report", "-i", str(PERF_DATA), "--no-children", "--sort", "dso,sym", "--stdio"],
        capture_output=True, text=True,
    ).stdout
    shares: dict[str, float] = {}
    for line in out.splitlines():
        match = re.match(r"\s+([\d.]+)%\s+(\S+)\s+\[.\]\s+(.*)", line)
        if not match:
            continue
        share, dso, sym = float(match[1]), match[2], match[3]
        kind = next((name for name, test in KINDS if test(dso, sym)), "other")
        shares[kind] = shares.get(kind, 0.0) + share
    return dict(sorted(shares.items(), key=lambda kv: -kv[1]))


# ---------------------------------------------------------------------------------------------
# The run


def pipeline_bench() -> tuple[float, float, float] | None:
    """figalize 200 → object stored at 50 jobs/s: the imagizer benchmark's own figures."""
    result = subprocess.run(
        ["cargo", "bench", "--locked", "-q", "-p", "imagizer", "--bench", "pipeline_latency"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    out = result.stdout + result.stderr
    (WORK / "pipeline.txt").write_text(out)
    stored = re.search(r"object stored: p50 ([\d.]+) ms, p99 ([\d.]+) ms", out)
    put = re.search(r"one PUT of the PNG: p50 ([\d.]+) ms", out)
    if result.returncode != 0 or not stored or not put:
        log(out[-2000:])
        return None
    return float(stored[1]), float(stored[2]), float(put[1])


def store_bench() -> dict[str, tuple[float, float]]:
    """Rows per second each store commits in batches, and one row per transaction: the history
    benchmark's own figures, by store."""
    result = subprocess.run(
        ["cargo", "bench", "--locked", "-q", "-p", "history", "--bench", "store_appends"],
        cwd=ROOT,
        env={**os.environ, "TEST_DATABASE_URL": ADMIN_URL, "STORES": "sqlite,postgres", "RUNS": str(RUNS)},
        capture_output=True,
        text=True,
    )
    out = result.stdout + result.stderr
    (WORK / "stores.txt").write_text(out)
    figures = {m[1]: (float(m[2]), float(m[3])) for m in re.finditer(r"^store_appends (\S+) ([\d.]+) ([\d.]+)$", out, re.M)}
    if result.returncode != 0 or len(figures) != 2:
        log(out[-2000:])
        return {}
    log(out)
    return figures


def stripped_size(binary: Path) -> int:
    copy = WORK / (binary.name + ".stripped")
    shutil.copy(binary, copy)
    subprocess.run(["strip", str(copy)], check=True)
    return copy.stat().st_size


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}"


def main() -> int:
    commit = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    # What the figures depend on: the code, the build and the harness.
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "crates", "bench", "Cargo.toml", "Cargo.lock"],
        cwd=ROOT, capture_output=True, text=True,
    ).stdout
    commit += " (with uncommitted changes)" if dirty.strip() else ""
    started = datetime.datetime.now(datetime.timezone.utc)
    psql(ADMIN_URL, f"create database {DATABASE}")
    if BASELINE_RELEASE:
        psql(ADMIN_URL, f"create database {BASELINE_DATABASE}")
    procs = services()
    try:
        return run(procs, commit, started)
    finally:
        for service in procs.values():
            service.stop()
        psql(ADMIN_URL, f"drop database if exists {DATABASE} with (force)")
        psql(ADMIN_URL, f"drop database if exists {BASELINE_DATABASE} with (force)")
        shutil.rmtree(WORK, ignore_errors=True)


def run(procs: dict[str, Service], commit: str, started: datetime.datetime) -> int:
    log(f"machine: {machine()}; commit {commit}")
    log(f"{RUNS} runs of {DURATION} s per scenario, {CONNECTIONS} connections (wrk -t1)")

    # Start-up to ready, with the dependencies already up: RUNS starts of each binary.
    order = ["history", "imagizer", "figalize", "site", "ceiling"]
    for i in range(RUNS):
        # A consumer group of its own per start: a member that left a moment ago can keep a
        # broker's group rebalancing for a while, which is not what is measured here.
        procs["imagizer"].env["KAFKA_GROUP_ID"] = f"{TOPIC}-{i}"
        for name in order:
            procs[name].start()
            if i < RUNS - 1:
                procs[name].stop()
    for name in order:
        log(f"start → ready {name}: median {median(procs[name].startup_ms):.1f} ms {['%.1f' % t for t in procs[name].startup_ms]}")
    time.sleep(2)
    idle_rss = {name: procs[name].status("VmRSS") for name in order}

    # A first figalization, so the image exists for getimageurl.
    status, answer = post(procs["figalize"].url("/api/figalize/"), FIGALIZE_BODY)
    assert status == 200, answer
    deadline = time.time() + 120
    while post(procs["imagizer"].url("/api/getimageurl/"), IMAGE_URL_BODY)[0] != 200:
        if time.time() > deadline:
            for name in ("figalize", "imagizer"):
                log(f"--- {name}'s log, last lines")
                log("\n".join((WORK / f"{name}.log").read_text().splitlines()[-15:]))
            sys.exit("imagizer never stored the first image within 2 minutes")
        time.sleep(0.1)

    # An earlier commit's figalize, history and site, when measured, each right after this
    # commit's run of the same scenario, so that both see the same machine.
    baseline = {}
    if BASELINE_RELEASE:
        for name in ("figalize-baseline", "site-baseline", "history-baseline"):
            procs[name].start()
        baseline = {
            "figalize": ("figalize-baseline", lambda: figalize_run(procs["figalize-baseline"], procs["history"])),
            "history-batch": ("history-batch-baseline",
                              lambda: batch_run(procs["history-baseline"], BASELINE_BATCH_ENTRIES, ordered=False)),
            "site-figalize": ("site-figalize-baseline", lambda: site_run(procs["site-baseline"])),
        }
    scenarios = {}
    for name, scenario in {
        "ceiling": lambda: wrk(procs["ceiling"].url("/"), FIGALIZE_BODY),
        "figalize": lambda: figalize_run(procs["figalize"], procs["history"]),
        "getschemas": lambda: wrk(procs["figalize"].url("/api/getschemas/"), None),
        "append": lambda: append_run(procs["history"]),
        "history-batch": lambda: batch_run(procs["history"], BATCH_ENTRIES),
        "getimageurl": lambda: wrk(procs["imagizer"].url("/api/getimageurl/"), IMAGE_URL_BODY),
        "site-figalize": lambda: site_run(procs["site"]),
    }.items():
        scenarios[name] = scenario
        if name in baseline:
            scenarios[baseline[name][0]] = baseline[name][1]
    results: dict[str, list[Load]] = {name: [] for name in scenarios}
    for i in range(1, RUNS + 1):
        for name, scenario in scenarios.items():
            load = scenario()
            results[name].append(load)
            log(f"run {i} {name:<14} {load.rps:>10.0f}/s  p50 {load.p50_ms:6.2f} ms  p99 {load.p99_ms:6.2f} ms  errors {load.errors}")
            time.sleep(1)

    # p99 of figalize at half its maximum rate.
    figalize_max = median([l.rps for l in results["figalize"]])
    half = [paced(procs["figalize"].url("/api/figalize/"), FIGALIZE_BODY, figalize_max / 2) for _ in range(RUNS)]
    for load in half:
        log(f"figalize at {figalize_max / 2:.0f}/s ({load.connections} connections): {load.rps:.0f}/s p50 {load.p50_ms:.2f} ms p99 {load.p99_ms:.2f} ms errors {load.errors}")
    # Where the two cores go while figalize runs at its maximum (history, PostgreSQL and the
    # broker do their share of each request on the same machine).
    split_load, split = cpu_split(procs, lambda: wrk(procs["figalize"].url("/api/figalize/"), FIGALIZE_BODY))
    log(f"CPU split at {split_load.rps:.0f}/s: " + ", ".join(f"{k} {v:.2f}" for k, v in split.items()))
    loaded_rss = {name: procs[name].status("VmHWM") for name in order}
    for service in procs.values():
        service.stop()

    log("image pipeline at 50 jobs/s (cargo bench -p imagizer --bench pipeline_latency)")
    pipeline = pipeline_bench()
    log("the stores' committed rows/s (cargo bench -p history --bench store_appends)")
    stores = store_bench()

    sizes = {}
    for name, binary in [("figalize", "figalize"), ("history", "history"), ("imagizer", "imagizer"), ("site (one process)", "figachechnaya"), ("ceiling", "examples/ceiling")]:
        path = RELEASE / binary
        sizes[name] = (path.stat().st_size, stripped_size(path))

    report = render(commit, started, results, half, figalize_max, pipeline, stores, procs, idle_rss, loaded_rss, sizes, (split_load, split))
    OUT.write_text(report)
    log(f"\nwrote {OUT.relative_to(ROOT)}\n")
    print(report)
    return 0


@dataclass
class Delivered:
    """One maximum-rate figalize run: what was answered and what history committed."""
    name: str
    answered: int  # figalizations answered 200
    rows: int  # rows history committed for the run, once the outbox had drained
    commit_rate: float  # rows history committed per second during the run
    answer_rate: float  # figalizations answered 200 per second
    refused: int  # 503s: the outbox or the journal was full
    backlog_5s: tuple[int, int]  # outbox entries, journal bytes, 5 s into the run
    backlog_end: tuple[int, int]  # the same as wrk stopped


# Every figalization answered 200 must reach history, one record per run.
COMMITTED: list[Delivered] = []


def history_rows(history: Service) -> int:
    return int(psql(history.env["DATABASE_URL"], "select coalesce(sum(total), 0) from history_total") or 0)


def site_rows(site: Service) -> int:
    path = Path(site.env["DATA_DIR"]) / "history.sqlite3"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return int(db.execute("select total from history_total").fetchone()[0])


def metrics(service: Service, *names: str) -> list[float]:
    """The sums of the named metric families, from one scrape."""
    text = urllib.request.urlopen(service.url("/metrics"), timeout=5).read().decode()
    return [sum(float(line.split()[-1]) for line in text.splitlines()
                if line.startswith(name + " ") or line.startswith(name + "{")) for name in names]


def backlog(service: Service) -> tuple[int, int]:
    """What figalize has accepted and not yet delivered: outbox entries and journal bytes."""
    depth, journal = metrics(service, "figachechnaya_figalize_history_outbox_depth",
                             "figachechnaya_figalize_journal_bytes")
    return int(depth), int(journal)


def delivered_run(figalize: Service, rows) -> Load:
    """figalize (alone or in the one-process site) at its maximum rate, its backlog read 5 s in
    and as wrk stops; then waits for the outbox to drain and counts the rows history committed
    against the figalizations answered 200."""
    before = rows()
    early: list[tuple[int, int]] = []
    sampler = threading.Timer(5, lambda: early.append(backlog(figalize)))
    sampler.start()
    load = measured_cpu(figalize, lambda: wrk(figalize.url("/api/figalize/"), FIGALIZE_BODY))
    sampler.join()
    at_end, rows_at_end = backlog(figalize), rows()
    deadline = time.time() + 60
    while backlog(figalize)[0] > 0 and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    taken = load.requests - load.errors
    COMMITTED.append(Delivered(
        figalize.name, taken, rows() - before, (rows_at_end - before) / DURATION, taken / DURATION,
        load.errors, early[0] if early else (-1, -1), at_end,
    ))
    return answered(load)


def figalize_run(figalize: Service, history: Service) -> Load:
    return delivered_run(figalize, lambda: history_rows(history))


def site_run(site: Service) -> Load:
    return delivered_run(site, lambda: site_rows(site))


def measured_cpu(service: Service, scenario) -> Load:
    """Runs `scenario` and sets the service's CPU time per answer taken (200)."""
    before = process_cpu(service.process.pid)
    load = scenario()
    taken = load.requests - load.errors
    load.cpu_us = (process_cpu(service.process.pid) - before) * 1e6 / max(taken, 1)
    return load


def answered(load: Load) -> Load:
    """Counts figalizations taken, not the 503s of a full outbox."""
    load.rps = (load.requests - load.errors) / DURATION
    return load


def append_run(history: Service) -> Load:
    database = history.env["DATABASE_URL"]
    before = int(psql(database, "select coalesce(sum(total), 0) from history_total") or 0)
    load = wrk(history.url("/api/append/"), APPEND_BODY, APPEND_CONNECTIONS)
    time.sleep(0.5)  # the writer's last batch
    after = int(psql(database, "select coalesce(sum(total), 0) from history_total") or 0)
    load.rps = (after - before) / DURATION  # committed rows, not answers
    return load


BATCH_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
math.randomseed({seed})
local sent = 0
local function id(i)
  if {ordered} then  -- time-ordered, as a UUIDv7: the run, then a counter
    return string.format("{run}-%016x-7000-8000", sent * 1000 + i)
  end
  return string.format("%08x-%04x-4%03x-%04x-%06x%06x", math.random(0, 0x7fffffff),
    math.random(0, 0xffff), math.random(0, 0xfff), math.random(0x8000, 0xbfff),
    math.random(0, 0xffffff), math.random(0, 0xffffff))
end
function request()
  sent = sent + 1
  local entries = {{}}
  for i = 1, {entries} do
    entries[i] = '{{"id":"' .. id(i) .. '","original":"велосипед","figalized":"Фигосипед",'
      .. '"request_id":"6f1c1e9a-3f55-4a55-9d0e-4f0e2b1d7c11"}}'
  end
  return wrk.format(nil, nil, nil, '{{"entries":[' .. table.concat(entries, ",") .. ']}}')
end
"""
BATCHES_SENT = [0]


def batch_run(history: Service, entries: int, ordered: bool = True) -> Load:
    """History's capacity on figalize's path: BATCH_CONNECTIONS clients (figalize's outbox
    sends as many batches at once) each sending batches of `entries` fresh entries; the rate
    is rows committed per second. The ids are time-ordered as figalize makes them, or random
    (UUIDv4) as the baseline's figalize made them."""
    BATCHES_SENT[0] += 1
    before = history_rows(history)
    script = BATCH_SCRIPT.format(entries=entries, run=f"{os.getpid():08x}{BATCHES_SENT[0]:04x}",
                                 ordered="true" if ordered else "false", seed=int(time.time()) + BATCHES_SENT[0])
    load = wrk(history.url(BATCH_PATH), None, BATCH_CONNECTIONS, script=script)
    time.sleep(0.5)  # the last batches' commits
    load.rps = (history_rows(history) - before) / DURATION
    return load


# ---------------------------------------------------------------------------------------------
# The report


def committed_verdict(answered: int, rows: int) -> str:
    if rows == answered:
        return "equal"
    if answered < rows <= answered + CONNECTIONS:
        return f"all, and {rows - answered} answered after wrk stopped counting"
    if rows < answered:
        return f"**{answered - rows} lost**"
    return f"**{rows - answered} more than could have been answered**"


def backlog_text(backlog: tuple[int, int]) -> str:
    entries, journal = backlog
    return "not read" if entries < 0 else f"{entries:,} entries, {journal / 1e6:.1f} MB"


def store_lines(stores: dict[str, tuple[float, float]], batch_rate: float, figalize_max: float) -> list[str]:
    lines = [
        "## History's writes",
        "",
        f"Through the service, on figalize's path (`POST /api/append/batch/`, {BATCH_CONNECTIONS} "
        f"clients, {BATCH_ENTRIES} entries a batch as figalize's outbox fills them, PostgreSQL): {batch_rate:,.0f} rows committed "
        f"per second, {batch_rate / max(figalize_max, 1):.1f}× the most figalizations figalize "
        "answered per second.",
        "",
    ]
    if not stores:
        return lines + ["The store benchmark failed in this run.", ""]
    return lines + [
        "The stores alone, called as the batching writer calls them "
        "(`cargo bench -p history --bench store_appends`: batches of 256 rows with fresh UUIDv7 "
        f"append ids as figalize makes them, medians of {RUNS} runs), against one row per transaction in the same run:",
        "",
        "| store | rows/s, batches | rows/s, one per transaction | ratio |",
        "|---|---:|---:|---:|",
        *[f"| {kind} | {batched:,.0f} | {single:,.0f} | {batched / single:.0f}× |" for kind, (batched, single) in stores.items()],
        "",
    ]


def profile_lines() -> list[str]:
    if not PROFILE:
        return ["No profile of figalize in this run (`perf` is not available or not permitted)."]
    return [
        "figalize's own time in the same run, by kind of work (`perf record -F 999` on its "
        "process, samples grouped by symbol; the kernel's share is its sockets and wake-ups):",
        "",
        "| figalize's CPU | share |",
        "|---|---:|",
        *[f"| {kind} | {share:.0f} % |" for kind, share in PROFILE.items()],
    ]


def baseline_lines(results: dict[str, list[Load]], ceiling: float) -> list[str]:
    """This commit against the baseline's, when one was measured in the run."""
    if "figalize-baseline" not in results:
        return []
    lines = [
        "## Against the baseline",
        "",
        f"The same scenarios on commit `{BASELINE_COMMIT}`, built by `BASELINE={BASELINE_COMMIT} "
        "bench/run.sh` and run right after this commit's, in each round. CPU per answer is the "
        "server process's user + system time over the answers it gave 200; it moves less than "
        "the rate on a shared machine.",
        "",
        "| scenario | baseline /s | this commit /s | this ÷ baseline | × ceiling, baseline → this | CPU µs per answer, baseline → this |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, label in (("figalize", "`POST /api/figalize/`, history + Kafka"), ("site-figalize", "one process: `POST /api/figalize/`")):
        before, after = results[f"{name}-baseline"], results[name]
        rate_before, rate_after = median([l.rps for l in before]), median([l.rps for l in after])
        cpu_before, cpu_after = median([l.cpu_us for l in before]), median([l.cpu_us for l in after])
        lines.append(
            f"| {label} | {rate_before:,.0f} | {rate_after:,.0f} | {rate_after / rate_before:.2f} | "
            f"{rate_before / ceiling:.2f} → {rate_after / ceiling:.2f} | {cpu_before:.1f} → {cpu_after:.1f} |"
        )
    return lines + [""]


def render(commit, started, results, half, figalize_max, pipeline, stores, procs, idle_rss, loaded_rss, sizes, split) -> str:
    ceiling = median([l.rps for l in results["ceiling"]])
    mb = lambda n: f"{n / 1_000_000:.1f} MB"
    rows = []
    labels = {
        "ceiling": "ceiling: minimal axum, JSON in and out",
        "figalize": "`POST /api/figalize/`, history + Kafka on (answered 200/s)",
        "getschemas": "`GET /api/getschemas/`",
        "append": f"`POST /api/append/`, {APPEND_CONNECTIONS} connections (committed rows/s)",
        "history-batch": f"`POST /api/append/batch/`, {BATCH_CONNECTIONS} connections, {BATCH_ENTRIES} entries a batch (committed rows/s)",
        "history-batch-baseline": f"baseline `{BASELINE_COMMIT}`: `POST /api/append/batch/`, {BASELINE_BATCH_ENTRIES} entries a batch with random ids, as its figalize sent them (committed rows/s)",
        "getimageurl": "`POST /api/getimageurl/` (image stored)",
        "site-figalize": "one process: `POST /api/figalize/` (SQLite, in-process queue; answered 200/s)",
        "figalize-baseline": f"baseline `{BASELINE_COMMIT}`: `POST /api/figalize/` (answered 200/s)",
        "site-figalize-baseline": f"baseline `{BASELINE_COMMIT}`: one process, `POST /api/figalize/` (answered 200/s)",
    }
    for name, loads in results.items():
        rps = median([l.rps for l in loads])
        errors, asked = sum(l.errors for l in loads), sum(l.requests for l in loads)
        rows.append(
            f"| {labels[name]} | {rps:,.0f} | {rps / ceiling:.2f} | "
            f"{median([l.p50_ms for l in loads]):.2f} | {median([l.p99_ms for l in loads]):.2f} | "
            f"{errors} | {errors / max(asked, 1):.2%} |"
        )
    figalize_ratio = figalize_max / ceiling
    append_rate = median([l.rps for l in results["append"]])
    batch_rate = median([l.rps for l in results["history-batch"]])
    site = results["site-figalize"]
    site_refused = sum(l.errors for l in site) / max(sum(l.requests for l in site), 1)
    runs = [d for d in COMMITTED if d.name in ("figalize", "site")]
    # At steady state nothing waiting grows: as wrk stops the outbox holds no more than 5 s in,
    # give or take one round of deliveries (16 batches of up to 256 entries), and the journal
    # keeps no more, give or take two of its 1 MiB segments.
    def steady(d: Delivered) -> bool:
        return (d.backlog_end[0] <= max(d.backlog_5s[0], 0) + 16 * 256
                and d.backlog_end[1] <= max(d.backlog_5s[1], 0) + 2 * 1024 * 1024)
    half_p99 = median([l.p99_ms for l in half])
    services_only = ["history", "imagizer", "figalize"]
    worst_idle = max(idle_rss[n] for n in services_only)
    worst_start = max(median(procs[n].startup_ms) for n in services_only)

    def verdict(ok: bool) -> str:
        return "met" if ok else "**missed**"

    targets = [
        ("figalize with history + Kafka ≥ 50 % of the ceiling", f"{figalize_ratio:.0%}", verdict(figalize_ratio >= 0.5)),
        ("figalize p99 ≤ 10 ms at half its maximum rate", f"{half_p99:.2f} ms at {median([l.rps for l in half]):,.0f}/s achieved", verdict(half_p99 <= 10)),
        ("history ≥ 20,000 committed appends/s", f"{append_rate:,.0f}/s", verdict(append_rate >= 20000)),
        ("history commits more rows/s than figalize answers", f"{batch_rate:,.0f} rows/s against {figalize_max:,.0f} answers/s", verdict(batch_rate > figalize_max)),
    ]
    if "history-batch-baseline" in results:
        before = median([l.rps for l in results["history-batch-baseline"]])
        targets.append((f"history's committed rows/s ≥ 2× `{BASELINE_COMMIT}`'s", f"{batch_rate / before:.2f}× ({before:,.0f} → {batch_rate:,.0f})", verdict(batch_rate >= 2 * before)))
    if "sqlite" in stores:
        targets.append(("the SQLite store ≥ 100,000 committed rows/s", f"{stores['sqlite'][0]:,.0f}/s", verdict(stores["sqlite"][0] >= 100_000)))
    targets.append(("one process at its maximum rate refuses ≤ 1 %", f"{site_refused:.2%}", verdict(site_refused <= 0.01)))
    for name in ("figalize", "site"):
        mine = [d for d in runs if d.name == name]
        targets.append((
            f"{'figalize' if name == 'figalize' else 'one process'}: what waits does not grow at steady state (5 s in → the end)",
            "; ".join(f"{d.backlog_5s[0]:,} → {d.backlog_end[0]:,} entries, {d.backlog_5s[1] / 1e6:.1f} → {d.backlog_end[1] / 1e6:.1f} MB" for d in mine),
            verdict(all(steady(d) for d in mine)),
        ))
    if pipeline:
        targets.append(("pipeline at 50 jobs/s: p50 ≤ 100 ms", f"{pipeline[0]:.1f} ms", verdict(pipeline[0] <= 100)))
        targets.append(("pipeline at 50 jobs/s: p99 ≤ 500 ms", f"{pipeline[1]:.1f} ms", verdict(pipeline[1] <= 500)))
    else:
        targets.append(("image pipeline at 50 jobs/s", "the benchmark failed (see the harness output)", "**missed**"))
    targets.append(("idle RSS ≤ 20 MB per service", f"{worst_idle / 1_000_000:.1f} MB at most", verdict(worst_idle <= 20_000_000)))
    targets.append(("start to ready ≤ 100 ms", f"{worst_start:.1f} ms at most", verdict(worst_start <= 100)))

    lines = [
        "# Performance",
        "",
        "Written by `bench/run.sh`; do not edit by hand. Run it again to measure this machine.",
        "",
        f"- **Machine:** {machine()}",
        f"- **Date:** {started:%Y-%m-%d %H:%M} UTC",
        f"- **Commit:** `{commit}`",
        f"- **Settings:** {RUNS} runs of {DURATION} s per scenario, medians shown; wrk with one thread "
        f"and {CONNECTIONS} connections (the other core serves); release binaries; PostgreSQL, Tansu "
        "and Garage on loopback, one instance of each service.",
        "",
        "Absolute numbers drift on a shared machine; the ratio to the ceiling, measured in the same "
        "run with the same profile, allocator and load generator, is the figure to compare.",
        "",
        "## Targets",
        "",
        "| target | measured | |",
        "|---|---|---|",
        *[f"| {t} | {m} | {v} |" for t, m, v in targets],
        "",
        "## Throughput at the maximum rate",
        "",
        "| scenario | requests/s | × ceiling | p50 ms | p99 ms | errors | refused |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        "Errors in the figalize rows are 503s: figalize refuses a figalization when its journal or "
        "its outbox to history is full, rather than lose one it accepted; the last column is their "
        "share of the answers. After each run, once the outbox had drained, the rows history had "
        "committed against the figalizations wrk counted as answered 200 (wrk stops counting with "
        f"up to {CONNECTIONS} requests in flight, which figalize may still take and answer, so a "
        "few more rows than answers is expected; fewer would be a loss). Beside them: the rate "
        "figalize answered and the rate history committed during the run, and what waited for "
        "history 5 s into the run and as it ended (outbox entries; journal kept on disk):",
        "",
        "| run | figalize | answered 200 | rows committed | | answered/s | committed/s | waiting at 5 s | waiting at the end |",
        "|---:|---|---:|---:|---|---:|---:|---:|---:|",
        *[
            f"| {i} | {d.name} | {d.answered:,} | {d.rows:,} | {committed_verdict(d.answered, d.rows)} | "
            f"{d.answer_rate:,.0f} | {d.commit_rate:,.0f} | {backlog_text(d.backlog_5s)} | {backlog_text(d.backlog_end)} |"
            for i, d in enumerate(COMMITTED, 1)
        ],
        "",
        *baseline_lines(results, ceiling),
        "## Where the cores go",
        "",
        f"During one more maximum-rate run of `POST /api/figalize/` ({split[0].rps:,.0f}/s), the cores "
        "each party kept busy, on average (from `/proc`; 2.00 is the whole machine):",
        "",
        "| party | cores | CPU µs per answer |",
        "|---|---:|---:|",
        *[f"| {name} | {cores:.2f} | {cores * 1e6 / max(split[0].rps, 1):.1f} |" for name, cores in split[1].items()],
        "",
        "Each figalization also costs history an append (batched into PostgreSQL) and the broker "
        "a produced message: on one machine those parties and the load generator share the two "
        "cores with figalize, while the ceiling has them to itself.",
        "",
        *profile_lines(),
        "",
        *store_lines(stores, batch_rate, figalize_max),
        "## Latency at a fixed rate",
        "",
        f"`POST /api/figalize/` asked at half its maximum rate ({figalize_max / 2:,.0f}/s: wrk on "
        f"one thread, {median([l.connections for l in half]):.0f} connections each pausing "
        f"{PAUSE_MS} ms after every answer, the count calibrated to the rate), achieved "
        f"{median([l.rps for l in half]):,.0f}/s: p50 {median([l.p50_ms for l in half]):.2f} ms, "
        f"p99 {half_p99:.2f} ms, {sum(l.errors for l in half)} errors over {RUNS} runs.",
        "",
        "## Image pipeline",
        "",
    ]
    if pipeline:
        lines.append(
            f"figalize's 200 → the PNG stored in S3, at a steady 50 jobs/s through Tansu and Garage: "
            f"p50 {pipeline[0]:.1f} ms, p99 {pipeline[1]:.1f} ms; baseline, one plain `PUT` of the "
            f"same PNG: p50 {pipeline[2]:.1f} ms (the pipeline's p50 is {pipeline[0] / pipeline[2]:.1f}× a PUT)."
        )
    else:
        lines.append("The pipeline benchmark failed in this run.")
    lines += [
        "",
        "## Start-up and memory",
        "",
        "| process | start → ready, ms (median) | RSS idle | RSS peak under load |",
        "|---|---:|---:|---:|",
    ]
    for name in ["history", "imagizer", "figalize", "site", "ceiling"]:
        lines.append(
            f"| {name} | {median(procs[name].startup_ms):.1f} | {mb(idle_rss[name])} | {mb(loaded_rss[name])} |"
        )
    lines += [
        "",
        "Start → ready: from spawning the binary to its first 200 from `/api/healthz/` (readiness, "
        "dependencies already up), polled every millisecond.",
        "",
        "## Sizes",
        "",
        "| binary | release build | stripped | image (estimate) |",
        "|---|---:|---:|---:|",
    ]
    for name, (size, stripped) in sizes.items():
        image = mb(stripped + IMAGE_BASE_BYTES) if name in ("figalize", "history", "imagizer") else "—"
        lines.append(f"| {name} | {mb(size)} | {mb(stripped)} | {image} |")
    lines += [
        "",
        "The images hold the stripped static binary on `distroless/static` (about 2 MB); the "
        "estimate is that sum, as no image is built here (the images build the musl target, whose "
        "size is close to this glibc build's).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
