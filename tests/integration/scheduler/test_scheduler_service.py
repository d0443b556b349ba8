"""The scheduler service on a real nats-server: templates and policies in, bindings out.

Clusters are written straight into the `clusters` bucket and health events
published on `foot.events.health.<cluster>`, standing in for the registry
(which writes the same models).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from foot.api import ApiReply, ApiRequest
from foot.bus import Bus
from foot.catalog import API_APPLY, API_DELETE, BINDINGS, CLUSTERS, POLICIES, health_subject
from foot.health import ClusterHealthEvent
from foot.kinds import KINDS
from foot.kinds.bindings import ResourceBinding
from foot.telemetry import configure_tracing, tracer
from foot_cli.natsserver import EmbeddedNats
from foot_scheduler.service import SchedulerService, SchedulerSettings
from support import custom_resource_definition, eventually, run_foot

CLUSTER_KIND = KINDS.lookup("cluster.foot.dev/v1alpha1", "Cluster")
BINDING_KIND = KINDS.lookup("work.foot.dev/v1alpha1", "ResourceBinding")
ENABLEMENTS = [
    {"groupVersion": "apps/v1", "resources": [{"name": "deployments", "kind": "Deployment"}]},
    {"groupVersion": "v1", "resources": [{"name": "configmaps", "kind": "ConfigMap"}]},
    {"groupVersion": "example.com/v1", "resources": [{"name": "widgets", "kind": "Widget"}]},
]


def cluster(name: str, labels: dict[str, str] | None = None, ready: str = "True") -> bytes:
    document = {
        "apiVersion": "cluster.foot.dev/v1alpha1",
        "kind": "Cluster",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"syncMode": "Push", "apiEndpoint": f"https://{name}:6443"},
        "status": {
            "apiEnablements": ENABLEMENTS,
            "conditions": [
                {
                    "type": "Ready",
                    "status": ready,
                    "lastTransitionTime": "2025-01-01T00:00:00Z",
                }
            ],
        },
    }
    return orjson.dumps(document)


async def put_cluster(bus: Bus, name: str, **kwargs: Any) -> None:
    store = await bus.kv(CLUSTERS.name)
    await store.put(CLUSTER_KIND.key(None, name), cluster(name, **kwargs))


def deployment(name: str, replicas: int, namespace: str = "shop") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": name, "image": "nginx:1.27"}]},
            },
        },
    }


def policy(name: str, placement: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "policy.foot.dev/v1alpha1",
        "kind": "PropagationPolicy",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {
            "resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name}],
            "placement": placement,
            **spec,
        },
    }


async def api(bus: Bus, subject: str, *documents: dict[str, Any]) -> ApiReply:
    body = orjson.dumps(ApiRequest(objects=list(documents)).model_dump(mode="json", by_alias=True))
    reply = ApiReply.model_validate_json((await bus.request(subject, body)).data)
    assert reply.error is None, reply.error
    return reply


class Bindings:
    """The bindings bucket, read straight from NATS."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.seen: dict[str, ResourceBinding] = {}

    async def refresh(self) -> dict[str, ResourceBinding]:
        store = await self.bus.kv(BINDINGS.name)
        self.seen = {
            entry.key: ResourceBinding.from_json(entry.value)
            for entry in await store.entries()
            if entry.value is not None
        }
        return self.seen

    async def get(self, name: str, namespace: str | None = "shop") -> ResourceBinding | None:
        store = await self.bus.kv(BINDINGS.name)
        entry = await store.get(BINDING_KIND.key(namespace, name))
        if entry is None or entry.value is None:
            return None
        return ResourceBinding.from_json(entry.value)

    async def wait(
        self, name: str, check: Any, namespace: str | None = "shop", within: float = 10.0
    ) -> ResourceBinding:
        found: list[ResourceBinding] = []

        async def poll() -> None:
            async with asyncio.timeout(within):
                while True:
                    binding = await self.get(name, namespace)
                    if binding is not None and check(binding):
                        found.append(binding)
                        return
                    await asyncio.sleep(0.02)

        try:
            await poll()
        except TimeoutError:
            last = await self.get(name, namespace)
            pytest.fail(f"binding {name} never got there; last: {last and last.spec}")
        return found[0]

    async def wait_gone(self, name: str, namespace: str | None = "shop") -> None:
        async with asyncio.timeout(10):
            while await self.get(name, namespace) is not None:  # noqa: ASYNC110 - remote state
                await asyncio.sleep(0.02)


def replicas(binding: ResourceBinding) -> dict[str, int | None]:
    return {t.name: t.replicas for t in binding.spec.clusters}


@pytest.fixture(scope="session", autouse=True)
def tracing() -> None:
    """A real tracer provider (process-wide, set once), so spans and traceparents are real."""
    configure_tracing("foot-tests")


def trace_id(traceparent: str | None) -> str:
    assert traceparent is not None
    return traceparent.split("-")[1]


@pytest.fixture
async def scheduler(nats_server: EmbeddedNats) -> AsyncIterator[SchedulerService]:
    settings = SchedulerSettings(
        nats_url=nats_server.url, admin_port=0, shutdown_deadline_seconds=2.0
    )
    async with SchedulerService(settings) as service:
        yield service


async def test_template_and_policy_make_a_binding_that_follows_changes(
    scheduler: SchedulerService, bus: Bus
) -> None:
    for name in ("member1", "member2", "member3"):
        await put_cluster(bus, name, labels={"env": "prod"})
    bindings = Bindings(bus)
    weights = {
        "replicaScheduling": {
            "replicaSchedulingType": "Divided",
            "replicaDivisionPreference": "Weighted",
            "weightPreference": {
                "staticWeightList": [
                    {"targetCluster": {"clusterNames": ["member1"]}, "weight": 1},
                    {"targetCluster": {"clusterNames": ["member2"]}, "weight": 3},
                ]
            },
        }
    }
    with tracer().start_as_current_span("rollout") as rollout:
        reply = await api(
            bus, API_APPLY, deployment("web", 4), policy("web", weights, propagateDeps=True)
        )
    assert reply.ok, reply
    rollout_trace = f"{rollout.get_span_context().trace_id:032x}"

    binding = await bindings.wait("web-deployment", lambda b: b.spec.clusters)
    assert replicas(binding) == {"member1": 1, "member2": 3}
    assert binding.spec.policy is not None
    assert (binding.spec.policy.kind, binding.spec.policy.name) == ("PropagationPolicy", "web")
    assert binding.spec.resource.kind == "Deployment"
    assert binding.spec.resource.generation == 1
    assert binding.spec.resource.hash
    assert binding.spec.replicas == 4
    assert binding.spec.propagate_deps is True
    condition = binding.status.conditions[0]
    assert (condition.type, condition.status, condition.reason) == ("Scheduled", "True", "Success")
    assert "StaticWeighted" in condition.message
    # One rollout, one trace: the binding remembers the trace of the apply that caused it.
    assert trace_id(binding.status.last_scheduled_trace) == rollout_trace
    assert trace_id(binding.metadata.traceparent) == rollout_trace

    # Replicas change: rescheduled.
    await api(bus, API_APPLY, deployment("web", 8))
    binding = await bindings.wait("web-deployment", lambda b: b.spec.replicas == 8)
    assert replicas(binding) == {"member1": 2, "member2": 6}
    assert binding.spec.resource.generation == 2

    # Policy change: only member3 may be used now.
    await api(bus, API_APPLY, policy("web", {"clusterAffinity": {"clusterNames": ["member3"]}}))
    binding = await bindings.wait("web-deployment", lambda b: "member3" in replicas(b))
    assert replicas(binding) == {"member3": 8}

    # A cluster relabelled out of the policy's selector: the replicas move.
    await api(
        bus,
        API_APPLY,
        policy(
            "web",
            {
                "clusterAffinity": {"labelSelector": {"matchLabels": {"env": "prod"}}},
                "replicaScheduling": {"replicaSchedulingType": "Divided"},
            },
        ),
    )
    binding = await bindings.wait("web-deployment", lambda b: len(b.spec.clusters) == 3)
    await put_cluster(bus, "member3", labels={"env": "test"})
    binding = await bindings.wait("web-deployment", lambda b: "member3" not in replicas(b))
    assert sum(r or 0 for r in replicas(binding).values()) == 8
    # A cluster added: the divided replicas spread onto it too.
    await put_cluster(bus, "member4", labels={"env": "prod"})
    await bindings.wait("web-deployment", lambda b: "member4" in replicas(b))

    # Deleting the template deletes its binding.
    await api(bus, API_DELETE, deployment("web", 8))
    await eventually(lambda: "web" not in {t.name for t in scheduler.templates.values()})
    await bindings.wait_gone("web-deployment")


async def test_unclaimed_templates_say_so_and_custom_resources_are_placed(
    scheduler: SchedulerService, bus: Bus
) -> None:
    await put_cluster(bus, "member1")
    bindings = Bindings(bus)
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "shop"},
        "data": {"a": "b"},
    }
    widget = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w1", "namespace": "shop"},
        "spec": {"size": 3},
    }
    widgets = {
        "apiVersion": "policy.karmada.io/v1alpha1",
        "kind": "ClusterPropagationPolicy",
        "metadata": {"name": "widgets"},
        "spec": {"resourceSelectors": [{"apiVersion": "example.com/v1", "kind": "Widget"}]},
    }
    widget_definition = custom_resource_definition(
        "example.com",
        "Widget",
        spec_schema={"type": "object", "properties": {"size": {"type": "integer"}}},
    )
    # As with kubectl, a custom resource is accepted once its CRD is (an earlier request).
    registered = await api(bus, API_APPLY, widget_definition)
    assert registered.ok, registered
    reply = await api(bus, API_APPLY, config, widget, widgets)
    assert reply.ok, reply
    unplaced = await bindings.wait("settings-configmap", lambda b: b.status.conditions)
    condition = unplaced.status.conditions[0]
    assert (condition.status, condition.reason) == ("False", "NoMatchingPolicy")
    assert "no PropagationPolicy in namespace shop" in condition.message
    assert unplaced.spec.clusters == []
    placed = await bindings.wait("w1-widget", lambda b: b.spec.clusters)
    assert replicas(placed) == {"member1": None}
    assert placed.spec.policy is not None
    assert placed.spec.policy.api_version == "policy.karmada.io/v1alpha1"


async def test_unschedulable_template_gives_the_reason_per_cluster(
    scheduler: SchedulerService, bus: Bus
) -> None:
    await put_cluster(bus, "member1", labels={"env": "test"})
    await put_cluster(bus, "member2", ready="False")
    bindings = Bindings(bus)
    placement = {"clusterAffinity": {"labelSelector": {"matchLabels": {"env": "prod"}}}}
    await api(bus, API_APPLY, deployment("api", 2), policy("api", placement))
    # Template and policy reach the scheduler through two buckets: if the template comes
    # first, "NoMatchingPolicy" is written until the policy arrives.
    binding = await bindings.wait(
        "api-deployment",
        lambda b: b.status.conditions and b.status.conditions[0].reason != "NoMatchingPolicy",
    )
    condition = binding.status.conditions[0]
    assert (condition.status, condition.reason) == ("False", "NoClusterFit")
    assert "member1: ClusterAffinity: labels do not match labelSelector" in condition.message
    assert "member2: ClusterAffinity" in condition.message
    # The cluster gets the label: scheduled.
    await put_cluster(bus, "member1", labels={"env": "prod"})
    binding = await bindings.wait("api-deployment", lambda b: b.spec.clusters)
    assert replicas(binding) == {"member1": 2}
    assert binding.status.conditions[0].reason == "Success"


def health(name: str, ready: str, sequence: int) -> ClusterHealthEvent:
    return ClusterHealthEvent(
        cluster=name,
        ready=ready,  # type: ignore[arg-type]
        previous="True" if ready != "True" else "False",
        reason="ProbeFailed" if ready != "True" else "ProbeSucceeded",
        observed_at=datetime.now(UTC),
        sequence=sequence,
    )


async def publish_health(bus: Bus, event: ClusterHealthEvent) -> None:
    await bus.publish(
        health_subject(event.cluster),
        event.model_dump_json(by_alias=True).encode(),
        msg_id=event.message_id(),
    )


async def test_health_event_moves_replicas_and_tolerations_delay_it(
    scheduler: SchedulerService, bus: Bus
) -> None:
    for name in ("member1", "member2", "member3"):
        await put_cluster(bus, name)
    bindings = Bindings(bus)
    divided = {"replicaScheduling": {"replicaSchedulingType": "Divided"}}
    tolerant = divided | {
        "clusterTolerations": [
            {
                "key": "cluster.karmada.io/not-ready",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 3,
            }
        ],
        "clusterAffinity": {"clusterNames": ["member1", "member2"]},
    }
    graceful = {"failover": {"cluster": {"purgeMode": "Gracefully"}}}
    await api(
        bus,
        API_APPLY,
        deployment("fast", 6),
        policy("fast", divided, **graceful),
        deployment("patient", 4),
        policy("patient", tolerant),
    )
    fast = await bindings.wait("fast-deployment", lambda b: len(b.spec.clusters) == 3)
    assert replicas(fast) == {"member1": 2, "member2": 2, "member3": 2}
    patient = await bindings.wait("patient-deployment", lambda b: len(b.spec.clusters) == 2)

    # The registry reports member1 NotReady; the cluster object has not changed (yet).
    with tracer().start_as_current_span("member1 not ready") as transition:
        await publish_health(bus, health("member1", "False", 1))
    fast = await bindings.wait("fast-deployment", lambda b: "member1" not in replicas(b))
    failover_trace = f"{transition.get_span_context().trace_id:032x}"
    assert trace_id(fast.status.last_scheduled_trace) == failover_trace
    assert replicas(fast) == {"member2": 3, "member3": 3}
    assert [e.from_cluster for e in fast.spec.graceful_evictions] == ["member1"]
    assert fast.spec.graceful_evictions[0].purge_mode == "Graciously"
    # The tolerating policy keeps its replicas there until tolerationSeconds run out.
    patient = await bindings.wait("patient-deployment", lambda b: b is not None)
    assert replicas(patient) == {"member1": 2, "member2": 2}
    patient = await bindings.wait(
        "patient-deployment", lambda b: "member1" not in replicas(b), within=10
    )
    assert replicas(patient) == {"member2": 4}
    moved_at = patient.status.last_scheduled_time
    assert moved_at is not None
    # Scheduled at the deadline, not before (3 s after the event).
    event_time = (await bindings.get("fast-deployment")).status.last_scheduled_time  # type: ignore[union-attr]
    assert event_time is not None
    assert (moved_at - event_time).total_seconds() >= 2.5

    # Back to Ready: a Duplicated template can use it again; an older event is ignored.
    await publish_health(bus, health("member1", "True", 2))
    await publish_health(bus, health("member1", "False", 1))
    await api(bus, API_APPLY, deployment("again", 1), policy("again", {}))
    again = await bindings.wait("again-deployment", lambda b: len(b.spec.clusters) == 3)
    assert "member1" in replicas(again)


async def test_a_cluster_joined_again_is_judged_by_its_own_health_events(
    scheduler: SchedulerService, bus: Bus
) -> None:
    for name in ("member1", "member2"):
        await put_cluster(bus, name)
    bindings = Bindings(bus)
    await publish_health(bus, health("member1", "False", 5))
    await api(bus, API_APPLY, deployment("before", 1), policy("before", {}))
    before = await bindings.wait("before-deployment", lambda b: len(b.spec.clusters) == 1)
    assert set(replicas(before)) == {"member2"}

    # Unjoined and joined again: the registry starts the new cluster's sequence at 1.
    store = await bus.kv(CLUSTERS.name)
    await store.delete(CLUSTER_KIND.key(None, "member1"))
    await eventually(lambda: "member1" not in scheduler.clusters)
    await put_cluster(bus, "member1")
    await publish_health(bus, health("member1", "True", 1))
    await eventually(lambda: scheduler.heard.get("member1", (0, None))[0] == 1)
    await api(bus, API_APPLY, deployment("after", 1), policy("after", {}))
    after = await bindings.wait("after-deployment", lambda b: len(b.spec.clusters) == 2)
    assert set(replicas(after)) == {"member1", "member2"}


@pytest.mark.parametrize(
    ("placement", "path", "reason"),
    [
        (
            {
                "clusterAffinity": {
                    "labelSelector": {"matchExpressions": [{"key": "env", "operator": "In"}]}
                }
            },
            "spec.placement.clusterAffinity.labelSelector.matchExpressions.0.values",
            "at least one value",
        ),
        (
            {
                "replicaScheduling": {
                    "replicaSchedulingType": "Divided",
                    "weightPreference": {
                        "staticWeightList": [
                            {"targetCluster": {"clusterNames": ["a"]}, "weight": 0}
                        ]
                    },
                }
            },
            "spec.placement.replicaScheduling.weightPreference.staticWeightList.0.weight",
            "greater than or equal to 1",
        ),
        (
            {
                "replicaScheduling": {
                    "replicaSchedulingType": "Divided",
                    "weightPreference": {
                        "staticWeightList": [
                            {"targetCluster": {"clusterNames": ["a"]}, "weight": 2**31 - 1},
                            {"targetCluster": {"clusterNames": ["b"]}, "weight": 2},
                        ]
                    },
                }
            },
            "spec.placement.replicaScheduling.weightPreference.staticWeightList",
            "weights add up to",
        ),
        (
            {
                "clusterAffinity": {
                    "fieldSelector": {
                        "matchExpressions": [{"key": "country", "operator": "In", "values": ["fr"]}]
                    }
                }
            },
            "spec.placement.clusterAffinity.fieldSelector.matchExpressions.0.key",
            "'provider', 'region' or 'zone'",
        ),
        (
            {"spreadConstraints": [{"spreadByField": "cluster", "minGroups": -1}]},
            "spec.placement.spreadConstraints.0.minGroups",
            "greater than or equal to 0",
        ),
    ],
    ids=["bad-selector", "zero-weight", "weights-overflow", "unknown-cluster-field", "negative"],
)
async def test_invalid_policies_are_rejected_with_the_field_path_and_not_stored(
    scheduler: SchedulerService, bus: Bus, placement: dict[str, Any], path: str, reason: str
) -> None:
    reply = await api(bus, API_APPLY, policy("bad", placement))
    [result] = reply.results
    assert result.outcome == "rejected"
    assert result.error is not None
    fields = {f.path: f.reason for f in result.error.fields}
    assert path in fields, fields
    assert reason in fields[path]
    store = await bus.kv(POLICIES.name)
    assert await store.entries() == []


async def test_negative_replicas_are_rejected_and_nothing_is_stored(
    scheduler: SchedulerService, bus: Bus
) -> None:
    reply = await api(bus, API_APPLY, deployment("neg", -1), policy("neg", {}))
    bad, good = reply.results
    assert bad.outcome == "rejected"
    assert bad.error is not None
    assert [f.path for f in bad.error.fields] == ["spec.replicas"]
    assert good.outcome == "created"
    store = await bus.kv("templates")
    assert await store.entries() == []
    await scheduler.queue.wait_idle()
    assert await Bindings(bus).refresh() == {}


async def test_cli_describes_a_template_and_lists_bindings(
    scheduler: SchedulerService, bus: Bus, nats_server: EmbeddedNats
) -> None:
    await put_cluster(bus, "member1", labels={"env": "prod"})
    await put_cluster(bus, "member2", labels={"env": "test"})
    placement = {
        "clusterAffinity": {"labelSelector": {"matchLabels": {"env": "prod"}}},
        "replicaScheduling": {"replicaSchedulingType": "Divided"},
    }
    await api(bus, API_APPLY, deployment("web", 3), policy("web", placement))
    await api(bus, API_APPLY, deployment("lonely", 1))
    bindings = Bindings(bus)
    await bindings.wait("web-deployment", lambda b: b.spec.clusters)
    await bindings.wait("lonely-deployment", lambda b: b.status.conditions)

    code, stdout, stderr = await run_foot(nats_server.url, "describe", "deploy/web", "-n", "shop")
    assert code == 0, stderr
    assert "Policy:       PropagationPolicy shop/web (policy.foot.dev/v1alpha1)" in stdout
    assert "Scheduled:    True (Success)" in stdout
    assert "member1" in stdout
    assert "3 replica(s)" in stdout
    assert "claimed by PropagationPolicy web" in stdout
    assert "member2" not in stdout.split("Placement:")[1].split("Why:")[0]

    code, stdout, stderr = await run_foot(
        nats_server.url, "describe", "deployment", "lonely", "-n", "shop"
    )
    assert code == 0, stderr
    assert "Scheduled:    False (NoMatchingPolicy)" in stdout
    assert "no PropagationPolicy in namespace shop" in stdout

    code, stdout, stderr = await run_foot(nats_server.url, "get", "bindings", "-n", "shop")
    assert code == 0, stderr
    rows = {line.split()[0]: line for line in stdout.splitlines()[1:] if line.strip()}
    assert set(rows) == {"web-deployment", "lonely-deployment"}
    assert "PropagationPolicy/web" in rows["web-deployment"]
    assert "member1=3" in rows["web-deployment"]
    assert "NoMatchingPolicy" in rows["lonely-deployment"]

    code, _, stderr = await run_foot(nats_server.url, "describe", "deploy/missing", "-n", "shop")
    assert code == 1
    assert "not found" in stderr
