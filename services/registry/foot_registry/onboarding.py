"""Onboarding: joins (push), registrations (pull) and unjoins.

On any failure of a join or registration nothing stays behind: what it created in the
member, the credential or agent key, the cluster. What each step decides is the core's
(`core.onboarding`, `core.member_plan`); the member's objects are made by `member`.
"""

from __future__ import annotations

import asyncio
import logging
import ssl

import orjson
from pydantic import SecretStr

from foot.catalog import CLUSTER_AGENTS, CLUSTERS
from foot.cluster_credential import ClusterCredential
from foot.errors import (
    AlreadyExistsError,
    ConflictError,
    FieldProblem,
    FootError,
    InvalidObjectError,
    NotFoundError,
    PermanentError,
)
from foot.kinds.clusters import Cluster
from foot.kube import KubeApiError, KubeTarget, KubeUnavailableError
from foot.natsauth import account_signing_seed_path, mint_agent_creds
from foot.natsjwt import NatsKeyError, NKey, decode_claims, parse_creds
from foot.objects import utc_now
from foot.registry_api import JoinRequest, RegisterRequest, UnjoinRequest, agent_key
from foot.runtime.settings import default_home
from foot_registry.core.agents import AgentRecord, agent_manifests, new_bootstrap_token
from foot_registry.core.member_plan import SERVICE_ACCOUNT
from foot_registry.core.onboarding import (
    MemberCleanup,
    check_agent_nats_url,
    check_cluster_name,
    given_token,
    joined,
    member_cleanup,
    new_cluster,
    push_annotations,
    registered,
)
from foot_registry.health_monitor import HealthMonitor
from foot_registry.member import (
    MemberSetup,
    check_token_works,
    delete_namespace,
    explain,
)
from foot_registry.parts import RegistryParts

log = logging.getLogger(__name__)


def target_of(kubeconfig: SecretStr, context: str | None) -> KubeTarget:
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


class Onboarding:
    """Joins, registrations and unjoins; one at a time per cluster name."""

    def __init__(
        self,
        *,
        parts: RegistryParts,
        monitor: HealthMonitor,
    ) -> None:
        self.parts = parts
        self.monitor = monitor
        self._busy: set[str] = set()
        """Clusters with a join/unjoin/register under way."""

    def _claim(self, name: str) -> None:
        check_cluster_name(name)
        if name in self._busy:
            raise ConflictError(CLUSTERS.name, name, None)
        self._busy.add(name)

    # ---- join ----------------------------------------------------------------------------

    async def join(self, request: JoinRequest) -> Cluster:
        """Push join; on any failure nothing stays behind (member, credentials, cluster)."""
        name = request.name
        self._claim(name)
        try:
            if await self.parts.store.exists(name):
                raise AlreadyExistsError(f"cluster {name!r} is already joined or registered")
            if request.kubeconfig is None:
                # The shell opens a sealed kubeconfig before the join runs.
                raise InvalidObjectError(
                    "join request", [FieldProblem("sealedKubeconfig", "was not opened")]
                )
            target = target_of(request.kubeconfig, request.context)
            cluster = new_cluster(
                name,
                mode="Push",
                endpoint=target.server,
                provider=request.provider,
                region=request.region,
                zone=request.zone,
                gateway_address=request.gateway_address,
                labels=request.labels,
                annotations=push_annotations(
                    use_given_credential=request.use_given_credential,
                    member_namespace=self.parts.settings.member_namespace,
                ),
            )
            if request.use_given_credential:
                token = given_token(target.token)
                credential = self._credential(name, target, token, "(given)")
                await self._verify_credential(credential)
                return await self._commit_join(cluster, credential)
            return await self._join_with_service_account(cluster, target)
        except FootError as exc:
            log.warning("join of %s refused: %s", name, exc.message, extra={"cluster": name})
            raise
        finally:
            self._busy.discard(name)

    @staticmethod
    def _credential(
        name: str, target: KubeTarget, token: SecretStr, service_account: str
    ) -> ClusterCredential:
        return ClusterCredential(
            cluster=name,
            server=target.server,
            token=token,
            ca_pem=target.ca_pem,
            insecure_skip_tls_verify=target.insecure_skip_tls_verify,
            tls_server_name=target.tls_server_name,
            service_account=service_account,
        )

    async def _join_with_service_account(self, cluster: Cluster, target: KubeTarget) -> Cluster:
        """Set FOOT up in the member with the admin credential, then keep only FOOT's own."""
        name, namespace = cluster.name, self.parts.settings.member_namespace
        async with self.parts.make_kube(target, self.parts.settings.join_timeout_seconds) as admin:
            setup = MemberSetup(admin, namespace, name)
            try:
                await setup.preflight()
                await setup.create_all()
                token = await setup.mint_token(self.parts.settings.token_expiration_seconds)
                credential = self._credential(
                    name, target, SecretStr(token), f"{namespace}/{SERVICE_ACCOUNT}"
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

    async def _verify_credential(self, credential: ClusterCredential) -> None:
        async with self.parts.make_kube(
            KubeTarget.from_credential(credential), self.parts.settings.join_timeout_seconds
        ) as own:
            try:
                await check_token_works(own)
            except KubeUnavailableError as exc:
                raise explain(exc, credential.server) from exc
            except KubeApiError as exc:
                raise explain(exc, credential.server) from exc

    async def _commit_join(self, cluster: Cluster, credential: ClusterCredential) -> Cluster:
        """Store the credential, then the cluster (Ready); undo the credential on failure."""
        await self.parts.credentials.put(credential)
        try:
            first = joined(cluster, utc_now())
            stored = await self.parts.store.create(first.cluster)
        except BaseException:
            await asyncio.shield(self.parts.credentials.delete(cluster.name))
            raise
        self.parts.roster.health[cluster.name] = first.health
        await self.monitor.publish(first.event)
        log.info(
            "cluster %s joined (%s)",
            cluster.name,
            credential.server,
            extra={"cluster": cluster.name},
        )
        return stored

    # ---- unjoin --------------------------------------------------------------------------

    async def unjoin(self, request: UnjoinRequest) -> str:
        name = request.name
        self._claim(name)
        try:
            cluster = await self.parts.store.read(name)
            if cluster is None:
                raise NotFoundError(f"cluster {name!r} is not joined")
            note = await self._clean_member(cluster, request)
            await self.parts.credentials.delete(name)
            await self.parts.agents_kv.delete(name)
            await self.parts.store.delete(name)
            self.parts.roster.remove(name)
            log.info("cluster %s unjoined", name, extra={"cluster": name})
            return f"cluster {name} unjoined{note}"
        finally:
            self._busy.discard(name)

    async def _clean_member(self, cluster: Cluster, request: UnjoinRequest) -> str:
        """What the unjoin did in the member, as the end of its message."""
        cleanup, namespace = member_cleanup(
            cluster, admin_kubeconfig=request.kubeconfig is not None
        )
        if cleanup is MemberCleanup.NONE:
            return ""
        if cleanup is MemberCleanup.FORGET_CREDENTIAL:
            return "; its own credential was forgotten (nothing was created in the member)"
        try:
            if cleanup is MemberCleanup.REMOVE_WITH_ADMIN and request.kubeconfig is not None:
                admin = KubeTarget.from_kubeconfig(
                    request.kubeconfig.get_secret_value(), context=request.context
                )
                return await self._remove_with_admin(cluster.name, admin, namespace)
            credential = await self.parts.credentials.get(cluster.name)
            async with self.parts.make_kube(
                KubeTarget.from_credential(credential), self.parts.settings.join_timeout_seconds
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

    async def _remove_with_admin(self, name: str, target: KubeTarget, namespace: str) -> str:
        async with self.parts.make_kube(target, self.parts.settings.join_timeout_seconds) as admin:
            left = await MemberSetup(admin, namespace, name).remove_all()
        if left:
            raise PermanentError(f"could not remove {', '.join(left)} from the member")
        return "; FOOT's objects were removed from the member"

    # ---- register --------------------------------------------------------------------------

    def _mint_agent_creds(self, cluster: str) -> str:
        """A new NATS user for `cluster`'s agent, fenced to its subjects, signed with the
        account's signing key (the account is the one this registry's own user belongs to)."""
        seed_file = self.parts.settings.nats_account_signing_seed_file or account_signing_seed_path(
            default_home()
        )
        creds_file = self.parts.settings.nats_credentials("registry")
        try:
            signing_key = NKey.from_seed(seed_file.read_bytes())
            jwt, _ = parse_creds(creds_file.read_text(encoding="utf-8"))
            account = str(decode_claims(jwt)["nats"]["issuer_account"])
        except (OSError, UnicodeDecodeError, KeyError, TypeError, NatsKeyError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else type(exc).__name__
            raise PermanentError(
                "cannot mint the agent's NATS user: nats_account_signing_seed_file "
                f"{seed_file} and nats_credentials_file {creds_file} must hold the FOOT "
                f"account's signing key and the registry's user ({reason})"
            ) from None
        return mint_agent_creds(signing_key, account=account, cluster=cluster)

    async def register(self, request: RegisterRequest) -> tuple[Cluster, str, str]:
        """Pull registration: the cluster, the agent's manifests and its bootstrap token."""
        name = request.name
        nats_url = (
            request.hub_nats_url
            or self.parts.settings.agent_nats_url
            or self.parts.settings.nats_url
        )
        ca_file = self.parts.settings.agent_nats_ca_file
        check_agent_nats_url(nats_url, ca_given=ca_file is not None)
        try:
            ca_pem = await asyncio.to_thread(ca_file.read_text) if ca_file is not None else None
        except OSError as exc:
            raise PermanentError(f"cannot read agent_nats_ca_file {ca_file}: {exc}") from exc
        self._claim(name)
        try:
            if await self.parts.store.exists(name):
                raise AlreadyExistsError(f"cluster {name!r} is already joined or registered")
            nats_creds = await asyncio.to_thread(self._mint_agent_creds, name)
            cluster = new_cluster(
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
            sealed = self.parts.box.seal(
                orjson.dumps(record.model_dump()), context=f"{CLUSTER_AGENTS.name}/{name}"
            )
            await self.parts.agents_kv.put(name, sealed)
            try:
                first = registered(cluster, utc_now())
                stored = await self.parts.store.create(first.cluster)
            except BaseException:
                await asyncio.shield(self.parts.agents_kv.delete(name))
                raise
            self.parts.roster.health[name] = first.health
            self.monitor.grant_lease(name)
            await self.monitor.publish(first.event)
            manifests = agent_manifests(
                cluster=name,
                nats_url=nats_url,
                bootstrap_token=token,
                nats_creds=nats_creds,
                image=request.image,
                nats_ca_pem=ca_pem,
            )
            log.info("cluster %s registered (pull)", name, extra={"cluster": name})
            return stored, manifests, token
        finally:
            self._busy.discard(name)
