"""No secret crosses the bus readable by anyone but its receiver (issue 15, acceptance 2).

A whole FOOT (registry, scheduler, dispatcher) on a real nats-server with auth on, two real
kube-apiservers as members: one joined in push mode, one registered in pull mode with its
agent running. While a join, a register and a rollout with a Secret (delivered to the pull
agent too) happen, two sniffers listen:

* the CLI's identity, the most privileged one `foot up` creates that is not a service: it
  asks for `>` (refused), listens on the CLI's inbox (where the join's, register's and
  apply's answers arrive), and afterwards reads every stream and bucket it may read;
* the harness, allowed everything (`>`), stronger than any identity FOOT hands out.

Neither finds a kubeconfig, a token, a key or the Secret's value, in plain, base64 or
base64-of-base64 form. The harness may see the Secret only in the apply request itself,
which the CLI sends to the Secret's owner.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from nats.aio.client import Client
from nats.aio.msg import Msg

from foot.api import ApiReply, ApiRequest
from foot.bus import Bus
from foot.catalog import API_APPLY, CLUSTER_CREDENTIALS
from foot.credentials import CredentialStore
from foot.kube import KubeClient, KubeTarget
from foot.kube.errors import KubeNotFoundError
from foot.natsauth import CLI_IDENTITY, CLI_INBOX_PREFIX, NatsAuthHome
from foot.registry_api import agent_key
from foot.registry_client import RegistryClient
from foot.runtime.settings import default_home
from foot.secrets import SecretBox
from foot_cli.natsserver import EmbeddedNats
from foot_cli.processes import spawn
from foot_dispatcher.service import DispatcherService, DispatcherSettings
from foot_registry.service import RegistryService
from foot_registry.settings import RegistrySettings
from foot_scheduler.service import SchedulerService, SchedulerSettings
from foot_testenv.clusters import KubeCluster, KubeClusters
from support import agent_argv, agent_env

pytestmark = pytest.mark.kube

SECRET_VALUE = "sniff-me-if-you-can-" + uuid.uuid4().hex


def forms(secret: str) -> list[bytes]:
    """A secret as it could sit in a message: plain, base64, base64 of base64."""
    once = base64.b64encode(secret.encode())
    return [secret.encode(), once, base64.b64encode(once)]


class Sniffer:
    """A raw NATS client recording every message it hears and every refusal."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.client = Client()
        self.heard: list[tuple[str, bytes]] = []
        self.errors: list[str] = []

    async def on_error(self, exc: Exception) -> None:
        self.errors.append(str(exc).lower())

    async def hear(self, msg: Msg) -> None:
        self.heard.append((msg.subject, msg.data))

    def refused_subscription(self, subject: str) -> bool:
        return any(
            "permissions violation" in e and "subscription" in e and f'"{subject}"' in e
            for e in self.errors
        )

    def found(self, secrets: dict[str, str], *, allowed: Callable[[str], bool]) -> list[str]:
        """Where a secret was heard: `<what> in <subject>`, for each message that holds one
        in any form, except on subjects `allowed` for it."""
        return [
            f"{what} in {subject}"
            for subject, data in self.heard
            for what, secret in secrets.items()
            if not allowed(f"{what}:{subject}") and any(form in data for form in forms(secret))
        ]

    async def read_every_stream(self) -> int:
        """Everything JetStream keeps that this identity may read (buckets included),
        through ephemeral ordered consumers; returns how many messages were read."""
        js = self.client.jetstream(timeout=5)
        read = 0
        for stream in await js.streams_info():
            count = stream.state.messages
            if not count:
                continue
            subscription = await js.subscribe(">", stream=stream.config.name, ordered_consumer=True)
            try:
                for _ in range(count):
                    msg = await subscription.next_msg(timeout=5)
                    self.heard.append((msg.subject, msg.data))
                    read += 1
            finally:
                await subscription.unsubscribe()
        return read


async def until(check: Callable[[], Awaitable[bool]], *, within: float = 60.0) -> None:
    async with asyncio.timeout(within):
        while not await check():  # noqa: ASYNC110 - member state offers no event to wait on
            await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def foot(nats_server: EmbeddedNats, tmp_path: Path, namespace: str) -> AsyncIterator[None]:
    common: dict[str, Any] = {
        "nats_url": nats_server.url,
        "secret_key_file": tmp_path / "secret.key",
        "shutdown_deadline_seconds": 2.0,
        "log_format": "text",
    }
    async with (
        RegistryService(RegistrySettings(**common, member_namespace=namespace)),
        SchedulerService(SchedulerSettings(**common)),
        DispatcherService(DispatcherSettings(**common)),
    ):
        yield


def start_agent(
    folder: Path, nats_url: str, cluster: str, member: KubeCluster, secret: dict[str, str]
) -> subprocess.Popen[bytes]:
    """The pull agent as the manifests' Secret configures it, as a local process."""
    token, creds = folder / f"{cluster}.token", folder / f"{cluster}.creds"
    for path, text in ((token, secret["bootstrap-token"]), (creds, secret["nats.creds"])):
        path.write_text(text)
        path.chmod(0o600)
    argv = agent_argv(cluster, nats_url, token, creds, member.kubeconfig_path)
    return spawn(argv, env=agent_env(), log_path=folder / f"agent-{cluster}.log")


def rollout(namespace: str, clusters: list[str]) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "db", "namespace": namespace},
            "stringData": {"password": SECRET_VALUE},
        },
        {
            "apiVersion": "policy.karmada.io/v1alpha1",
            "kind": "PropagationPolicy",
            "metadata": {"name": "db", "namespace": namespace},
            "spec": {
                "resourceSelectors": [{"apiVersion": "v1", "kind": "Secret", "name": "db"}],
                "placement": {"clusterAffinity": {"clusterNames": clusters}},
            },
        },
    ]


async def test_no_secret_is_readable_on_the_bus_during_join_register_and_rollout(
    nats_server: EmbeddedNats, bus: Bus, kube_clusters: KubeClusters, tmp_path: Path
) -> None:
    push_member, pull_member = kube_clusters[0], kube_clusters[1]
    suffix = uuid.uuid4().hex[:6]
    push_name, pull_name, app = f"push-{suffix}", f"pull-{suffix}", f"sniff-{suffix}"
    cli_creds = NatsAuthHome(default_home()).creds(CLI_IDENTITY)

    cli_sniffer, harness_sniffer = Sniffer("cli"), Sniffer("harness")
    await cli_sniffer.client.connect(
        nats_server.url,
        user_credentials=str(cli_creds),
        inbox_prefix=CLI_INBOX_PREFIX,
        error_cb=cli_sniffer.on_error,
        allow_reconnect=False,
    )
    for subject in (">", f"{CLI_INBOX_PREFIX}.>"):
        await cli_sniffer.client.subscribe(subject, cb=cli_sniffer.hear)
    await bus.client.subscribe(">", cb=harness_sniffer.hear)
    await cli_sniffer.client.flush()
    await bus.flush()
    # The user's own CLI, on its own connection with the same identity.
    user = await Bus.connect(
        nats_server.url, "foot-cli", credentials_file=cli_creds, inbox_prefix=CLI_INBOX_PREFIX
    )
    kubes = {
        name: KubeClient(
            KubeTarget.from_kubeconfig(
                member.kubeconfig_path.read_text(), base_dir=member.kubeconfig_path.parent
            )
        )
        for name, member in ((push_name, push_member), (pull_name, pull_member))
    }
    agent: subprocess.Popen[bytes] | None = None
    try:
        async with foot(nats_server, tmp_path, f"foot-{suffix}"):
            registry = RegistryClient(user, wait_seconds=60)
            joined = await registry.ask(
                "join", {"name": push_name, "kubeconfig": push_member.kubeconfig_path.read_text()}
            )
            assert joined.ok, joined.error
            registered = await registry.ask("register", {"name": pull_name})
            assert registered.ok, registered.error
            assert registered.manifests is not None
            agent_secret = next(
                d["stringData"]
                for d in yaml.safe_load_all(registered.manifests)
                if d["kind"] == "Secret"
            )
            agent = start_agent(tmp_path, nats_server.url, pull_name, pull_member, agent_secret)

            body = ApiRequest(objects=rollout(app, [push_name, pull_name]))
            answer = await user.request(
                API_APPLY,
                orjson.dumps(body.model_dump(mode="json", by_alias=True)),
                wait_seconds=30,
            )
            applied = ApiReply.model_validate_json(answer.data)
            assert applied.error is None, applied.error
            assert {r.outcome for r in applied.results} <= {"created", "configured"}

            async def in_both_members() -> bool:
                for kube in kubes.values():
                    with contextlib.suppress(KubeNotFoundError):
                        await kube.get(f"/api/v1/namespaces/{app}/secrets/db")
                        continue
                    return False
                return True

            await until(in_both_members, within=90)
            pulled = await kubes[pull_name].get(f"/api/v1/namespaces/{app}/secrets/db")
            assert base64.b64decode(pulled["data"]["password"]).decode() == SECRET_VALUE

            credential = await CredentialStore(
                await bus.kv(CLUSTER_CREDENTIALS.name),
                SecretBox.from_file(tmp_path / "secret.key"),
            ).get(push_name)
            unjoined = await registry.ask(
                "unjoin",
                {"name": push_name, "kubeconfig": push_member.kubeconfig_path.read_text()},
            )
            assert unjoined.ok, unjoined.error
            jetstream_read = await cli_sniffer.read_every_stream()
    finally:
        if agent is not None:
            agent.kill()
            agent.wait()
        await user.close()
        await cli_sniffer.client.close()
        for kube in kubes.values():
            with contextlib.suppress(KubeNotFoundError):
                await kube.delete(f"/api/v1/namespaces/{app}")
            await kube.close()

    kubeconfig = push_member.kubeconfig
    admin_user = kubeconfig["users"][0]["user"]
    creds_seed = next(
        line.strip() for line in agent_secret["nats.creds"].splitlines() if line.startswith("SU")
    )
    secrets = {
        "admin kubeconfig": push_member.kubeconfig_path.read_text(),
        "admin token": push_member.admin_token,
        "admin client key": admin_user["client-key-data"],
        "admin client key (PEM)": push_member.admin_key_path.read_text().splitlines()[1],
        "FOOT's member token": credential.token.get_secret_value(),
        "bootstrap token": agent_secret["bootstrap-token"],
        "agent key": agent_key(agent_secret["bootstrap-token"]).hex(),
        "agent NATS seed": creds_seed,
        "Secret value": SECRET_VALUE,
    }

    # The CLI's identity could not listen to everything, heard the answers meant for the
    # CLI, read every stream and bucket, and found no secret in any of it.
    assert cli_sniffer.refused_subscription(">"), cli_sniffer.errors
    inbox = [s for s, _ in cli_sniffer.heard if s.startswith(CLI_INBOX_PREFIX)]
    assert len(inbox) >= 3, inbox  # the join's, the register's and the apply's answers
    assert jetstream_read > 0
    assert cli_sniffer.found(secrets, allowed=lambda _: False) == []

    # Everything on the bus (the harness hears `>`): no secret, except the Secret's value in
    # the apply request the CLI sent (`foot.api.apply`, forwarded to its owner on
    # `foot.api.apply.<owner>`).
    subjects = {s for s, _ in harness_sniffer.heard}
    assert any(s.startswith("foot.works.deliver.") for s in subjects), sorted(subjects)
    assert {"foot.registry.join", "foot.registry.unjoin", "foot.registry.register"} <= subjects
    assert (
        harness_sniffer.found(
            secrets, allowed=lambda where: where.startswith(f"Secret value:{API_APPLY}")
        )
        == []
    )
