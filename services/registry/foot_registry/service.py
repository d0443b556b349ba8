"""The registry service: joins and registrations, cluster health in seconds, status.

The shell around the pure parts (`foot_registry.health`, `member_objects`,
`agent_manifests`, `foot.kube.collect`'s summaries):

* requests `foot.registry.{join,unjoin,register,collect}` (request-reply) and the same
  on the admin HTTP API (`/api/clusters/...`, behind the admin bearer token);
* push clusters: one probe loop per cluster (supervised by the `health:probes` task),
  a `/readyz` probe every period, overlapping when one hangs, so one dead cluster
  never slows another; pull clusters: signed heartbeats on
  `foot.agent.heartbeat.<cluster>` and a lease check (`health:leases`);
* each Ready transition is published at once on `foot.events.health.<cluster>`
  (message id for de-duplication) and then recorded on the cluster (condition,
  system taints, sequence), with optimistic concurrency;
* status collection (`status:collect`) every status period for Ready push clusters,
  with bounded concurrency and a timeout each; agents send theirs in heartbeats.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from typing import Any, ClassVar, TypeVar

import orjson
from aiohttp import web
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import BaseModel, SecretStr, ValidationError

from foot.api import ApiError
from foot.bus import Entry
from foot.catalog import (
    AGENT_PREFIX,
    CLUSTER_AGENTS,
    CLUSTER_CREDENTIALS,
    CLUSTERS,
    health_subject,
    registry_subject,
)
from foot.cluster_credential import ClusterCredential
from foot.credentials import CredentialStore
from foot.errors import (
    AlreadyExistsError,
    ConflictError,
    FieldProblem,
    FootError,
    InvalidObjectError,
    NotFoundError,
    PermanentError,
)
from foot.health import ClusterHealthEvent
from foot.kinds import KINDS
from foot.kinds.clusters import CLUSTER_API_VERSION, Cluster
from foot.kube import KubeApiError, KubeClient, KubeTarget, KubeUnavailableError
from foot.kube.collect import collect_status
from foot.objects import check_label, problems_from_validation, utc_now
from foot.registry_api import (
    AgentHello,
    AgentWelcome,
    ClusterNameRequest,
    Heartbeat,
    JoinRequest,
    RegisterRequest,
    RegistryReply,
    UnjoinRequest,
    agent_key,
)
from foot.runtime.locks import KeyedLocks
from foot.runtime.service import Service
from foot.runtime.settings import ServiceSettings, as_settings
from foot.secrets import SecretBox
from foot_registry.agents import AgentRecord, agent_manifests, new_bootstrap_token
from foot_registry.health import (
    Health,
    Outcome,
    Thresholds,
    observe,
    taints_in_line,
    transition,
    with_collected,
    with_health,
    with_taints,
)
from foot_registry.member import MemberSetup, check_token_works, delete_namespace, explain
from foot_registry.settings import RegistrySettings

log = logging.getLogger(__name__)

CLUSTER_KIND = KINDS.lookup(CLUSTER_API_VERSION, "Cluster")
CREDENTIAL_ANNOTATION = "cluster.foot.dev/credential"
NAMESPACE_ANNOTATION = "cluster.foot.dev/member-namespace"
WRITE_ATTEMPTS = 8
PROBE_SET_RESYNC_SECONDS = 1.0

M = TypeVar("M", bound=BaseModel)
KubeFactory = Callable[[KubeTarget, float], KubeClient]


def default_kube_factory(target: KubeTarget, timeout_seconds: float) -> KubeClient:
    return KubeClient(target, timeout_seconds=timeout_seconds, user_agent="foot-registry")


class RegistryService(Service):
    name = "registry"
    settings_model: ClassVar[type[ServiceSettings]] = RegistrySettings

    def __init__(self, settings: ServiceSettings) -> None:
        config = as_settings(RegistrySettings, settings)
        super().__init__(config)
        self.config: RegistrySettings = config
        self.kube_factory: KubeFactory = default_kube_factory
        """How member clients are made (tests wrap it to inject failures)."""
        self.clusters: dict[str, Cluster] = {}
        self.health: dict[str, Health] = {}
        self._observations: dict[str, int] = {}
        self._locks = KeyedLocks()
        self._busy: set[str] = set()
        """Clusters with a join/unjoin/register under way."""
        self._last_heartbeat: dict[str, float] = {}
        self._last_heartbeat_sent: dict[str, datetime] = {}
        self._agent_keys: dict[str, bytes] = {}
        self._probes_changed = asyncio.Event()
        self._subscriptions: list[Subscription] = []
        self._requests: set[asyncio.Task[None]] = set()
        self.thresholds = Thresholds(config.failure_threshold, config.success_threshold)

    # ---- setup ---------------------------------------------------------------------------

    async def setup(self) -> None:
        self.box = SecretBox.from_file(self.config.secret_key_file, create=True)
        self.credentials = CredentialStore(await self.bus.kv(CLUSTER_CREDENTIALS.name), self.box)
        self.agents_kv = await self.bus.kv(CLUSTER_AGENTS.name)
        self.clusters_kv = await self.bus.kv(CLUSTERS.name)
        informer = await self.watch(CLUSTERS.name)
        informer.listen(self._on_cluster_entry)
        handlers: dict[str, Callable[[dict[str, Any]], Awaitable[RegistryReply]]] = {
            "join": self._join_document,
            "unjoin": self._unjoin_document,
            "register": self._register_document,
            "collect": self._collect_document,
        }
        for verb, handler in handlers.items():
            await self._serve(registry_subject(verb), handler, queue="registry")
        self._subscriptions.append(
            await self.bus.client.subscribe(
                f"{AGENT_PREFIX}.heartbeat.*", queue="registry", cb=self._on_heartbeat
            )
        )
        self._subscriptions.append(
            await self.bus.serve(f"{AGENT_PREFIX}.register.*", self._on_hello, queue="registry")
        )
        routes = self.admin.app.router
        for verb, handler in handlers.items():
            routes.add_post(f"/api/clusters/{verb}", self._http(handler))
        routes.add_get("/api/clusters", self._http_list)
        self.supervisor.spawn("health:probes", self._run_probes)
        self.supervisor.spawn("health:leases", self._run_leases)
        self.supervisor.spawn("status:collect", self._run_status)

    async def stop(self) -> None:
        for subscription in self._subscriptions:
            with contextlib.suppress(FootError, Exception):
                await subscription.unsubscribe()
        self._subscriptions.clear()
        if self._requests:
            await asyncio.wait(set(self._requests), timeout=self.config.shutdown_deadline_seconds)
        await super().stop()

    def _on_cluster_entry(self, entry: Entry) -> None:
        name = entry.key.rsplit(".", 1)[-1]
        if entry.deleted or entry.value is None:
            self.clusters.pop(name, None)
            self.health.pop(name, None)
            self._agent_keys.pop(name, None)
            self._last_heartbeat.pop(name, None)
            self._last_heartbeat_sent.pop(name, None)
        else:
            try:
                cluster = Cluster.from_json(entry.value)
            except ValidationError as exc:
                log.warning("unreadable cluster %s in the bucket: %s", name, exc)
                return
            self.clusters[name] = cluster
            known = self.health.get(name)
            if known is None or cluster.status.health_sequence > known.sequence:
                self.health[name] = Health.from_cluster(cluster)
        self._probes_changed.set()

    # ---- requests ------------------------------------------------------------------------

    async def _serve(
        self,
        subject: str,
        handler: Callable[[dict[str, Any]], Awaitable[RegistryReply]],
        *,
        queue: str,
    ) -> None:
        async def on_request(msg: Msg) -> None:
            task = asyncio.create_task(self._answer(msg, handler), name=f"request:{subject}")
            self._requests.add(task)
            task.add_done_callback(self._requests.discard)

        self._subscriptions.append(await self.bus.serve(subject, on_request, queue=queue))

    async def _answer(
        self, msg: Msg, handler: Callable[[dict[str, Any]], Awaitable[RegistryReply]]
    ) -> None:
        try:
            document = orjson.loads(msg.data)
        except orjson.JSONDecodeError as exc:
            document = f"malformed JSON: {exc}"
        if isinstance(document, dict):
            reply = await self.handle(handler, document)
        else:
            message = document if isinstance(document, str) else "the request must be an object"
            reply = RegistryReply(error=ApiError(code="Invalid", message=message))
        with contextlib.suppress(Exception):
            await msg.respond(reply.to_json())

    async def handle(
        self,
        handler: Callable[[dict[str, Any]], Awaitable[RegistryReply]],
        document: dict[str, Any],
    ) -> RegistryReply:
        try:
            return await handler(document)
        except FootError as exc:
            return RegistryReply(error=ApiError.from_exception(exc))

    def _http(
        self, handler: Callable[[dict[str, Any]], Awaitable[RegistryReply]]
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def route(request: web.Request) -> web.Response:
            try:
                document = orjson.loads(await request.read())
            except orjson.JSONDecodeError as exc:
                document = None
                reply = RegistryReply(
                    error=ApiError(code="Invalid", message=f"malformed JSON: {exc}")
                )
            if isinstance(document, dict):
                reply = await self.handle(handler, document)
            elif document is not None:
                reply = RegistryReply(
                    error=ApiError(code="Invalid", message="the body must be a JSON object")
                )
            status = 200 if reply.ok else _http_status(reply.error)
            return web.Response(
                body=reply.to_json(), status=status, content_type="application/json"
            )

        return route

    async def _http_list(self, _: web.Request) -> web.Response:
        items = [c.to_dict() for c in sorted(self.clusters.values(), key=lambda c: c.name)]
        return web.Response(body=orjson.dumps({"items": items}), content_type="application/json")

    async def _join_document(self, document: dict[str, Any]) -> RegistryReply:
        request = _parse(JoinRequest, document, "join request")
        cluster = await self.join(request)
        return RegistryReply(cluster=cluster.to_dict(), message=f"cluster {cluster.name} joined")

    async def _unjoin_document(self, document: dict[str, Any]) -> RegistryReply:
        request = _parse(UnjoinRequest, document, "unjoin request")
        message = await self.unjoin(request)
        return RegistryReply(message=message)

    async def _register_document(self, document: dict[str, Any]) -> RegistryReply:
        request = _parse(RegisterRequest, document, "register request")
        cluster, manifests, token = await self.register(request)
        return RegistryReply(
            cluster=cluster.to_dict(),
            manifests=manifests,
            bootstrap_token=SecretStr(token),
            message=f"cluster {cluster.name} registered; apply the manifests in it",
        )

    async def _collect_document(self, document: dict[str, Any]) -> RegistryReply:
        request = _parse(ClusterNameRequest, document, "collect request")
        cluster = await self.collect_now(request.name)
        return RegistryReply(cluster=cluster.to_dict())

    # ---- join / unjoin / register ----------------------------------------------------------

    def _claim(self, name: str) -> None:
        try:
            check_label(name)
        except ValueError as exc:
            raise InvalidObjectError("cluster", [FieldProblem("name", str(exc))]) from None
        if name in self._busy:
            raise ConflictError(CLUSTERS.name, name, None)
        self._busy.add(name)

    async def _exists(self, name: str) -> bool:
        entry = await self.clusters_kv.get(CLUSTER_KIND.key(None, name))
        return entry is not None and not entry.deleted

    def _new_cluster(
        self,
        name: str,
        *,
        mode: str,
        endpoint: str | None,
        provider: str | None,
        region: str | None,
        zone: str | None,
        labels: dict[str, str],
        annotations: dict[str, str],
        gateway_address: str | None = None,
    ) -> Cluster:
        document = {
            "apiVersion": CLUSTER_API_VERSION,
            "kind": "Cluster",
            "metadata": {"name": name, "labels": labels, "annotations": annotations},
            "spec": {
                "syncMode": mode,
                "apiEndpoint": endpoint,
                "provider": provider,
                "region": region,
                "zone": zone,
                "gatewayAddress": gateway_address,
            },
        }
        parsed = KINDS.parse(document, source=f"cluster {name}")
        assert isinstance(parsed, Cluster)  # noqa: S101 - the kind registry maps Cluster here
        return parsed

    async def join(self, request: JoinRequest) -> Cluster:
        """Push join; on any failure nothing stays behind (member, credentials, cluster)."""
        name = request.name
        self._claim(name)
        try:
            if await self._exists(name):
                raise AlreadyExistsError(f"cluster {name!r} is already joined or registered")
            target = _target_of(request.kubeconfig, request.context)
            mode = "given" if request.use_given_credential else "service-account"
            cluster = self._new_cluster(
                name,
                mode="Push",
                endpoint=target.server,
                provider=request.provider,
                region=request.region,
                zone=request.zone,
                gateway_address=request.gateway_address,
                labels=request.labels,
                annotations={
                    CREDENTIAL_ANNOTATION: mode,
                    NAMESPACE_ANNOTATION: self.config.member_namespace,
                },
            )
            if request.use_given_credential:
                if target.token is None:
                    raise InvalidObjectError(
                        "join request",
                        [FieldProblem("kubeconfig", "useGivenCredential needs a token user")],
                    )
                credential = ClusterCredential(
                    cluster=name,
                    server=target.server,
                    token=target.token,
                    ca_pem=target.ca_pem,
                    insecure_skip_tls_verify=target.insecure_skip_tls_verify,
                    tls_server_name=target.tls_server_name,
                    service_account="(given)",
                )
                await self._verify_credential(credential)
                return await self._commit_join(cluster, credential)
            async with self.kube_factory(target, self.config.join_timeout_seconds) as admin:
                setup = MemberSetup(admin, self.config.member_namespace, name)
                try:
                    await setup.preflight()
                    await setup.create_all()
                    token = await setup.mint_token(self.config.token_expiration_seconds)
                    credential = ClusterCredential(
                        cluster=name,
                        server=target.server,
                        token=SecretStr(token),
                        ca_pem=target.ca_pem,
                        insecure_skip_tls_verify=target.insecure_skip_tls_verify,
                        tls_server_name=target.tls_server_name,
                        service_account=f"{self.config.member_namespace}/foot-controller",
                    )
                    await self._verify_credential(credential)
                    return await self._commit_join(cluster, credential)
                except BaseException as exc:
                    left = await asyncio.shield(setup.rollback())
                    if left:
                        log.error(  # noqa: TRY400 - the cause is raised below
                            "join of %s failed and these stay in the member: %s",
                            name,
                            ", ".join(left),
                            extra={"cluster": name},
                        )
                    translated = explain(exc, target.server) if isinstance(exc, FootError) else exc
                    if translated is exc:
                        raise
                    raise translated from exc
        except FootError as exc:
            log.warning("join of %s refused: %s", name, exc.message, extra={"cluster": name})
            raise
        finally:
            self._busy.discard(name)

    async def _verify_credential(self, credential: ClusterCredential) -> None:
        async with self.kube_factory(
            KubeTarget.from_credential(credential), self.config.join_timeout_seconds
        ) as own:
            try:
                await check_token_works(own)
            except KubeUnavailableError as exc:
                raise explain(exc, credential.server) from exc
            except KubeApiError as exc:
                raise explain(exc, credential.server) from exc

    async def _commit_join(self, cluster: Cluster, credential: ClusterCredential) -> Cluster:
        """Store the credential, then the cluster (Ready); undo the credential on failure."""
        await self.credentials.put(credential)
        try:
            now = utc_now()
            health, event = transition(
                Health(cluster=cluster.name), "True", "Joined", "joined by the registry", now
            )
            health = replace(health, last_success_at=now)
            event = event.model_copy(update={"last_success_at": now})
            stored = await self._create_cluster(with_health(cluster, event))
        except BaseException:
            await asyncio.shield(self.credentials.delete(cluster.name))
            raise
        self.health[cluster.name] = health
        await self._publish(event)
        log.info(
            "cluster %s joined (%s)",
            cluster.name,
            credential.server,
            extra={"cluster": cluster.name},
        )
        return stored

    async def _create_cluster(self, cluster: Cluster) -> Cluster:
        stamped = cluster.model_copy(
            update={
                "metadata": cluster.metadata.model_copy(
                    update={"generation": 1, "creation_timestamp": utc_now()}
                )
            }
        )
        key = CLUSTER_KIND.key(None, cluster.name)
        await self.clusters_kv.create(key, stamped.to_json())
        self.clusters[cluster.name] = stamped
        self._probes_changed.set()
        return stamped

    async def unjoin(self, request: UnjoinRequest) -> str:
        name = request.name
        self._claim(name)
        try:
            cluster = await self._read_cluster(name)
            if cluster is None:
                raise NotFoundError(f"cluster {name!r} is not joined")
            note = ""
            if cluster.spec.sync_mode == "Push":
                note = await self._clean_member(cluster, request)
            await self.credentials.delete(name)
            await self.agents_kv.delete(name)
            await self.clusters_kv.delete(CLUSTER_KIND.key(None, name))
            self.clusters.pop(name, None)
            self.health.pop(name, None)
            self._probes_changed.set()
            log.info("cluster %s unjoined", name, extra={"cluster": name})
            return f"cluster {name} unjoined{note}"
        finally:
            self._busy.discard(name)

    async def _clean_member(self, cluster: Cluster, request: UnjoinRequest) -> str:
        mode = cluster.metadata.annotations.get(CREDENTIAL_ANNOTATION, "service-account")
        if mode == "given":
            return "; its own credential was forgotten (nothing was created in the member)"
        namespace = cluster.metadata.annotations.get(NAMESPACE_ANNOTATION, "foot-system")
        try:
            if request.kubeconfig is not None:
                target = KubeTarget.from_kubeconfig(
                    request.kubeconfig.get_secret_value(), context=request.context
                )
                async with self.kube_factory(target, self.config.join_timeout_seconds) as admin:
                    left = await MemberSetup(admin, namespace, cluster.name).remove_all()
                if left:
                    raise PermanentError(f"could not remove {', '.join(left)} from the member")
                return "; FOOT's objects were removed from the member"
            credential = await self.credentials.get(cluster.name)
            async with self.kube_factory(
                KubeTarget.from_credential(credential), self.config.join_timeout_seconds
            ) as own:
                await delete_namespace(own, namespace)
        except (KubeUnavailableError, KubeApiError, NotFoundError) as exc:
            if not request.force:
                server = cluster.spec.api_endpoint or "the member"
                raise PermanentError(
                    f"{explain(exc, server).message}; nothing was changed "
                    "(unjoin with force to forget the cluster anyway)"
                ) from exc
            return f"; the member could not be cleaned up ({exc.message})"
        return (
            f"; namespace {namespace} is being deleted in the member and its ClusterRole and "
            "binding with it"
        )

    async def register(self, request: RegisterRequest) -> tuple[Cluster, str, str]:
        name = request.name
        nats_url = request.hub_nats_url or self.config.agent_nats_url or self.config.nats_url
        ca_file = self.config.agent_nats_ca_file
        if ca_file is not None and not nats_url.startswith("tls://"):
            reason = "must be a tls:// URL: agents are given a NATS CA (agent_nats_ca_file)"
            raise InvalidObjectError("register request", [FieldProblem("hubNatsUrl", reason)])
        try:
            ca_pem = await asyncio.to_thread(ca_file.read_text) if ca_file is not None else None
        except OSError as exc:
            raise PermanentError(f"cannot read agent_nats_ca_file {ca_file}: {exc}") from exc
        self._claim(name)
        try:
            if await self._exists(name):
                raise AlreadyExistsError(f"cluster {name!r} is already joined or registered")
            cluster = self._new_cluster(
                name,
                mode="Pull",
                endpoint=None,
                provider=request.provider,
                region=request.region,
                zone=request.zone,
                gateway_address=request.gateway_address,
                labels=request.labels,
                annotations={},
            )
            token = new_bootstrap_token()
            record = AgentRecord(cluster=name, agent_key=agent_key(token).hex())
            sealed = self.box.seal(
                orjson.dumps(record.model_dump()), context=f"{CLUSTER_AGENTS.name}/{name}"
            )
            await self.agents_kv.put(name, sealed)
            try:
                now = utc_now()
                health, event = transition(
                    Health(cluster=name),
                    "Unknown",
                    "AwaitingAgent",
                    "no agent has connected yet",
                    now,
                )
                stored = await self._create_cluster(with_health(cluster, event))
            except BaseException:
                await asyncio.shield(self.agents_kv.delete(name))
                raise
            self.health[name] = health
            self._last_heartbeat[name] = asyncio.get_running_loop().time()
            await self._publish(event)
            manifests = agent_manifests(
                cluster=name,
                nats_url=nats_url,
                bootstrap_token=token,
                image=request.image,
                nats_ca_pem=ca_pem,
            )
            log.info("cluster %s registered (pull)", name, extra={"cluster": name})
            return stored, manifests, token
        finally:
            self._busy.discard(name)

    # ---- cluster writes --------------------------------------------------------------------

    async def _read_cluster(self, name: str) -> Cluster | None:
        entry = await self.clusters_kv.get(CLUSTER_KIND.key(None, name))
        if entry is None or entry.value is None:
            return None
        return Cluster.from_json(entry.value)

    async def update_cluster(
        self, name: str, change: Callable[[Cluster], Cluster]
    ) -> Cluster | None:
        """Read, change, write with the revision read; again on a conflict. None: gone."""
        key = CLUSTER_KIND.key(None, name)
        for _ in range(WRITE_ATTEMPTS):
            entry = await self.clusters_kv.get(key)
            if entry is None or entry.value is None:
                return None
            current = Cluster.from_json(entry.value)
            changed = change(current)
            if changed == current:
                return current
            try:
                await self.clusters_kv.update(key, changed.to_json(), entry.revision)
            except ConflictError:
                continue
            return changed
        raise ConflictError(CLUSTERS.name, key, None)

    async def _publish(self, event: ClusterHealthEvent) -> None:
        payload = orjson.dumps(event.model_dump(mode="json", by_alias=True))
        await self.bus.publish(health_subject(event.cluster), payload, msg_id=event.message_id())

    def _next_observation(self, name: str) -> int:
        number = self._observations.get(name, 0) + 1
        self._observations[name] = number
        return number

    async def _observe(
        self,
        name: str,
        outcome: Outcome,
        number: int,
        *,
        source: Any,
        message: str = "",
        thresholds: Thresholds | None = None,
    ) -> None:
        health = self.health.get(name)
        if health is None:
            return
        health, event = observe(
            health,
            outcome,
            number=number,
            now=utc_now(),
            thresholds=thresholds or self.thresholds,
            source=source,
            message=message,
        )
        self.health[name] = health
        if event is None:
            return
        async with self._locks.hold(name):  # acquired in the order the events were made
            log.info(
                "cluster %s Ready %s -> %s (%s)",
                name,
                event.previous,
                event.ready,
                event.reason,
                extra={"cluster": name, "ready": event.ready, "reason": event.reason},
            )
            try:
                await self._publish(event)
                await self.update_cluster(name, lambda c: with_health(c, event))
            except FootError as exc:
                log.warning("could not record the health of %s: %s", name, exc)

    # ---- push: probes ------------------------------------------------------------------------

    async def _run_probes(self) -> None:
        running: dict[str, asyncio.Task[None]] = {}
        try:
            while True:
                self._probes_changed.clear()
                wanted = {n for n, c in self.clusters.items() if c.spec.sync_mode == "Push"}
                for name in list(running):
                    if name not in wanted or running[name].done():
                        running.pop(name).cancel()
                for name in wanted - running.keys():
                    running[name] = asyncio.create_task(
                        self._probe_cluster(name), name=f"registry:probe:{name}"
                    )
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(PROBE_SET_RESYNC_SECONDS):
                        await self._probes_changed.wait()
        finally:
            for task in running.values():
                task.cancel()
            await asyncio.gather(*running.values(), return_exceptions=True)

    async def _probe_cluster(self, name: str) -> None:
        try:
            credential = await self.credentials.get(name)
        except FootError as exc:
            log.warning("cannot probe %s: %s", name, exc.message, extra={"cluster": name})
            await asyncio.sleep(self.config.probe_period_seconds * 4)
            return
        period = self.config.probe_period_seconds
        loop = asyncio.get_running_loop()
        async with (
            self.kube_factory(
                KubeTarget.from_credential(credential), self.config.probe_timeout_seconds
            ) as kube,
            asyncio.TaskGroup() as probes,
        ):
            next_at = loop.time()
            while True:
                number = self._next_observation(name)
                probes.create_task(self._probe_once(name, kube, number))
                next_at += period
                delay = next_at - loop.time()
                if delay < 0:  # fell behind (a busy loop): carry on from now, no burst
                    next_at, delay = loop.time(), 0.0
                await asyncio.sleep(delay)

    async def _probe_once(self, name: str, kube: KubeClient, number: int) -> None:
        message = ""
        try:
            await kube.readyz(timeout_seconds=self.config.probe_timeout_seconds)
            outcome = Outcome.OK
        except KubeUnavailableError as exc:
            # Answered with 5xx: up but not ready. No answer: unreachable.
            outcome = Outcome.NOT_READY if exc.status is not None else Outcome.UNREACHABLE
            message = exc.message
        except KubeApiError as exc:
            outcome, message = Outcome.NOT_READY, exc.message
        await self._observe(name, outcome, number, source="probe", message=message)

    # ---- pull: heartbeats and leases ----------------------------------------------------------

    async def _agent_key(self, name: str) -> bytes | None:
        key = self._agent_keys.get(name)
        if key is not None:
            return key
        entry = await self.agents_kv.get(name)
        if entry is None or entry.value is None:
            return None
        opened = self.box.open_if_sealed(entry.value, context=f"{CLUSTER_AGENTS.name}/{name}")
        key = bytes.fromhex(AgentRecord.model_validate_json(opened).agent_key)
        self._agent_keys[name] = key
        return key

    def _fresh(self, sent_at: datetime) -> bool:
        skew = abs((utc_now() - sent_at).total_seconds())
        return skew <= self.config.heartbeat_max_skew_seconds

    async def _on_hello(self, msg: Msg) -> None:
        try:
            hello = AgentHello.model_validate_json(msg.data)
            name = msg.subject.rsplit(".", 1)[-1]
            key = await self._agent_key(name) if hello.cluster == name else None
            if key is None or not hello.verify(key):
                welcome = AgentWelcome(
                    accepted=False,
                    message=f"cluster {name!r} is not registered or the bootstrap token is wrong",
                )
            elif not self._fresh(hello.sent_at):
                welcome = AgentWelcome(accepted=False, message="the agent's clock is too far off")
            else:
                log.info(
                    "agent %s of cluster %s connected (version %s)",
                    hello.agent_id,
                    name,
                    hello.version or "?",
                    extra={"cluster": name},
                )
                welcome = AgentWelcome(
                    accepted=True,
                    heartbeat_period_seconds=self.config.heartbeat_period_seconds,
                    status_period_seconds=self.config.status_period_seconds,
                )
        except (ValidationError, FootError) as exc:
            welcome = AgentWelcome(accepted=False, message=f"malformed hello: {exc}")
        with contextlib.suppress(Exception):
            await msg.respond(orjson.dumps(welcome.model_dump(mode="json", by_alias=True)))

    async def _on_heartbeat(self, msg: Msg) -> None:
        name = msg.subject.rsplit(".", 1)[-1]
        try:
            beat = Heartbeat.model_validate_json(msg.data)
            key = await self._agent_key(name) if beat.cluster == name else None
        except (ValidationError, FootError) as exc:
            log.debug("dropped a malformed heartbeat on %s: %s", msg.subject, exc)
            return
        last_sent = self._last_heartbeat_sent.get(name)
        if key is None or not beat.verify(key):
            log.warning(
                "dropped a heartbeat with a bad signature for %s", name, extra={"cluster": name}
            )
            return
        if not self._fresh(beat.sent_at) or (last_sent is not None and beat.sent_at <= last_sent):
            log.debug("dropped a stale or replayed heartbeat for %s", name)
            return
        if name not in self.clusters:
            return
        self._last_heartbeat_sent[name] = beat.sent_at
        self._last_heartbeat[name] = asyncio.get_running_loop().time()
        outcome = Outcome.OK if beat.api_server_ready else Outcome.NOT_READY
        await self._observe(
            name, outcome, self._next_observation(name), source="heartbeat", message=beat.message
        )
        if beat.status is not None:
            status = beat.status
            task = asyncio.create_task(
                self._write_status(name, lambda c: with_collected(c, status, beat.sent_at)),
                name=f"registry:status:{name}",
            )
            self._requests.add(task)
            task.add_done_callback(self._requests.discard)

    async def _run_leases(self) -> None:
        loop = asyncio.get_running_loop()
        lease = self.config.heartbeat_lease_seconds
        once = Thresholds(failures=1, successes=self.thresholds.successes)
        while True:
            await asyncio.sleep(self.config.lease_check_seconds)
            now = loop.time()
            for name, cluster in list(self.clusters.items()):
                if cluster.spec.sync_mode != "Pull":
                    continue
                last = self._last_heartbeat.setdefault(name, now)  # a grace lease at start
                health = self.health.get(name)
                if now - last > lease and health is not None and health.ready != "Unknown":
                    await self._observe(
                        name,
                        Outcome.UNREACHABLE,
                        self._next_observation(name),
                        source="lease",
                        message=f"no heartbeat for {now - last:.1f}s",
                        thresholds=once,
                    )

    # ---- status --------------------------------------------------------------------------------

    async def _write_status(self, name: str, change: Callable[[Cluster], Cluster]) -> None:
        try:
            await self.update_cluster(name, change)
        except FootError as exc:
            log.warning("could not store the status of %s: %s", name, exc)

    async def _collect(self, name: str) -> Cluster | None:
        credential = await self.credentials.get(name)
        timeout = self.config.status_timeout_seconds
        async with (
            asyncio.timeout(timeout),
            self.kube_factory(KubeTarget.from_credential(credential), timeout) as kube,
        ):
            collected = await collect_status(kube)
        now = utc_now()

        def change(cluster: Cluster) -> Cluster:
            updated = with_collected(cluster, collected, now)
            if not taints_in_line(updated):
                ready = updated.status.condition("Ready")
                taints = with_taints(updated.spec.taints, ready.status if ready else None, now)
                updated = updated.model_copy(
                    update={"spec": updated.spec.model_copy(update={"taints": taints})}
                )
            return updated

        return await self.update_cluster(name, change)

    async def collect_now(self, name: str) -> Cluster:
        cluster = self.clusters.get(name) or await self._read_cluster(name)
        if cluster is None:
            raise NotFoundError(f"cluster {name!r} is not joined")
        if cluster.spec.sync_mode == "Pull":
            return cluster  # the agent sends its status every status period
        try:
            collected = await self._collect(name)
        except TimeoutError as exc:
            raise KubeUnavailableError(
                cluster.spec.api_endpoint or name, "status collection timed out"
            ) from exc
        if collected is None:
            raise NotFoundError(f"cluster {name!r} is not joined")
        return collected

    async def _run_status(self) -> None:
        gate = asyncio.Semaphore(self.config.status_concurrency)
        in_flight: set[str] = set()

        async def one(name: str) -> None:
            try:
                async with gate:
                    await self._collect(name)
            except (FootError, TimeoutError) as exc:
                log.info("status of %s not collected: %s", name, exc, extra={"cluster": name})
            finally:
                in_flight.discard(name)

        async with asyncio.TaskGroup() as group:
            while True:
                for name, cluster in list(self.clusters.items()):
                    ready = self.health.get(name)
                    if (
                        cluster.spec.sync_mode == "Push"
                        and ready is not None
                        and ready.ready == "True"
                        and name not in in_flight
                    ):
                        in_flight.add(name)
                        group.create_task(one(name), name=f"registry:collect:{name}")
                await asyncio.sleep(self.config.status_period_seconds)


def _parse(model: type[M], document: dict[str, Any], what: str) -> M:
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise InvalidObjectError(what, problems_from_validation(exc)) from None


def _target_of(kubeconfig: SecretStr, context: str | None) -> KubeTarget:
    """The kubeconfig's target, its TLS material checked before anything is sent."""
    target = KubeTarget.from_kubeconfig(kubeconfig.get_secret_value(), context=context)
    try:
        target.ssl_context()
    except (ssl.SSLError, ValueError) as exc:
        raise InvalidObjectError(
            "kubeconfig",
            [FieldProblem("clusters[].cluster.certificate-authority-data", f"unusable: {exc}")],
        ) from None
    return target


def _http_status(error: ApiError | None) -> int:
    codes = {"Invalid": 422, "NotFound": 404, "Conflict": 409, "AlreadyExists": 409}
    return codes.get(error.code if error else "", 503)
