#!/usr/bin/env python3
"""Checks the Terraform code offline, without terraform, its providers or a cloud account.

    python3 ci/check_terraform.py [TERRAFORM_DIR]

TERRAFORM_DIR defaults to terraform/. Needs python-hcl2 (ci/check-terraform.sh installs the
pinned version). Every folder holding .tf files is one Terraform module; a module that no
other module calls is a root configuration (environments/prod). The checks:

- every .tf file parses as HCL, and so do the *.tf.example and *.tfvars.example files;
- every variable has a description and a type; every output has a description;
- every variable a module declares is used in it (var.NAME), and every var.NAME it uses is
  declared; every local.NAME is defined in a locals block;
- every module call has a source folder that exists, passes only variables the module
  declares and every variable it requires (one without a default), and every
  module.NAME.OUTPUT used is an output of that module;
- every provider used (by the prefix of a resource or data source type, such as aws_ or
  helm_, or by a provider block) is in the module's own required_providers with a source,
  and the root configuration's required_providers lists every provider its modules use,
  each with an exact version or a ~> constraint; every module sets required_version, and
  the root's is exact or ~>;
- every helm_release names an exact chart version (literally or through a variable's
  default); one whose chart is a folder of its module (${path.module}/chart) has the exact
  version of that chart's Chart.yaml, written out or read from the Chart.yaml;
- no secret is written in the code: no password, secret, token or key attribute with a
  literal string value, no AWS access key ID, no default value for a secret-looking
  variable, and no secret-looking value in a *.tfvars.example file;
- variables whose names look secret are marked sensitive = true, and every output whose
  value comes from something sensitive (a sensitive variable or module output, a generated
  password, an access key's secret) is marked sensitive = true;
- every variable a terraform.tfvars.example file sets is declared in its folder, and it sets
  every variable there that has no default.

Exits 1 and lists every problem found, or prints a one-line summary.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import hcl2

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = ROOT / "terraform"

# Arguments of a module block that are Terraform's own, not the module's variables.
MODULE_META_ARGS = {"source", "version", "providers", "depends_on", "count", "for_each"}
# Resource types that belong to Terraform itself, not to a provider.
BUILTIN_TYPES = {"terraform_data", "terraform_remote_state"}
# Attribute and variable names that hold secrets.
SECRET_NAME = re.compile(
    r"(^|_)(password|passwd|secret|secret_key|secret_access_key|access_key|access_key_id|"
    r"token|private_key|api_key|client_secret)(_wo)?$",
    re.IGNORECASE,
)
# Attribute values that are secret whatever the attribute is called.
AWS_ACCESS_KEY_ID = re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")
# A secret-looking attribute given a literal string in the text itself, which also finds one
# inside a jsonencode() or a heredoc, where the parsed form holds only the whole expression.
SECRET_LITERAL = re.compile(
    r"""(?P<name>[A-Za-z_][A-Za-z0-9_-]*)"?\s*[=:]\s*"(?P<value>[^"]*)\"""",
)
# Values derived from these are sensitive (resource type, attribute or None for any).
SENSITIVE_SOURCES = [
    re.compile(r"\brandom_password\.[A-Za-z0-9_-]+(\[[^\]]*\])?\.(result|bcrypt_hash)\b"),
    re.compile(
        r"\baws_iam_access_key\.[A-Za-z0-9_-]+(\[[^\]]*\])?\.(secret|ses_smtp_password_v4)\b"
    ),
    re.compile(r"\.(password|master_password|secret|secret_key|private_key_pem|token)\b"),
]
EXACT_VERSION = re.compile(r"^(=\s*)?v?\d+\.\d+\.\d+$")
PINNED_CONSTRAINT = re.compile(r"^(=\s*)?\d+\.\d+\.\d+$|^~>\s*\d+\.\d+(\.\d+)?$")
VAR_REF = re.compile(r"\bvar\.([A-Za-z_][A-Za-z0-9_-]*)")
LOCAL_REF = re.compile(r"\blocal\.([A-Za-z_][A-Za-z0-9_-]*)")
# A helm_release chart in the module's own folder, such as "${path.module}/chart".
LOCAL_CHART = re.compile(r"\$\{path\.module\}/([A-Za-z0-9._/-]+)")
CHART_YAML_VERSION = re.compile(r"^version:\s*[\"']?([^\"'\s#]+)", re.MULTILINE)
MODULE_REF = re.compile(r"\bmodule\.([A-Za-z_][A-Za-z0-9_-]*)\.([A-Za-z_][A-Za-z0-9_-]*)")


def unquote(value):
    """A string literal as python-hcl2 returns it ('"text"') without its quotes."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1]
    return value


def is_literal_string(value) -> bool:
    """Whether a parsed value is a plain string literal (no interpolation, no expression)."""
    return (
        isinstance(value, str)
        and len(value) >= 2
        and value[0] == '"'
        and value[-1] == '"'
        and "${" not in value
    )


def strings_in(value):
    """Every string in a parsed value: expressions, literals and object keys."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if key.startswith("__"):
                continue
            yield key
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def blocks(document: dict, kind: str):
    """The bodies of the top-level blocks of one kind with one label: (label, body)."""
    for entry in document.get(kind, []):
        for label, body in entry.items():
            if not label.startswith("__"):
                yield unquote(label), body


def labelled_twice(document: dict, kind: str):
    """The bodies of resource or data blocks: (type, name, body)."""
    for entry in document.get(kind, []):
        for type_label, named in entry.items():
            if type_label.startswith("__"):
                continue
            for name_label, body in named.items():
                if not name_label.startswith("__"):
                    yield unquote(type_label), unquote(name_label), body


@dataclass
class Variable:
    name: str
    where: str
    body: dict

    @property
    def required(self) -> bool:
        return "default" not in self.body

    @property
    def sensitive(self) -> bool:
        return self.body.get("sensitive") is True


@dataclass
class Module:
    """One folder of .tf files."""

    path: Path
    files: list[Path] = field(default_factory=list)
    documents: list[tuple[Path, dict]] = field(default_factory=list)
    variables: dict[str, Variable] = field(default_factory=dict)
    outputs: dict[str, tuple[str, dict]] = field(default_factory=dict)
    locals: dict[str, object] = field(default_factory=dict)
    calls: dict[str, tuple[str, dict]] = field(default_factory=dict)
    # Resource and data source types, with where they are.
    types: dict[str, str] = field(default_factory=dict)
    provider_blocks: set[str] = field(default_factory=set)
    required_providers: dict[str, dict] = field(default_factory=dict)
    required_version: str | None = None
    helm_releases: list[tuple[str, dict]] = field(default_factory=list)

    def strings(self):
        for _, document in self.documents:
            yield from strings_in(document)

    def providers_used(self) -> set[str]:
        used = {t.split("_", 1)[0] for t in self.types if t not in BUILTIN_TYPES}
        return used | self.provider_blocks


class Checker:
    def __init__(self, base: Path):
        self.base = base
        self.problems: list[str] = []
        self.modules: dict[Path, Module] = {}
        self.parsed = 0

    def problem(self, message: str) -> None:
        self.problems.append(message)

    def rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(ROOT))
        except ValueError:
            return str(path)

    # Reading

    def parse(self, path: Path):
        try:
            with path.open(encoding="utf-8") as handle:
                document = hcl2.load(handle)
        except Exception as error:  # python-hcl2 raises lark's and its own exceptions
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
            self.problem(f"{self.rel(path)}: does not parse: {type(error).__name__}: {first_line}")
            return None
        self.parsed += 1
        return document

    def load(self) -> None:
        files = sorted(p for p in self.base.rglob("*.tf") if ".terraform" not in p.parts)
        if not files:
            self.problem(f"{self.rel(self.base)}: no .tf files")
        for path in files:
            module = self.modules.setdefault(path.parent, Module(path.parent))
            module.files.append(path)
            document = self.parse(path)
            if document is not None:
                module.documents.append((path, document))
                self.collect(module, path, document)
        for path in sorted(self.base.rglob("*.tf.example")):
            self.parse(path)

    def collect(self, module: Module, path: Path, document: dict) -> None:
        where = self.rel(path)
        for name, body in blocks(document, "variable"):
            if name in module.variables:
                self.problem(f"{where}: variable {name} is declared twice")
            module.variables[name] = Variable(name, where, body)
        for name, body in blocks(document, "output"):
            module.outputs[name] = (where, body)
        for name, body in blocks(document, "module"):
            module.calls[name] = (where, body)
        for name, _ in blocks(document, "provider"):
            module.provider_blocks.add(name)
        for entry in document.get("locals", []):
            for name, value in entry.items():
                if not name.startswith("__"):
                    module.locals[name] = value
        for kind in ("resource", "data"):
            for type_name, name, body in labelled_twice(document, kind):
                module.types.setdefault(type_name, f"{where}: {kind} {type_name}.{name}")
                if kind == "resource" and type_name == "helm_release":
                    module.helm_releases.append((f"{where}: helm_release.{name}", body))
        for settings in document.get("terraform", []):
            if "required_version" in settings:
                module.required_version = unquote(settings["required_version"])
            for providers in settings.get("required_providers", []):
                for name, spec in providers.items():
                    if not name.startswith("__"):
                        module.required_providers[name] = spec if isinstance(spec, dict) else {}

    # Checks

    def check_variables(self, module: Module) -> None:
        used = {name for text in module.strings() for name in VAR_REF.findall(text)}
        for name, variable in sorted(module.variables.items()):
            where = f"{variable.where}: variable {name}"
            description = variable.body.get("description")
            if not (is_literal_string(description) and unquote(description).strip()):
                self.problem(f"{where} has no description")
            if "type" not in variable.body:
                self.problem(f"{where} has no type")
            if name not in used:
                self.problem(f"{where} is declared but never used (no var.{name})")
            if SECRET_NAME.search(name):
                if not variable.sensitive:
                    self.problem(f"{where} looks secret but is not marked sensitive = true")
                default = variable.body.get("default")
                if is_literal_string(default) and unquote(default):
                    self.problem(f"{where} looks secret but has a literal default value")
        for name in sorted(used - module.variables.keys()):
            self.problem(f"{self.rel(module.path)}: var.{name} is used but not declared")

    def check_locals(self, module: Module) -> None:
        used = {name for text in module.strings() for name in LOCAL_REF.findall(text)}
        for name in sorted(used - module.locals.keys()):
            self.problem(f"{self.rel(module.path)}: local.{name} is used but not defined")

    def resolve_call(self, module: Module, name: str, where: str, body: dict) -> Module | None:
        source = unquote(body.get("source"))
        if not isinstance(source, str) or not source.startswith(("./", "../")):
            self.problem(f"{where}: module {name} has no local source (./ or ../)")
            return None
        target = (module.path / source).resolve()
        called = self.modules.get(target)
        if called is None:
            self.problem(f"{where}: module {name}: source {source} holds no .tf files")
        return called

    def check_calls(self, module: Module) -> None:
        for name, (where, body) in sorted(module.calls.items()):
            called = self.resolve_call(module, name, where, body)
            if called is None:
                continue
            passed = {k for k in body if not k.startswith("__")} - MODULE_META_ARGS
            for arg in sorted(passed - called.variables.keys()):
                self.problem(
                    f"{where}: module {name} passes {arg}, which {self.rel(called.path)} "
                    "does not declare"
                )
            required = {n for n, v in called.variables.items() if v.required}
            for arg in sorted(required - passed):
                self.problem(
                    f"{where}: module {name} does not pass {arg}, which {self.rel(called.path)} "
                    "requires (it has no default)"
                )
        for text in module.strings():
            for call, output in MODULE_REF.findall(text):
                if call not in module.calls:
                    self.problem(f"{self.rel(module.path)}: module.{call} is used but not called")
                    continue
                where, body = module.calls[call]
                called = self.modules.get((module.path / unquote(body.get("source", ""))).resolve())
                if called is not None and output not in called.outputs:
                    self.problem(
                        f"{self.rel(module.path)}: module.{call}.{output} is used but "
                        f"{self.rel(called.path)} has no output {output}"
                    )

    def called_modules(self, module: Module, seen: set[Path] | None = None) -> list[Module]:
        seen = seen if seen is not None else {module.path}
        found = []
        for _, body in module.calls.values():
            target = (module.path / str(unquote(body.get("source", "")))).resolve()
            called = self.modules.get(target)
            if called is not None and called.path not in seen:
                seen.add(called.path)
                found.append(called)
                found.extend(self.called_modules(called, seen))
        return found

    def check_providers(self, module: Module, is_root: bool) -> None:
        where = self.rel(module.path)
        if module.required_version is None:
            self.problem(f"{where}: no terraform required_version")
        elif is_root and not PINNED_CONSTRAINT.match(module.required_version):
            self.problem(
                f"{where}: required_version {module.required_version!r} is not exact or ~>"
            )
        for provider in sorted(module.providers_used()):
            spec = module.required_providers.get(provider)
            if spec is None:
                self.problem(
                    f"{where}: provider {provider} is used but not in its required_providers"
                )
            elif not unquote(spec.get("source", "")):
                self.problem(f"{where}: required_providers.{provider} has no source")
        if not is_root:
            return
        needed = set(module.providers_used())
        for called in self.called_modules(module):
            needed |= called.providers_used()
            needed |= set(called.required_providers)
        for provider in sorted(needed):
            spec = module.required_providers.get(provider)
            if spec is None:
                if provider not in module.providers_used():
                    self.problem(
                        f"{where}: provider {provider}, used by its modules, is not in the root "
                        "required_providers"
                    )
                continue
            version = unquote(spec.get("version", ""))
            if not version:
                self.problem(f"{where}: required_providers.{provider} has no version")
            elif not PINNED_CONSTRAINT.match(version):
                self.problem(
                    f"{where}: required_providers.{provider} version {version!r} is not exact "
                    "or ~>"
                )

    def check_helm_versions(self, module: Module) -> None:
        for where, body in module.helm_releases:
            local = LOCAL_CHART.fullmatch(str(unquote(body.get("chart"))))
            if local:
                self.check_local_chart_version(module, where, local.group(1), body)
                continue
            version = body.get("version")
            reference = re.fullmatch(r"\$\{var\.([A-Za-z0-9_-]+)\}", str(version))
            if reference and reference.group(1) in module.variables:
                version = module.variables[reference.group(1)].body.get("default")
            if not (is_literal_string(version) and EXACT_VERSION.match(unquote(version))):
                self.problem(f"{where}: chart version is not pinned to an exact version")

    def check_local_chart_version(self, module: Module, where: str, folder: str, body) -> None:
        """A chart in the module's folder: its Chart.yaml has an exact version, and the
        release's version is that one (the helm provider refuses any other), written out or
        read from the Chart.yaml itself."""
        chart_yaml = module.path / folder / "Chart.yaml"
        if not chart_yaml.is_file():
            self.problem(f"{where}: local chart {folder} has no Chart.yaml")
            return
        match = CHART_YAML_VERSION.search(chart_yaml.read_text(encoding="utf-8"))
        chart_version = match.group(1) if match else None
        if not (chart_version and EXACT_VERSION.match(chart_version)):
            self.problem(f"{self.rel(chart_yaml)}: version is not an exact version")
            return
        version = body.get("version")
        reads_chart_yaml = f'file("${{path.module}}/{folder}/Chart.yaml")' in str(version)
        if is_literal_string(version) and unquote(version) == chart_version:
            return
        if not reads_chart_yaml:
            self.problem(
                f"{where}: version is neither {chart_version} (its Chart.yaml's) nor read from "
                f"{folder}/Chart.yaml"
            )

    def check_secret_literals(self, module: Module) -> None:
        def walk(value, where):
            if isinstance(value, dict):
                for key, item in value.items():
                    if key.startswith("__"):
                        continue
                    if (
                        SECRET_NAME.search(unquote(key))
                        and is_literal_string(item)
                        and unquote(item)
                    ):
                        self.problem(f"{where}: {unquote(key)} is set to a literal string")
                    walk(item, where)
            elif isinstance(value, list):
                for item in value:
                    walk(item, where)

        for path, document in module.documents:
            for kind in ("resource", "data", "module", "provider", "locals", "terraform"):
                walk(document.get(kind, []), self.rel(path))
            self.check_secret_text(path)

    def check_secret_text(self, path: Path) -> None:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            stripped = line.strip()
            if stripped.startswith(("#", "//")):
                continue
            if AWS_ACCESS_KEY_ID.search(line):
                self.problem(f"{self.rel(path)}:{number}: an AWS access key ID")
            for match in SECRET_LITERAL.finditer(line):
                value = match.group("value")
                if SECRET_NAME.search(match.group("name")) and value and "${" not in value:
                    self.problem(
                        f"{self.rel(path)}:{number}: {match.group('name')} is set to a literal "
                        "string"
                    )

    def sensitive_outputs(self, module: Module) -> set[str]:
        return {name for name, (_, body) in module.outputs.items() if body.get("sensitive") is True}

    def is_sensitive(self, module: Module, value, sensitive_locals: set[str]) -> bool:
        for text in strings_in(value):
            variables = [module.variables.get(n) for n in VAR_REF.findall(text)]
            if any(variable is not None and variable.sensitive for variable in variables):
                return True
            if any(n in sensitive_locals for n in LOCAL_REF.findall(text)):
                return True
            if any(pattern.search(text) for pattern in SENSITIVE_SOURCES):
                return True
            for call, output in MODULE_REF.findall(text):
                if call in module.calls:
                    source = unquote(module.calls[call][1].get("source", ""))
                    called = self.modules.get((module.path / str(source)).resolve())
                    if called is not None and output in self.sensitive_outputs(called):
                        return True
        return False

    def check_outputs(self, module: Module) -> None:
        sensitive_locals: set[str] = set()
        changed = True
        while changed:
            changed = False
            for name, value in module.locals.items():
                if name in sensitive_locals:
                    continue
                if self.is_sensitive(module, value, sensitive_locals):
                    sensitive_locals.add(name)
                    changed = True
        for name, (where, body) in sorted(module.outputs.items()):
            description = body.get("description")
            if not (is_literal_string(description) and unquote(description).strip()):
                self.problem(f"{where}: output {name} has no description")
            marked = body.get("sensitive") is True
            if marked:
                continue
            if SECRET_NAME.search(name):
                self.problem(f"{where}: output {name} looks secret but is not sensitive = true")
            elif self.is_sensitive(module, body.get("value"), sensitive_locals):
                self.problem(
                    f"{where}: output {name} comes from a sensitive value but is not "
                    "sensitive = true"
                )

    def check_tfvars_examples(self) -> None:
        for path in sorted(self.base.rglob("*.tfvars.example")):
            document = self.parse(path)
            if document is None:
                continue
            self.check_secret_text(path)
            module = self.modules.get(path.parent)
            declared = module.variables if module else {}
            keys = {k for k in document if not k.startswith("__")}
            for key in sorted(keys):
                if key not in declared:
                    self.problem(f"{self.rel(path)}: {key} is not a variable of its folder")
                elif declared[key].sensitive or SECRET_NAME.search(key):
                    self.problem(f"{self.rel(path)}: sets {key}, a secret")
            for name in sorted(n for n, v in declared.items() if v.required and n not in keys):
                self.problem(f"{self.rel(path)}: does not set {name}, which has no default")

    def run(self) -> int:
        self.load()
        called = set()
        for module in self.modules.values():
            for _, body in module.calls.values():
                called.add((module.path / str(unquote(body.get("source", "")))).resolve())
        roots = [m for m in self.modules.values() if m.path not in called]
        if not roots:
            self.problem(f"{self.rel(self.base)}: no root configuration (every module is called)")
        for module in self.modules.values():
            self.check_variables(module)
            self.check_locals(module)
            self.check_calls(module)
            self.check_providers(module, module in roots)
            self.check_helm_versions(module)
            self.check_secret_literals(module)
            self.check_outputs(module)
        self.check_tfvars_examples()
        for problem in self.problems:
            print(problem, file=sys.stderr)
        if self.problems:
            print(f"{len(self.problems)} problem(s) in {self.rel(self.base)}", file=sys.stderr)
            return 1
        variables = sum(len(m.variables) for m in self.modules.values())
        outputs = sum(len(m.outputs) for m in self.modules.values())
        print(
            f"{self.parsed} files parsed; {len(self.modules)} modules "
            f"({', '.join(self.rel(r.path) for r in roots)} as root), {variables} variables, "
            f"{outputs} outputs: valid"
        )
        return 0


def main(argv: list[str]) -> int:
    base = Path(argv[1]).resolve() if len(argv) > 1 else DEFAULT_DIR
    if not base.is_dir():
        print(f"{base}: not a folder", file=sys.stderr)
        return 1
    return Checker(base).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
