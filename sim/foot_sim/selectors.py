"""Label and field selectors: parsing the query-string syntax and matching objects.

Pure functions. Syntax follows k8s.io/apimachinery/pkg/labels and
pkg/fields: requirements are comma separated; label requirements support
`=`, `==`, `!=`, `in (...)`, `notin (...)`, `key` (exists), `!key`, and
`>`/`<` on integer values.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from foot.objects import DNS1123_SUBDOMAIN_FRAGMENT
from foot_sim.errors import ApiError, bad_request

_LABEL_KEY = re.compile(
    rf"^({DNS1123_SUBDOMAIN_FRAGMENT}/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_MAX_NAME_LENGTH = 63  # label values and the name part of label keys
_SET_REQUIREMENT = re.compile(r"^\s*(\S+)\s+(in|notin)\s*\((.*)\)\s*$")
_COMPARISON = re.compile(r"^\s*([^!=<>\s]+)\s*(==|!=|=|<|>)\s*(\S*)\s*$")
_EXISTENCE = re.compile(r"^\s*(!?)\s*([^!=<>\s(),]+)\s*$")


@dataclass(frozen=True, slots=True)
class LabelRequirement:
    key: str
    operator: str  # "in", "notin", "exists", "!exists", "gt", "lt"
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        if self.operator in ("exists", "!exists"):
            return (value is not None) == (self.operator == "exists")
        if self.operator == "notin":
            return value is None or value not in self.values
        if value is None:
            return False
        if self.operator == "in":
            return value in self.values
        return _compare(value, self.operator, int(next(iter(self.values))))


def _compare(value: str, operator: str, bound: int) -> bool:
    """The `>`/`<` requirements: only integer label values can match."""
    try:
        actual = int(value)
    except ValueError:
        return False
    return actual > bound if operator == "gt" else actual < bound


def _split_requirements(selector: str) -> list[str]:
    """Split on commas that are not inside an `in (...)` value list."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p for p in parts if p.strip()]


def _parse_error(requirement: str, why: str) -> ApiError:
    return bad_request(f"unable to parse requirement: {requirement.strip()}: {why}")


def _check_key(key: str, requirement: str) -> None:
    if len(key.rsplit("/", 1)[-1]) > _MAX_NAME_LENGTH or not _LABEL_KEY.match(key):
        raise _parse_error(requirement, f'invalid label key "{key}"')


def _check_value(value: str, requirement: str) -> None:
    if len(value) > _MAX_NAME_LENGTH or not _LABEL_VALUE.match(value):
        raise _parse_error(requirement, f'invalid label value: "{value}"')


def _parse_label_requirement(requirement: str) -> LabelRequirement:
    if match := _SET_REQUIREMENT.match(requirement):
        key, operator, raw_values = match.groups()
        _check_key(key, requirement)
        values = frozenset(v.strip() for v in raw_values.split(",") if v.strip())
        for value in values:
            _check_value(value, requirement)
        return LabelRequirement(key, operator, values)
    if match := _COMPARISON.match(requirement):
        key, operator, value = match.groups()
        _check_key(key, requirement)
        if operator in ("<", ">"):
            if not re.fullmatch(r"-?\d+", value):
                raise _parse_error(
                    requirement, f"for 'Gt', 'Lt' operators, the value must be an integer: {value}"
                )
            return LabelRequirement(key, "gt" if operator == ">" else "lt", frozenset({value}))
        _check_value(value, requirement)
        return LabelRequirement(key, "notin" if operator == "!=" else "in", frozenset({value}))
    if match := _EXISTENCE.match(requirement):
        negated, key = match.groups()
        _check_key(key, requirement)
        return LabelRequirement(key, "!exists" if negated else "exists")
    raise _parse_error(requirement, "found unexpected token")


def parse_label_selector(selector: str) -> list[LabelRequirement]:
    """Parse `?labelSelector=`; an empty selector matches everything."""
    return [_parse_label_requirement(part) for part in _split_requirements(selector)]


def labels_match(requirements: list[LabelRequirement], labels: Mapping[str, str] | None) -> bool:
    present = labels or {}
    return all(requirement.matches(present) for requirement in requirements)


@dataclass(frozen=True, slots=True)
class FieldRequirement:
    field: str
    value: str
    equal: bool


# Fields every resource can be selected on, plus the few extras real servers index.
_COMMON_FIELDS = ("metadata.name", "metadata.namespace")
_EXTRA_FIELDS: dict[str, dict[str, Callable[[Mapping[str, Any]], str]]] = {
    "Secret": {"type": lambda obj: str(obj.get("type", ""))},
    "Namespace": {"status.phase": lambda obj: str(obj.get("status", {}).get("phase", ""))},
    "Node": {
        "spec.unschedulable": lambda obj: str(
            bool(obj.get("spec", {}).get("unschedulable"))
        ).lower()
    },
}


def parse_field_selector(selector: str, kind: str) -> list[FieldRequirement]:
    """Parse `?fieldSelector=` for one kind; unknown fields are a 400 as on a real server."""
    known = (*_COMMON_FIELDS, *_EXTRA_FIELDS.get(kind, {}))
    requirements: list[FieldRequirement] = []
    for part in _split_requirements(selector):
        if "!=" in part:
            field, value = part.split("!=", 1)
            equal = False
        elif "==" in part:
            field, value = part.split("==", 1)
            equal = True
        elif "=" in part:
            field, value = part.split("=", 1)
            equal = True
        else:
            raise bad_request(f"invalid selector: '{selector}'; can't understand '{part}'")
        field = field.strip()
        if field not in known:
            only = ", ".join(f'"{k}"' for k in known)
            raise bad_request(f'"{field}" is not a known field selector: only {only}')
        requirements.append(FieldRequirement(field, value.strip(), equal))
    return requirements


def field_value(obj: Mapping[str, Any], field: str, kind: str) -> str:
    metadata = obj.get("metadata", {})
    if field == "metadata.name":
        return str(metadata.get("name", ""))
    if field == "metadata.namespace":
        return str(metadata.get("namespace", ""))
    return _EXTRA_FIELDS[kind][field](obj)


def fields_match(requirements: list[FieldRequirement], obj: Mapping[str, Any], kind: str) -> bool:
    return all((field_value(obj, r.field, kind) == r.value) == r.equal for r in requirements)
