#!/usr/bin/env python3
"""Fault injection under load: the promise that whatever fails, the site keeps answering and
nothing it accepted is lost.

Started by ci/faults.sh, which builds the services and prepares the backing services this
suite owns: a PostgreSQL cluster, a Kafka-protocol broker (Tansu) keeping its data in an S3
bucket outside its process, and an S3 server (Garage) for the images. This script runs the three
services as separate processes on them, and the one-process site on a DATA_DIR of its own,
sends figalize (in scenario 8 the site) a steady load, and in turn:

  1. kill -9 history, restart it after 5 s
  2. stops PostgreSQL for 10 s
  3. stops the broker for 10 s (its storage is durable: a restart keeps topics and offsets)
  4. stops the S3 server for 10 s
  5. kill -9 imagizer while it works through a batch, restarts it
  6. SIGTERM each service in turn under load (a rolling restart)
  7. kill -9 figalize while its journal holds work not yet settled, restart it on the same
     JOURNAL_DIR (a second instance serves meanwhile, as a Service's second ready endpoint)
  8. kill -9 the one-process site the same way, restart it on the same DATA_DIR

After each it waits for the backlog to drain, then checks:
  - figalize answered non-5xx to at least 99.9 % of the requests (a refused or dropped
    connection counts as a failure); what a kill -9 of the process serving the load left
    unanswered is counted apart (see `cut_off_by_kills`);
  - every accepted figalization (answer 200) has exactly one history row (for the site: in its
    SQLite file);
  - every accepted figalization's text has its PNG in the bucket (for the site: in its folder);
  - a figalize killed and restarted on its journal replayed it;
  - a SIGTERM failed no request: none of the load's, none the stopping process logged as 5xx;
  - readiness of the affected service went false during the fault and true after.

It prints a table of these figures per scenario and exits non-zero when a check fails.

The load: FAULTS_RATE figalizations per second (100) from FAULTS_THREADS connections (8), each
with a phrase of its own. FAULTS_SCENARIOS (e.g. "2,5") runs only some of the scenarios.
Requests go to the figalize instances whose readiness answers 200, as a Kubernetes Service
routes to ready endpoints; during figalize's rolling restart the replacement starts before the
old instance is told to stop. Every figalize instance has a JOURNAL_DIR of its own: a second
process refuses a journal in use.
"""

from __future__ import annotations

import hashlib
import http.client
import itertools
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

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
SITE_PORT = int(ENV.get("FAULTS_SITE_PORT", "18404"))
SITE_DATA = STATE / "site-data"
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
        # The load is one client on purpose: not to be limited per client.
        common = {"HOST": "127.0.0.1", "LOG_FORMAT": "json", "RUST_LOG": "info",
                  "SHUTDOWN_DELAY_MS": str(SHUTDOWN_DELAY_MS), "SHUTDOWN_GRACE_MS": "20000",
                  "RATE_LIMIT_PER_SECOND": "0", "MAX_CONNECTIONS_PER_CLIENT": "4096"}
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
                 "HISTORY_APPEND_URL": f"http://127.0.0.1:{HISTORY_PORT}/api/append/",
                 "JOURNAL_DIR": str(STATE / f"journal-figalize-{index + 1}")},
                port,
            )
            for index, port in enumerate(FIGALIZE_PORTS)
        ]
        # The figalize instance in service (the other one takes over in a rolling restart).
        self.current = 0
        # On its embedded defaults whatever the calling shell exports: SQLite, the in-process
        # job queue, a folder of images and the journal, all under its DATA_DIR.
        embedded = dict.fromkeys(("DATABASE_URL", "DB_HOST", "KAFKA_BOOTSTRAP", "S3_BUCKET", "IMAGES_DIR",
                                  "JOURNAL_DIR"), "")
        self.site = Process("site", [str(BIN / "figachechnaya")],
                            {**common, **embedded, "PORT": str(SITE_PORT), "DATA_DIR": str(SITE_DATA)},
                            SITE_PORT)

    def start(self) -> None:
        log("Starting PostgreSQL, the broker and the image store")
        self.pg.start()
        self.s3.start()
        self.s3.wait_port(30)
        self.broker.start()
        self.broker.wait_port(30)
        log("Starting history, imagizer, figalize and the one-process site")
        for process in (self.history, self.imagizer, self.figalize[0], self.site):
            process.start()
        for process in (self.history, self.imagizer, self.figalize[0], self.site):
            wait_ready(process)
        wait_for_consumer(self.imagizer)

    def services(self) -> list[Process]:
        return [self.history, self.imagizer, *self.figalize, self.site]

    def target(self, on_site: bool) -> Services | OneProcessSite:
        """Where the load goes and what it had accepted is counted: the services, or the site."""
        return OneProcessSite(self.site, SITE_DATA) if on_site else Services(self)

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
    # The port it was sent to, and when its answer (or failure) came.
    port: int = 0
    done: float = 0.0


@dataclass
class Load:
    """A steady load on figalize (or the site): RATE requests per second from THREADS
    connections."""

    target: Services | OneProcessSite
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
        """The figalize instances to send to: the ready ones, as a Service would route; when
        none is, the running ones, and when none runs, the first (its connections refused)."""
        endpoints = self.target.endpoints()
        running = [p for p in endpoints if p.alive()]
        ready_ones = [p for p in running if (s := self.watch.latest(p.name)) is not None and s.ok]
        return ready_ones or running or endpoints[:1]

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
            answer = Answer(phrase(number), time.monotonic(), None, port=target.port)
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
            answer.done = time.monotonic()
            with self.lock:
                self.answers.append(answer)
        for conn in connections.values():
            conn.close()


# ---------------------------------------------------------------------------------------------
# Checks


def image_key(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def missing_in_bucket(texts: set[str]) -> set[str]:
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


class Services:
    """The three services: the load goes to figalize's instances (the one in service first),
    rows are counted in PostgreSQL and PNGs asked of the bucket."""

    def __init__(self, stack: Stack):
        self.stack = stack

    def endpoints(self) -> list[Process]:
        return [self.stack.figalize[self.stack.current], self.stack.figalize[1 - self.stack.current]]

    def rows(self) -> dict[str, int]:
        """History rows per original phrase."""
        return {original: int(count) for original, count in self.stack.pg.query(
            "select original, count(*) from history group by original")}

    def missing_images(self, texts: set[str]) -> set[str]:
        return missing_in_bucket(texts)

    def why_images_missing(self, scenario: str) -> list[str]:
        return [f"the broker: {broker_snapshot(scenario)}", f"offsets imagizer never finished: {offsets_never_done()}"]


class OneProcessSite:
    """The one-process site: the load goes to it, rows are counted in its SQLite file (opened
    read-only) and PNGs looked for in its folder of images."""

    def __init__(self, process: Process, data_dir: Path):
        self.process, self.data_dir = process, data_dir

    def endpoints(self) -> list[Process]:
        return [self.process]

    def rows(self) -> dict[str, int]:
        """History rows per original phrase."""
        database = f"{(self.data_dir / 'history.sqlite3').as_uri()}?mode=ro"
        with closing(sqlite3.connect(database, uri=True)) as db:
            return dict(db.execute("select original, count(*) from history group by original").fetchall())

    def missing_images(self, texts: set[str]) -> set[str]:
        return {text for text in texts if not (self.data_dir / "images" / f"{image_key(text)}.png").is_file()}

    def why_images_missing(self, scenario: str) -> list[str]:
        return []


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
    # Processes killed while the load was sent to them, and the requests that got no answer
    # because of it (see `cut_off_by_kills`): left out of the share of non-5xx answers.
    kills: list[Kill] = field(default_factory=list)
    cut_off: int = 0
    refused_until_ready: int = 0
    # Figalizations the scenario sent itself, checked with the load's.
    own_answers: list[Answer] = field(default_factory=list)
    windows: list[Window] = field(default_factory=list)
    readiness: list[str] = field(default_factory=list)
    readiness_ok: bool = True
    drained_in: float = 0.0
    notes: list[str] = field(default_factory=list)
    # What went wrong beyond the figures: each one fails the scenario.
    problems: list[str] = field(default_factory=list)

    @property
    def share(self) -> float:
        counted = self.requests - self.cut_off - self.refused_until_ready
        return self.non_5xx / counted if counted > 0 else 0.0

    @property
    def passed(self) -> bool:
        return (
            not self.problems
            and self.accepted > 0
            # The load sends only valid phrases: a 4xx is a bug, not a pass.
            and self.accepted == self.non_5xx
            and self.share >= NON_5XX_TARGET
            # One request in flight per connection at the instant of a kill, at most.
            and self.cut_off <= THREADS * len(self.kills)
            and self.rows_missing == 0
            and self.rows_duplicated == 0
            and self.images_missing == 0
            and (self.sigterm_failures is None or self.sigterm_failures == 0)
            and self.readiness_ok
        )


def cut_off_by_kills(outcome: Outcome, answers: list[Answer]) -> None:
    """Counts apart the requests a kill -9 left without an answer: those sent to the killed
    process that were in flight at the kill (one per connection at most), and those sent to it
    after it was gone and before its restart was ready. The load sends there only when no other
    instance runs (the one-process site has none): what a client of a site that is down sees.
    With a second instance serving (scenario 7) there are none of those. Every other failure,
    and every 5xx, still counts against the 99.9 %."""
    for kill in outcome.kills:
        unanswered = [a for a in answers
                      if a.status is None and a.port == kill.port and a.done >= kill.at and a.sent <= kill.ready]
        # A connection refused never reached the process: it was sent after the death, even
        # when that was before the suite saw the process gone.
        in_flight = [a for a in unanswered if a.sent < kill.gone and a.error != "ConnectionRefusedError"]
        outcome.cut_off += len(in_flight)
        outcome.refused_until_ready += len(unanswered) - len(in_flight)


def settle_and_count(target: Services | OneProcessSite, outcome: Outcome, answers: list[Answer]) -> None:
    """Waits (up to SETTLE_SECONDS) until every accepted figalization has its row and its PNG,
    then counts rows per phrase."""
    outcome.requests = len(answers)
    cut_off_by_kills(outcome, answers)
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
        rows = target.rows()
        missing_rows = [p for p in phrases if p not in rows]
        if missing_texts:
            missing_texts = target.missing_images(missing_texts)
        serving = [p for p in target.endpoints() if p.alive()]
        try:
            depth = sum(metrics(p.port).get("figachechnaya_figalize_history_outbox_depth", 0)
                        for p in serving) if serving else -1
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
    rows = target.rows()
    outcome.rows_once = sum(1 for p in phrases if rows.get(p) == 1)
    outcome.rows_missing = sum(1 for p in phrases if p not in rows)
    outcome.rows_duplicated = sum(1 for p in phrases if rows.get(p, 0) > 1)
    outcome.images = len(texts) - len(missing_texts)
    outcome.images_missing = len(missing_texts)
    if missing_texts:
        keys = sorted(image_key(text) for text in missing_texts)
        outcome.notes.append(f"no PNG for the keys {', '.join(keys[:10])}{' …' if len(keys) > 10 else ''}")
        outcome.notes += target.why_images_missing(outcome.name)
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


@dataclass
class Kill:
    """A SIGKILL of the process on `port` at `at`; `gone` once it had exited (the load sends it
    nothing from then on while another instance runs), `ready` once its restart was ready."""

    port: int
    at: float
    gone: float
    ready: float = float("inf")


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


def kill(process: Process, watch: ReadinessWatch) -> Kill:
    """SIGKILL; returns once the readiness watch has seen the process down, as an orchestrator
    notices before it restarts one."""
    at = time.monotonic()
    process.signal(signal.SIGKILL)
    process.wait_exit(10)
    killed = Kill(process.port, at, time.monotonic())
    wait_seen_down(watch, process.name, at)
    return killed


def kill_history(stack: Stack, outcome: Outcome, watch: ReadinessWatch) -> None:
    killed = kill(stack.history, watch)
    log("history killed (SIGKILL); restarting it in 5 s")
    time.sleep(max(0.0, 5 - (time.monotonic() - killed.at)))
    stack.history.start()
    took = wait_ready(stack.history)
    outcome.notes.append(f"history ready {took:.2f} s after its restart")
    outcome.windows.append(Window("history", killed.at, time.monotonic(), "down", "history"))


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
    killed = kill(stack.imagizer, watch)
    log(f"imagizer killed (SIGKILL) after {now:.0f} jobs; restarting it")
    stack.imagizer.start()
    took = wait_ready(stack.imagizer)
    wait_for_consumer(stack.imagizer)
    outcome.notes.append(f"imagizer ready {took:.2f} s after its restart, consuming again after "
                         f"{time.monotonic() - killed.at:.1f} s")
    outcome.windows.append(Window("imagizer", killed.at, time.monotonic(), "down", "imagizer"))


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


def kill_mid_journal(process: Process, target: Services | OneProcessSite, outcome: Outcome,
                     watch: ReadinessWatch) -> None:
    """kill -9 a process that runs figalize the instant it answers a figalization of the suite's
    own, whose row and image job are then still on their way (the producer lingers 100 ms, the
    site commits and renders in the background): they can come only from the journal. Restarts
    it at once on the same port and journal, and checks that it replayed what it found there."""
    # The kill races the background work: a short phrase can be committed and drawn in the
    # moment between the answer and the kill. Such a kill proves nothing, so it is tried again,
    # up to three times; only three late kills in a row fail the scenario.
    for attempt in range(1, 4):
        # A phrase the load never sends (its numbers stay far below): one per start of each
        # process.
        own = Answer(phrase(10**9 + process.port * 1000 + process.starts), time.monotonic(), None, port=process.port)
        own.status, body = http_request(process.port, "POST", "/api/figalize/",
                                        json.dumps({"schema_id": 0, "phrase": own.phrase}).encode())
        if own.status != 200:
            raise RuntimeError(f"{process.name} answered {own.status} to a figalization: {body[:200]!r}")
        killed = kill(process, watch)
        own.done, own.text = killed.at, json.loads(body)["data"]
        outcome.own_answers.append(own)
        stored = own.phrase in target.rows()
        drawn = not target.missing_images({own.text})
        state = (f"{process.name} killed the instant it answered {own.phrase!r} 200: its row "
                 f"{'already' if stored else 'not yet'} stored, its PNG {'already' if drawn else 'not yet'} made")
        log(f"{state}; restarting it")
        outcome.notes.append(state)
        process.start()
        took = wait_ready(process)
        killed.ready = time.monotonic()
        outcome.kills.append(killed)
        outcome.windows.append(Window(process.name, killed.at, killed.ready, "down", process.name))
        if not (stored and drawn):
            break
        if attempt == 3:
            outcome.problems.append(f"{process.name} was killed too late three times: what it had answered was settled")
    journal = metrics(process.port)
    replayed = journal.get("figachechnaya_figalize_journal_replayed_total", 0)
    note = (f"{process.name} ready {took:.2f} s after its restart, {killed.ready - killed.at:.2f} s after the "
            f"kill; it replayed {replayed:.0f} journal records "
            f"({journal.get('figachechnaya_figalize_journal_corrupt_total', 0):.0f} damaged tails skipped)")
    log(note)
    outcome.notes.append(note)
    if replayed == 0:
        outcome.problems.append(f"{process.name} replayed nothing from its journal")


def kill_figalize(stack: Stack, outcome: Outcome, watch: ReadinessWatch) -> None:
    # Two instances serve, as a Service with two ready endpoints: while the killed one restarts
    # the load goes to the other, so what the kill leaves unanswered is what was in flight to
    # it. The other has a journal of its own: it cannot take over the killed one's.
    killed, other = stack.figalize[stack.current], stack.figalize[1 - stack.current]
    other.start()
    wait_ready(other)
    outcome.notes.append(f"{other.name} served while {killed.name} restarted: left out of the non-5xx share "
                         f"are only the requests in flight to {killed.name} when it was killed")
    kill_mid_journal(killed, stack.target(on_site=False), outcome, watch)
    # Both serve again for a while; then the second instance goes as it came, by SIGTERM.
    time.sleep(2)
    terminate(other, outcome, [])


def kill_site(stack: Stack, outcome: Outcome, watch: ReadinessWatch) -> None:
    # The site is one process: nothing answers it while it restarts (see `cut_off_by_kills`).
    outcome.notes.append("the site is one process: left out of the non-5xx share are the requests in flight "
                         "when it was killed and those refused until its restart was ready")
    kill_mid_journal(stack.site, stack.target(on_site=True), outcome, watch)


class Scenario(NamedTuple):
    name: str
    action: Callable[[Stack, Outcome, ReadinessWatch], None]
    # The load goes to the one-process site, and its rows and PNGs are counted there.
    on_site: bool = False


SCENARIOS = [
    Scenario("1. kill -9 history, restart after 5 s", kill_history),
    Scenario("2. stop PostgreSQL for 10 s", stop_postgres),
    Scenario("3. stop the broker for 10 s", stop_broker),
    Scenario("4. stop S3 for 10 s", stop_s3),
    Scenario("5. kill -9 imagizer mid-batch, restart", kill_imagizer),
    Scenario("6. SIGTERM each service (rolling restart)", rolling_restart),
    Scenario("7. kill -9 figalize under load, restart on its journal", kill_figalize),
    Scenario("8. kill -9 the one-process site under load, restart on its DATA_DIR", kill_site, on_site=True),
]


# Marks a problem after which the stack is in no state for another scenario.
ABORTED = "the scenario could not run to its end"


def run_scenario(stack: Stack, watch: ReadinessWatch, numbers: itertools.count, scenario: Scenario) -> Outcome:
    log(f"== {scenario.name}")
    outcome = Outcome(scenario.name)
    target = stack.target(scenario.on_site)
    load = Load(target, watch, numbers)
    load.start()
    try:
        time.sleep(3)
        scenario.action(stack, outcome, watch)
        time.sleep(3)
    except (Exception, SystemExit) as err:  # noqa: BLE001 - reported as the scenario's failure
        outcome.problems.append(f"{ABORTED}: {err}")
    finally:
        answers = load.stop() + outcome.own_answers
    check_readiness(watch, outcome)
    if outcome.sigterm_failures is not None:
        outcome.sigterm_failures += sum(1 for a in answers if a.status is None or a.status >= 500)
    try:
        settle_and_count(target, outcome, answers)
    except (Exception, SystemExit) as err:  # noqa: BLE001 - reported as the scenario's failure
        outcome.problems.append(f"{ABORTED}: counting failed: {err}")
    log(f"{'pass' if outcome.passed else 'FAIL'}: {outcome.requests} requests, "
        f"{non_5xx_cell(outcome)} non-5xx, statuses {outcome.statuses}; {'; '.join(outcome.readiness)}")
    return outcome


def non_5xx_cell(outcome: Outcome) -> str:
    """The share of non-5xx answers, and beside it what a kill cut off, which it leaves out."""
    if not outcome.kills:
        return f"{outcome.share:.2%}"
    refused = f", {outcome.refused_until_ready} refused until ready" if outcome.refused_until_ready else ""
    return f"{outcome.share:.2%} (not counted: {outcome.cut_off} cut off by the kill{refused})"


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
            f"| {o.name} | {o.requests:,} | {non_5xx_cell(o)} | {o.accepted:,} | {rows_cell} | "
            f"{o.images:,}/{o.images + o.images_missing:,} | {sigterm} | {'; '.join(o.readiness)} | "
            f"{'pass' if o.passed else 'FAIL'} |"
        )
    return "\n".join(rows)


def selected_scenarios() -> list[Scenario]:
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
        for scenario in selected:
            outcome = run_scenario(stack, watch, numbers, scenario)
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
