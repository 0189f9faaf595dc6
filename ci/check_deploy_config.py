#!/usr/bin/env python3
"""Checks that a deployment configures the services the way the binaries read it.

The binaries read exactly the variables that the repository's .env.example sets (its
uncommented NAME= lines). For figalize, history and imagizer as a deployment describes them:

- every variable set for a service is one the binaries read, and not the port variable of
  another binary (which this one ignores);
- the container ports declared for a service are the port its port variable gives (its value
  where set, else its default in .env.example), and HOST, where set, listens on every address;
- the health check is the binary's own `healthcheck` command in exec form (the images have no
  shell), and HTTP probes, where a deployment has them, ask that port.

`check_services()` is that part, independent of the deployment's format: it takes
{service: ServiceConfig} and the path of .env.example, so a Kubernetes check can build the
ServiceConfigs from its manifests and reuse it. The `compose` command builds them from
docker-compose/compose.yaml and adds what only the compose stack has: the neighbours' view of
the ports (figalize's HISTORY_APPEND_URL, the ingress's upstreams, Prometheus's targets), the
nginx templates' variables, the Dockerfiles' ports, health checks and version, health checks
and start-up conditions of every service, secrets required from .env, figalize's journal on a
named volume at the folder its image prepares, and docker-compose/.env.example listing every
variable compose.yaml uses.

The ingress's template (`check_ingress_template()`), as nginx reads it: no location proxies the
appends (/api/append/, /api/append/batch/: internal); the limit of every request per client
address (the zone of CLIENT_RATE, keyed by $binary_remote_addr, bursts of CLIENT_BURST) is on
the HTTPS server, and every location with a limit_req of its own (which replaces the server's)
lists it too; Host goes to the services as the client sent it ($http_host, with the port that
a same-origin POST's Origin carries). The rates and bursts compose gives it are ones nginx reads.

    python3 ci/check_deploy_config.py compose     # exit 1 and one line per problem, if any
    python3 ci/check_deploy_config.py self-test   # breaks a copy in known ways; each is caught

Needs Python 3.11 and PyYAML.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parent.parent

# Each service binary and the variable it reads its port from. The one-process site reads PORT.
PORT_VARIABLES = {
    "figalize": "FIGALIZE_API_PORT",
    "history": "HISTORY_API_PORT",
    "imagizer": "IMAGIZER_API_PORT",
}
SITE_PORT_VARIABLE = "PORT"

# Names of variables that hold secrets, in any service of a deployment.
SECRET_NAME = re.compile(r"PASS|SECRET|_KEY$|^DATABASE_URL$")
# A value that compose must take from the environment file, or refuse to start: ${NAME:?...}.
REQUIRED_INTERPOLATION = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?\?[^}]*\}")
# Variables compose interpolates: ${NAME...} or $NAME, not the escaped $$.
COMPOSE_VARIABLE = re.compile(r"(?<!\$)\$(?:\{([A-Za-z_][A-Za-z0-9_]*)|([A-Za-z_][A-Za-z0-9_]*))")
# Variables an nginx template expects from the environment (its own variables are $name).
TEMPLATE_VARIABLE = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)\}")
# The routes that the ingress must not pass to a service: history's appends are internal.
INTERNAL_ROUTES = ("/api/append/", "/api/append/batch/")
# What nginx reads as limit_req_zone's rate, and as limit_req's burst.
NGINX_RATE = re.compile(r"[1-9][0-9]*r/[sm]")
NGINX_BURST = re.compile(r"[0-9]+")


@dataclass
class ServiceConfig:
    """One service as a deployment runs it.

    env: every variable set for the container, with its value where the deployment gives it
         literally (None where it is interpolated or comes from a secret).
    ports: the container ports declared for it (compose `expose`/`ports`, a container's
         `containerPort`).
    healthcheck: the health check's command: a list for the exec form, a string for a shell
         command, None for none.
    probe_ports: the ports HTTP probes ask (Kubernetes httpGet probes), if any.
    """

    env: dict[str, str | None]
    ports: set[int]
    healthcheck: list[str] | str | None = None
    probe_ports: set[int] = field(default_factory=set)


def read_env_example(path: Path) -> dict[str, str]:
    """The variables an env file sets (uncommented NAME=value lines), with their values."""
    variables = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line)
        if match:
            variables[match.group(1)] = match.group(2)
    return variables


def service_port(service: str, config: ServiceConfig, defaults: Mapping[str, str]) -> int | None:
    """The port the service listens on: its port variable's value, else the default."""
    variable = PORT_VARIABLES[service]
    value = config.env[variable] if variable in config.env else defaults.get(variable)
    if value is None or not value.isdigit():
        return None
    return int(value)


def check_services(services: Mapping[str, ServiceConfig], env_example: Path) -> list[str]:
    """Problems with the services as configured; an empty list when there is none."""
    defaults = read_env_example(env_example)
    other_ports = set(PORT_VARIABLES.values()) | {SITE_PORT_VARIABLE}
    problems = []
    for service, config in services.items():
        if service not in PORT_VARIABLES:
            problems.append(f"{service}: not a service binary ({', '.join(PORT_VARIABLES)})")
            continue
        own_port = PORT_VARIABLES[service]
        for name in sorted(config.env):
            if name not in defaults:
                problems.append(
                    f"{service}: sets {name}, which no binary reads (not in {env_example.name})"
                )
            elif name in other_ports and name != own_port:
                problems.append(
                    f"{service}: sets {name}, which only another binary reads ({service} "
                    f"listens on {own_port})"
                )

        port = service_port(service, config, defaults)
        if port is None:
            problems.append(
                f"{service}: {own_port} must be a literal port number, to be checked "
                f"(it is {config.env.get(own_port)!r})"
            )
            continue
        origin = "set" if own_port in config.env else "default"
        if not config.ports:
            problems.append(f"{service}: declares no container port (it listens on {port})")
        for declared in sorted(config.ports - {port}):
            problems.append(
                f"{service}: declares container port {declared}, but listens on {port} "
                f"({own_port}, {origin})"
            )
        for probed in sorted(config.probe_ports - {port}):
            problems.append(
                f"{service}: a probe asks port {probed}, but it listens on {port} ({own_port})"
            )

        host = config.env.get("HOST")
        if host is not None and host not in ("0.0.0.0", "::"):
            problems.append(
                f"{service}: HOST={host} is not reachable from other containers (0.0.0.0)"
            )

        check = config.healthcheck
        if isinstance(check, str):
            problems.append(
                f"{service}: the health check is a shell command ({check!r}); the image has no "
                f"shell: use the exec form [{service}, healthcheck]"
            )
        elif check is not None and (
            len(check) != 2 or Path(check[0]).name != service or check[1] != "healthcheck"
        ):
            problems.append(
                f"{service}: the health check runs {check}, not the binary's own "
                f"[{service}, healthcheck] (which asks {own_port})"
            )
    return problems


# --- docker-compose -------------------------------------------------------------------------


def compose_raw_env(spec: Mapping) -> dict[str, str | None]:
    """A compose service's environment as written (mapping or list form)."""
    environment = spec.get("environment") or {}
    if isinstance(environment, list):
        pairs = [item.split("=", 1) if "=" in item else [item, None] for item in environment]
        environment = dict(pairs)
    return {name: None if value is None else str(value) for name, value in environment.items()}


def compose_env(spec: Mapping) -> dict[str, str | None]:
    """A compose service's environment: literal values, None where compose interpolates."""
    return {
        name: None if value is not None and "$" in value else value
        for name, value in compose_raw_env(spec).items()
    }


def compose_mounts(spec: Mapping) -> list[tuple[str, str]]:
    """A compose service's volumes as (source, target) pairs."""
    return [(source, target) for source, target, _ in compose_mounts_with_mode(spec)]


def compose_mounts_with_mode(spec: Mapping) -> list[tuple[str, str, bool]]:
    """A compose service's volumes as (source, target, read-only) triples."""
    mounts = []
    for volume in spec.get("volumes") or []:
        if isinstance(volume, Mapping):
            mounts.append((str(volume.get("source", "")), str(volume.get("target", "")),
                           bool(volume.get("read_only"))))
        else:
            source, _, rest = str(volume).partition(":")
            target, _, mode = rest.partition(":")
            mounts.append((source, target, "ro" in mode.split(",")))
    return mounts


def compose_ports(spec: Mapping) -> set[int]:
    """The container ports a compose service declares (expose, and the target of ports)."""
    ports = set()
    for item in spec.get("expose") or []:
        ports.add(int(str(item).split("/")[0]))
    for item in spec.get("ports") or []:
        if isinstance(item, Mapping):
            ports.add(int(item["target"]))
        else:
            target = str(item).split("/")[0].rsplit(":", 1)[-1]
            if target.isdigit():
                ports.add(int(target))
    return ports


def compose_healthcheck(spec: Mapping) -> list[str] | str | None:
    """A compose health check's command: exec-form list, shell string, or None."""
    check = spec.get("healthcheck")
    if not check or check.get("disable"):
        return None
    test = check.get("test")
    if isinstance(test, str):
        return test
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD-SHELL":
        return " ".join(test[1:])
    return [str(part) for part in (test[1:] if test[0] == "CMD" else test)]


@dataclass
class Stage:
    """What the checks read from one stage of a Dockerfile."""

    args: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    expose: set[int] = field(default_factory=set)
    healthcheck: list[str] | str | None = None
    entrypoint: list[str] | None = None


def read_dockerfile(path: Path) -> dict[str, Stage]:
    """A Dockerfile's stages by name (the last unnamed one as ""), with continuations joined."""
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    stages: dict[str, Stage] = {}
    stage = Stage()
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        instruction, rest = instruction.upper(), rest.strip()
        if instruction == "FROM":
            stage = Stage()
            name = re.search(r"\s+AS\s+(\S+)\s*$", rest, re.IGNORECASE)
            stages[name.group(1) if name else ""] = stage
        elif instruction == "ARG":
            name, _, default = rest.partition("=")
            stage.args[name] = default.strip('"')
        elif instruction == "ENV":
            for name, value in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=(\S+)", rest):
                stage.env[name] = value.strip('"')
        elif instruction == "EXPOSE":
            stage.expose |= {int(port.split("/")[0]) for port in rest.split()}
        elif instruction == "HEALTHCHECK":
            command = re.sub(r"^(--\S+\s+)*CMD\s+", "", rest)
            stage.healthcheck = yaml.safe_load(command) if command.startswith("[") else command
        elif instruction == "ENTRYPOINT":
            stage.entrypoint = yaml.safe_load(rest) if rest.startswith("[") else [rest]
    return stages


def compose_variables(text: str) -> set[str]:
    """Every variable compose.yaml interpolates, outside comments."""
    names = set()
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        for braced, bare in COMPOSE_VARIABLE.findall(line):
            names.add(braced or bare)
    return names


def image_tag_default(image: str) -> str | None:
    """The tag of an image reference, with ${VAR:-default} resolved to its default."""
    tag = image.rsplit("/", 1)[-1].partition(":")[2]
    match = re.fullmatch(r"\$\{[A-Za-z_][A-Za-z0-9_]*:-([^}]*)\}", tag)
    return match.group(1) if match else tag or None


@dataclass
class Paths:
    """The files the compose check reads, relative to the repository root by default."""

    root: Path = ROOT
    compose: Path = ROOT / "docker-compose/compose.yaml"
    compose_env_example: Path = ROOT / "docker-compose/.env.example"
    env_example: Path = ROOT / ".env.example"
    prometheus: Path = ROOT / "observability/prometheus/prometheus.compose.yml"
    cargo: Path = ROOT / "Cargo.toml"


def check_compose(compose: dict, compose_text: str, paths: Paths) -> list[str]:
    """Problems with the compose stack; an empty list when there is none."""
    problems: list[str] = []
    services: dict = compose.get("services") or {}
    compose_dir = paths.compose.parent
    defaults = read_env_example(paths.env_example)
    version = tomllib.loads(paths.cargo.read_text(encoding="utf-8"))["workspace"]["package"][
        "version"
    ]

    # The services themselves, through the shared check.
    configs = {}
    for service in PORT_VARIABLES:
        spec = services.get(service)
        if spec is None:
            problems.append(f"compose: no service {service}")
            continue
        if spec.get("env_file"):
            problems.append(
                f"{service}: env_file hides its variables from this check; set them in "
                f"`environment`"
            )
        configs[service] = ServiceConfig(
            env=compose_env(spec),
            ports=compose_ports(spec),
            healthcheck=compose_healthcheck(spec),
        )
    problems += check_services(configs, paths.env_example)
    ports = {name: service_port(name, config, defaults) for name, config in configs.items()}

    # Every service: pinned image, health check, start-up conditions, limits, secrets.
    # Bind mounts of files that must exist; only what generate-cert.sh makes (git-ignored) may not.
    gitignore = compose_dir / ".gitignore"
    generated = set(gitignore.read_text(encoding="utf-8").split()) if gitignore.exists() else set()
    one_shot = {name for name, spec in services.items() if str(spec.get("restart")) == "no"}
    for name, spec in services.items():
        image = str(spec.get("image", ""))
        tag = image_tag_default(image)
        if not image or (tag in (None, "latest") and "@sha256:" not in image):
            problems.append(f"{name}: image {image!r} is not pinned to a version")
        if name not in one_shot and compose_healthcheck(spec) is None:
            problems.append(f"{name}: runs for good but has no health check")
        depends = spec.get("depends_on") or {}
        if isinstance(depends, list):
            problems.append(f"{name}: depends_on without conditions (service_healthy, ...)")
            depends = {}
        for other, condition in depends.items():
            wanted = (
                "service_completed_successfully" if other in one_shot else "service_healthy"
            )
            if (condition or {}).get("condition") != wanted:
                problems.append(f"{name}: depends on {other} without condition {wanted}")
        limits = ((spec.get("deploy") or {}).get("resources") or {}).get("limits") or {}
        if not (limits.get("memory") or spec.get("mem_limit")) or not (
            limits.get("cpus") or spec.get("cpus")
        ):
            problems.append(f"{name}: no CPU and memory limits")
        for source, _ in compose_mounts(spec):
            if source.startswith(".") and not (compose_dir / source).exists() and (
                source.strip("./") + "/" not in generated
            ):
                problems.append(f"{name}: mounts {source}, which does not exist")
        for variable, value in compose_raw_env(spec).items():
            # A secret's value comes from .env; a path names a file mounted from elsewhere.
            if (
                SECRET_NAME.search(variable)
                and not REQUIRED_INTERPOLATION.search(str(value))
                and not str(value).startswith("/")
            ):
                problems.append(
                    f"{name}: {variable} is a secret and must come from .env as "
                    f"${{NAME:?…}}, not {value!r}"
                )

    # The neighbours' view of the services' ports.
    def expect(where: str, found: str | None, wanted: str) -> None:
        if found != wanted:
            problems.append(f"{where} is {found!r}, expected {wanted!r}")

    figalize_env = configs.get("figalize", ServiceConfig({}, set())).env
    if ports.get("history"):
        url = figalize_env.get("HISTORY_APPEND_URL") or ""
        parts = urlsplit(url)
        found = f"{parts.hostname}:{parts.port}{parts.path}" if parts.hostname else url
        expect("figalize's HISTORY_APPEND_URL", found, f"history:{ports['history']}/api/append/")

    ingress = services.get("ingress", {})
    ingress_env = compose_env(ingress)
    for service, port in ports.items():
        if port:
            expect(f"ingress's {service.upper()}_ADDR", ingress_env.get(f"{service.upper()}_ADDR"),
                   f"{service}:{port}")

    frontend_stage = read_dockerfile(paths.root / "frontend/Dockerfile").get("", Stage())
    frontend_port = frontend_stage.env.get("SITE_LISTEN", "")
    expect("ingress's FRONTEND_ADDR", ingress_env.get("FRONTEND_ADDR"), f"frontend:{frontend_port}")
    if frontend_port.isdigit() and int(frontend_port) not in compose_ports(
        services.get("frontend", {})
    ):
        problems.append(f"frontend: does not declare its port {frontend_port} (SITE_LISTEN)")
    if frontend_port.isdigit() and int(frontend_port) not in frontend_stage.expose:
        problems.append(f"frontend/Dockerfile: does not EXPOSE SITE_LISTEN ({frontend_port})")

    # The nginx templates get every variable they name, and nothing else.
    templates = [
        source
        for source, target in compose_mounts(ingress)
        if target.startswith("/etc/nginx/templates/")
    ]
    if len(templates) != 1:
        problems.append(f"ingress: mounts {len(templates)} templates, expected the ingress's one")
    else:
        template = (compose_dir / templates[0]).resolve()
        names = set(TEMPLATE_VARIABLE.findall(template.read_text(encoding="utf-8")))
        for missing in sorted(names - set(ingress_env)):
            problems.append(f"ingress: {template.name} needs {missing}, which is not set")
        for extra in sorted(set(ingress_env) - names):
            problems.append(f"ingress: sets {extra}, which {template.name} does not use")
        text = template.read_text(encoding="utf-8")
        problems += check_ingress_template(text, template.name)
        for variable in sorted(names & set(ingress_env)):
            value = ingress_env[variable]
            syntax = NGINX_RATE if variable.endswith("_RATE") else (
                NGINX_BURST if variable.endswith("_BURST") else None)
            if syntax and value is not None and not syntax.fullmatch(value):
                problems.append(
                    f"ingress: {variable}={value!r} is not what nginx reads there "
                    f"({'e.g. 50r/s' if syntax is NGINX_RATE else 'a whole number'})"
                )
        imagizer_env = configs.get("imagizer", ServiceConfig({}, set())).env
        public = imagizer_env.get("S3_PUBLIC_URL") or ""
        if public.startswith("/") and f"location {public} " not in text:
            problems.append(
                f"imagizer: S3_PUBLIC_URL={public}, a path {template.name} does not route"
            )
        bucket = imagizer_env.get("S3_BUCKET")
        expect("ingress's IMAGES_PATH", ingress_env.get("IMAGES_PATH"), f"/{bucket}/")
        init_bucket = compose_env(services.get("minio-init", {})).get("BUCKET")
        expect("minio-init's BUCKET", init_bucket, bucket)
    site_template = paths.root / "frontend/nginx/templates/site.conf.template"
    for missing in sorted(
        set(TEMPLATE_VARIABLE.findall(site_template.read_text(encoding="utf-8")))
        - set(frontend_stage.env)
    ):
        problems.append(f"frontend/Dockerfile: {site_template.name} needs ENV {missing}")

    # Prometheus scrapes each service as its job, on its port.
    prometheus = yaml.safe_load(paths.prometheus.read_text(encoding="utf-8"))
    jobs = {
        job["job_name"]: [t for sc in job.get("static_configs", []) for t in sc.get("targets", [])]
        for job in prometheus.get("scrape_configs", [])
    }
    for service, port in ports.items():
        if port:
            expect(f"Prometheus's targets of job {service}", str(jobs.get(service)),
                   str([f"{service}:{port}"]))

    # The images: built from the Dockerfile's target of the same name, which exposes the
    # default port and checks health with the binary that compose's health check runs.
    for service in configs:
        build = services[service].get("build") or {}
        dockerfile = paths.root / "docker/services.Dockerfile"
        expect(f"{service}'s build.dockerfile", build.get("dockerfile"), "docker/services.Dockerfile")
        expect(f"{service}'s build.target", build.get("target"), service)
        stage = read_dockerfile(dockerfile).get(service)
        if stage is None:
            problems.append(f"{dockerfile.name}: no target {service}")
            continue
        default = int(defaults[PORT_VARIABLES[service]])
        if stage.expose != {default}:
            problems.append(
                f"{dockerfile.name}: target {service} exposes {sorted(stage.expose)}, not "
                f"{PORT_VARIABLES[service]}'s default {default}"
            )
        if not stage.entrypoint or Path(stage.entrypoint[0]).name != service:
            problems.append(f"{dockerfile.name}: target {service} does not run {service}")
        elif stage.healthcheck != [stage.entrypoint[0], "healthcheck"]:
            problems.append(
                f"{dockerfile.name}: target {service}'s HEALTHCHECK is {stage.healthcheck}, "
                f"not [{stage.entrypoint[0]}, healthcheck]"
            )
        check = configs[service].healthcheck
        if stage.entrypoint and isinstance(check, list) and check[:1] != stage.entrypoint[:1]:
            problems.append(
                f"{service}: the health check runs {check[0]}, but the image's binary is "
                f"{stage.entrypoint[0]}"
            )

    # figalize's journal outlives the container: a named volume at JOURNAL_DIR, writable, at the
    # folder the image makes its user's (a volume mounted elsewhere would belong to root).
    if "figalize" in configs:
        image_journal = read_dockerfile(paths.root / "docker/services.Dockerfile").get(
            "figalize", Stage()).env.get("JOURNAL_DIR")
        journal = figalize_env.get("JOURNAL_DIR") or image_journal
        named = set(compose.get("volumes") or {})
        mounts = compose_mounts_with_mode(services["figalize"])
        on = [(source, ro) for source, target, ro in mounts if target.rstrip("/") == journal]
        if not journal or not journal.startswith("/"):
            problems.append(
                f"figalize: JOURNAL_DIR is {journal!r}, not an absolute path on a volume")
        elif not on or on[0][0] not in named:
            problems.append(
                f"figalize: JOURNAL_DIR {journal} is not on a named volume: the journal would "
                f"not outlive the container")
        elif on[0][1]:
            problems.append(f"figalize: the volume at JOURNAL_DIR {journal} is read-only")
        if journal != image_journal:
            problems.append(
                f"figalize: JOURNAL_DIR is {journal}, but the image prepares {image_journal} "
                f"for its user (a volume mounted elsewhere belongs to root)")

    # The version: the workspace's, in the images' labels and the default image tag.
    for dockerfile in [paths.root / "docker/services.Dockerfile", paths.root / "frontend/Dockerfile"]:
        found = {
            stage.args["FIGACHECHNAYA_VERSION"]
            for stage in read_dockerfile(dockerfile).values()
            if "FIGACHECHNAYA_VERSION" in stage.args
        }
        expect(f"{dockerfile.relative_to(paths.root)}'s FIGACHECHNAYA_VERSION", str(sorted(found)),
               str([version]))
    for name in [*configs, "frontend"]:
        image = str(services.get(name, {}).get("image", ""))
        expect(f"{name}'s default image tag", image_tag_default(image), version)

    # docker-compose/.env.example lists exactly the variables compose.yaml uses.
    used = compose_variables(compose_text)
    listed = read_env_example(paths.compose_env_example)
    for name in sorted(used - set(listed)):
        problems.append(f"compose.yaml uses {name}, which {paths.compose_env_example.name} lacks")
    for name in sorted(set(listed) - used):
        problems.append(f"{paths.compose_env_example.name} lists {name}, which compose.yaml never uses")
    if "FIGACHECHNAYA_IMAGE_TAG" in listed:
        expect(f"{paths.compose_env_example.name}'s FIGACHECHNAYA_IMAGE_TAG",
               listed["FIGACHECHNAYA_IMAGE_TAG"], version)
    return problems


# --- the ingress's nginx template ---------------------------------------------------------


@dataclass
class Directive:
    """An nginx directive: its name, its arguments, and its block's directives (None: no block)."""

    name: str
    args: list[str]
    block: list[Directive] | None = None

    def all(self, name: str) -> list[Directive]:
        return [d for d in self.block or [] if d.name == name]


def parse_nginx(text: str) -> list[Directive]:
    """nginx's configuration syntax: directives, blocks, quotes, comments, ${VAR} in words."""
    tokens: list[str] = []  # words, and ";", "{", "}" as themselves (quoted words as "'...")
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c == "#":
            i = text.find("\n", i)
            i = n if i < 0 else i
        elif c in ";{}":
            tokens.append(c)
            i += 1
        elif c in "'\"":
            j, word = i + 1, []
            while j < n and text[j] != c:
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                word.append(text[j])
                j += 1
            tokens.append("'" + "".join(word))
            i = j + 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in ";'\"" and not (
                text[j] in "{}" and not (text[j] == "{" and j > i and text[j - 1] == "$")
            ):
                if text[j] == "{":  # ${VAR}: up to its closing brace
                    j = text.find("}", j)
                    if j < 0:
                        raise ValueError("unterminated ${")
                j += 1
            tokens.append(text[i:j])
            i = j

    def block(at: int, nested: bool) -> tuple[list[Directive], int]:
        directives: list[Directive] = []
        words: list[str] = []
        while at < len(tokens):
            token = tokens[at]
            at += 1
            if token == ";":
                directives.append(Directive(words[0], words[1:]))
                words = []
            elif token == "{":
                inner, at = block(at, True)
                directives.append(Directive(words[0], words[1:], inner))
                words = []
            elif token == "}":
                if not nested or words:
                    raise ValueError("unbalanced }")
                return directives, at
            else:
                words.append(token.removeprefix("'"))
        if nested or words:
            raise ValueError("unterminated block or directive")
        return directives, at

    return block(0, False)[0]


def nginx_location(server: Directive, request: str) -> Directive | None:
    """The location nginx chooses for a request path: exact, else the longest prefix unless
    it is ^~ and a regex matches (in order), else that prefix."""
    locations = [d for d in server.all("location") if not d.args[0].startswith("@")]
    prefixes = []
    for location in locations:
        modifier, path = location.args if len(location.args) > 1 else ("", location.args[0])
        if modifier == "=" and path == request:
            return location
        if modifier in ("", "^~") and request.startswith(path):
            prefixes.append((len(path), modifier, location))
    longest = max(prefixes, key=lambda x: x[0], default=None)
    if longest and longest[1] == "^~":
        return longest[2]
    for location in locations:
        modifier = location.args[0] if len(location.args) > 1 else ""
        if modifier in ("~", "~*") and re.search(
            location.args[1], request, re.IGNORECASE if modifier == "~*" else 0
        ):
            return location
    return longest[2] if longest else None


def limit_req_zones(directives: list[Directive]) -> list[str]:
    return [
        arg.removeprefix("zone=")
        for d in directives
        if d.name == "limit_req"
        for arg in d.args
        if arg.startswith("zone=")
    ]


def check_ingress_template(text: str, name: str = "ingress.conf.template") -> list[str]:
    """Problems with the ingress's routes, limits and Host header; an empty list when none."""
    try:
        top = Directive("", [], parse_nginx(text))
    except (ValueError, IndexError) as error:
        return [f"{name}: not nginx's syntax ({error})"]
    https = [
        server
        for server in top.all("server")
        if any("ssl" in listen.args for listen in server.all("listen"))
    ]
    if len(https) != 1:
        return [f"{name}: {len(https)} HTTPS servers, expected one"]
    server = https[0]
    problems = []

    # The appends are internal: the JSON 404 of /api/ answers them.
    for request in INTERNAL_ROUTES:
        location = nginx_location(server, request)
        if location is None or location.all("proxy_pass"):
            problems.append(
                f"{name}: {request} is routed to a service "
                f"(location {' '.join(location.args) if location else 'none'}); it is internal"
            )

    # Every request counts against the per-client zone, in every location.
    zones = {d.args[1].removeprefix("zone=").split(":")[0]: d for d in top.all("limit_req_zone")
             if len(d.args) >= 3}
    client = [zone for zone, d in zones.items() if "rate=${CLIENT_RATE}" in d.args]
    if len(client) != 1:
        problems.append(f"{name}: no one limit_req_zone with rate=${{CLIENT_RATE}}")
    else:
        zone = client[0]
        if zones[zone].args[0] != "$binary_remote_addr":
            problems.append(
                f"{name}: the zone of CLIENT_RATE is keyed by {zones[zone].args[0]}, not "
                f"$binary_remote_addr: it does not count every request of a client address"
            )
        at_server = [d for d in server.all("limit_req") if f"zone={zone}" in d.args]
        if not at_server:
            problems.append(
                f"{name}: the HTTPS server has no limit_req zone={zone}: every request is not "
                f"limited per client address"
            )
        elif "burst=${CLIENT_BURST}" not in at_server[0].args:
            problems.append(
                f"{name}: the server's limit_req zone={zone} has no burst=${{CLIENT_BURST}}"
            )
        for location in server.all("location"):
            own = limit_req_zones(location.block or [])
            if own and zone not in own:
                problems.append(
                    f"{name}: location {' '.join(location.args)} has a limit_req of its own "
                    f"({', '.join(own)}), which replaces the server's: it must list zone={zone} too"
                )

    # Host as the client sent it, port included: the services compare it with Origin.
    hosts = [d.args[1] for d in server.all("proxy_set_header") if d.args[0].lower() == "host"]
    if hosts != ["$http_host"]:
        problems.append(
            f"{name}: the HTTPS server passes Host as {hosts}, not $http_host (with the port "
            f"a same-origin POST's Origin carries)"
        )
    return problems


def load_compose(path: Path) -> tuple[dict, str]:
    text = path.read_text(encoding="utf-8")
    return yaml.safe_load(text), text


# --- self-test ------------------------------------------------------------------------------

# Ways to break the configuration, each with a word the resulting problem must contain.
Mutation = Callable[[dict], None]


def _env(service: str, name: str, value: str | None) -> Mutation:
    def mutate(compose: dict) -> None:
        env = compose["services"][service].setdefault("environment", {})
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value

    return mutate


def _set(service: str, key: str, value: object) -> Mutation:
    def mutate(compose: dict) -> None:
        if value is None:
            compose["services"][service].pop(key, None)
        else:
            compose["services"][service][key] = value

    return mutate


MUTATIONS: list[tuple[str, Mutation, str]] = [
    ("a variable no binary reads", _env("figalize", "FIGALIZE_PORT", "8002"), "FIGALIZE_PORT"),
    ("another binary's port variable", _env("imagizer", "HISTORY_API_PORT", "8001"),
     "only another binary"),
    ("a port variable off the declared port", _env("history", "HISTORY_API_PORT", "8011"),
     "listens on 8011"),
    ("a declared port off the service's port", _set("imagizer", "expose", ["8080"]),
     "declares container port 8080"),
    ("HOST on loopback", _env("figalize", "HOST", "127.0.0.1"), "HOST=127.0.0.1"),
    ("a shell health check", _set("history", "healthcheck",
                                  {"test": ["CMD-SHELL", "curl -f http://127.0.0.1:8001/api/livez/"]}),
     "shell"),
    ("another binary's health check", _set("figalize", "healthcheck",
                                           {"test": ["CMD", "/usr/local/bin/history", "healthcheck"]}),
     "not the binary's own"),
    ("no health check", _set("kafka", "healthcheck", None), "no health check"),
    ("a condition-less dependency", _set("imagizer", "depends_on", ["kafka"]), "without conditions"),
    ("a one-shot job awaited as healthy", _set(
        "imagizer", "depends_on", {"minio-init": {"condition": "service_healthy"}}),
     "service_completed_successfully"),
    ("no limits", _set("grafana", "deploy", None), "limits"),
    ("a literal secret", _env("history", "DB_PASS", "hunter22"), "DB_PASS is a secret"),
    ("an unpinned image", _set("postgres", "image", "postgres:latest"), "not pinned"),
    ("figalize appending to the wrong port", _env(
        "figalize", "HISTORY_APPEND_URL", "http://history:8009/api/append/"), "HISTORY_APPEND_URL"),
    ("the ingress on the wrong upstream", _env("ingress", "IMAGIZER_ADDR", "imagizer:8080"),
     "IMAGIZER_ADDR"),
    ("a template variable missing", _env("ingress", "FIGALIZE_BURST", None), "FIGALIZE_BURST"),
    ("the per-client burst missing", _env("ingress", "CLIENT_BURST", None), "CLIENT_BURST"),
    ("the per-client rate missing", _env("ingress", "CLIENT_RATE", None), "CLIENT_RATE"),
    ("a rate nginx does not read", _env("ingress", "CLIENT_RATE", "50"), "CLIENT_RATE='50'"),
    ("a variable the template does not use", _env("ingress", "APPEND_RATE", "5r/s"), "APPEND_RATE"),
    ("images outside the ingress's routes", _env("imagizer", "S3_PUBLIC_URL", "/pictures/"),
     "S3_PUBLIC_URL"),
    ("a bucket the ingress does not serve", _env("imagizer", "S3_BUCKET", "other"), "IMAGES_PATH"),
    ("an image of another target", _set("history", "build", {
        "context": "..", "dockerfile": "docker/services.Dockerfile", "target": "figalize"}),
     "build.target"),
    ("variables hidden in an env file", _set("figalize", "env_file", [".env"]), "env_file"),
    ("figalize's journal in the container only", _set("figalize", "volumes", None),
     "not on a named volume"),
    ("the journal in a folder the image does not prepare",
     _env("figalize", "JOURNAL_DIR", "/journal"), "the image prepares"),
    ("a read-only journal", _set("figalize", "volumes",
                                 ["figalize-journal:/var/lib/figalize/journal:ro"]), "read-only"),
]


# Ways to break the ingress's template: (title, old text, new text, word of the problem).
TEMPLATE_MUTATIONS: list[tuple[str, str, str, str]] = [
    ("the append route public", "    location /api/ {",
     "    location = /api/append/ { proxy_pass http://figachechnaya_history; }\n"
     "    location /api/ {", "/api/append/ is routed"),
    ("the batch route public", "    location /api/ {",
     "    location /api/append/ { proxy_pass http://figachechnaya_history; }\n"
     "    location /api/ {", "/api/append/batch/ is routed"),
    ("the batch route public by a regex", "    location /api/ {",
     "    location ~ ^/api/append/batch/$ { proxy_pass http://figachechnaya_history; }\n"
     "    location /api/ {", "/api/append/batch/ is routed"),
    ("no per-client limit on the server",
     "    limit_req zone=figachechnaya_client burst=${CLIENT_BURST} nodelay;\n    limit_req_status",
     "    limit_req_status", "every request is not limited"),
    ("figalize's limit replacing the per-client one",
     "        limit_req zone=figachechnaya_client burst=${CLIENT_BURST} nodelay;\n"
     "        limit_req zone=figachechnaya_figalize",
     "        limit_req zone=figachechnaya_figalize", "/api/figalize/ has a limit_req of its own"),
    ("the per-client zone keyed by something else",
     "limit_req_zone $binary_remote_addr zone=figachechnaya_client",
     "limit_req_zone $figachechnaya_figalize_client zone=figachechnaya_client",
     "not $binary_remote_addr"),
    ("Host without its port", "proxy_set_header Host $http_host;", "proxy_set_header Host $host;",
     "not $http_host"),
]


def self_test(paths: Paths) -> int:
    compose, text = load_compose(paths.compose)
    baseline = check_compose(compose, text, paths)
    if baseline:
        print("The configuration itself has problems; fix them first:")
        print("\n".join(f"  {problem}" for problem in baseline))
        return 1
    failures = 0
    for title, mutate, word in MUTATIONS:
        broken = copy.deepcopy(compose)
        mutate(broken)
        problems = check_compose(broken, text, paths)
        caught = any(word in problem for problem in problems)
        failures += not caught
        print(f"{'caught' if caught else 'MISSED'}: {title}" + (
            "" if caught else f" (expected a problem with {word!r}; got {problems})"))
    # The variables of compose.yaml's text against its .env.example: one more, unlisted.
    problems = check_compose(compose, text + "\n# x\nx-extra: ${UNLISTED_VARIABLE}\n", paths)
    caught = any("UNLISTED_VARIABLE" in problem for problem in problems)
    failures += not caught
    print(f"{'caught' if caught else 'MISSED'}: a variable docker-compose/.env.example lacks")
    # The ingress's template, as the compose stack mounts it.
    mounts = [s for s, t in compose_mounts(compose["services"]["ingress"])
              if t.startswith("/etc/nginx/templates/")]
    template = (paths.compose.parent / mounts[0]).resolve()
    template_text = template.read_text(encoding="utf-8")
    for title, old, new, word in TEMPLATE_MUTATIONS:
        if template_text.count(old) != 1:
            caught = False
            detail = f" (the self-test's text {old!r} is not once in {template.name}: update it)"
        else:
            problems = check_ingress_template(template_text.replace(old, new), template.name)
            caught = any(word in problem for problem in problems)
            detail = f" (expected a problem with {word!r}; got {problems})"
        failures += not caught
        print(f"{'caught' if caught else 'MISSED'}: {title}" + ("" if caught else detail))
    total = len(MUTATIONS) + 1 + len(TEMPLATE_MUTATIONS)
    print(f"{total - failures} passed, {failures} failed")
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["compose", "self-test"])
    parser.add_argument("--compose", type=Path, default=Paths.compose)
    parser.add_argument("--env-example", type=Path, default=Paths.env_example)
    args = parser.parse_args()
    paths = Paths(
        compose=args.compose.resolve(),
        compose_env_example=args.compose.resolve().parent / ".env.example",
        env_example=args.env_example.resolve(),
    )
    if args.command == "self-test":
        return self_test(paths)
    compose, text = load_compose(paths.compose)
    problems = check_compose(compose, text, paths)
    for problem in problems:
        print(f"error: {problem}")
    if problems:
        return 1
    print(
        f"{len(PORT_VARIABLES)} services configured with variables the binaries read, on "
        f"consistent ports; {len(compose.get('services') or {})} compose services checked"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
