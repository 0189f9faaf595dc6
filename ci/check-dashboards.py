#!/usr/bin/env python3
"""Checks the Grafana dashboards offline, without Grafana or a running Prometheus.

    python3 ci/check-dashboards.py [DASHBOARD.json | DIRECTORY ...]

Without arguments it checks observability/grafana/dashboards/*.json. For each dashboard:

- the file is JSON in the form file provisioning loads: no "dashboard" wrapper, "id": null,
  a uid, a title and a schemaVersion, the "figachechnaya" tag, uids and titles unique;
- there is a data source variable named "datasource" (type "datasource", query "prometheus"),
  and every panel with queries, including panels inside rows, and every one of its queries
  uses the data source {"type": "prometheus", "uid": "${datasource}"};
- panel ids are unique, every query has a non-empty expr, and every $variable an expr uses
  is defined by the dashboard or built into Grafana;
- every metric named in an expr exists (see KNOWN_METRICS);
- every expr is valid PromQL: the exprs, with variables replaced by values Prometheus accepts,
  are written as recording rules to a temporary file checked by `promtool check rules`
  (Debian's prometheus package has promtool).

Exits 1 and lists every problem found, or prints a one-line summary.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = ROOT / "observability" / "grafana" / "dashboards"

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
TAG = "figachechnaya"

# The metrics the services expose. docs/observability.md is the catalogue: keep this set in
# step with it. Histograms are listed by their base name (see HISTOGRAMS). The one-process
# site is the process "site" for the per-process metrics.
PROCESSES = ("figalize", "history", "imagizer", "site")
KNOWN_METRICS = {
    *(
        f"figachechnaya_{process}_{suffix}"
        for process in PROCESSES
        for suffix in (
            "http_requests_total",
            "http_request_duration_seconds",
            "http_requests_in_flight",
            "http_requests_shed_total",
            "http_requests_rate_limited_total",
            "build_info",
        )
    ),
    # figalize
    "figachechnaya_figalize_figalizations_total",
    "figachechnaya_figalize_rejected_phrases_total",
    "figachechnaya_figalize_history_outbox_queued_total",
    "figachechnaya_figalize_history_outbox_delivered_total",
    "figachechnaya_figalize_history_outbox_retried_total",
    "figachechnaya_figalize_history_outbox_dropped_total",
    "figachechnaya_figalize_history_outbox_refused_total",
    "figachechnaya_figalize_history_outbox_depth",
    "figachechnaya_figalize_history_outbox_capacity",
    "figachechnaya_figalize_image_jobs_published_total",
    "figachechnaya_figalize_image_jobs_delivered_total",
    "figachechnaya_figalize_kafka_produce_errors_total",
    "figachechnaya_figalize_image_jobs_dropped_total",
    "figachechnaya_figalize_image_jobs_buffered",
    "figachechnaya_figalize_image_jobs_deferred",
    "figachechnaya_figalize_image_jobs_deferred_total",
    "figachechnaya_figalize_journal_bytes",
    "figachechnaya_figalize_journal_capacity_bytes",
    "figachechnaya_figalize_journal_segments",
    "figachechnaya_figalize_journal_appended_total",
    "figachechnaya_figalize_journal_syncs_total",
    "figachechnaya_figalize_journal_sync_seconds",
    "figachechnaya_figalize_journal_refused_total",
    "figachechnaya_figalize_journal_errors_total",
    "figachechnaya_figalize_journal_replayed_total",
    "figachechnaya_figalize_journal_corrupt_total",
    # history
    "figachechnaya_history_appends_total",
    "figachechnaya_history_duplicate_appends_total",
    "figachechnaya_history_failed_batches_total",
    "figachechnaya_history_batch_size_rows",
    "figachechnaya_history_batch_commit_duration_seconds",
    "figachechnaya_history_stream_clients",
    "figachechnaya_history_db_pool_connections",
    "figachechnaya_history_db_pool_max_connections",
    # imagizer
    "figachechnaya_imagizer_jobs_total",
    "figachechnaya_imagizer_store_errors_total",
    "figachechnaya_imagizer_render_duration_seconds",
    "figachechnaya_imagizer_upload_duration_seconds",
    "figachechnaya_imagizer_messages_consumed_total",
    "figachechnaya_imagizer_dead_lettered_total",
    "figachechnaya_imagizer_dead_letter_produce_errors_total",
    "figachechnaya_imagizer_consumer_errors_total",
    "figachechnaya_imagizer_kafka_consumer_lag_messages",
}
HISTOGRAMS = {
    *(f"figachechnaya_{process}_http_request_duration_seconds" for process in PROCESSES),
    "figachechnaya_figalize_journal_sync_seconds",
    "figachechnaya_history_batch_size_rows",
    "figachechnaya_history_batch_commit_duration_seconds",
    "figachechnaya_imagizer_render_duration_seconds",
    "figachechnaya_imagizer_upload_duration_seconds",
}
assert HISTOGRAMS <= KNOWN_METRICS
# The series names Prometheus stores: a classic histogram only as _bucket, _sum and _count.
SERIES_NAMES = (KNOWN_METRICS - HISTOGRAMS) | {
    f"{name}{suffix}" for name in HISTOGRAMS for suffix in ("_bucket", "_sum", "_count")
}

# Values for Grafana's built-in variables, and for the dashboards' own variables, that make
# an expr Prometheus can parse. They are plain words, so a variable inside a =~ regex keeps
# the regex valid; an unknown variable inside a range selector's [...] becomes a duration.
BUILTIN_VALUES = {
    "__rate_interval": "5m",
    "__interval": "1m",
    "__interval_ms": "60000",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
}
VARIABLE_VALUES = {"service": "figalize"}
OTHER_VARIABLE = "x"
OTHER_DURATION = "5m"

# $name, ${name}, ${name:format}, [[name]], [[name:format]]
VARIABLE = re.compile(
    r"\$\{(?P<braced>\w+)(?:[:.][^}]*)?\}|\[\[(?P<bracketed>\w+)(?::[^\]]*)?\]\]|\$(?P<plain>\w+)"
)
STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
COMMENT = re.compile(r"#[^\n]*")
METRIC = re.compile(r"(?<![\w:])figachechnaya_[\w:]*")
NAME_MATCHER = re.compile(r'__name__\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\')')


@dataclass
class Query:
    dashboard: str
    panel: str
    ref: str
    expr: str

    def where(self) -> str:
        return f"{self.dashboard}: panel {self.panel}, query {self.ref}"


class Problems(list):
    def add(self, where: str, message: str) -> None:
        self.append(f"{where}: {message}")


def walk_panels(panels):
    """Every panel, rows' nested panels included, in order."""
    for panel in panels or []:
        if isinstance(panel, dict):
            yield panel
            yield from walk_panels(panel.get("panels"))


def panel_label(panel: dict) -> str:
    return f"{panel.get('id')!r} ({panel.get('title') or panel.get('type') or 'untitled'!s})"


def substitute(expr: str) -> str:
    """The expr with every Grafana variable replaced by a value Prometheus accepts."""

    def value(match: re.Match) -> str:
        name = match.group("braced") or match.group("bracketed") or match.group("plain")
        if name in BUILTIN_VALUES:
            return BUILTIN_VALUES[name]
        if name in VARIABLE_VALUES:
            return VARIABLE_VALUES[name]
        before = expr[: match.start()].rstrip()
        after = expr[match.end() :].lstrip()
        in_range = before.endswith(("[", ":")) and after.startswith(("]", ":"))
        after_offset = re.search(r"\boffset$", before) is not None
        return OTHER_DURATION if in_range or after_offset else OTHER_VARIABLE

    return VARIABLE.sub(value, expr)


def variables_in(expr: str) -> set[str]:
    return {
        m.group("braced") or m.group("bracketed") or m.group("plain")
        for m in VARIABLE.finditer(expr)
    }


def unquote(literal: str) -> str:
    body = literal[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


def check_metric_names(query: Query, expr: str, problems: Problems) -> None:
    """Metric names in the (substituted) expr must be in KNOWN_METRICS."""
    for op, literal in NAME_MATCHER.findall(expr):
        value = unquote(literal)
        if not value.startswith("figachechnaya_"):
            continue
        if op == "=" and value not in SERIES_NAMES:
            problems.add(query.where(), f"unknown metric {value!r} (not in docs/observability.md)")
        elif op == "=~":
            # Regex selectors are not checked name by name, but one that matches no known
            # metric at all is a typo.
            try:
                pattern = re.compile(value)
            except re.error:
                continue  # RE2 syntax Python lacks: promtool judges it.
            if not any(pattern.fullmatch(name) for name in SERIES_NAMES):
                problems.add(
                    query.where(), f"__name__ regex {value!r} matches no known metric"
                )
    bare = STRING.sub('""', COMMENT.sub("", expr))
    for name in sorted(set(METRIC.findall(bare))):
        if name in HISTOGRAMS:
            problems.add(
                query.where(), f"{name!r} is a histogram: query its _bucket, _sum or _count"
            )
        elif name not in SERIES_NAMES:
            problems.add(query.where(), f"unknown metric {name!r} (not in docs/observability.md)")


def check_dashboard(path: Path, problems: Problems, uids: dict, titles: dict) -> tuple[int, list]:
    """Structural checks; returns (panels that are not rows, queries)."""
    name = path.name
    try:
        board = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        problems.add(name, f"cannot read: {err}")
        return 0, []
    except json.JSONDecodeError as err:
        problems.add(name, f"not valid JSON: line {err.lineno}, column {err.colno}: {err.msg}")
        return 0, []
    if not isinstance(board, dict):
        problems.add(name, "the top level is not a JSON object")
        return 0, []
    if "dashboard" in board:
        problems.add(name, 'has a top-level "dashboard" wrapper (an API payload, not a file '
                           "for provisioning): keep only the dashboard object")
        board = board["dashboard"] if isinstance(board["dashboard"], dict) else {}

    uid = board.get("uid")
    if not isinstance(uid, str) or not uid:
        problems.add(name, 'missing "uid"')
    elif len(uid) > 40:
        problems.add(name, f"uid {uid!r} is longer than Grafana's 40 characters")
    elif uid in uids:
        problems.add(name, f"uid {uid!r} is also used by {uids[uid]}")
    else:
        uids[uid] = name
    title = board.get("title")
    if not isinstance(title, str) or not title.strip():
        problems.add(name, 'missing "title"')
    elif title in titles:
        problems.add(name, f"title {title!r} is also used by {titles[title]}")
    else:
        titles[title] = name
    if not isinstance(board.get("schemaVersion"), int):
        problems.add(name, 'missing "schemaVersion" (a number)')
    if "id" not in board or board["id"] is not None:
        problems.add(name, '"id" must be null, so that Grafana assigns its own')
    if TAG not in (board.get("tags") or []):
        problems.add(name, f'"tags" must include {TAG!r}')

    variables = [v for v in (board.get("templating") or {}).get("list") or [] if isinstance(v, dict)]
    defined = {v.get("name") for v in variables}
    if not any(
        v.get("name") == "datasource"
        and v.get("type") == "datasource"
        and v.get("query") == "prometheus"
        for v in variables
    ):
        problems.add(name, 'no data source variable (name "datasource", type "datasource", '
                           'query "prometheus") in templating.list')

    panels = list(walk_panels(board.get("panels")))
    if not panels:
        problems.add(name, "has no panels")
    seen_ids: dict = {}
    queries: list[Query] = []
    count = 0
    for panel in panels:
        label = panel_label(panel)
        pid = panel.get("id")
        if not isinstance(pid, int):
            problems.add(name, f"panel {label} has no numeric id")
        elif pid in seen_ids:
            problems.add(name, f"panel id {pid} is used twice ({seen_ids[pid]!r} and "
                               f"{panel.get('title')!r})")
        else:
            seen_ids[pid] = panel.get("title")
        if panel.get("type") != "row":
            count += 1
        targets = panel.get("targets") or []
        if not targets:
            continue
        if panel.get("datasource") != DATASOURCE:
            problems.add(name, f"panel {label}: datasource must be {json.dumps(DATASOURCE)}, "
                               f"not {json.dumps(panel.get('datasource'))}")
        refs = set()
        for i, target in enumerate(targets):
            if not isinstance(target, dict):
                problems.add(name, f"panel {label}: query #{i + 1} is not an object")
                continue
            ref = target.get("refId") or f"#{i + 1}"
            where = f"{name}: panel {label}, query {ref}"
            if ref in refs:
                problems.add(where, "refId used twice in the panel")
            refs.add(ref)
            if target.get("datasource") != DATASOURCE:
                problems.add(where, f"datasource must be {json.dumps(DATASOURCE)}, "
                                    f"not {json.dumps(target.get('datasource'))}")
            expr = target.get("expr")
            if not isinstance(expr, str) or not expr.strip():
                problems.add(where, 'empty or missing "expr"')
                continue
            for var in sorted(variables_in(expr) - defined - set(BUILTIN_VALUES)):
                problems.add(where, f"uses ${var}, which the dashboard does not define")
            queries.append(Query(name, label, ref, expr))
    return count, queries


def promtool_check(queries: list[Query], exprs: list[str], problems: Problems) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        problems.append("promtool is not on PATH: it checks the PromQL. Install it with "
                        "`apt-get install prometheus` (Debian) and run again.")
        return
    lines = ["groups:", "  - name: dashboards", "    rules:"]
    for n, expr in enumerate(exprs, start=1):
        # A JSON string is a valid YAML double-quoted scalar.
        lines += [f"      - record: check:expr_{n}", f"        expr: {json.dumps(expr)}"]
    with tempfile.TemporaryDirectory(prefix="check-dashboards-") as tmp:
        rules = Path(tmp) / "dashboards.rules.yml"
        rules.write_text("\n".join(lines) + "\n", encoding="utf-8")
        result = subprocess.run(
            [promtool, "check", "rules", str(rules)],
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode == 0:
        return
    output = (result.stdout + result.stderr).replace(str(rules), "rules")
    found = False
    for match in re.finditer(r'"check:expr_(\d+)":\s*(.*)', output):
        found = True
        n = int(match.group(1))
        query = queries[n - 1]
        problems.add(query.where(), f"invalid PromQL: {match.group(2)}\n    expr: {exprs[n - 1]}")
    if not found:
        problems.append(f"promtool check rules failed:\n{output.strip()}")


def dashboard_files(args: list[str]) -> list[Path]:
    if not args:
        args = [str(DEFAULT_DIR)]
    files: list[Path] = []
    for arg in args:
        path = Path(arg)
        if path.is_dir():
            files += sorted(path.glob("*.json"))
        else:
            files.append(path)
    return files


def main(args: list[str]) -> int:
    files = dashboard_files(args)
    if not files:
        print(f"error: no dashboards (*.json) in {' '.join(args) or DEFAULT_DIR}", file=sys.stderr)
        return 1
    problems = Problems()
    uids: dict = {}
    titles: dict = {}
    panels = 0
    queries: list[Query] = []
    for path in files:
        count, found = check_dashboard(path, problems, uids, titles)
        panels += count
        queries += found
    exprs = [substitute(query.expr) for query in queries]
    for query, expr in zip(queries, exprs):
        check_metric_names(query, expr, problems)
    if queries:
        promtool_check(queries, exprs, problems)
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        print(f"{len(problems)} problem(s) in {len(files)} dashboard(s)", file=sys.stderr)
        return 1
    print(f"{len(files)} dashboards, {panels} panels, {len(queries)} queries: all valid")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
