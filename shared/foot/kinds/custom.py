"""Custom resource kinds registered by the CustomResourceDefinitions applied to FOOT.

A CRD is a template like any other (stored by the scheduler, placed by policy); each
served version of it registers `<group>/<version>` `<kind>`, whose resources are then
checked against that version's `openAPIV3Schema` as the API server would: unknown fields
refused (unless `x-kubernetes-preserve-unknown-fields`), `nullable` honoured, integer
formats bounded, labels and annotations well formed.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from jsonschema import Draft4Validator

from foot.errors import FieldProblem
from foot.kinds import DocumentCheck
from foot.kinds.kube_schema import FORMATS, metadata_problems, schema_problems

CRD_API_VERSION = "apiextensions.k8s.io/v1"
CRD_KIND = "CustomResourceDefinition"
_OBJECT_FIELDS = {"apiVersion": {"type": "string"}, "kind": {"type": "string"}}


def _structural(schema: Any, *, root: bool = False) -> Any:
    """The OpenAPI v3 schema as JSON Schema with Kubernetes' strictness made explicit."""
    if isinstance(schema, list):
        return [_structural(item) for item in schema]
    if not isinstance(schema, Mapping):
        return schema
    result = {key: _structural(value) for key, value in schema.items()}
    if result.pop("nullable", False) is True and isinstance(result.get("type"), str):
        result["type"] = [result["type"], "null"]
    if root:
        properties = dict(result.get("properties", {}))
        properties = _OBJECT_FIELDS | {"metadata": {"type": "object"}} | properties
        result["properties"] = properties
        result.setdefault("type", "object")
    preserve = result.pop("x-kubernetes-preserve-unknown-fields", False) is True
    if "properties" in result and "additionalProperties" not in result and not preserve:
        result["additionalProperties"] = False
    return result


class CustomResourceCheck:
    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.validator = Draft4Validator(
            _structural(copy.deepcopy(dict(schema)), root=True), format_checker=FORMATS
        )

    def __call__(self, document: Mapping[str, Any]) -> list[FieldProblem]:
        problems = schema_problems(self.validator, document)
        return problems + metadata_problems(document.get("metadata"), "metadata")


def custom_kind_checks(
    definitions: Iterable[Mapping[str, Any]],
) -> dict[tuple[str, str], DocumentCheck]:
    """The checks of every served version of every stored CRD, by (apiVersion, kind).

    A version without a schema accepts any content (Kubernetes' `v1` CRDs always carry one).
    """
    checks: dict[tuple[str, str], DocumentCheck] = {}
    for definition in definitions:
        spec = definition.get("spec")
        if not isinstance(spec, Mapping):
            continue
        group = spec.get("group")
        names = spec.get("names")
        kind = names.get("kind") if isinstance(names, Mapping) else None
        if not isinstance(group, str) or not isinstance(kind, str):
            continue
        for version in spec.get("versions") or []:
            if not isinstance(version, Mapping) or not version.get("served", True):
                continue
            schema = (version.get("schema") or {}).get("openAPIV3Schema") or {
                "x-kubernetes-preserve-unknown-fields": True
            }
            checks[(f"{group}/{version.get('name')}", kind)] = CustomResourceCheck(schema)
    return checks
