"""The bad-input corpus, documents (issue 15, acceptance 4), part 1: Deployments wrong in
one way Kubernetes would refuse (counts, bounds, types, names, namespaces, labels,
annotations, apiVersion and kind, containers and ports), sent to the real front door over
NATS (`foot.api.apply`) and to the scheduler's admin server over HTTP (`POST /api/apply`,
YAML, the admin token). Each is refused with the field at fault and the reason, in the one
error shape, with no traceback logged and nothing stored. A request mixing valid and invalid
documents stores every valid one and refuses each invalid one (README). Part 2, the other
kinds and the policies: test_bad_input_kinds.py; bodies: test_bad_input_bodies.py."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import yaml
from admin_support import AdminCredentials
from bad_input_support import (
    Expected,
    assert_clear_error,
    assert_distinct,
    assert_no_tracebacks,
    assert_refused_everywhere,
    changed,
    data_object,
    deployment,
    over_http,
    over_nats,
    stored,
    without,
)

from foot.bus import Bus
from foot_cli.natsserver import EmbeddedNats
from foot_scheduler.service import SchedulerService

POD = ("spec", "template", "spec")
CONTAINER = (*POD, "containers", 0)
PORTS = (*CONTAINER, "ports")


def deployment_with(path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    return changed(deployment(), path, value)


CASES: list[tuple[str, dict[str, Any], Expected]] = [
    # ---- Deployment: counts, types and bounds ----
    (
        "replicas-negative",
        deployment(replicas=-1),
        [("spec.replicas", "greater than or equal to 0")],
    ),
    ("replicas-fraction", deployment(replicas=2.5), [("spec.replicas", "must be an integer")]),
    ("replicas-boolean", deployment(replicas=True), [("spec.replicas", "got a boolean")]),
    (
        "min-ready-negative",
        deployment(minReadySeconds=-1),
        [("spec.minReadySeconds", "or equal to 0")],
    ),
    (
        "progress-deadline-negative",
        deployment(progressDeadlineSeconds=-5),
        [("spec.progressDeadlineSeconds", "or equal to 0")],
    ),
    (
        "revision-history-int32",
        deployment(revisionHistoryLimit=2**31),
        [("spec.revisionHistoryLimit", "32-bit")],
    ),
    (
        "termination-grace-string",
        deployment_with((*POD, "terminationGracePeriodSeconds"), "30s"),
        [("spec.template.spec.terminationGracePeriodSeconds", "must be an integer")],
    ),
    (
        "strategy-type-unknown",
        deployment(strategy={"type": "Bogus"}),
        [("spec.strategy.type", "'Recreate', 'RollingUpdate'")],
    ),
    ("spec-a-list", deployment_with(("spec",), []), [("spec", "must be a mapping, got a list")]),
    # ---- names, namespaces, metadata ----
    ("name-uppercase", deployment("Web"), [("metadata.name", "lowercase RFC 1123 subdomain")]),
    ("name-too-long", deployment("a" * 254), [("metadata.name", "at most 253 characters")]),
    ("name-missing", without(deployment(), "metadata", "name"), [("metadata.name", "is required")]),
    ("metadata-missing", without(deployment(), "metadata"), [("metadata", "is required")]),
    (
        "namespace-uppercase",
        deployment_with(("metadata", "namespace"), "Shop"),
        [("metadata.namespace", "lowercase RFC 1123 label")],
    ),
    (
        "namespace-too-long",
        deployment_with(("metadata", "namespace"), "n" * 64),
        [("metadata.namespace", "at most 63 characters")],
    ),
    (
        "annotations-over-256k",
        deployment_with(("metadata", "annotations"), {"note": "x" * 262_144}),
        [("metadata.annotations", "at most 262144 bytes")],
    ),
    (
        "annotation-key-syntax",
        deployment_with(("metadata", "annotations"), {"bad key!": "x"}),
        [("metadata.annotations", "key 'bad key!'")],
    ),
    (
        "annotation-value-number",
        deployment_with(("metadata", "annotations"), {"note": 1}),
        [("metadata.annotations.note", "must be a string")],
    ),
    (
        "label-value-number",
        deployment_with(("metadata", "labels"), {"app": 1}),
        [("metadata.labels.app", "must be a string")],
    ),
    (
        "labels-a-list",
        deployment_with(("metadata", "labels"), ["app"]),
        [("metadata.labels", "must be a mapping")],
    ),
    (
        "label-prefix-uppercase",
        deployment_with(("metadata", "labels"), {"Example.COM/app": "web"}),
        [("metadata.labels", "prefix must be a lowercase DNS subdomain")],
    ),
    ("selector-empty", deployment(selector={}), [("spec.selector", "empty selector is invalid")]),
    (
        "pod-label-key",
        deployment_with(("spec", "template", "metadata", "labels"), {"app": "web", "bad key": "x"}),
        [("spec.template.metadata.labels", "key 'bad key'")],
    ),
    # ---- apiVersion and kind ----
    ("top-level-unknown-field", deployment() | {"spex": {}}, [("spex", "unknown field")]),
    (
        "container-unknown-field",
        deployment_with((*CONTAINER, "imag"), "nginx"),
        [("spec.template.spec.containers.0.imag", "unknown field")],
    ),
    (
        "apiversion-without-version",
        deployment() | {"apiVersion": "apps"},
        [("apiVersion", "is not an apiVersion")],
    ),
    (
        "apiversion-uppercase",
        deployment() | {"apiVersion": "Apps/V1"},
        [("apiVersion", "is not an apiVersion")],
    ),
    (
        "apiversion-three-parts",
        deployment() | {"apiVersion": "apps/v1/extra"},
        [("apiVersion", "is not an apiVersion")],
    ),
    ("apiversion-missing", without(deployment(), "apiVersion"), [("apiVersion", "is required")]),
    (
        "apiversion-a-number",
        deployment() | {"apiVersion": 1},
        [("apiVersion", "must be a string, got the number 1")],
    ),
    ("kind-missing", without(deployment(), "kind"), [("kind", "is required")]),
    (
        "kind-lowercase",
        deployment() | {"kind": "deployment"},
        [("kind", "did you mean Deployment?")],
    ),
    (
        "kind-in-foot-group",
        {"apiVersion": "x.foot.dev/v1", "kind": "Thing", "metadata": {"name": "t"}},
        [("kind", "is not a kind FOOT knows")],
    ),
    # ---- containers and their ports ----
    (
        "containers-empty",
        deployment_with((*POD, "containers"), []),
        [("spec.template.spec.containers", "at least 1 item")],
    ),
    (
        "image-missing",
        without(deployment(), *CONTAINER, "image"),
        [("spec.template.spec.containers.0.image", "is required")],
    ),
    (
        "container-names-repeated",
        deployment_with(
            (*POD, "containers"), [{"name": "web", "image": "a"}, {"name": "web", "image": "b"}]
        ),
        [("spec.template.spec.containers", "must be unique")],
    ),
    (
        "container-name-uppercase",
        deployment_with((*CONTAINER, "name"), "Web"),
        [("spec.template.spec.containers.0.name", "RFC 1123 label")],
    ),
    (
        "container-port-string",
        deployment_with(PORTS, [{"containerPort": "80"}]),
        [("spec.template.spec.containers.0.ports.0.containerPort", "must be an integer")],
    ),
    (
        "container-port-int32",
        deployment_with(PORTS, [{"containerPort": 2**31}]),
        [("spec.template.spec.containers.0.ports.0.containerPort", "32-bit")],
    ),
    (
        "container-port-protocol",
        deployment_with(PORTS, [{"containerPort": 80, "protocol": "HTTP"}]),
        [("spec.template.spec.containers.0.ports.0.protocol", "TCP, UDP, SCTP")],
    ),
    (
        "host-port-70000",
        deployment_with(PORTS, [{"containerPort": 80, "hostPort": 70000}]),
        [("spec.template.spec.containers.0.ports.0.hostPort", "from 1 to 65535")],
    ),
    (
        "cpu-limit-not-a-quantity",
        deployment_with((*CONTAINER, "resources"), {"limits": {"cpu": "fast"}}),
        [("spec.template.spec.containers.0.resources.limits.cpu", "must be a quantity")],
    ),
    (
        "restart-policy-unknown",
        deployment_with((*POD, "restartPolicy"), "Sometimes"),
        [("spec.template.spec.restartPolicy", "'Always', 'OnFailure', 'Never'")],
    ),
    (
        "image-pull-policy-unknown",
        deployment_with((*CONTAINER, "imagePullPolicy"), "Later"),
        [("spec.template.spec.containers.0.imagePullPolicy", "'IfNotPresent'")],
    ),
]


def test_the_cases_are_distinct() -> None:
    assert_distinct(CASES)


@pytest.mark.parametrize(("document", "expected"), [pytest.param(d, e, id=i) for i, d, e in CASES])
async def test_a_bad_deployment_is_refused_over_nats_and_http(
    *,
    scheduler: SchedulerService,
    bus: Bus,
    nats_server: EmbeddedNats,
    admin_credentials: AdminCredentials,
    caplog: pytest.LogCaptureFixture,
    document: dict[str, Any],
    expected: Expected,
) -> None:
    await assert_refused_everywhere(
        admin_url=scheduler.admin.url,
        bus=bus,
        nats_url=nats_server.url,
        credentials=admin_credentials,
        caplog=caplog,
        document=document,
        expected=expected,
    )


def config_map(name: str) -> dict[str, Any]:
    return changed(data_object("ConfigMap", data={"mode": "test"}), ("metadata", "name"), name)


MIXED = [config_map("first"), deployment(replicas=-1), config_map("last")]
"""Valid, invalid, valid: the valid ones stored, the invalid one refused."""


@pytest.mark.parametrize("transport", ["nats", "http"])
async def test_a_request_mixing_good_and_bad_stores_only_the_good(
    *,
    scheduler: SchedulerService,
    bus: Bus,
    nats_server: EmbeddedNats,
    admin_credentials: AdminCredentials,
    caplog: pytest.LogCaptureFixture,
    transport: str,
) -> None:
    if transport == "nats":
        answer = await over_nats(bus, orjson.dumps({"objects": MIXED}))
    else:
        body = yaml.safe_dump_all(MIXED).encode()
        status, answer = await over_http(scheduler.admin.url, admin_credentials, body)
        assert status == 422, answer
    assert [r["outcome"] for r in answer["results"]] == ["created", "rejected", "created"]
    assert_clear_error(answer["results"][1]["error"], [("spec.replicas", "or equal to 0")])
    keys = set(await stored(nats_server.url))
    assert keys == {"core.ConfigMap.bad.first", "core.ConfigMap.bad.last"}
    assert_no_tracebacks(caplog)


@pytest.mark.parametrize("transport", ["nats", "http"])
async def test_a_bad_change_to_a_stored_object_keeps_the_stored_one(
    *,
    scheduler: SchedulerService,
    bus: Bus,
    nats_server: EmbeddedNats,
    admin_credentials: AdminCredentials,
    caplog: pytest.LogCaptureFixture,
    transport: str,
) -> None:
    good, bad = config_map("same"), data_object("ConfigMap", data={"a/b": "x"})
    bad["metadata"]["name"] = "same"
    if transport == "nats":
        answer = await over_nats(bus, orjson.dumps({"objects": [good, bad]}))
    else:
        body = yaml.safe_dump_all([good, bad]).encode()
        status, answer = await over_http(scheduler.admin.url, admin_credentials, body)
        assert status == 422, answer
    assert [r["outcome"] for r in answer["results"]] == ["created", "rejected"]
    assert_clear_error(answer["results"][1]["error"], [("data", "key 'a/b'")])
    values = await stored(nats_server.url)
    assert list(values) == ["core.ConfigMap.bad.same"]
    assert b"a/b" not in values["core.ConfigMap.bad.same"]
    assert_no_tracebacks(caplog)
