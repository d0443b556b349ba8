"""Resource templates checked as the Kubernetes API server would, before anything is stored.

The schemas are the OpenAPI schemas of a pinned Kubernetes release as shipped by the
`kubernetes-validate` package (strict: unknown fields refused). Each kind's validator is
compiled once per process, on first use, by jsonschema-rs (a few microseconds per object
where the pure-Python jsonschema took about a millisecond), and reports every problem at
once with its path. On top of the schemas, the checks the API server makes in code and the
schemas cannot express: int32/int64 bounds, label and annotation syntax, a workload's
selector matching its pod template's labels, container ports and names, the fields that may
not be negative, resource quantities, the choices of a few enumerations the schemas leave
open, ConfigMap and Secret data keys, and the names and ports of Namespaces and Services.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from importlib import resources
from typing import Any

import jsonschema_rs

from foot.errors import FieldProblem
from foot.objects import DNS1123_LABEL, DNS1123_LABEL_MAX, DNS1123_SUBDOMAIN_MAX
from foot.quantity import QuantityError, parse_quantity

KUBERNETES_RELEASE = "1.36"
"""The release the test environment builds (kube-apiserver v1.36.x)."""
_SCHEMA_FOLDER = f"v{KUBERNETES_RELEASE}.0-local-strict"
_DEFINITIONS_URI = "https://kubernetes.io/api/_definitions.json"

INT_BOUNDS = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_BOUND_FORMATS = {bound: name for name, bounds in INT_BOUNDS.items() for bound in bounds}
"""Which format a `minimum`/`maximum` of exactly these values stands for (see with_int_bounds;
the Kubernetes schemas carry no other `minimum`/`maximum`)."""


def with_int_bounds(schema: Any) -> Any:
    """The schema with every `format: int32`/`int64` also bounded by `minimum`/`maximum`.

    The API server refuses an out-of-range integer; jsonschema-rs checks custom formats on
    strings only, so the bounds become plain keywords (checked in Rust, reported as
    `Minimum`/`Maximum` with the bound, which `_reason` turns back into the format's words).
    A bound the schema already sets is kept when it is the tighter one."""
    if isinstance(schema, list):
        return [with_int_bounds(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: with_int_bounds(value) for key, value in schema.items()}
    name = result.get("format")
    bounds = INT_BOUNDS.get(name) if isinstance(name, str) else None
    if bounds is not None:
        low, high = bounds
        if not isinstance(result.get("minimum"), int | float) or result["minimum"] < low:
            result["minimum"] = low
        if not isinstance(result.get("maximum"), int | float) or result["maximum"] > high:
            result["maximum"] = high
    return result


def _schema_folder() -> Any:
    return resources.files("kubernetes_validate") / "kubernetes-json-schema" / _SCHEMA_FOLDER


@functools.cache
def _definitions() -> dict[str, Any]:
    return with_int_bounds(json.loads((_schema_folder() / "_definitions.json").read_bytes()))  # type: ignore[no-any-return]


@functools.cache
def _registry() -> jsonschema_rs.Registry:
    return jsonschema_rs.Registry([(_DEFINITIONS_URI, _definitions())])


class SchemaValidator:
    """A compiled schema and the documents it refers to (to read a failed keyword's value)."""

    def __init__(
        self, validator: jsonschema_rs.Validator, documents: Mapping[str, Any], root: Any
    ) -> None:
        self.validator = validator
        self.documents = documents
        """The schema documents by URI (`$id`), for errors located by URI."""
        self.root = root
        """The root schema, for errors located by schema path alone (no `$id` anywhere)."""

    def keyword_value(self, error: jsonschema_rs.ValidationError) -> Any:
        """The value of the schema keyword that failed (e.g. the options of a `oneOf`)."""
        location = error.absolute_keyword_location
        if location is not None and "#" in location:
            uri, _, pointer = location.partition("#")
            parts: Sequence[Any] = [
                p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]
            ]
            node = self.documents.get(uri)
        else:
            parts, node = error.schema_path, self.root
        for part in parts:
            if isinstance(node, list) and str(part).isdigit() and int(part) < len(node):
                node = node[int(part)]
            elif isinstance(node, Mapping) and str(part) in node:
                node = node[str(part)]
            else:
                return None
        return node


@functools.cache
def kubernetes_validator(api_version: str, kind: str) -> SchemaValidator | None:
    """The validator of a kind the pinned Kubernetes release serves; None for any other."""
    group, _, version = api_version.rpartition("/")
    # The package names files `<kind>-<first label of the group>-<version>.json`.
    stem = "-".join(part for part in (kind.lower(), group.partition(".")[0], version) if part)
    path = _schema_folder() / f"{stem}.json"
    if not re.fullmatch(r"[a-z0-9-]+", stem) or not path.is_file():
        return None
    schema = with_int_bounds(json.loads(path.read_bytes()))
    served = schema.get("x-kubernetes-group-version-kind", [])
    if {"group": group, "kind": kind, "version": version} not in served:
        return None  # `apps.example.com/v1` names the same file as `apps/v1`
    # Formats other than the integer bounds are not checked, as before (the API server's
    # own checks of `date-time`, `byte`... differ from JSON Schema's anyway).
    validator = jsonschema_rs.validator_for(schema, registry=_registry(), validate_formats=False)
    documents = {_DEFINITIONS_URI: _definitions(), str(schema.get("$id")): schema}
    return SchemaValidator(validator, documents, schema)


def schema_problems(validator: SchemaValidator, document: Any) -> list[FieldProblem]:
    """Every schema violation of a document, as dotted paths and readable reasons."""
    problems: list[FieldProblem] = []
    for error in validator.validator.iter_errors(document):
        problems.extend(_describe(validator, error, document))
    return problems


def _path(parts: Sequence[Any]) -> str:
    return ".".join(str(part) for part in parts)


def _instance_at(document: Any, parts: Sequence[Any], fallback: Any) -> Any:
    """The failing value as the document holds it (the error's copy went through JSON, where
    a YAML `.nan` became null)."""
    node = document
    try:
        for part in parts:
            node = node[part]
    except (KeyError, IndexError, TypeError):
        return fallback
    return node


def _describe(
    validator: SchemaValidator, error: jsonschema_rs.ValidationError, document: Any
) -> Iterator[FieldProblem]:
    at = list(error.instance_path)
    kind = error.kind
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.AdditionalProperties):
        for name in kind.unexpected:
            yield FieldProblem(_path([*at, name]), "unknown field")
        return
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Required):
        yield FieldProblem(_path([*at, kind.property]), "is required")
        return
    yield FieldProblem(
        _path(at), _reason(validator, error, _instance_at(document, at, error.instance))
    )


def _reason(validator: SchemaValidator, error: jsonschema_rs.ValidationError, value: Any) -> str:
    kind = error.kind
    if isinstance(
        kind, jsonschema_rs.ValidationErrorKind.Minimum | jsonschema_rs.ValidationErrorKind.Maximum
    ) and (name := _BOUND_FORMATS.get(kind.limit)):  # type: ignore[arg-type]
        low, high = INT_BOUNDS[name]
        bits = name.removeprefix("int")
        return f"must be a {bits}-bit integer (from {low} to {high}), got {value!r}"
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Type):
        names = [t for t in kind.types if t != "null"]
        return f"must be {' or '.join(_article(n) for n in names)}, got {_json_type(value)}"
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Enum):
        choices = ", ".join(repr(c) for c in kind.options if c is not None)
        return f"must be one of {choices}, got {value!r}"
    if isinstance(
        kind,
        jsonschema_rs.ValidationErrorKind.OneOfNotValid
        | jsonschema_rs.ValidationErrorKind.OneOfMultipleValid
        | jsonschema_rs.ValidationErrorKind.AnyOf,
    ):
        # Options that differ by type alone (IntOrString, Quantity, a CRD's int-or-string).
        options = validator.keyword_value(error)
        types = [
            t
            for option in (options if isinstance(options, list) else [])
            for t in _types(option)
            if t != "null"
        ]
        if types:
            wanted = " or ".join(_article(t) for t in types)
            return f"must be {wanted}, got {_json_type(value)}"
    return error.message


def _types(option: Any) -> list[str]:
    wanted = option.get("type", []) if isinstance(option, Mapping) else []
    return [wanted] if isinstance(wanted, str) else list(wanted)


def _article(type_name: str) -> str:
    return {"object": "a mapping", "array": "a list", "integer": "an integer"}.get(
        type_name, f"a {type_name}"
    )


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value!r}"
    return "a list" if isinstance(value, list) else "a mapping"


# ---- what the API server checks in code -------------------------------------------------------

_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_ANNOTATIONS_MAX_BYTES = 256 * 1024
_WORKLOADS_WITH_SELECTOR = frozenset({"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"})


def key_problem(key: str) -> str | None:
    """Why a label or annotation key is not a Kubernetes qualified name (None when it is)."""
    prefix, slash, name = key.rpartition("/")
    if slash and (
        not prefix or len(prefix) > DNS1123_SUBDOMAIN_MAX or not _DNS1123_SUBDOMAIN.match(prefix)
    ):
        return "prefix must be a lowercase DNS subdomain of at most 253 characters"
    if not name or len(name) > DNS1123_LABEL_MAX or not _QUALIFIED_NAME.match(name):
        return (
            "name part must be at most 63 characters of letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit, with an optional DNS subdomain prefix "
            "and '/' (e.g. 'example.com/my-name')"
        )
    return None


def label_value_problem(value: str) -> str | None:
    if len(value) > DNS1123_LABEL_MAX or not _LABEL_VALUE.match(value):
        return (
            "must be empty or at most 63 characters of letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
    return None


def metadata_problems(metadata: Any, at: str) -> list[FieldProblem]:
    """Label and annotation syntax of one `metadata` mapping (the object's or a pod template's)."""
    if not isinstance(metadata, Mapping):
        return []
    problems = []
    labels = metadata.get("labels")
    if isinstance(labels, Mapping):
        for key, value in labels.items():
            key_reason = key_problem(str(key))
            if key_reason is not None:
                problems.append(FieldProblem(f"{at}.labels", f"key {key!r}: {key_reason}"))
            value_reason = label_value_problem(value) if isinstance(value, str) else None
            if value_reason is not None:
                problems.append(FieldProblem(f"{at}.labels.{key}", value_reason))
    annotations = metadata.get("annotations")
    if isinstance(annotations, Mapping):
        problems.extend(
            FieldProblem(f"{at}.annotations", f"key {key!r}: {reason}")
            for key in annotations
            if (reason := key_problem(str(key))) is not None
        )
        size = sum(len(str(k)) + len(str(v)) for k, v in annotations.items())
        if size > _ANNOTATIONS_MAX_BYTES:
            reason = f"may hold at most {_ANNOTATIONS_MAX_BYTES} bytes, holds {size}"
            problems.append(FieldProblem(f"{at}.annotations", reason))
    return problems


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    """Kubernetes' LabelSelector semantics: every matchLabels pair and every expression hold."""
    match_labels = selector.get("matchLabels") or {}
    if any(labels.get(key) != value for key, value in match_labels.items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key = expression.get("key")
        values = expression.get("values") or []
        operator = expression.get("operator")
        present = key in labels
        holds = {
            "In": present and labels.get(key) in values,
            "NotIn": not present or labels.get(key) not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }.get(str(operator), False)
        if not holds:
            return False
    return True


def workload_problems(kind: str, document: Mapping[str, Any]) -> list[FieldProblem]:
    """A workload's selector must be set (apps/v1) and select its own pods."""
    spec = document.get("spec")
    if not isinstance(spec, Mapping):
        return []
    selector = spec.get("selector")
    template = spec.get("template")
    metadata = template.get("metadata") if isinstance(template, Mapping) else None
    labels = metadata.get("labels") if isinstance(metadata, Mapping) else None
    if not isinstance(selector, Mapping) or not isinstance(labels or {}, Mapping):
        return []
    if kind in _WORKLOADS_WITH_SELECTOR and not (
        selector.get("matchLabels") or selector.get("matchExpressions")
    ):
        return [FieldProblem("spec.selector", f"empty selector is invalid for a {kind}")]
    if kind in _WORKLOADS_WITH_SELECTOR or kind == "Job":
        try:
            matches = selector_matches(selector, labels or {})
        except (AttributeError, TypeError):
            return []  # malformed selector parts: the schema check reports them
        if not matches:
            reason = "`selector` does not match template `labels`"
            return [FieldProblem("spec.template.metadata.labels", reason)]
    return []


_PORT_RANGE = range(1, 65536)
_PROTOCOLS = ("TCP", "UDP", "SCTP")


def _pod_spec(document: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]] | None:
    spec = document.get("spec")
    if not isinstance(spec, Mapping):
        return None
    if document.get("kind") == "Pod":
        return "spec", spec
    template = spec.get("template")
    pod = template.get("spec") if isinstance(template, Mapping) else None
    return ("spec.template.spec", pod) if isinstance(pod, Mapping) else None


def port_problems(document: Mapping[str, Any]) -> list[FieldProblem]:
    """Container ports: numbers in 1-65535 and a known protocol (checked in code by the API
    server, not by its schema)."""
    found = _pod_spec(document)
    if found is None:
        return []
    at, pod = found
    problems = []
    for group in ("initContainers", "containers"):
        containers = pod.get(group)
        for index, container in enumerate(containers if isinstance(containers, list) else []):
            ports = container.get("ports") if isinstance(container, Mapping) else None
            for number, port in enumerate(ports if isinstance(ports, list) else []):
                if not isinstance(port, Mapping):
                    continue
                where = f"{at}.{group}.{index}.ports.{number}"
                for field in ("containerPort", "hostPort"):
                    value = port.get(field)
                    if isinstance(value, int) and value not in _PORT_RANGE:
                        reason = f"must be a port number from 1 to 65535, got {value}"
                        problems.append(FieldProblem(f"{where}.{field}", reason))
                protocol = port.get("protocol")
                if isinstance(protocol, str) and protocol not in _PROTOCOLS:
                    reason = f"must be one of {', '.join(_PROTOCOLS)}, got {protocol!r}"
                    problems.append(FieldProblem(f"{where}.protocol", reason))
    return problems


_NON_NEGATIVE = {
    "Deployment": (
        "replicas",
        "minReadySeconds",
        "revisionHistoryLimit",
        "progressDeadlineSeconds",
    ),
    "ReplicaSet": ("replicas", "minReadySeconds"),
    "StatefulSet": ("replicas", "minReadySeconds", "revisionHistoryLimit"),
    "DaemonSet": ("minReadySeconds", "revisionHistoryLimit"),
    "Job": ("parallelism", "completions", "backoffLimit", "ttlSecondsAfterFinished"),
}
"""`spec` fields the API server refuses below 0 (ValidateNonnegativeField)."""
_SPEC_CHOICES = {
    "Deployment": (("strategy", "type"), ("Recreate", "RollingUpdate")),
    "StatefulSet": (("updateStrategy", "type"), ("RollingUpdate", "OnDelete")),
    "DaemonSet": (("updateStrategy", "type"), ("RollingUpdate", "OnDelete")),
}
"""Enumerations of a workload's spec that the schemas leave as any string."""
_POD_CHOICES = {"restartPolicy": ("Always", "OnFailure", "Never")}
_CONTAINER_CHOICES = {"imagePullPolicy": ("Always", "Never", "IfNotPresent")}
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_DATA_FIELDS = {"ConfigMap": ("data", "binaryData"), "Secret": ("data", "stringData")}
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def _choice_problem(path: str, value: Any, choices: Sequence[str]) -> list[FieldProblem]:
    if not isinstance(value, str) or value in choices:
        return []  # absent (defaulted), or not a string: the schema check reports it
    options = ", ".join(repr(c) for c in choices)
    return [FieldProblem(path, f"must be one of {options}, got {value!r}")]


def _negative_int32(value: Any) -> bool:
    """Below 0 but within int32 (beyond it, the bound is what the schema check reports)."""
    low, _ = INT_BOUNDS["int32"]
    return isinstance(value, int) and not isinstance(value, bool) and low <= value < 0


def spec_value_problems(kind: str, document: Mapping[str, Any]) -> list[FieldProblem]:
    """A workload's counts below 0 and its strategy types outside their choices."""
    spec = document.get("spec")
    if not isinstance(spec, Mapping):
        return []
    problems = [
        FieldProblem(f"spec.{field}", f"must be greater than or equal to 0, got {value}")
        for field in _NON_NEGATIVE.get(kind, ())
        if _negative_int32(value := spec.get(field))
    ]
    if kind in _SPEC_CHOICES:
        (parent, field), choices = _SPEC_CHOICES[kind]
        strategy = spec.get(parent)
        if isinstance(strategy, Mapping):
            problems += _choice_problem(f"spec.{parent}.{field}", strategy.get(field), choices)
    return problems


def _quantity_problems(resources: Any, at: str) -> list[FieldProblem]:
    """Every `requests`/`limits` value of a `resources` mapping must be a quantity."""
    problems = []
    for part in ("requests", "limits"):
        amounts = resources.get(part) if isinstance(resources, Mapping) else None
        for name, amount in (amounts or {}).items() if isinstance(amounts, Mapping) else ():
            if not isinstance(amount, str | int | float) or isinstance(amount, bool):
                continue  # the schema check reports the type
            try:
                parse_quantity(amount)
            except QuantityError as exc:
                problems.append(FieldProblem(f"{at}.{part}.{name}", f"must be a quantity: {exc}"))
    return problems


def container_problems(document: Mapping[str, Any]) -> list[FieldProblem]:
    """Container names (DNS-1123 labels), resource quantities and the pod's and containers'
    policies with fixed choices."""
    found = _pod_spec(document)
    if found is None:
        return []
    at, pod = found
    problems = _choice_problem(
        f"{at}.restartPolicy", pod.get("restartPolicy"), *_POD_CHOICES.values()
    )
    for group in ("initContainers", "containers"):
        containers = pod.get(group)
        for index, container in enumerate(containers if isinstance(containers, list) else []):
            if not isinstance(container, Mapping):
                continue
            where = f"{at}.{group}.{index}"
            name = container.get("name")
            if isinstance(name, str) and (
                len(name) > DNS1123_LABEL_MAX or not DNS1123_LABEL.match(name)
            ):
                reason = (
                    "must be a lowercase RFC 1123 label (a-z, 0-9 and '-', starting and ending "
                    f"alphanumeric, at most {DNS1123_LABEL_MAX} characters), got {name!r}"
                )
                problems.append(FieldProblem(f"{where}.name", reason))
            problems += _quantity_problems(container.get("resources"), f"{where}.resources")
            for field, choices in _CONTAINER_CHOICES.items():
                problems += _choice_problem(f"{where}.{field}", container.get(field), choices)
    return problems


def config_key_problem(key: str) -> str | None:
    """Why `key` cannot be a ConfigMap or Secret data key (None when it can)."""
    if not key or len(key) > DNS1123_SUBDOMAIN_MAX or not _CONFIG_KEY.match(key):
        return (
            "must be 1 to 253 characters of letters, digits, '-', '_' or '.' "
            "(e.g. 'key.name', 'KEY_NAME' or 'key-name')"
        )
    if key in (".", "..") or key.startswith(".."):
        return "must not be '.' or '..' nor start with '..'"
    return None


def data_key_problems(kind: str, document: Mapping[str, Any]) -> list[FieldProblem]:
    """ConfigMap and Secret keys; a ConfigMap key in both `data` and `binaryData`."""
    problems = []
    seen: dict[str, str] = {}
    for field in _DATA_FIELDS.get(kind, ()):
        values = document.get(field)
        for key in values if isinstance(values, Mapping) else ():
            reason = config_key_problem(str(key))
            if reason is not None:
                problems.append(FieldProblem(field, f"key {key!r}: {reason}"))
            elif kind == "ConfigMap" and key in seen:
                reason = f"key {key!r} is also in {seen[key]} (a key may be in only one of them)"
                problems.append(FieldProblem(field, reason))
            seen.setdefault(str(key), field)
    return problems


def _label_problems(labels: Any, at: str) -> list[FieldProblem]:
    """Label key and value syntax of one mapping (a Service's selector)."""
    problems = []
    for key, value in labels.items() if isinstance(labels, Mapping) else ():
        key_reason = key_problem(str(key))
        if key_reason is not None:
            problems.append(FieldProblem(at, f"key {key!r}: {key_reason}"))
        value_reason = label_value_problem(value) if isinstance(value, str) else None
        if value_reason is not None:
            problems.append(FieldProblem(f"{at}.{key}", value_reason))
    return problems


def named_kind_problems(kind: str, document: Mapping[str, Any]) -> list[FieldProblem]:
    """A Namespace's name is a DNS-1123 label, a Service's a DNS-1035 label; a Service's
    selector is labels, and its ports are named (uniquely) when there are several."""
    metadata = document.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    problems = []
    if kind == "Namespace" and isinstance(name, str) and "." in name:
        reason = "must be a lowercase RFC 1123 label (a-z, 0-9 and '-', no '.'), got {!r}"
        problems.append(FieldProblem("metadata.name", reason.format(name)))
    if kind != "Service":
        return problems
    if isinstance(name, str) and (len(name) > DNS1123_LABEL_MAX or not _DNS1035_LABEL.match(name)):
        reason = (
            "must be a lowercase RFC 1035 label (a-z, 0-9 and '-', starting with a letter, "
            f"ending alphanumeric, at most {DNS1123_LABEL_MAX} characters), got {name!r}"
        )
        problems.append(FieldProblem("metadata.name", reason))
    spec = document.get("spec")
    if not isinstance(spec, Mapping):
        return problems
    problems += _label_problems(spec.get("selector"), "spec.selector")
    ports = spec.get("ports")
    ports = [p for p in ports if isinstance(p, Mapping)] if isinstance(ports, list) else []
    names: dict[Any, int] = {}
    for index, port in enumerate(ports):
        port_name = port.get("name")
        if not port_name and len(ports) > 1:
            reason = "is required when the Service has more than one port"
            problems.append(FieldProblem(f"spec.ports.{index}.name", reason))
        elif port_name and port_name in names:
            reason = f"duplicate name {port_name!r} (also of spec.ports.{names[port_name]})"
            problems.append(FieldProblem(f"spec.ports.{index}.name", reason))
        names.setdefault(port_name, index)
    return problems


def kubernetes_problems(
    validator: SchemaValidator, document: Mapping[str, Any]
) -> list[FieldProblem]:
    """Everything the API server would refuse in a document of a kind it serves."""
    kind = str(document.get("kind"))
    problems = schema_problems(validator, document)
    problems += metadata_problems(document.get("metadata"), "metadata")
    spec = document.get("spec")
    template = spec.get("template") if isinstance(spec, Mapping) else None
    if isinstance(template, Mapping):
        problems += metadata_problems(template.get("metadata"), "spec.template.metadata")
    problems += workload_problems(kind, document)
    problems += port_problems(document)
    problems += container_problems(document)
    problems += spec_value_problems(kind, document)
    problems += data_key_problems(kind, document)
    problems += named_kind_problems(kind, document)
    if kind == "PersistentVolumeClaim" and isinstance(spec, Mapping):
        problems += _quantity_problems(spec.get("resources"), "spec.resources")
    return problems
