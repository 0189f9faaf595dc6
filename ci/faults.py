#!/usr/bin/env python3
"""Fault injection under load: the promise that whatever fails, the site keeps answering and
nothing it accepted is lost.

Started by ci/faults.sh, which builds the services and prepares the backing services this
suite owns: a PostgreSQL cluster, a Kafka-protocol broker (Tansu) keeping its data in an S3
bucket outside its process, and an S3 server (Garage) for the images. This script runs the three
services as separate processes on them, sends figalize a steady load, and in turn:

  1. kill -9 history, restart it after 5 s
  2. stops PostgreSQL for 10 s
  3. stops the broker for 10 s (its storage is durable: a restart keeps topics and offsets)
  4. stops the S3 server for 10 s
  5. kill -9 imagizer while it works through a batch, restarts it
  6. SIGTERM each service in turn under load (a rolling restart)

After each it waits for the backlog to drain, then checks:
  - figalize answered non-5xx to at least 99.9 % of the requests (a refused or dropped
    connection counts as a failure);
  - every accepted figalization (answer 200) has exactly one history row;
  - every accepted figalization's text has its PNG in the bucket;
  - a SIGTERM failed no request: none of the load's, none the stopping process logged as 5xx;
  - readiness of the affected service went false during the fault and true after.

It prints a table of these figures per scenario and exits non-zero when a check fails.

The load: FAULTS_RATE figalizations per second (100) from FAULTS_THREADS connections (8), each
with a phrase of its own. FAULTS_SCENARIOS (e.g. "2,5") runs only some of the scenarios. Requests go to the figalize instances whose readiness answers 200,
as a Kubernetes Service routes to ready endpoints; during figalize's rolling restart the
replacement starts before the old instance is told to stop.
"""

from __future__ import annotations

import hashlib
import http.client
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

ENV = os.environ
BIN = Path(ENV["FAULTS_BIN"])
STATE = Path(ENV["FAULTS_STATE"])
RATE = float(ENV.get("FAULTS_RATE", "100"))
THREADS = int(ENV.get("FAULTS_THREADS", "8"))
SETTLE_SECONDS = float(ENV.get("FAULTS_SETTLE_SECONDS", "120"))
PG_CTL = ENV["FAULTS_PG_CTL"].split()
PG_DATA = ENV["FAULTS_PG_DATA"]
PG_PORT = int(ENV["FAULTS_PG_PORT"])
PG_SOCKETS = ENV["FAULTS_PG_SOCKETS"]
PSQL = ENV.get("FAULTS_PSQL", "psql")
TANSU = ENV["FAULTS_TANSU"]
BROKER_PORT = int(ENV["FAULTS_BROKER_PORT"])
BROKER_STORAGE_PORT = int(ENV["FAULTS_BROKER_STORAGE_PORT"])
BROKER_BUCKET = ENV["FAULTS_BROKER_BUCKET"]
GARAGE = ENV["FAULTS_GARAGE"]
IMAGES_CONFIG = ENV["FAULTS_IMAGES_CONFIG"]
IMAGES_PORT = int(ENV["FAULTS_IMAGES_PORT"])
IMAGES_BUCKET = ENV["FAULTS_IMAGES_BUCKET"]
S3_KEY_ID = ENV["FAULTS_S3_KEY_ID"]
S3_KEY_SECRET = ENV["FAULTS_S3_KEY_SECRET"]
HISTORY_PORT = int(ENV.get("FAULTS_HISTORY_PORT", "18401"))
FIGALIZE_PORTS = (int(ENV.get("FAULTS_FIGALIZE_PORT", "18402")), int(ENV.get("FAULTS_FIGALIZE_PORT_2", "18412")))
IMAGIZER_PORT = int(ENV.get("FAULTS_IMAGIZER_PORT", "18403"))
KAFKA_DEBUG = ENV.get("FAULTS_KAFKA_DEBUG", "cgrp")

DATABASE_URL = f"postgres://postgres@127.0.0.1:{PG_PORT}/postgres"
# The share of answers that must not be 5xx (or a failed connection).
NON_5XX_TARGET = 0.999
# How long a stopping service keeps serving with readiness off: the time a router (here the
# load's, in Kubernetes the endpoints controller) needs to stop sending it requests.
SHUTDOWN_DELAY_MS = 1500
PROBE_INTERVAL = 0.1


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---------------------------------------------------------------------------------------------
# Processes


class Process:
    """A process this suite starts, signals and restarts; each start logs to a file of its own."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int):
        self.name, self.argv, self.env, self.port = name, argv, env, port
        self.popen: subprocess.Popen | None = None
        self.starts = 0
        self.log_path: Path | None = None

    def start(self) -> None:
        self.starts += 1
        self.log_path = STATE / f"{self.name}.{self.starts}.log"
        with open(self.log_path, "wb") as out:
            self.popen = subprocess.Popen(
                self.argv,
                env={**ENV, **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            self.popen.send_signal(sig)

    def wait_exit(self, timeout: float) -> int | None:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
        if not self.alive():
            return self.popen.returncode if self.popen else None
        self.signal(signal.SIGTERM)
        code = self.wait_exit(timeout)
        if code is None:
            self.signal(signal.SIGKILL)
            code = self.wait_exit(10)
        return code

    def wait_port(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise SystemExit(f"{self.name} exited while starting; log: {self.log_path}\n{tail(self.log_path)}")
            try:
                with socket_to(self.port):
                    return
            except OSError:
                time.sleep(0.1)
        raise SystemExit(f"{self.name} does not listen on {self.port} within {timeout} s; log: {self.log_path}")


def socket_to(port: int):
    import socket

    return socket.create_connection(("127.0.0.1", port), timeout=1)


def tail(path: Path | None, lines: int = 20) -> str:
    if path is None or not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def http_request(port: int, method: str, path: str, body: bytes | None = None, timeout: float = 2,
                 host: str | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"content-type": "application/json"} if body is not None else {}
        if host:
            headers["host"] = host
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def ready(port: int) -> bool:
    try:
        return http_request(port, "GET", "/api/healthz/", timeout=1)[0] == 200
    except OSError:
        return False


def wait_ready(process: Process, timeout: float = 60) -> float:
    """Waits until the process's readiness answers 200; returns the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if not process.alive():
            raise SystemExit(f"{process.name} exited while starting; log: {process.log_path}\n{tail(process.log_path)}")
        if ready(process.port):
            return time.monotonic() - started
        time.sleep(0.1)
    raise SystemExit(f"{process.name} was not ready within {timeout} s; log: {process.log_path}\n{tail(process.log_path)}")


def metrics(port: int) -> dict[str, float]:
    """The process's metrics, summed over labels: name -> value."""
    status, body = http_request(port, "GET", "/metrics")
    if status != 200:
        raise RuntimeError(f"/metrics on {port} answered {status}")
    values: dict[str, float] = {}
    for line in body.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        name_part, _, value = line.rpartition(" ")
        name = name_part.split("{", 1)[0]
        values[name] = values.get(name, 0.0) + float(value)
    return values


def answered_5xx(log_path: Path, since: float) -> int:
    """Requests the process's log shows answered with a 5xx status from `since` (seconds since
    the epoch) on, but for readiness probes (a stopping process answers those 503 on purpose)."""
    count = 0
    for line in log_path.read_text(errors="replace").splitlines():
        if "request answered" not in line:
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        status, route = entry.get("status"), entry.get("span", {}).get("route")
        at = datetime.fromisoformat(entry.get("timestamp", "1970-01-01T00:00:00Z").replace("Z", "+00:00"))
        if at.timestamp() < since:
            continue
        if isinstance(status, int) and status >= 500 and route != "/api/healthz/":
            count += 1
    return count


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kwargs)


# ---------------------------------------------------------------------------------------------
# The stack


class PostgreSQL:
    """The suite's own cluster, stopped and started with pg_ctl."""

    def start(self) -> None:
        run(PG_CTL + ["-D", PG_DATA, "-l", f"{PG_DATA}/server.log", "-w", "-t", "60",
                      "-o", f"-p {PG_PORT} -k {PG_SOCKETS} -c listen_addresses=127.0.0.1", "start"])

    def stop(self) -> None:
        run(PG_CTL + ["-D", PG_DATA, "-w", "-t", "60", "-m", "fast", "stop"])

    def query(self, sql: str) -> list[list[str]]:
        out = run([PSQL, DATABASE_URL, "-AtX", "-F", "\t", "-c", sql]).stdout
        return [line.split("\t") for line in out.splitlines() if line]


class Stack:
    def __init__(self) -> None:
        self.pg = PostgreSQL()
        self.broker = Process(
            "tansu",
            [TANSU, "broker", "--listener-url", f"tcp://127.0.0.1:{BROKER_PORT}",
             "--advertised-listener-url", f"tcp://127.0.0.1:{BROKER_PORT}",
             "--storage-engine", f"s3://{BROKER_BUCKET}/"],
            {"AWS_ACCESS_KEY_ID": S3_KEY_ID, "AWS_SECRET_ACCESS_KEY": S3_KEY_SECRET,
             "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT": f"http://127.0.0.1:{BROKER_STORAGE_PORT}",
             "AWS_ALLOW_HTTP": "true"},
            BROKER_PORT,
        )
        self.s3 = Process("garage-images", [GARAGE, "-c", IMAGES_CONFIG, "server"], {}, IMAGES_PORT)
        common = {"HOST": "127.0.0.1", "LOG_FORMAT": "json", "RUST_LOG": "info",
                  "SHUTDOWN_DELAY_MS": str(SHUTDOWN_DELAY_MS), "SHUTDOWN_GRACE_MS": "20000"}
        kafka = {"KAFKA_BOOTSTRAP": f"127.0.0.1:{BROKER_PORT}", "KAFKA_TOPIC_NAME": "figalized"}
        # The broker's object store keeps one object per record batch and lists them to serve
        # a fetch: 100 ms batches keep it to about ten objects a second instead of a hundred.
        producer = {"KAFKA_LINGER_MS": "100"}
        # librdkafka's account of imagizer's group membership (joins, assignments, heartbeats)
        # in its log, to tell a stalled group from a stalled fetch.
        consumer_debug = {"KAFKA_DEBUG": KAFKA_DEBUG, "RUST_LOG": "info,common::kafka=debug"} if KAFKA_DEBUG else {}
        self.history = Process(
            "history", [str(BIN / "history")],
            {**common, "HISTORY_API_PORT": str(HISTORY_PORT), "DATABASE_URL": DATABASE_URL},
            HISTORY_PORT,
        )
        self.imagizer = Process(
            "imagizer", [str(BIN / "imagizer")],
            {**common, **kafka, **consumer_debug, "IMAGIZER_API_PORT": str(IMAGIZER_PORT), "KAFKA_GROUP_ID": "imagizer",
             "KAFKA_SESSION_TIMEOUT_MS": "6000", "S3_BUCKET": IMAGES_BUCKET,
             "S3_ENDPOINT": f"http://127.0.0.1:{IMAGES_PORT}", "S3_REGION": "garage",
             "S3_ACCESS_KEY": S3_KEY_ID, "S3_SECRET_KEY": S3_KEY_SECRET, "S3_PUBLIC_URL": "/images/"},
            IMAGIZER_PORT,
        )
        self.figalize = [
            Process(
                f"figalize-{index + 1}", [str(BIN / "figalize")],
                {**common, **kafka, **producer, "FIGALIZE_API_PORT": str(port),
                 "HISTORY_APPEND_URL": f"http://127.0.0.1:{HISTORY_PORT}/api/append/"},
                port,
            )
            for index, port in enumerate(FIGALIZE_PORTS)
        ]
        # The figalize instance in service (the other one takes over in a rolling restart).
        self.current = 0

    def start(self) -> None:
        log("Starting PostgreSQL, the broker and the image store")
        self.pg.start()
        self.s3.start()
        self.s3.wait_port(30)
        self.broker.start()
        self.broker.wait_port(30)
        log("Starting history, imagizer and figalize")
        for process in (self.history, self.imagizer, self.figalize[0]):
            process.start()
        for process in (self.history, self.imagizer, self.figalize[0]):
            wait_ready(process)
        wait_for_consumer(self.imagizer)

    def services(self) -> list[Process]:
        return [self.history, self.imagizer, *self.figalize]

    def stop(self) -> None:
        for process in [*self.services(), self.broker, self.s3]:
            process.stop(timeout=20)
        try:
            self.pg.stop()
        except subprocess.CalledProcessError:
            pass


def wait_for_consumer(imagizer: Process, timeout: float = 60) -> None:
    """Waits until imagizer has joined its group and been assigned the topic's partitions, as
    its log says."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "Kafka partitions assigned" in imagizer.log_path.read_text(errors="replace"):
            return
        if not imagizer.alive():
            break
        time.sleep(0.2)
    raise SystemExit(f"imagizer was not assigned the topic within {timeout} s\n{tail(imagizer.log_path)}")


# ---------------------------------------------------------------------------------------------
# Readiness, watched


@dataclass
class Sample:
    at: float
    ok: bool
    detail: str


class ReadinessWatch:
    """Probes each service's readiness every 100 ms, each from a thread of its own so a slow
    answer delays no other, and keeps what it saw."""

    def __init__(self, processes: list[Process]):
        self.processes = processes
        self.samples: dict[str, list[Sample]] = {p.name: [] for p in processes}
        self.stopping = threading.Event()
        self.lock = threading.Lock()

    def start(self) -> None:
        for process in self.processes:
            threading.Thread(target=self.probe, args=(process,), daemon=True).start()

    def probe(self, process: Process) -> None:
        while not self.stopping.is_set():
            try:
                status, body = http_request(process.port, "GET", "/api/healthz/", timeout=1)
                ok = status == 200
                detail = "ready" if ok else json.loads(body or b"{}").get("code", str(status))
            except (OSError, http.client.HTTPException):
                ok, detail = False, "down"
            except (ValueError, AttributeError):
                ok, detail = False, "not the error shape"
            with self.lock:
                self.samples[process.name].append(Sample(time.monotonic(), ok, detail))
            time.sleep(PROBE_INTERVAL)

    def latest(self, name: str) -> Sample | None:
        with self.lock:
            samples = self.samples[name]
            return samples[-1] if samples else None

    def between(self, name: str, start: float, end: float) -> list[Sample]:
        with self.lock:
            return [s for s in self.samples[name] if start <= s.at <= end]


# ---------------------------------------------------------------------------------------------
# The load

# Syllables that make every phrase a different Russian-looking word: the transformation keeps
# the tail of a word, so each answer differs too.
SYLLABLES = [c + v for c in "бвгдзклмнпрстф" for v in "аеиоу"]


def phrase(number: int) -> str:
    syllables = []
    while True:
        number, digit = divmod(number, len(SYLLABLES))
        syllables.append(SYLLABLES[digit])
        if number == 0:
            break
    return "велоси" + "".join(syllables)


@dataclass
class Answer:
    phrase: str
    sent: float
    status: int | None
    text: str | None = None
    error: str | None = None


@dataclass
class Load:
    """A steady load on figalize: RATE requests per second from THREADS connections."""

    stack: Stack
    watch: ReadinessWatch
    numbers: itertools.count
    answers: list[Answer] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    turn: itertools.count = field(default_factory=itertools.count)

    def start(self) -> None:
        begin = time.monotonic()
        for index in range(THREADS):
            thread = threading.Thread(target=self.worker, args=(begin + index / RATE,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def stop(self) -> list[Answer]:
        self.stopping.set()
        for thread in self.threads:
            thread.join()
        return self.answers

    def targets(self) -> list[Process]:
        """The figalize instances to send to: the ready ones, as a Service would route."""
        running = [p for p in self.stack.figalize if p.alive()]
        ready_ones = [p for p in running if (s := self.watch.latest(p.name)) is not None and s.ok]
        return ready_ones or running or [self.stack.figalize[self.stack.current]]

    def worker(self, next_at: float) -> None:
        connections: dict[int, http.client.HTTPConnection] = {}
        period = THREADS / RATE
        while not self.stopping.is_set():
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            next_at += period
            targets = self.targets()
            for port in [port for port in connections if port not in {t.port for t in targets}]:
                connections.pop(port).close()
            target = targets[next(self.turn) % len(targets)]
            with self.lock:
                number = next(self.numbers)
            answer = Answer(phrase(number), time.monotonic(), None)
            body = json.dumps({"schema_id": 0, "phrase": answer.phrase}).encode()
            try:
                conn = connections.get(target.port)
                if conn is None:
                    conn = connections[target.port] = http.client.HTTPConnection("127.0.0.1", target.port, timeout=10)
                conn.request("POST", "/api/figalize/", body=body, headers={"content-type": "application/json"})
                response = conn.getresponse()
                payload = response.read()
                answer.status = response.status
                if response.status == 200:
                    answer.text = json.loads(payload)["data"]
                if response.will_close:
                    connections.pop(target.port).close()
            except Exception as err:  # noqa: BLE001 - every failure is an answer to count
                answer.error = type(err).__name__
                stale = connections.pop(target.port, None)
                if stale:
                    stale.close()
            with self.lock:
                self.answers.append(answer)
        for conn in connections.values():
            conn.close()


# ---------------------------------------------------------------------------------------------
# Checks


def image_key(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def missing_images(texts: set[str]) -> set[str]:
    """The texts whose PNG the image bucket does not hold (asked through Garage's public web
    endpoint, not through imagizer)."""
    missing = set()
    conn = http.client.HTTPConnection("127.0.0.1", IMAGES_PORT + 2, timeout=5)
    host = f"{IMAGES_BUCKET}.web.localhost"
    try:
        for text in texts:
            conn.request("HEAD", f"/{image_key(text)}.png", headers={"host": host})
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                missing.add(text)
    except (OSError, http.client.HTTPException):
        return set(texts)
    finally:
        conn.close()
    return missing


def broker_objects(prefix: str) -> list[str]:
    """The keys under `prefix` in the broker's bucket (moto lists for unsigned requests)."""
    keys: list[str] = []
    token = ""
    while True:
        query = f"list-type=2&prefix={prefix}" + (f"&continuation-token={token}" if token else "")
        conn = http.client.HTTPConnection("127.0.0.1", BROKER_STORAGE_PORT, timeout=10)
        try:
            conn.request("GET", f"/{BROKER_BUCKET}?{query}")
            body = conn.getresponse().read().decode()
        finally:
            conn.close()
        keys += re.findall(r"<Key>([^<]+)</Key>", body)
        found = re.search(r"<NextContinuationToken>([^<]+)</NextContinuationToken>", body)
        if not found:
            return keys
        token = found.group(1)


def broker_object(key: str) -> str:
    """An object of the broker's bucket (moto answers GETs only when signed: curl signs)."""
    got = subprocess.run(
        ["curl", "-sS", "--fail", "--max-time", "10", "--aws-sigv4", "aws:amz:us-east-1:s3",
         "--user", f"{S3_KEY_ID}:{S3_KEY_SECRET}", f"http://127.0.0.1:{BROKER_STORAGE_PORT}/{BROKER_BUCKET}/{key}"],
        capture_output=True, text=True, check=False)
    return got.stdout if got.returncode == 0 else f"({got.stderr.strip()})"


def offsets_never_done() -> str:
    """Per partition, the offsets between the first and last job imagizer finished (by every
    process's log, with librdkafka's offsets) that it never finished: the jobs it skipped."""
    done: dict[int, set[int]] = {}
    for path in STATE.glob("imagizer.*.log"):
        for line in path.read_text(errors="replace").splitlines():
            if '"image job done"' not in line:
                continue
            span = json.loads(line).get("span", {})
            done.setdefault(span["partition"], set()).add(span["offset"])
    gaps = []
    for partition, offsets in sorted(done.items()):
        never = [o for o in range(min(offsets), max(offsets) + 1) if o not in offsets]
        gaps.append(f"p{partition}: {len(never)} {never[:10]}")
    return ", ".join(gaps)


def broker_snapshot(name: str) -> str:
    """What the broker keeps of the job topic and imagizer's group, per partition: the high
    watermark, the record batches stored, the group's committed offset. Written beside the logs
    (broker-<scenario>.txt) when a scenario misses PNGs; returns a one-line summary."""
    lines: list[str] = []
    summary: list[str] = []
    try:
        keys = broker_objects("clusters/")
        topic = [k for k in keys if "/topics/figalized/partitions/" in k]
        for partition in sorted({k.split("/partitions/")[1].split("/")[0] for k in topic}):
            base = f"/topics/figalized/partitions/{partition}/"
            batches = sorted(int(k.rsplit("/", 1)[1].split(".")[0]) for k in topic
                             if base + "records/" in k)
            watermark = broker_object(next(k for k in topic if k.endswith(base + "watermark.json")))
            committed = [k for k in keys if k.endswith(f"/offsets/figalized/partitions/{partition}.json")]
            offset = broker_object(committed[0]) if committed else "(none)"
            lines.append(f"partition {partition}: watermark {watermark}; committed {offset}; "
                         f"{len(batches)} batches, first {batches[:1]}, last {batches[-5:]}")
            summary.append(f"p{int(partition)}: {len(batches)} batches to {batches[-1:]}, "
                           f"watermark {watermark.strip()}, committed {offset.strip()[:60]}")
        for key in keys:
            if "/groups/consumers/" in key and "/offsets/" not in key:
                lines.append(f"{key}: {broker_object(key)}")
    except (OSError, http.client.HTTPException, StopIteration, ValueError) as err:
        lines.append(f"cannot read the broker's bucket: {err}")
        summary.append(lines[-1])
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    (STATE / f"broker-{slug}.txt").write_text("\n".join(lines) + "\n")
    return "; ".join(summary)


@dataclass
class Outcome:
    name: str
    requests: int = 0
    non_5xx: int = 0
    accepted: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    rows_once: int = 0
    rows_missing: int = 0
    rows_duplicated: int = 0
    images: int = 0
    images_missing: int = 0
    sigterm_failures: int | None = None
    windows: list[Window] = field(default_factory=list)
    readiness: list[str] = field(default_factory=list)
    readiness_ok: bool = True
    drained_in: float = 0.0
    notes: list[str] = field(default_factory=list)
    # What went wrong beyond the figures: each one fails the scenario.
    problems: list[str] = field(default_factory=list)

    @property
    def share(self) -> float:
        return self.non_5xx / self.requests if self.requests else 0.0

    @property
    def passed(self) -> bool:
        return (
            not self.problems
            and self.accepted > 0
            # The load sends only valid phrases: a 4xx is a bug, not a pass.
            and self.accepted == self.non_5xx
            and self.share >= NON_5XX_TARGET
            and self.rows_missing == 0
            and self.rows_duplicated == 0
            and self.images_missing == 0
            and (self.sigterm_failures is None or self.sigterm_failures == 0)
            and self.readiness_ok
        )


def settle_and_count(stack: Stack, outcome: Outcome, answers: list[Answer]) -> None:
    """Waits (up to SETTLE_SECONDS) until every accepted figalization has its row and its PNG,
    then counts rows per phrase."""
    outcome.requests = len(answers)
    for answer in answers:
        key = str(answer.status) if answer.status else answer.error
        outcome.statuses[key] = outcome.statuses.get(key, 0) + 1
    outcome.non_5xx = sum(1 for a in answers if a.status is not None and a.status < 500)
    accepted = [a for a in answers if a.status == 200]
    outcome.accepted = len(accepted)
    phrases = {a.phrase for a in accepted}
    texts = {a.text for a in accepted}
    started = time.monotonic()
    rows: dict[str, int] = {}
    missing_texts = set(texts)
    while True:
        rows = dict((original, int(count)) for original, count in stack.pg.query(
            "select original, count(*) from history group by original"))
        missing_rows = [p for p in phrases if p not in rows]
        if missing_texts:
            missing_texts = missing_images(missing_texts)
        try:
            depth = metrics(stack.figalize[stack.current].port).get("figachechnaya_figalize_history_outbox_depth", 0)
        except (OSError, RuntimeError, http.client.HTTPException):
            depth = -1  # unknown: not drained
        if not missing_rows and not missing_texts and depth == 0:
            break
        if time.monotonic() - started > SETTLE_SECONDS:
            outcome.problems.append(f"not settled after {SETTLE_SECONDS:.0f} s")
            break
        time.sleep(0.5)
    outcome.drained_in = time.monotonic() - started
    # Rows keep arriving only if something is still retrying: look once more after a pause.
    time.sleep(1)
    rows = dict((original, int(count)) for original, count in stack.pg.query(
        "select original, count(*) from history group by original"))
    outcome.rows_once = sum(1 for p in phrases if rows.get(p) == 1)
    outcome.rows_missing = sum(1 for p in phrases if p not in rows)
    outcome.rows_duplicated = sum(1 for p in phrases if rows.get(p, 0) > 1)
    outcome.images = len(texts) - len(missing_texts)
    outcome.images_missing = len(missing_texts)
    if missing_texts:
        keys = sorted(image_key(text) for text in missing_texts)
        outcome.notes.append(f"no PNG for the keys {', '.join(keys[:10])}{' …' if len(keys) > 10 else ''}")
        outcome.notes.append(f"the broker: {broker_snapshot(outcome.name)}")
        outcome.notes.append(f"offsets imagizer never finished: {offsets_never_done()}")
    unanswered = {a.phrase for a in answers if a.status != 200}
    stored_anyway = sum(1 for p in unanswered if p in rows)
    if stored_anyway:
        outcome.notes.append(f"{stored_anyway} requests without an answer 200 were stored anyway")


@dataclass
class Window:
    """A span in which `name`'s readiness should go false for the reason `expect` (the probe's
    detail: `down`, `not_ready`, `draining`); `back` must be ready after it."""

    name: str
    start: float
    end: float
    expect: str
    back: str


def check_readiness(watch: ReadinessWatch, outcome: Outcome) -> None:
    """Each window's service was seen not ready within it, and its replacement (the same
    service, or figalize's other instance) is ready at the end of the scenario."""
    for window in outcome.windows:
        seen = watch.between(window.name, window.start, window.end)
        down = [s for s in seen if not s.ok]
        latest = watch.latest(window.back)
        recovered = latest is not None and latest.ok
        who = window.name if window.back == window.name else f"{window.name} → {window.back}"
        if down:
            # Time spent not ready, and in how many spells (a check can pass now and then
            # while a dependency is away, e.g. from a client's cached metadata).
            false_for = sum(b.at - a.at for a, b in zip(seen, seen[1:]) if not a.ok)
            spells = sum(1 for a, b in zip([None, *seen], seen) if not b.ok and (a is None or a.ok))
            reasons = ", ".join(sorted({s.detail for s in down}))
            spread = f" in {spells} spells" if spells > 1 else ""
            outcome.readiness.append(
                f"{who}: false ({reasons}) {false_for:.1f} s{spread} of {window.end - window.start:.1f} s, "
                f"then {'true' if recovered else 'FALSE'}")
        else:
            outcome.readiness.append(f"{who}: never false (expected: {window.expect})")
        if not any(s.detail == window.expect for s in down) or not recovered:
            outcome.readiness_ok = False


def wait_seen_down(watch: ReadinessWatch, name: str, since: float, timeout: float = 5) -> None:
    """Waits until the readiness watch has seen `name` not ready after `since`: what an
    orchestrator notices before it restarts a process."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(not s.ok for s in watch.between(name, since, time.monotonic())):
            return
        time.sleep(0.02)


# ---------------------------------------------------------------------------------------------
# Scenarios


def kill_history(stack: Stack, outcome: Outcome, watch: ReadinessWatch) -> None:
    start = time.monotonic()
    stack.history.signal(signal.SIGKILL)
    stack.history.wait_exit(10)
    log("history killed (SIGKILL); restarting it in 5 s")
    wait_seen_down(watch, "history", start)
    time.sleep(max(0.0, 5 - (time.monotonic() - start)))
    stack.history.start()
    took = wait_ready(stack.history)
    outcome.notes.append(f"history ready {took:.2f} s after its restart")
    outcome.windows.append(Window("history", start, time.monotonic(), "down", "history"))


def outage(outcome: Outcome, what: str, stop, start, dependent: Process, expect: str) -> None:
    """Stops a backing service with `stop()`, starts it 10 s later with `start()`, and waits
    until `dependent`, whose readiness follows it, is ready again."""
    began = time.monotonic()
    stop()
    log(f"{what} stopped; starting it in 10 s")
    time.sleep(max(0.0, 10 - (time.monotonic() - began)))
    start()
    took = wait_ready(dependent)
    outcome.notes.append(f"{dependent.name} ready {took:.2f} s after {what} started")
    outcome.windows.append(Window(dependent.name, began, time.monotonic(), expect, dependent.name))


def restart(process: Process) -> None:
    process.start()
    process.wait_port(30)


def stop_postgres(stack: Stack, outcome: Outcome, watch: ReadinessWatch) -> None:
    outage(outcome, "PostgreSQL", stack.pg.stop, stack.pg.start, stack.history, "not_ready")


def stop_broker(stack: Stack, outcome: Outcome, watch: ReadinessWatch) -> None:
    outage(outcome, "the broker", stack.broker.stop, lambda: restart(stack.broker), stack.imagizer, "not_ready")


def stop_s3(stack: Stack, outcome: Outcome, watch: ReadinessWatch) -> None:
    outage(outcome, "S3", stack.s3.stop, lambda: restart(stack.s3), stack.imagizer, "not_ready")


def kill_imagizer(stack: Stack, outcome: Outcome, watch: ReadinessWatch) -> None:
    # In the middle of a batch: kill as soon as the count of finished jobs moves, so jobs are
    # fetched and in work but their offsets not yet committed.
    before = now = metrics(IMAGIZER_PORT).get("figachechnaya_imagizer_jobs_total", 0)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and now <= before:
        time.sleep(0.01)
        now = metrics(IMAGIZER_PORT).get("figachechnaya_imagizer_jobs_total", 0)
    if now <= before:
        outcome.problems.append("imagizer finished no job within 10 s: not killed mid-batch")
    start = time.monotonic()
    stack.imagizer.signal(signal.SIGKILL)
    stack.imagizer.wait_exit(10)
    log(f"imagizer killed (SIGKILL) after {now:.0f} jobs; restarting it")
    wait_seen_down(watch, "imagizer", start)
    stack.imagizer.start()
    took = wait_ready(stack.imagizer)
    wait_for_consumer(stack.imagizer)
    outcome.notes.append(f"imagizer ready {took:.2f} s after its restart, consuming again after "
                         f"{time.monotonic() - start:.1f} s")
    outcome.windows.append(Window("imagizer", start, time.monotonic(), "down", "imagizer"))


def terminate(process: Process, outcome: Outcome, stopped_logs: list[tuple[Path, float]]) -> None:
    """SIGTERM, and wait for the exit, which must be clean; the log and the time of the signal
    go to `stopped_logs` for the count of requests it failed."""
    stopped_logs.append((process.log_path, time.time()))
    code = process.stop()
    log(f"{process.name} stopped by SIGTERM (exit {code})")
    if code != 0:
        outcome.problems.append(f"{process.name} exited {code} on SIGTERM")


def rolling_restart(stack: Stack, outcome: Outcome, watch: ReadinessWatch) -> None:
    stopped_logs: list[tuple[Path, float]] = []
    outcome.sigterm_failures = 0
    # history and imagizer: one instance each, stopped and started again in place; figalize's
    # outbox and the broker hold their work meanwhile.
    for process in (stack.history, stack.imagizer):
        start = time.monotonic()
        terminate(process, outcome, stopped_logs)
        process.start()
        wait_ready(process)
        if process is stack.imagizer:
            wait_for_consumer(process)
        outcome.windows.append(Window(process.name, start, time.monotonic(), "draining", process.name))
    # figalize: the replacement first, then SIGTERM to the old instance, as a rolling update.
    old, new = stack.figalize[stack.current], stack.figalize[1 - stack.current]
    new.start()
    wait_ready(new)
    stack.current = 1 - stack.current
    time.sleep(0.5)
    start = time.monotonic()
    terminate(old, outcome, stopped_logs)
    outcome.windows.append(Window(old.name, start, time.monotonic(), "draining", new.name))
    outcome.sigterm_failures += sum(answered_5xx(path, since) for path, since in stopped_logs)


SCENARIOS = [
    ("1. kill -9 history, restart after 5 s", kill_history),
    ("2. stop PostgreSQL for 10 s", stop_postgres),
    ("3. stop the broker for 10 s", stop_broker),
    ("4. stop S3 for 10 s", stop_s3),
    ("5. kill -9 imagizer mid-batch, restart", kill_imagizer),
    ("6. SIGTERM each service (rolling restart)", rolling_restart),
]


# Marks a problem after which the stack is in no state for another scenario.
ABORTED = "the scenario could not run to its end"


def run_scenario(stack: Stack, watch: ReadinessWatch, numbers: itertools.count, name: str, action) -> Outcome:
    log(f"== {name}")
    outcome = Outcome(name)
    load = Load(stack, watch, numbers)
    load.start()
    try:
        time.sleep(3)
        action(stack, outcome, watch)
        time.sleep(3)
    except (Exception, SystemExit) as err:  # noqa: BLE001 - reported as the scenario's failure
        outcome.problems.append(f"{ABORTED}: {err}")
    finally:
        answers = load.stop()
    check_readiness(watch, outcome)
    if outcome.sigterm_failures is not None:
        outcome.sigterm_failures += sum(1 for a in answers if a.status is None or a.status >= 500)
    try:
        settle_and_count(stack, outcome, answers)
    except (Exception, SystemExit) as err:  # noqa: BLE001 - reported as the scenario's failure
        outcome.problems.append(f"{ABORTED}: counting failed: {err}")
    log(f"{'pass' if outcome.passed else 'FAIL'}: {outcome.requests} requests, "
        f"{outcome.share:.2%} non-5xx, statuses {outcome.statuses}; {'; '.join(outcome.readiness)}")
    return outcome


def table(outcomes: list[Outcome]) -> str:
    rows = [
        "| scenario | requests | non-5xx | accepted | one history row each | PNG for each | failed by SIGTERM | readiness | result |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        rows_cell = f"{o.rows_once:,}/{o.accepted:,}"
        if o.rows_missing or o.rows_duplicated:
            rows_cell += f" ({o.rows_missing} missing, {o.rows_duplicated} twice)"
        sigterm = "–" if o.sigterm_failures is None else str(o.sigterm_failures)
        rows.append(
            f"| {o.name} | {o.requests:,} | {o.share:.2%} | {o.accepted:,} | {rows_cell} | "
            f"{o.images:,}/{o.images + o.images_missing:,} | {sigterm} | {'; '.join(o.readiness)} | "
            f"{'pass' if o.passed else 'FAIL'} |"
        )
    return "\n".join(rows)


def selected_scenarios() -> list:
    """The scenarios FAULTS_SCENARIOS names (comma-separated numbers), or all of them."""
    wanted = [part.strip() for part in ENV.get("FAULTS_SCENARIOS", "").split(",") if part.strip()]
    if not wanted:
        return SCENARIOS
    numbers = {str(i) for i in range(1, len(SCENARIOS) + 1)}
    unknown = [part for part in wanted if part not in numbers]
    if unknown:
        raise SystemExit(f"FAULTS_SCENARIOS: no scenario {', '.join(unknown)} (there are 1–{len(SCENARIOS)})")
    return [s for i, s in enumerate(SCENARIOS, 1) if str(i) in wanted]


def stop_on_sigterm(signum, frame) -> None:
    """A run cancelled with SIGTERM still stops every process it started."""
    raise SystemExit(128 + signum)


def main() -> int:
    STATE.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    selected = selected_scenarios()
    stack = Stack()
    watch = ReadinessWatch(stack.services())
    outcomes: list[Outcome] = []
    numbers = itertools.count()
    started = time.monotonic()
    try:
        stack.start()
        watch.start()
        for name, action in selected:
            outcome = run_scenario(stack, watch, numbers, name, action)
            outcomes.append(outcome)
            if any(problem.startswith(ABORTED) for problem in outcome.problems):
                break
    finally:
        watch.stopping.set()
        stack.stop()
    print()
    print(f"Fault injection: {RATE:.0f} figalizations/s from {THREADS} connections, "
          f"{time.monotonic() - started:.0f} s in all")
    print()
    print(table(outcomes))
    print()
    for o in outcomes:
        details = [f"statuses {o.statuses}", f"drained in {o.drained_in:.1f} s", *o.notes, *o.problems]
        print(f"- {o.name}: {'; '.join(details)}")
    (STATE / "table.md").write_text(table(outcomes) + "\n")
    failed = [o.name for o in outcomes if not o.passed]
    if failed or len(outcomes) != len(selected):
        print(f"\nfailed: {', '.join(failed) or 'not every scenario ran'}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
