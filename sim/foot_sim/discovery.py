"""Discovery, version, OpenAPI and Table documents, built from the resource table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from foot_sim.resources import ALL_VERBS, RESOURCE_TYPES, ResourceType, group_versions

JSON = dict[str, Any]

KUBERNETES_VERSION = "v1.32.0"


def version_info() -> JSON:
    major, minor, _ = KUBERNETES_VERSION.lstrip("v").split(".")
    return {
        "major": major,
        "minor": minor,
        "gitVersion": f"{KUBERNETES_VERSION}-foot-sim",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.23.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def api_versions(server_address: str) -> JSON:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _group_document(group: str, versions: list[str]) -> JSON:
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": entries, "preferredVersion": entries[0]}


def api_group_list() -> JSON:
    groups = [_group_document(g, v) for g, v in group_versions().items() if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(group: str) -> JSON | None:
    versions = group_versions().get(group)
    if not group or versions is None:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_document(group, versions)}


def _resource_entries(resource: ResourceType) -> list[JSON]:
    main: JSON = {
        "name": resource.plural,
        "singularName": resource.singular,
        "namespaced": resource.namespaced,
        "kind": resource.kind,
        "verbs": list(ALL_VERBS),
    }
    if resource.short_names:
        main["shortNames"] = list(resource.short_names)
    if resource.categories:
        main["categories"] = list(resource.categories)
    entries = [main]
    if resource.kind == "Namespace":
        main["verbs"] = [v for v in ALL_VERBS if v != "deletecollection"]
    if resource.has_status:
        entries.append(
            {
                "name": f"{resource.plural}/status",
                "singularName": "",
                "namespaced": resource.namespaced,
                "kind": resource.kind,
                "verbs": ["get", "patch", "update"],
            }
        )
    if resource.has_scale:
        entries.append(
            {
                "name": f"{resource.plural}/scale",
                "singularName": "",
                "namespaced": resource.namespaced,
                "group": "autoscaling",
                "version": "v1",
                "kind": "Scale",
                "verbs": ["get", "patch", "update"],
            }
        )
    return entries


def api_resource_list(group: str, version: str) -> JSON | None:
    resources = [r for r in RESOURCE_TYPES if r.group == group and r.version == version]
    if not resources:
        return None
    group_version = f"{group}/{version}" if group else version
    entries = [entry for r in resources for entry in _resource_entries(r)]
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": entries,
    }


def openapi_v2() -> JSON:
    """A minimal, valid Swagger 2.0 document: kubectl only needs it to parse."""
    definitions: JSON = {}
    for resource in RESOURCE_TYPES:
        definitions[f"io.k8s.sim.{resource.group or 'core'}.{resource.version}.{resource.kind}"] = {
            "type": "object",
            "x-kubernetes-group-version-kind": [
                {"group": resource.group, "version": resource.version, "kind": resource.kind}
            ],
        }
    return {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION},
        "paths": {},
        "definitions": definitions,
    }


def openapi_v3_index() -> JSON:
    paths: JSON = {}
    for group, versions in group_versions().items():
        for version in versions:
            path = f"api/{version}" if not group else f"apis/{group}/{version}"
            paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash=0"}
    return {"paths": paths}


def _item_path(resource: ResourceType) -> str:
    prefix = (
        f"/apis/{resource.group}/{resource.version}"
        if resource.group
        else f"/api/{resource.version}"
    )
    scope = "/namespaces/{namespace}" if resource.namespaced else ""
    return f"{prefix}{scope}/{resource.plural}/{{name}}"


def _query_parameter(name: str) -> JSON:
    return {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}


def openapi_v3_group(path: str) -> JSON | None:
    """The OpenAPI v3 document of one group/version.

    kubectl looks for the PATCH operation of a kind (by its
    x-kubernetes-group-version-kind) and its fieldValidation parameter to decide
    that the server validates fields itself; without it kubectl falls back to
    the protobuf OpenAPI v2 document.
    """
    match path.strip("/").split("/"):
        case ["api", version]:
            group = ""
        case ["apis", group, version]:
            pass
        case _:
            return None
    schemas: JSON = {}
    paths: JSON = {}
    for resource in RESOURCE_TYPES:
        if resource.group != group or resource.version != version:
            continue
        gvk = {"group": group, "version": version, "kind": resource.kind}
        schema_name = f"io.k8s.sim.{group or 'core'}.{version}.{resource.kind}"
        schemas[schema_name] = {"type": "object", "x-kubernetes-group-version-kind": [gvk]}
        reference = {"$ref": f"#/components/schemas/{schema_name}"}
        paths[_item_path(resource)] = {
            "patch": {
                "operationId": f"patch{resource.kind}",
                "parameters": [
                    _query_parameter(name)
                    for name in ("dryRun", "fieldManager", "fieldValidation", "force")
                ],
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {"application/json": {"schema": reference}},
                    }
                },
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": gvk,
            }
        }
    if not schemas:
        return None
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def human_age(timestamp: str, now: datetime | None = None) -> str:
    """Age as kubectl prints it (5s, 3m, 2h, 4d)."""
    try:
        created = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return "<unknown>"
    seconds = max(int(((now or datetime.now(UTC)) - created).total_seconds()), 0)
    # Like k8s.io/apimachinery's HumanDuration: switch unit once the count passes 2.
    for unit, length in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * length:
            return f"{seconds // length}{unit}"
    return f"{seconds}s"


def table(objects: list[JSON], resource_version: str, continue_token: str = "") -> JSON:
    """A meta.k8s.io/v1 Table with Name and Age columns (what kubectl get prints)."""
    rows = [
        {
            "cells": [
                obj["metadata"]["name"],
                human_age(obj["metadata"].get("creationTimestamp", "")),
            ],
            "object": {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": {k: v for k, v in obj["metadata"].items() if k != "managedFields"},
            },
        }
        for obj in objects
    ]
    metadata: JSON = {"resourceVersion": resource_version}
    if continue_token:
        metadata["continue"] = continue_token
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": [
            {
                "name": "Name",
                "type": "string",
                "format": "name",
                "description": "Name must be unique within a namespace.",
                "priority": 0,
            },
            {
                "name": "Age",
                "type": "string",
                "format": "",
                "description": "CreationTimestamp is the server time when this object was created.",
                "priority": 0,
            },
        ],
        "rows": rows,
    }
