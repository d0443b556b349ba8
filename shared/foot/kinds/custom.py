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

import jsonschema_rs

from foot.errors import FieldProblem
from foot.kinds import DocumentCheck
from foot.kinds.kube_schema import (
    SchemaValidator,
    metadata_problems,
    schema_problems,
    with_int_bounds,
)

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
        structural = with_int_bounds(_structural(copy.deepcopy(dict(schema)), root=True))
        self.validator: SchemaValidator | None = None
        self.unusable: str | None = None
        """Why the CRD's schema cannot be compiled (e.g. a `pattern` no regex engine takes);
        its resources are then refused saying so instead of failing the request."""
        try:
            # Formats other than the integer bounds are not checked, as for built-in kinds.
            compiled = jsonschema_rs.Draft4Validator(structural, validate_formats=False)
        except (jsonschema_rs.ValidationError, ValueError) as exc:
            self.unusable = str(exc)
        else:
            self.validator = SchemaValidator(compiled, {}, structural)

    def __call__(self, document: Mapping[str, Any]) -> list[FieldProblem]:
        if self.validator is None:
            reason = f"the schema of the CustomResourceDefinition cannot be used: {self.unusable}"
            return [FieldProblem("kind", reason)]
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
