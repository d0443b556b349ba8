"""The registry service: joins and registrations, cluster health in seconds, status.

The wiring of its parts, each a module of its own over the pure core (`core`):

* `routing`: requests `foot.registry.{join,unjoin,register,collect,sealing-key}`
  (request-reply,
  served by the runtime) and the same on the admin HTTP API (`/api/clusters/...`,
  behind the admin bearer token), and the agents' subjects;
* `onboarding`: push joins (`member` sets FOOT up in the member), pull registrations,
  unjoins;
* `health_monitor`: probes of push clusters (`health:probes`), heartbeats and leases
  of pull clusters (`health:leases`), each Ready transition published and recorded;
* `status_collector`: status of Ready push clusters every status period
  (`status:collect`) and on demand; agents send theirs in heartbeats;
* `clusters`: the clusters by name as the bucket's mirror (`Service.mirror`) and this
  registry's own writes leave them, with each cluster's health, and the writes.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

import orjson
from aiohttp import web
from pydantic import SecretStr

from foot.catalog import CLUSTER_AGENTS, CLUSTER_CREDENTIALS, CLUSTERS, registry_subject
from foot.credentials import CredentialStore
from foot.errors import FieldProblem, InvalidObjectError
from foot.kinds.clusters import Cluster
from foot.kube import KubeClient, KubeTarget
from foot.registry_api import (
    REGISTRY_BOX_PURPOSE,
    ClusterNameRequest,
    EmptyRequest,
    JoinRequest,
    RegisterRequest,
    RegistryReply,
    UnjoinRequest,
    join_context,
)
from foot.runtime.service import Service
from foot.runtime.settings import ServiceSettings
from foot.secrets import SecretBox, UnsealError
from foot_registry.clusters import ClusterStore, Roster
from foot_registry.core.health import Health
from foot_registry.health_monitor import HealthMonitor
from foot_registry.member import KubeFactory
from foot_registry.onboarding import Onboarding
from foot_registry.parts import RegistryParts
from foot_registry.routing import (
    AgentSubjects,
    DocumentHandler,
    InFlight,
    error_reply,
    over_http,
    over_nats,
    parse,
)
from foot_registry.settings import RegistrySettings
from foot_registry.status_collector import StatusCollector

SealedKubeconfigT = TypeVar("SealedKubeconfigT", JoinRequest, UnjoinRequest)

QUEUE = "registry"
"""Queue group of every registry subscription (replicas share the requests)."""


def default_kube_factory(target: KubeTarget, timeout_seconds: float) -> KubeClient:
    return KubeClient(target, timeout_seconds=timeout_seconds, user_agent="foot-registry")


class RegistryService(Service[RegistrySettings]):
    name = "registry"
    settings_model: ClassVar[type[ServiceSettings]] = RegistrySettings

    def __init__(self, settings: ServiceSettings) -> None:
        super().__init__(settings)
        self.kube_factory: KubeFactory = default_kube_factory
        """How member clients are made (tests wrap it to inject failures)."""
        self.roster = Roster()
        self.agent_subjects = AgentSubjects()
        self.status_writes = InFlight()
        """The agents' status writes under way (the shutdown waits for them)."""

    @property
    def clusters(self) -> dict[str, Cluster]:
        return self.roster.clusters

    @property
    def health(self) -> dict[str, Health]:
        return self.roster.health

    def _make_kube(self, target: KubeTarget, timeout_seconds: float) -> KubeClient:
        # Looked up at each call: tests swap `kube_factory` on a running registry.
        return self.kube_factory(target, timeout_seconds)

    # ---- wiring ----------------------------------------------------------------------------

    async def setup(self) -> None:
        settings = self.settings
        self.box = SecretBox.from_file(settings.secret_key_file, create=True)
        self.box_key = self.box.box_key(REGISTRY_BOX_PURPOSE)
        self.credentials = CredentialStore(await self.bus.kv(CLUSTER_CREDENTIALS.name), self.box)
        self.agents_kv = await self.bus.kv(CLUSTER_AGENTS.name)
        self.clusters_kv = await self.bus.kv(CLUSTERS.name)
        self.cluster_store = ClusterStore(self.clusters_kv, self.roster)
        parts = RegistryParts(
            roster=self.roster,
            store=self.cluster_store,
            credentials=self.credentials,
            agents_kv=self.agents_kv,
            box=self.box,
            settings=settings,
            make_kube=self._make_kube,
        )
        self.status = StatusCollector(parts=parts, track=self.status_writes.track)
        self.monitor = HealthMonitor(
            bus=self.bus, parts=parts, on_agent_status=self.status.take_from_agent
        )
        self.onboarding = Onboarding(parts=parts, monitor=self.monitor)
        clusters = await self.mirror(CLUSTERS.name, Cluster.from_json, "cluster")
        clusters.on_change(self._on_cluster_change)
        await self._route()
        self.supervisor.spawn("health:probes", self.monitor.run_probes)
        self.supervisor.spawn("health:leases", self.monitor.run_leases)
        self.supervisor.spawn("status:collect", self.status.run)

    async def _route(self) -> None:
        handlers: dict[str, DocumentHandler] = {
            "join": self._join_document,
            "unjoin": self._unjoin_document,
            "register": self._register_document,
            "collect": self._collect_document,
            "sealing-key": self._sealing_key_document,
        }
        for verb, handler in handlers.items():
            await self.serve(
                registry_subject(verb),
                over_nats(verb, handler),
                error_reply=error_reply,
                queue=QUEUE,
            )
        await self.agent_subjects.open(
            self.bus,
            on_heartbeat=self.monitor.on_heartbeat,
            on_hello=self.monitor.on_hello,
            queue=QUEUE,
        )
        for verb, handler in handlers.items():
            self.admin.add_route("POST", f"/api/clusters/{verb}", over_http(handler))
        self.admin.add_route("GET", "/api/clusters", self._http_list)

    async def stop(self) -> None:
        # No more agents' messages, and the status writes they started finish, before the
        # runtime's staged stop closes the request subjects, drains them and disconnects.
        await self.agent_subjects.close()
        await self.status_writes.drain(self.settings.shutdown_deadline_seconds)
        await super().stop()

    def _on_cluster_change(self, key: str, _before: Cluster | None, after: Cluster | None) -> None:
        gone = self.roster.take(key, after)
        if gone is not None:
            self.monitor.forget(gone)

    # ---- what the requests do -------------------------------------------------------------

    async def join(self, request: JoinRequest) -> Cluster:
        return await self.onboarding.join(request)

    async def unjoin(self, request: UnjoinRequest) -> str:
        return await self.onboarding.unjoin(request)

    async def register(self, request: RegisterRequest) -> tuple[Cluster, str, str]:
        return await self.onboarding.register(request)

    async def collect_now(self, name: str) -> Cluster:
        return await self.status.collect_now(name)

    def _opened(self, request: SealedKubeconfigT, verb: str) -> SealedKubeconfigT:
        """`request` with its sealed kubeconfig opened into `kubeconfig`."""
        if request.sealed_kubeconfig is None:
            return request
        context = join_context(verb, request.name)
        try:
            text = self.box_key.open(request.sealed_kubeconfig, context=context).decode()
        except (UnsealError, UnicodeDecodeError):
            raise InvalidObjectError(
                f"{verb} request",
                [
                    FieldProblem(
                        "sealedKubeconfig",
                        "does not open with the registry's key: seal the kubeconfig's UTF-8 "
                        f"text to the key foot.registry.sealing-key answers, for {context}",
                    )
                ],
            ) from None
        return request.model_copy(update={"kubeconfig": SecretStr(text), "sealed_kubeconfig": None})

    async def _join_document(self, document: dict[str, Any]) -> RegistryReply:
        request = self._opened(parse(JoinRequest, document, "join request"), "join")
        cluster = await self.join(request)
        return RegistryReply(cluster=cluster.to_dict(), message=f"cluster {cluster.name} joined")

    async def _unjoin_document(self, document: dict[str, Any]) -> RegistryReply:
        request = self._opened(parse(UnjoinRequest, document, "unjoin request"), "unjoin")
        return RegistryReply(message=await self.unjoin(request))

    async def _register_document(self, document: dict[str, Any]) -> RegistryReply:
        request = parse(RegisterRequest, document, "register request")
        cluster, manifests, token = await self.register(request)
        reply = RegistryReply(
            cluster=cluster.to_dict(),
            manifests=manifests,
            bootstrap_token=SecretStr(token),
            message=f"cluster {cluster.name} registered; apply the manifests in it",
        )
        if request.reply_key is None:
            return reply  # the admin HTTP API: answered to its caller only
        return reply.sealed_to(request.reply_key, cluster.name)

    async def _sealing_key_document(self, document: dict[str, Any]) -> RegistryReply:
        parse(EmptyRequest, document, "sealing-key request")
        return RegistryReply(
            sealing_key=self.box_key.public_key,
            message="seal kubeconfigs to this key (foot-box-v1, context <verb>/<cluster>)",
        )

    async def _collect_document(self, document: dict[str, Any]) -> RegistryReply:
        request = parse(ClusterNameRequest, document, "collect request")
        return RegistryReply(cluster=(await self.collect_now(request.name)).to_dict())

    async def _http_list(self, _: web.Request) -> web.Response:
        items = [c.to_dict() for c in sorted(self.clusters.values(), key=lambda c: c.name)]
        return web.Response(body=orjson.dumps({"items": items}), content_type="application/json")
