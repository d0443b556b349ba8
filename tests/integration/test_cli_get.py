"""`foot get` as a user runs it, piped (stdout not a terminal, no COLUMNS), against a real
nats-server with authentication (issue 21, findings 5, 6 and 7):

* works are listed, by `foot get works -A` and by the dispatcher's `/admin/objects/works`
  (their keys are `<cluster>.<binding key>`), a work carrying a Secret too, its values
  redacted;
* templates show READY (ready/desired over every cluster) and CLUSTERS;
* no cell is ever cut or wrapped, however long;
* a policy kind FOOT accepts in two groups is got by its plural, singular and short name
  (both groups listed) and by `plural.group` (one group).
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from admin_support import AdminCredentials

from foot.bus import Bus
from foot.catalog import (
    AGGREGATED_STATUS,
    BINDINGS,
    CLUSTER_CREDENTIALS,
    CLUSTERS,
    POLICIES,
    TEMPLATES,
    WORKS,
)
from foot.cluster_credential import ClusterCredential
from foot.credentials import CredentialStore
from foot.kinds import KINDS
from foot.kinds.works import AggregatedStatus
from foot.natsauth import CLI_IDENTITY, service_creds_path
from foot.runtime.settings import default_home
from foot.secrets import FORMAT_PREFIX as SEALED_PREFIX
from foot.secrets import SecretBox
from foot_cli.home import STATE_FILE
from foot_cli.natsserver import EmbeddedNats
from foot_dispatcher.service import DispatcherService, DispatcherSettings
from foot_sim.background import BackgroundSimulator
from foot_sim.simulator import Simulator
from support import deployment_template, run_foot, stored_values

CLUSTER_KIND = KINDS.lookup("cluster.foot.dev/v1alpha1", "Cluster")
BINDING_KIND = KINDS.lookup("work.foot.dev/v1alpha1", "ResourceBinding")
NAMESPACE = "shop"
LONG_NAME = "web-front-end-whose-name-is-longer-than-any-column-should-be"
PASSWORD = base64.b64encode(b"pw-never-shown").decode()


async def run_cli(home: Path, nats_url: str, *args: str) -> tuple[int, str, str]:
    """`foot ARGS` as a script runs it: stdout a pipe, no COLUMNS, the home of a `foot up`."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env |= {
        "FOOT_HOME": str(home),
        "FOOT_NATS_CREDENTIALS_FILE": str(service_creds_path(default_home(), CLI_IDENTITY)),
        "OTEL_TRACES_EXPORTER": "none",
    }
    return await run_foot(nats_url, *args, env=env)


def rows(table: str) -> list[list[str]]:
    """The cells of a plain table (columns are separated by at least two spaces)."""
    return [re.split(r"\s{2,}", line.strip()) for line in table.splitlines() if line.strip()]


def column(table: str, name: str) -> list[str]:
    header, *body = rows(table)
    return [row[header.index(name)] for row in body]


@pytest.fixture
def sim() -> Iterator[BackgroundSimulator]:
    with BackgroundSimulator(Simulator(2, ready_delay=0.1)) as running:
        yield running


async def join(sim: BackgroundSimulator, bus: Bus, key_file: Path) -> list[str]:
    """Cluster objects and sealed credentials, as a push join leaves them."""
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
    return [endpoint.name for endpoint in sim.endpoints]


async def place(bus: Bus, template: dict[str, Any], targets: list[dict[str, Any]]) -> None:
    """Store a template (sealed when it is a Secret) and its binding, as the scheduler would."""
    info = KINDS.lookup(template["apiVersion"], template["kind"])
    name = template["metadata"]["name"]
    await (await bus.kv(TEMPLATES.name)).put(
        info.key(NAMESPACE, name), KINDS.parse(template).to_json(), seal=info.sensitive
    )
    binding = {
        "apiVersion": "work.foot.dev/v1alpha1",
        "kind": "ResourceBinding",
        "metadata": {"name": f"{name}-{info.kind.lower()}", "namespace": NAMESPACE},
        "spec": {
            "resource": {
                "apiVersion": info.api_version,
                "kind": info.kind,
                "namespace": NAMESPACE,
                "name": name,
            },
            "clusters": targets,
        },
    }
    key = BINDING_KIND.key(NAMESPACE, binding["metadata"]["name"])  # type: ignore[index]
    await (await bus.kv(BINDINGS.name)).put(key, orjson.dumps(binding))


async def rolled_out(bus: Bus, template_keys: list[str], within: float = 60.0) -> None:
    """Until each template's aggregated status is applied everywhere and fully ready."""
    store = await bus.kv(AGGREGATED_STATUS.name)
    async with asyncio.timeout(within):
        while True:
            done = 0
            for key in template_keys:
                entry = await store.get(key)
                if entry is None or entry.value is None:
                    break
                status = AggregatedStatus.model_validate_json(entry.value)
                if not status.applied or status.ready_replicas != status.replicas:
                    break
                done += 1
            if done == len(template_keys):
                return
            await asyncio.sleep(0.1)


async def test_works_are_listed_and_templates_show_ready_and_clusters_never_cut(
    sim: BackgroundSimulator,
    bus: Bus,
    nats_server: EmbeddedNats,
    admin_credentials: AdminCredentials,
    tmp_path: Path,
) -> None:
    key_file = tmp_path / "secret.key"
    m1, m2 = await join(sim, bus, key_file)
    settings = DispatcherSettings(
        nats_url=nats_server.url,
        secret_key_file=key_file,
        admin_port=0,
        shutdown_deadline_seconds=1.0,
        **admin_credentials.settings(),  # type: ignore[arg-type]
    )
    bus.secret_box = SecretBox.from_file(key_file)
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": NAMESPACE},
        "data": {"password": PASSWORD},
    }
    async with DispatcherService(settings) as dispatcher:
        await place(bus, deployment_template(NAMESPACE, "web"), [
            {"name": m1, "replicas": 1}, {"name": m2, "replicas": 2}
        ])  # fmt: skip
        await place(bus, deployment_template(NAMESPACE, LONG_NAME), [{"name": m2, "replicas": 2}])
        await place(bus, secret, [{"name": m1}, {"name": m2}])
        deployments = KINDS.resolve("deployments")
        await rolled_out(
            bus,
            [
                deployments.key(NAMESPACE, "web"),
                deployments.key(NAMESPACE, LONG_NAME),
                KINDS.resolve("secrets").key(NAMESPACE, "db"),
            ],
        )
        stored = await stored_values(nats_server.url, WORKS.name)  # as stored: sealed stays
        assert len(stored) == 5
        assert all(key.split(".")[0] in (m1, m2) for key in stored), "keys `<cluster>.…`"

        # The dispatcher's admin API lists every work, sealed ones opened and redacted.
        url = f"{dispatcher.admin.url}/admin/objects/works"
        async with aiohttp.ClientSession(headers=admin_credentials.read_headers()) as http:
            async with http.get(url) as response:
                assert response.status == 200, await response.text()
                listed = (await response.json())["items"]
            async with http.get(url, params={"namespace": NAMESPACE}) as response:
                in_namespace = (await response.json())["items"]
            async with http.get(url, params={"namespace": "elsewhere"}) as response:
                elsewhere = (await response.json())["items"]
            one = listed[0]["metadata"]["name"]
            async with http.get(f"{url}/{one}", params={"namespace": NAMESPACE}) as response:
                assert response.status == 200, await response.text()
                assert (await response.json())["metadata"]["name"] == one
        assert sorted((w["spec"]["cluster"], w["spec"]["binding"]["name"]) for w in listed) == [
            (m1, "db-secret"),
            (m1, "web-deployment"),
            (m2, "db-secret"),
            (m2, "web-deployment"),
            (m2, f"{LONG_NAME}-deployment"),
        ]
        assert in_namespace == listed
        assert elsewhere == []
        secret_works = [w for w in listed if w["spec"]["binding"]["name"] == "db-secret"]
        assert all(stored[k].startswith(SEALED_PREFIX) for k in stored if ".db-secret" in k)
        assert all(w["spec"]["manifests"][0]["data"]["password"] != PASSWORD for w in secret_works)

        # The CLI, as `foot up`'s home records the admin API.
        home = tmp_path / "home"
        home.mkdir()
        (home / STATE_FILE).write_bytes(
            orjson.dumps(
                {
                    "nats_url": nats_server.url,
                    "services": {"dispatcher": {"admin_url": dispatcher.admin.url}},
                    "read_token_file": str(admin_credentials.read_file),
                }
            )
        )
        code, out, err = await run_cli(home, nats_server.url, "get", "works", "-A")
        assert code == 0, err
        assert sorted(zip(column(out, "CLUSTER"), column(out, "NAME"), strict=True)) == sorted(
            (w["spec"]["cluster"], w["metadata"]["name"]) for w in listed
        )
        assert set(column(out, "APPLIED")) == {"true"}
        assert PASSWORD not in out

        code, out, err = await run_cli(home, nats_server.url, "get", "deployments", "-n", NAMESPACE)
        assert code == 0, err
        assert rows(out) == [
            ["NAME", "READY", "CLUSTERS", "AGE"],
            ["web", "3/3", f"{m1},{m2}", "-"],  # (stored without a creation time: no age)
            [LONG_NAME, "2/2", m2, "-"],
        ]
        code, wide, err = await run_cli(home, nats_server.url, "get", "deploy", "-A", "-o", "wide")
        assert code == 0, err
        assert column(wide, "PER CLUSTER") == [f"{m1}=1/1,{m2}=2/2", f"{m2}=2/2"]
        assert column(wide, "HEALTH") == ["Healthy", "Healthy"]

        # However long a cell, it stays whole on its row when piped.
        code, out, err = await run_cli(home, nats_server.url, "get", "bindings", "-n", NAMESPACE)
        assert code == 0, err
        assert f"Deployment/{LONG_NAME}" in column(out, "TEMPLATE")
        assert len(out.splitlines()) == 4


async def test_a_policy_kind_of_two_groups_is_got_by_every_name(
    bus: Bus, nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    policies = await bus.kv(POLICIES.name)
    for api_version, name in (
        ("policy.foot.dev/v1alpha1", "foot-way"),
        ("policy.karmada.io/v1alpha1", "karmada-way"),
    ):
        policy = KINDS.parse(
            {
                "apiVersion": api_version,
                "kind": "PropagationPolicy",
                "metadata": {"name": name, "namespace": NAMESPACE},
                "spec": {"resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment"}]},
            }
        )
        await policies.put(KINDS.lookup(api_version, "PropagationPolicy").key(NAMESPACE, name),
                           policy.to_json())  # fmt: skip
    home = tmp_path / "home"
    home.mkdir()
    # (the other spellings resolve the same: tests/unit/test_cli_tables_and_kinds.py)
    code, out, err = await run_cli(
        home, nats_server.url, "get", "propagationpolicies", "-n", NAMESPACE
    )
    assert code == 0, err
    assert column(out, "NAME") == ["foot-way", "karmada-way"]
    assert column(out, "API VERSION") == ["policy.foot.dev/v1alpha1", "policy.karmada.io/v1alpha1"]
    code, out, err = await run_cli(
        home, nats_server.url, "get", "propagationpolicies.policy.karmada.io", "-n", NAMESPACE
    )
    assert code == 0, err
    assert column(out, "NAME") == ["karmada-way"]
    code, out, err = await run_cli(
        home, nats_server.url, "get", "pp", "karmada-way", "-n", NAMESPACE, "-o", "json"
    )
    assert code == 0, err
    assert orjson.loads(out)["apiVersion"] == "policy.karmada.io/v1alpha1"
