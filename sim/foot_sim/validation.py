"""Object validation and the server-side defaults clients rely on. Pure functions."""

from __future__ import annotations

import re
from typing import Any

from foot.objects import DNS1123_LABEL_FRAGMENT, DNS1123_SUBDOMAIN_FRAGMENT
from foot_sim.errors import invalid
from foot_sim.resources import NameRule, ResourceType

_DNS1035_LABEL = r"[a-z]([-a-z0-9]*[a-z0-9])?"

_NAME_RULES: dict[NameRule, tuple[re.Pattern[str], int, str]] = {
    NameRule.DNS1123_SUBDOMAIN: (
        re.compile(DNS1123_SUBDOMAIN_FRAGMENT),
        253,
        (
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
            "'-' or '.', and must start and end with an alphanumeric character "
            f"(e.g. 'example.com', regex used for validation is '{DNS1123_SUBDOMAIN_FRAGMENT}')"
        ),
    ),
    NameRule.DNS1123_LABEL: (
        re.compile(DNS1123_LABEL_FRAGMENT),
        63,
        (
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
            "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
            f"regex used for validation is '{DNS1123_LABEL_FRAGMENT}')"
        ),
    ),
    NameRule.DNS1035_LABEL: (
        re.compile(_DNS1035_LABEL),
        63,
        (
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start "
            "with an alphabetic character, and end with an alphanumeric character (e.g. "
            f"'my-name',  or 'abc-123', regex used for validation is '{_DNS1035_LABEL}')"
        ),
    ),
}


def _field_invalid(field: str, value: str, why: str) -> dict[str, str]:
    return {
        "reason": "FieldValueInvalid",
        "message": f'Invalid value: "{value}": {why}',
        "field": field,
    }


def name_errors(resource: ResourceType, name: str) -> list[dict[str, str]]:
    """Causes for an invalid metadata.name, empty when the name is acceptable."""
    if resource.name_rule is NameRule.PATH_SEGMENT:
        for illegal in ("/", "%"):
            if illegal in name:
                return [_field_invalid("metadata.name", name, f"may not contain '{illegal}'")]
        if name in (".", ".."):
            return [_field_invalid("metadata.name", name, f"may not be '{name}'")]
        return []
    pattern, max_length, message = _NAME_RULES[resource.name_rule]
    causes: list[dict[str, str]] = []
    if len(name) > max_length:
        causes.append(
            _field_invalid("metadata.name", name, f"must be no more than {max_length} characters")
        )
    if not pattern.fullmatch(name):
        causes.append(_field_invalid("metadata.name", name, message))
    return causes


def validate(resource: ResourceType, obj: dict[str, Any]) -> None:
    """Raise 422 Invalid for what the real server would reject at this level of detail."""
    name = obj.get("metadata", {}).get("name") or ""
    if not name:
        raise invalid(
            resource,
            "",
            [
                {
                    "reason": "FieldValueRequired",
                    "message": "Required value: name or generateName is required",
                    "field": "metadata.name",
                }
            ],
        )
    causes = name_errors(resource, name)
    causes.extend(_spec_errors(resource, obj))
    if causes:
        raise invalid(resource, name, causes)


def _spec_errors(resource: ResourceType, obj: dict[str, Any]) -> list[dict[str, str]]:
    if resource.kind not in ("Deployment", "StatefulSet", "DaemonSet"):
        return []
    spec = obj.get("spec") or {}
    causes: list[dict[str, str]] = []
    if not spec.get("selector"):
        causes.append(
            {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.selector"}
        )
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers")
    if not containers:
        causes.append(
            {
                "reason": "FieldValueRequired",
                "message": "Required value",
                "field": "spec.template.spec.containers",
            }
        )
    replicas = spec.get("replicas")
    if isinstance(replicas, int) and replicas < 0:
        causes.append(
            {
                "reason": "FieldValueInvalid",
                "message": f"Invalid value: {replicas}: must be greater than or equal to 0",
                "field": "spec.replicas",
            }
        )
    return causes


# Replica counters of workload status: (field, the field it may not exceed).
_STATUS_COUNTERS = (
    ("replicas", None),
    ("updatedReplicas", "replicas"),
    ("readyReplicas", "replicas"),
    ("availableReplicas", "readyReplicas"),
)


def validate_status(resource: ResourceType, obj: dict[str, Any]) -> None:
    """Raise 422 Invalid for replica counts that contradict each other, as the real server does."""
    if resource.kind not in ("Deployment", "StatefulSet"):
        return
    status = obj.get("status") or {}
    causes: list[dict[str, str]] = []
    for counter, ceiling in _STATUS_COUNTERS:
        value = status.get(counter)
        if not isinstance(value, int):
            continue
        if value < 0:
            why = f"Invalid value: {value}: must be greater than or equal to 0"
        elif (
            ceiling is not None and isinstance(status.get(ceiling), int) and value > status[ceiling]
        ):
            bound = f"status.{ceiling}" if ceiling == "replicas" else ceiling
            why = f"Invalid value: {value}: cannot be greater than {bound}"
        else:
            continue
        causes.append({"reason": "FieldValueInvalid", "message": why, "field": f"status.{counter}"})
    if causes:
        raise invalid(resource, obj["metadata"]["name"], causes)


def _default_pod_template(template: dict[str, Any]) -> None:
    pod_spec = template.setdefault("spec", {})
    pod_spec.setdefault("restartPolicy", "Always")
    pod_spec.setdefault("terminationGracePeriodSeconds", 30)
    pod_spec.setdefault("dnsPolicy", "ClusterFirst")
    pod_spec.setdefault("securityContext", {})
    pod_spec.setdefault("schedulerName", "default-scheduler")
    for container in pod_spec.get("containers") or []:
        image = str(container.get("image", ""))
        untagged = ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")
        container.setdefault("imagePullPolicy", "Always" if untagged else "IfNotPresent")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("resources", {})
        for port in container.get("ports") or []:
            port.setdefault("protocol", "TCP")


def _default_workload(spec: dict[str, Any], *, replicas: bool, history: bool) -> None:
    template = spec.get("template")
    if isinstance(template, dict):
        _default_pod_template(template)
    if replicas:
        spec.setdefault("replicas", 1)
    if history:
        spec.setdefault("revisionHistoryLimit", 10)


def _default_deployment(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    _default_workload(spec, replicas=True, history=True)
    spec.setdefault("progressDeadlineSeconds", 600)
    strategy = spec.setdefault("strategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        strategy.setdefault("rollingUpdate", {"maxUnavailable": "25%", "maxSurge": "25%"})


def _default_statefulset(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    _default_workload(spec, replicas=True, history=True)
    spec.setdefault("podManagementPolicy", "OrderedReady")
    spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})


def _default_daemonset(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    _default_workload(spec, replicas=False, history=True)
    rolling = {"maxUnavailable": 1, "maxSurge": 0}
    spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": rolling})


def _default_job(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    template = spec.get("template")
    if isinstance(template, dict):
        template.setdefault("spec", {}).setdefault("restartPolicy", "Never")
    _default_workload(spec, replicas=False, history=False)
    for field, value in (
        ("parallelism", 1),
        ("completions", 1),
        ("backoffLimit", 6),
        ("completionMode", "NonIndexed"),
        ("suspend", False),
    ):
        spec.setdefault(field, value)


def _default_service(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    for port in spec.get("ports") or []:
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))


def _default_secret(obj: dict[str, Any]) -> None:
    obj.setdefault("type", "Opaque")


def _default_claim(obj: dict[str, Any]) -> None:
    obj.setdefault("spec", {}).setdefault("volumeMode", "Filesystem")


def _default_storage_class(obj: dict[str, Any]) -> None:
    obj.setdefault("reclaimPolicy", "Delete")
    obj.setdefault("volumeBindingMode", "Immediate")


_DEFAULTERS = {
    "Deployment": _default_deployment,
    "StatefulSet": _default_statefulset,
    "DaemonSet": _default_daemonset,
    "Job": _default_job,
    "Service": _default_service,
    "Secret": _default_secret,
    "PersistentVolumeClaim": _default_claim,
    "StorageClass": _default_storage_class,
}


def apply_defaults(resource: ResourceType, obj: dict[str, Any]) -> None:
    """Fill the defaults a real server adds and clients read back (in place)."""
    defaulter = _DEFAULTERS.get(resource.kind)
    if defaulter is not None:
        defaulter(obj)


def initial_status(resource: ResourceType, obj: dict[str, Any]) -> dict[str, Any] | None:
    """The status a new object starts with when clients may not set it on create."""
    kind = resource.kind
    if kind == "Namespace":
        return {"phase": "Active"}
    if kind == "PersistentVolumeClaim":
        return {"phase": "Pending"}
    if kind == "Service":
        return {"loadBalancer": {}}
    if kind == "Node":
        return obj.get("status") or {}
    if resource.has_status:
        return {}
    return None
