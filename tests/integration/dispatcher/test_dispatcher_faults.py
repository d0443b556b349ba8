"""The dispatcher against simulated members with faults: a partitioned member never holds up
the others and shows why it is behind; while it does not answer it gets one probe request at
a time, not a retry per work; a member answering 429/500 is retried with backoff until its
works are applied; a partition that heals converges."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from foot.bus import Bus
from foot.catalog import (
    AGGREGATED_STATUS,
    BINDINGS,
    CLUSTER_CREDENTIALS,
    CLUSTERS,
    DISPATCH_INTENTS,
    POLICIES,
    TEMPLATES,
    WORKS,
)
from foot.cluster_credential import ClusterCredential
from foot.credentials import CredentialStore
from foot.kinds import KINDS
from foot.kinds.works import AggregatedStatus, Work
from foot.kube import KubeClient, KubeTarget
from foot.secrets import FORMAT_PREFIX as SEALED_PREFIX
from foot.secrets import SecretBox
from foot.telemetry import configure_tracing
from foot_cli.natsserver import EmbeddedNats
from foot_dispatcher.service import DispatcherService, DispatcherSettings
from foot_sim.background import BackgroundSimulator
from foot_sim.simulator import Simulator
from support import deployment_template, stored_value

CLUSTER_KIND = KINDS.lookup("cluster.foot.dev/v1alpha1", "Cluster")
BINDING_KIND = KINDS.lookup("work.foot.dev/v1alpha1", "ResourceBinding")
CONFIGMAP = KINDS.lookup("v1", "ConfigMap")


@pytest.fixture
def sim() -> Iterator[BackgroundSimulator]:
    with BackgroundSimulator(Simulator(3, simulate_workloads=False)) as running:
        yield running


@pytest.fixture
async def joined(sim: BackgroundSimulator, bus: Bus, tmp_path: Path) -> tuple[Bus, Path]:
    key_file = tmp_path / "secret.key"
    await join_members(sim, bus, key_file)
    return bus, key_file


async def join_members(sim: BackgroundSimulator, bus: Bus, key_file: Path) -> None:
    """What the registry leaves behind a push join: Cluster objects and sealed credentials."""
    credentials = CredentialStore(
        await bus.kv(CLUSTER_CREDENTIALS.name), SecretBox.from_file(key_file, create=True)
    )
    clusters = await bus.kv(CLUSTERS.name)
    for endpoint in sim.endpoints:
        document = {
            "apiVersion": "cluster.foot.dev/v1alpha1",
            "kind": "Cluster",
            "metadata": {"name": endpoint.name},
            "spec": {"syncMode": "Push", "apiEndpoint": endpoint.server},
        }
        await clusters.put(CLUSTER_KIND.key(None, endpoint.name), orjson.dumps(document))
        assert endpoint.ca_path is not None
        await credentials.put(
            ClusterCredential(
                cluster=endpoint.name,
                server=endpoint.server,
                token=endpoint.token,  # type: ignore[arg-type]
                ca_pem=endpoint.ca_path.read_text(),
            )
        )


async def bind_config(
    bus: Bus, name: str, clusters: list[str], traceparent: str | None = None
) -> list[str]:
    document = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "faults"},
        "data": {"k": name},
    }
    await (await bus.kv(TEMPLATES.name)).put(
        CONFIGMAP.key("faults", name), KINDS.parse(document).to_json()
    )
    binding = {
        "apiVersion": "work.foot.dev/v1alpha1",
        "kind": "ResourceBinding",
        "metadata": {
            "name": f"{name}-configmap",
            "namespace": "faults",
            **({"traceparent": traceparent} if traceparent else {}),
        },
        "spec": {
            "resource": {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "namespace": "faults",
                "name": name,
            },
            "clusters": [{"name": c} for c in clusters],
        },
    }
    key = BINDING_KIND.key("faults", f"{name}-configmap")
    await (await bus.kv(BINDINGS.name)).put(key, orjson.dumps(binding))
    return [f"{c}.{key}" for c in clusters]


async def works(bus: Bus) -> dict[str, Work]:
    store = await bus.kv(WORKS.name)
    return {e.key: Work.from_json(e.value) for e in await store.entries() if e.value}


async def wait_applied(bus: Bus, keys: list[str], within: float = 30.0) -> None:
    async with asyncio.timeout(within):
        while True:
            current = await works(bus)
            if all(
                k in current and current[k].status.applied_hash == current[k].spec.manifests_hash
                for k in keys
            ):
                return
            await asyncio.sleep(0.05)


async def wait_unavailable_shown(
    bus: Bus, keys: list[str], *, saying: str = "", within: float = 20.0
) -> None:
    """Until every work of `keys` shows its member unavailable (with `saying` in the
    message)."""

    def shown(work: Work) -> bool:
        return any(
            c.type == "Applied" and c.reason == "MemberUnavailable" and saying in c.message
            for c in work.status.conditions
        )

    async with asyncio.timeout(within):
        while True:
            current = await works(bus)
            if all(k in current and shown(current[k]) for k in keys):
                return
            await asyncio.sleep(0.1)


async def test_a_partitioned_member_holds_up_nobody_and_converges_when_healed(
    sim: BackgroundSimulator, joined: tuple[Bus, Path], nats_server: EmbeddedNats
) -> None:
    bus, key_file = joined
    names = [e.name for e in sim.endpoints]
    stuck = names[0]
    await sim.run_async(lambda: sim.simulator.set_fault(stuck, "partitioned"))
    patient = DispatcherSettings(
        nats_url=nats_server.url,
        secret_key_file=key_file,
        member_timeout_seconds=120.0,
        cluster_concurrency=2,
        shutdown_deadline_seconds=1.0,
    )
    keys: list[str] = []
    async with DispatcherService(patient):
        for n in range(6):
            keys += await bind_config(bus, f"cfg-{n}", names)
        healthy = [k for k in keys if not k.startswith(f"{stuck}.")]
        # Every worker of the partitioned member's lane now hangs for two minutes: had the
        # healthy members shared workers with it, their works would wait as long.
        await wait_applied(bus, healthy, within=60)
        # A push work is stored with its first apply's answer; until then the binding's
        # intent names the cluster and the objects being applied there. The intents are
        # read first: an intent is dropped only once none of its works waits to be stored,
        # so a work stored between the two reads is in the second, never missing from both.
        intents = await (await bus.kv(DISPATCH_INTENTS.name)).entries()
        named = {e.key: orjson.loads(e.value or b"{}")["clusters"] for e in intents}
        current = await works(bus)
        assert all(
            k not in current or current[k].status.applied_hash is None
            for k in keys
            if k.startswith(stuck)
        )
        for k in keys:
            if k.startswith(f"{stuck}.") and k not in current:
                assert stuck in named[k.partition(".")[2]]
    settings = DispatcherSettings(
        nats_url=nats_server.url,
        secret_key_file=key_file,
        member_timeout_seconds=1.0,
        retry_max_seconds=1.0,
    )
    async with DispatcherService(settings):
        await wait_unavailable_shown(bus, [k for k in keys if k.startswith(f"{stuck}.")])
        current = await works(bus)
        assert all(current[k].status.applied_hash is None for k in keys if k.startswith(stuck))

        await sim.run_async(lambda: sim.simulator.set_fault(stuck, "healthy"))
        await wait_applied(bus, keys)
        endpoint = sim.endpoints[0]
        async with KubeClient(
            KubeTarget.from_kubeconfig(endpoint.kubeconfig_path.read_text())
        ) as kube:
            healed = await kube.get("/api/v1/namespaces/faults/configmaps/cfg-0")
        assert healed["data"] == {"k": "cfg-0"}


async def test_a_member_that_does_not_answer_gets_probes_not_a_retry_per_work(
    sim: BackgroundSimulator, joined: tuple[Bus, Path], nats_server: EmbeddedNats
) -> None:
    bus, key_file = joined
    names = [e.name for e in sim.endpoints]
    stuck = names[0]
    served = sim.simulator.cluster(stuck).api
    settings = DispatcherSettings(
        nats_url=nats_server.url,
        secret_key_file=key_file,
        member_timeout_seconds=0.5,
        member_breaker_seconds=1.0,
        retry_max_seconds=2.0,
    )
    async with DispatcherService(settings):
        warm = await bind_config(bus, "warm", names)  # connections and discovery made
        await wait_applied(bus, warm)
        await sim.run_async(lambda: sim.simulator.set_fault(stuck, "partitioned"))
        keys: list[str] = []
        for n in range(12):
            keys += await bind_config(bus, f"probe-{n}", names)
        await wait_applied(bus, [k for k in keys if not k.startswith(f"{stuck}.")])
        await wait_unavailable_shown(
            bus,
            [k for k in keys if k.startswith(f"{stuck}.")],
            saying=f"member {stuck} does not answer",
        )
        # Each request waits 0.5 s for an answer: retried per work, eight workers would send
        # some 50 in the next 3 s; probes go one at a time, 1-2 s apart.
        before = served.requests_served
        await asyncio.sleep(3.0)
        probes = served.requests_served - before
        assert 1 <= probes <= 4, f"{probes} requests to the member that does not answer"

        await sim.run_async(lambda: sim.simulator.set_fault(stuck, "healthy"))
        await wait_applied(bus, keys, within=20)


async def test_429_and_500_are_retried_until_applied(
    sim: BackgroundSimulator, joined: tuple[Bus, Path], nats_server: EmbeddedNats
) -> None:
    bus, key_file = joined
    names = [e.name for e in sim.endpoints]
    flaky = names[1]
    await sim.run_async(
        lambda: sim.simulator.set_fault(flaky, "error-rate", error_rate=0.6, error_codes=(429, 500))
    )
    settings = DispatcherSettings(
        nats_url=nats_server.url, secret_key_file=key_file, retry_max_seconds=0.5
    )
    async with DispatcherService(settings) as dispatcher:
        keys: list[str] = []
        for n in range(8):
            keys += await bind_config(bus, f"flaky-{n}", names)
        await wait_applied(bus, keys, within=60)
        lanes = dispatcher.queues.lanes  # the lanes' own counts of attempts
        assert lanes[flaky].reconciles > lanes[names[2]].reconciles, "retried on 429/500"
    await sim.run_async(lambda: sim.simulator.set_fault(flaky, "healthy"))


async def test_member_applies_join_the_bindings_trace(
    sim: BackgroundSimulator, joined: tuple[Bus, Path], nats_server: EmbeddedNats
) -> None:
    provider: TracerProvider = configure_tracing("foot-tests")
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    bus, key_file = joined
    names = [e.name for e in sim.endpoints]
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    traceparent = f"00-{trace_id}-00f067aa0ba902b7-01"
    settings = DispatcherSettings(nats_url=nats_server.url, secret_key_file=key_file)
    async with DispatcherService(settings):
        keys = await bind_config(bus, "traced", names, traceparent=traceparent)
        await wait_applied(bus, keys)
    applies = [s for s in exporter.get_finished_spans() if s.name.startswith("apply ")]
    assert {s.name for s in applies} >= {f"apply {n}" for n in names}
    assert all(f"{s.context.trace_id:032x}" == trace_id for s in applies if s.context)
    stored = await works(bus)
    assert {stored[k].status.last_applied_trace for k in keys} == {traceparent}


async def test_an_override_that_does_not_fit_is_reported_with_its_path(
    sim: BackgroundSimulator, joined: tuple[Bus, Path], nats_server: EmbeddedNats
) -> None:
    bus, key_file = joined
    names = [e.name for e in sim.endpoints]
    broken = {
        "apiVersion": "policy.karmada.io/v1alpha1",
        "kind": "OverridePolicy",
        "metadata": {"name": "broken", "namespace": "faults"},
        "spec": {
            "resourceSelectors": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "odd"}],
            "overrideRules": [
                {
                    "targetCluster": {"clusterNames": [names[0]]},
                    "overriders": {
                        "plaintext": [
                            {"path": "/data/missing", "operator": "replace", "value": "x"}
                        ]
                    },
                }
            ],
        },
    }
    info = KINDS.lookup("policy.karmada.io/v1alpha1", "OverridePolicy")
    await (await bus.kv(POLICIES.name)).put(
        info.key("faults", "broken"), KINDS.parse(broken).to_json()
    )
    settings = DispatcherSettings(nats_url=nats_server.url, secret_key_file=key_file)
    async with DispatcherService(settings):
        keys = await bind_config(bus, "odd", names)
        await wait_applied(bus, keys[1:])
        store = await bus.kv(AGGREGATED_STATUS.name)

        async def reported() -> AggregatedStatus | None:
            entry = await store.get(CONFIGMAP.key("faults", "odd"))
            if entry is None or entry.value is None:
                return None
            status = AggregatedStatus.model_validate_json(entry.value)
            return status if status.clusters and status.clusters[0].errors else None

        async with asyncio.timeout(20):
            while (status := await reported()) is None:  # noqa: ASYNC110 - state in the bucket
                await asyncio.sleep(0.05)
    first = status.clusters[0]
    assert first.cluster == names[0]
    expected = "OverridePolicy faults/broken rule 0: /data/missing does not exist, so it "
    assert first.errors == [expected + "cannot be replaced"]
    assert not status.applied
    assert [c.applied for c in status.clusters[1:]] == [True, True]


async def test_a_work_carrying_a_secret_is_stored_sealed(
    sim: BackgroundSimulator, joined: tuple[Bus, Path], nats_server: EmbeddedNats
) -> None:
    bus, key_file = joined
    bus.secret_box = SecretBox.from_file(key_file)
    member = sim.endpoints[0]
    password = base64.b64encode(b"hunter2-not-in-plain-text").decode()
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "faults"},
        "data": {"password": password},
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "faults"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "api"}},
            "template": {
                "metadata": {"labels": {"app": "api"}},
                "spec": {
                    "containers": [
                        {
                            "name": "api",
                            "image": "api:1",
                            "envFrom": [{"secretRef": {"name": "db"}}],
                        }
                    ]
                },
            },
        },
    }
    templates = await bus.kv(TEMPLATES.name)
    await templates.put(  # as the scheduler stores Secret templates: sealed
        KINDS.lookup("v1", "Secret").key("faults", "db"), KINDS.parse(secret).to_json(), seal=True
    )
    await templates.put(
        KINDS.lookup("apps/v1", "Deployment").key("faults", "api"),
        KINDS.parse(deployment).to_json(),
    )
    binding = {
        "apiVersion": "work.foot.dev/v1alpha1",
        "kind": "ResourceBinding",
        "metadata": {"name": "api-deployment", "namespace": "faults"},
        "spec": {
            "resource": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "namespace": "faults",
                "name": "api",
            },
            "clusters": [{"name": member.name, "replicas": 1}],
            "propagateDeps": True,
        },
    }
    key = BINDING_KIND.key("faults", "api-deployment")
    await (await bus.kv(BINDINGS.name)).put(key, orjson.dumps(binding))
    settings = DispatcherSettings(nats_url=nats_server.url, secret_key_file=key_file)
    async with DispatcherService(settings):
        await wait_applied(bus, [f"{member.name}.{key}"])
    raw = await stored_value(nats_server.url, WORKS.name, f"{member.name}.{key}")
    assert raw is not None
    assert raw.startswith(SEALED_PREFIX)
    assert password.encode() not in raw
    readable = (await works(bus))[f"{member.name}.{key}"]
    assert [m["kind"] for m in readable.spec.manifests] == ["Secret", "Deployment"]
    async with KubeClient(KubeTarget.from_kubeconfig(member.kubeconfig_path.read_text())) as kube:
        stored = await kube.get("/api/v1/namespaces/faults/secrets/db")
    assert stored["data"] == {"password": password}


async def test_a_cluster_that_is_not_ready_shows_its_last_figures_out_of_the_total(
    bus: Bus, nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    """The registry marks a member not Ready: its row keeps what it last reported, with
    health Unknown, and its ready replicas leave the template's total until it is back."""
    with BackgroundSimulator(Simulator(2, ready_delay=0.1)) as running:
        key_file = tmp_path / "secret.key"
        await join_members(running, bus, key_file)
        names = [e.name for e in running.endpoints]
        deployment = deployment_template("faults", "web")
        info = KINDS.lookup("apps/v1", "Deployment")
        await (await bus.kv(TEMPLATES.name)).put(
            info.key("faults", "web"), KINDS.parse(deployment).to_json()
        )
        binding = {
            "apiVersion": "work.foot.dev/v1alpha1",
            "kind": "ResourceBinding",
            "metadata": {"name": "web-deployment", "namespace": "faults"},
            "spec": {
                "resource": {
                    "apiVersion": "apps/v1", "kind": "Deployment",
                    "namespace": "faults", "name": "web",
                },
                "replicas": 2,
                "clusters": [{"name": names[0], "replicas": 1}, {"name": names[1], "replicas": 1}],
            },
        }  # fmt: skip
        await (await bus.kv(BINDINGS.name)).put(
            BINDING_KIND.key("faults", "web-deployment"), orjson.dumps(binding)
        )
        aggregated = await bus.kv(AGGREGATED_STATUS.name)
        clusters = await bus.kv(CLUSTERS.name)

        async def status_when(check: Callable[[AggregatedStatus], bool]) -> AggregatedStatus:
            last = None
            try:
                async with asyncio.timeout(20):
                    while True:
                        entry = await aggregated.get(info.key("faults", "web"))
                        if entry is not None and entry.value is not None:
                            last = AggregatedStatus.model_validate_json(entry.value)
                            if check(last):
                                return last
                        await asyncio.sleep(0.05)
            except TimeoutError:
                pytest.fail(f"aggregated status never got there; last: {last}")

        async def set_ready(name: str, ready: str) -> None:
            key = CLUSTER_KIND.key(None, name)
            entry = await clusters.get(key)
            assert entry is not None
            assert entry.value is not None
            document = orjson.loads(entry.value)
            document["status"] = {"conditions": [{"type": "Ready", "status": ready}]}
            await clusters.put(key, orjson.dumps(document))

        settings = DispatcherSettings(nats_url=nats_server.url, secret_key_file=key_file)
        async with DispatcherService(settings):
            both = await status_when(lambda s: s.ready_replicas == 2 and s.health == "Healthy")
            assert [c.reachable for c in both.clusters] == [True, True]
            await set_ready(names[1], "False")
            down = await status_when(lambda s: s.ready_replicas == 1)
            assert [
                (c.cluster, c.reachable, c.health, c.ready_replicas) for c in down.clusters
            ] == [
                (names[0], True, "Healthy", 1),
                (names[1], False, "Unknown", 1),
            ]
            assert (down.replicas, down.health) == (2, "Unknown")
            await set_ready(names[1], "True")
            back = await status_when(lambda s: s.ready_replicas == 2)
            assert [c.reachable for c in back.clusters] == [True, True]
            assert back.health == "Healthy"
