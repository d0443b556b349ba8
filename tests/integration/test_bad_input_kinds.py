"""The bad-input corpus, documents (issue 15, acceptance 4), part 2: Services, ConfigMaps,
Secrets, Namespaces, Jobs, StatefulSets, DaemonSets, PersistentVolumeClaims and Karmada
policies, each wrong in one way Kubernetes or Karmada would refuse, sent over NATS and HTTP
as in part 1 (test_bad_input_corpus.py), with the same checks of every answer."""

from __future__ import annotations

from typing import Any

import pytest
from admin_support import AdminCredentials
from bad_input_support import (
    Expected,
    assert_distinct,
    assert_refused_everywhere,
    changed,
    data_object,
    pod_owner,
    policy,
    service,
    without,
)

from foot.bus import Bus
from foot_cli.natsserver import EmbeddedNats
from foot_scheduler.service import SchedulerService

PLAINTEXT = "spec.overrideRules.0.overriders.plaintext.0"
WEIGHTED = {
    "replicaSchedulingType": "Divided",
    "replicaDivisionPreference": "Weighted",
    "weightPreference": {
        "staticWeightList": [{"targetCluster": {"clusterNames": ["east"]}, "weight": 0}]
    },
}


def override(rule: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return policy("OverridePolicy", overrideRules=[{"overriders": rule}], **spec)


def claim(access_mode: str, storage: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "namespace": "bad"},
        "spec": {"accessModes": [access_mode], "resources": {"requests": {"storage": storage}}},
    }


CASES: list[tuple[str, dict[str, Any], Expected]] = [
    # ---- Service ----
    (
        "service-port-zero",
        service(ports=[{"port": 0}]),
        [("spec.ports.0.port", "greater than or equal to 1, got 0")],
    ),
    (
        "service-port-70000",
        service(ports=[{"port": 70000}]),
        [("spec.ports.0.port", "less than or equal to 65535, got 70000")],
    ),
    (
        "service-port-missing",
        service(ports=[{"targetPort": 8080}]),
        [("spec.ports.0.port", "is required")],
    ),
    (
        "service-node-port-99999",
        service(type="NodePort", ports=[{"port": 80, "nodePort": 99999}]),
        [("spec.ports.0.nodePort", "65535")],
    ),
    (
        "service-target-port-boolean",
        service(ports=[{"port": 80, "targetPort": True}]),
        [("spec.ports.0.targetPort", "a string or an integer")],
    ),
    (
        "service-protocol-http",
        service(ports=[{"port": 80, "protocol": "HTTP"}]),
        [("spec.ports.0.protocol", "got 'HTTP'")],
    ),
    (
        "service-port-names-repeated",
        service(ports=[{"name": "a", "port": 80}, {"name": "a", "port": 81}]),
        [("spec.ports.1.name", "duplicate name 'a'")],
    ),
    (
        "service-two-ports-unnamed",
        service(ports=[{"port": 80}, {"port": 81}]),
        [("spec.ports.0.name", "more than one port")],
    ),
    ("service-type-unknown", service(type="Public"), [("spec.type", "got 'Public'")]),
    (
        "service-selector-key",
        service(selector={"bad key": "x"}),
        [("spec.selector", "key 'bad key'")],
    ),
    (
        "service-selector-value-list",
        service(selector={"app": ["web"]}),
        [("spec.selector.app", "must be a string")],
    ),
    (
        "service-name-starts-with-digit",
        changed(service(), ("metadata", "name"), "1web"),
        [("metadata.name", "RFC 1035 label")],
    ),
    # ---- ConfigMap, Secret, Namespace ----
    ("configmap-key-slash", data_object("ConfigMap", data={"a/b": "x"}), [("data", "key 'a/b'")]),
    ("configmap-key-empty", data_object("ConfigMap", data={"": "x"}), [("data", "key ''")]),
    (
        "configmap-key-too-long",
        data_object("ConfigMap", data={"k" * 254: "x"}),
        [("data", "1 to 253 characters")],
    ),
    (
        "configmap-value-number",
        data_object("ConfigMap", data={"a": 1}),
        [("data.a", "must be a string")],
    ),
    (
        "configmap-binary-not-base64",
        data_object("ConfigMap", binaryData={"a": "not base64!"}),
        [("binaryData", "not valid base64")],
    ),
    (
        "configmap-key-in-both",
        data_object("ConfigMap", data={"a": "x"}, binaryData={"a": "eA=="}),
        [("binaryData", "key 'a' is also in data")],
    ),
    (
        "configmap-data-a-list",
        data_object("ConfigMap", data=["a"]),
        [("data", "must be a mapping")],
    ),
    (
        "secret-data-not-base64",
        data_object("Secret", data={"a": "%%%"}),
        [("data", "not valid base64")],
    ),
    ("secret-key-space", data_object("Secret", data={"a b": "eA=="}), [("data", "key 'a b'")]),
    (
        "secret-string-data-number",
        data_object("Secret", stringData={"a": 5}),
        [("stringData.a", "must be a string")],
    ),
    (
        "namespace-with-namespace",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "namespace": "x"}},
        [("metadata.namespace", "Namespace is cluster-scoped")],
    ),
    (
        "namespace-name-with-dot",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a.b"}},
        [("metadata.name", "no '.'")],
    ),
    # ---- Job, StatefulSet, DaemonSet, PersistentVolumeClaim ----
    (
        "job-parallelism-negative",
        pod_owner("batch/v1", "Job", parallelism=-1),
        [("spec.parallelism", "or equal to 0, got -1")],
    ),
    (
        "job-backoff-limit-string",
        pod_owner("batch/v1", "Job", backoffLimit="x"),
        [("spec.backoffLimit", "must be an integer")],
    ),
    (
        "job-completions-int32",
        pod_owner("batch/v1", "Job", completions=2**31),
        [("spec.completions", "32-bit")],
    ),
    (
        "statefulset-replicas-negative",
        pod_owner("apps/v1", "StatefulSet", replicas=-3),
        [("spec.replicas", "or equal to 0, got -3")],
    ),
    (
        "statefulset-update-strategy",
        pod_owner("apps/v1", "StatefulSet", updateStrategy={"type": "Now"}),
        [("spec.updateStrategy.type", "'OnDelete'")],
    ),
    (
        "daemonset-selector-mismatch",
        pod_owner("apps/v1", "DaemonSet", selector={"matchLabels": {"app": "x"}}),
        [("spec.template.metadata.labels", "does not match")],
    ),
    (
        "pvc-access-mode",
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "c", "namespace": "bad"},
            "spec": {"accessModes": ["Sometimes"], "resources": {"requests": {"storage": "1Gi"}}},
        },
        [("spec.accessModes.0", "got 'Sometimes'")],
    ),
    (
        "pvc-storage-not-a-quantity",
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "c", "namespace": "bad"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "lots"}},
            },
        },
        [("spec.resources.requests.storage", "must be a quantity")],
    ),
    # ---- policies ----
    (
        "policy-without-selectors",
        without(policy(), "spec", "resourceSelectors"),
        [("spec.resourceSelectors", "is required")],
    ),
    (
        "policy-selectors-empty",
        policy(resourceSelectors=[]),
        [("spec.resourceSelectors", "at least 1 item")],
    ),
    ("policy-unknown-field", policy(placment={}), [("spec.placment", "unknown field")]),
    (
        "policy-priority-int32",
        policy(priority=2**31),
        [("spec.priority", "less than or equal to 2147483647")],
    ),
    (
        "policy-apiversion-v2",
        policy() | {"apiVersion": "policy.karmada.io/v2"},
        [("kind", "is not a kind FOOT knows")],
    ),
    (
        "policy-name-uppercase",
        changed(policy(), ("metadata", "name"), "Spread"),
        [("metadata.name", "lowercase RFC 1123 subdomain")],
    ),
    (
        "policy-weight-zero",
        policy(placement={"replicaScheduling": WEIGHTED}),
        [
            (
                "spec.placement.replicaScheduling.weightPreference.staticWeightList.0.weight",
                "greater than or equal to 1",
            )
        ],
    ),
    (
        "policy-scheduling-type",
        policy(placement={"replicaScheduling": {"replicaSchedulingType": "Sometimes"}}),
        [("spec.placement.replicaScheduling.replicaSchedulingType", "'Duplicated' or 'Divided'")],
    ),
    (
        "policy-selector-without-kind",
        policy(resourceSelectors=[{"apiVersion": "apps/v1"}]),
        [("spec.resourceSelectors.0.kind", "is required")],
    ),
    (
        "cluster-policy-with-namespace",
        changed(policy("ClusterPropagationPolicy"), ("metadata", "namespace"), "bad"),
        [("metadata.namespace", "is cluster-scoped")],
    ),
    (
        "override-path-not-a-pointer",
        override({"plaintext": [{"path": "spec/replicas", "operator": "replace", "value": 1}]}),
        [(f"{PLAINTEXT}.path", "is not a JSON pointer")],
    ),
    (
        "override-operator-unknown",
        override({"plaintext": [{"path": "/spec/replicas", "operator": "delete"}]}),
        [(f"{PLAINTEXT}.operator", "got 'delete'")],
    ),
    (
        "override-image-without-value",
        override({"imageOverrider": [{"component": "Tag", "operator": "replace"}]}),
        [("spec.overrideRules.0.overriders.imageOverrider.0", "value is required")],
    ),
    (
        "override-rules-and-overriders",
        override({}, overriders={"plaintext": [{"path": "/a", "operator": "remove"}]}),
        [("spec", "cannot be combined")],
    ),
    (
        "override-label-key",
        override({"labelsOverrider": [{"operator": "add", "value": {"bad key": "x"}}]}),
        [("spec.overrideRules.0.overriders.labelsOverrider.0.value", "is not a qualified name")],
    ),
]


def test_the_cases_are_distinct() -> None:
    assert_distinct(CASES)


@pytest.mark.parametrize(("document", "expected"), [pytest.param(d, e, id=i) for i, d, e in CASES])
async def test_a_bad_object_of_another_kind_is_refused_over_nats_and_http(
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
