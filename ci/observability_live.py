#!/usr/bin/env python3
"""Observability of the running local stack, checked for real.

Run by ci/stack-tests.sh while the local stack is up. It

1. sends a figalization through the HTTPS ingress with a request id of its own and waits for
   its PNG (so the request has crossed figalize, history, Kafka and imagizer);
2. runs `promtool check metrics` on each service's live /metrics;
3. starts a real Prometheus (Debian's package) scraping the three services, with the alert
   rules of observability/prometheus/rules loaded, and asks its HTTP API for `up == 1` of each
   service and for the latency series of the request it made;
4. follows the request id through the JSON logs of all three services.

Standard library only. Settings come from the environment (see `main`).
"""

import json
import os
import secrets
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

SERVICES = ("figalize", "history", "imagizer")
DEADLINE_S = 60


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def http(url, body=None, headers=None):
    """(status, headers, body bytes); the local stack's certificate is self-signed."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers or {})
    if data is not None:
        request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def wait_for(what, probe):
    """Polls `probe` until it returns something true, for at most DEADLINE_S seconds."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        try:
            found = probe()
        except (OSError, ValueError):
            found = None
        if found:
            return found
        time.sleep(0.25)
    fail(f"{what}: not seen within {DEADLINE_S} s")


def fresh_word():
    consonants = "бвгдзклмнпрстфх"
    return "сыщик" + "".join(secrets.choice(consonants) + "а" for _ in range(6))


def send_traced_request(ingress, request_id):
    word = fresh_word()
    status, headers, body = http(
        f"{ingress}/api/figalize/",
        {"schema_id": 0, "phrase": word},
        {"x-request-id": request_id},
    )
    if status != 200:
        fail(f"figalize through the ingress answered {status}: {body[:200]!r}")
    if headers.get("x-request-id") != request_id:
        fail(f"the ingress lost the request id: {headers.get('x-request-id')!r}")
    figalized = json.loads(body)["data"]

    def image_url():
        status, _, body = http(f"{ingress}/api/getimageurl/", {"phrase": figalized})
        return json.loads(body)["data"] if status == 200 else None

    url = wait_for("the PNG of the traced request", image_url)
    status, headers, png = http(urllib.parse.urljoin(ingress + "/", url))
    if status != 200 or not png.startswith(b"\x89PNG"):
        fail(f"the PNG at {url} answered {status}")
    print(f"ok: {word} → {figalized}, its PNG at {url}, request id {request_id}")


def check_metrics_text(ports):
    promtool = shutil.which("promtool") or fail("promtool is not installed")
    for service in SERVICES:
        _, _, text = http(f"http://127.0.0.1:{ports[service]}/metrics")
        result = subprocess.run(
            [promtool, "check", "metrics"], input=text, capture_output=True, check=False
        )
        if result.returncode != 0:
            fail(f"promtool check metrics on {service}:\n{result.stdout.decode()}{result.stderr.decode()}")
        if f"figachechnaya_{service}_build_info{{".encode() not in text:
            fail(f"{service} exports no build info")
        print(f"ok: promtool check metrics finds nothing wrong in {service}'s /metrics")


def prometheus_config(ports, rules):
    targets = "\n".join(
        f"  - job_name: {service}\n    static_configs:\n      - targets: ['127.0.0.1:{ports[service]}']"
        for service in SERVICES
    )
    return (
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files:\n  - {rules}/*.yml\n"
        f"scrape_configs:\n{targets}\n"
    )


def query(prometheus, promql):
    _, _, body = http(f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
    answer = json.loads(body)
    if answer.get("status") != "success":
        raise ValueError(answer)
    return answer["data"]["result"]


def check_prometheus(ports, port, rules):
    binary = shutil.which("prometheus") or fail("prometheus is not installed")
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder, "prometheus.yml")
        config.write_text(prometheus_config(ports, rules))
        log = open(Path(folder, "prometheus.log"), "w")
        server = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={folder}/data",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        prometheus = f"http://127.0.0.1:{port}"
        try:
            up = wait_for(
                "up == 1 for every service",
                lambda: (lambda rows: rows if len(rows) == len(SERVICES) else None)(
                    query(prometheus, "up == 1")
                ),
            )
            print(f"ok: Prometheus scrapes {sorted(r['metric']['job'] for r in up)}, each up == 1")
            series = wait_for(
                "figalize's latency series",
                lambda: query(
                    prometheus,
                    'figachechnaya_figalize_http_request_duration_seconds_count{route="/api/figalize/",method="POST"} > 0',
                ),
            )
            print(f"ok: the latency series of POST /api/figalize/ counts {series[0]['value'][1]} requests")
            _, _, body = http(f"{prometheus}/api/v1/rules")
            groups = json.loads(body)["data"]["groups"]
            if not groups:
                fail("Prometheus loaded no rule group")
            broken = [r["name"] for g in groups for r in g["rules"] if r.get("health") == "err"]
            if broken:
                fail(f"rules Prometheus cannot evaluate: {broken}")
            print(f"ok: Prometheus evaluates {sum(len(g['rules']) for g in groups)} rules in {len(groups)} groups")
        finally:
            server.terminate()
            server.wait(timeout=20)
            log.close()


def log_lines(path, request_id):
    found = []
    for raw in Path(path).read_text(errors="replace").splitlines():
        if request_id not in raw:
            continue
        try:
            found.append(json.loads(raw))
        except json.JSONDecodeError:
            fail(f"a log line of {path} is not JSON: {raw[:200]}")
    return found


def carries(line, request_id):
    return line.get("request_id") == request_id or line.get("span", {}).get("request_id") == request_id


def follow_request(state, request_id):
    for service in SERVICES:
        lines = wait_for(
            f"the request id in {service}'s log",
            lambda: [line for line in log_lines(Path(state, f"{service}.log"), request_id) if carries(line, request_id)],
        )
        for line in lines:
            if line.get("service") != service:
                fail(f"a line of {service}'s log names service {line.get('service')!r}")
            for field in ("timestamp", "level", "message"):
                if field not in line:
                    fail(f"a line of {service}'s log has no {field}: {line}")
        messages = sorted({line["message"] for line in lines})
        print(f"ok: {service}'s log follows the request: {messages}")
    answered = [
        line
        for line in log_lines(Path(state, "figalize.log"), request_id)
        if line.get("message") == "request answered"
    ]
    if not answered or not {"status", "latency_ms"} <= answered[0].keys() or "route" not in answered[0].get("span", {}):
        fail(f"figalize's request line lacks status, latency or route: {answered}")


def main():
    ingress = os.environ.get("OBSERVABILITY_INGRESS", "https://127.0.0.1:8443")
    state = os.environ["OBSERVABILITY_LOGS"]
    ports = {service: os.environ[f"OBSERVABILITY_{service.upper()}_PORT"] for service in SERVICES}
    prometheus_port = os.environ.get("OBSERVABILITY_PROMETHEUS_PORT", "19090")
    rules = Path(__file__).resolve().parent.parent / "observability/prometheus/rules"
    request_id = f"trace-{secrets.token_hex(8)}"
    send_traced_request(ingress, request_id)
    check_metrics_text(ports)
    check_prometheus(ports, prometheus_port, rules)
    follow_request(state, request_id)
    print("observability: all live checks passed")


if __name__ == "__main__":
    main()
