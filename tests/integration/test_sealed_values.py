"""Secrets submitted as templates are stored sealed, and every reader still sees them.

A Secret applied through the API front door lands in the templates bucket as
ciphertext (checked by reading the raw JetStream bucket, without FOOT's layer);
FOOT's own readers (ObjectStore, informers, the CLI through the owner's admin API)
see the object as submitted.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from foot.api import ApiReply, ApiRequest
from foot.bus import Bus
from foot.catalog import API_APPLY, TEMPLATES
from foot.errors import PermanentError
from foot.kinds import KINDS
from foot.runtime.settings import ServiceSettings
from foot.secrets import FORMAT_PREFIX, SecretBox
from foot.store import ObjectStore
from foot_cli.natsserver import EmbeddedNats
from foot_scheduler.service import SchedulerService
from support import harness_credentials, password_secret, stored_values

SECRETS = KINDS.resolve("secrets")
CONFIGMAPS = KINDS.resolve("configmaps")


@pytest.fixture
async def scheduler(nats_server: EmbeddedNats) -> AsyncIterator[SchedulerService]:
    settings = ServiceSettings(nats_url=nats_server.url, shutdown_deadline_seconds=2.0)
    async with SchedulerService(settings) as owner:
        yield owner


async def apply(bus: Bus, *documents: dict[str, Any]) -> ApiReply:
    body = orjson.dumps(ApiRequest(objects=list(documents)).model_dump(mode="json", by_alias=True))
    return ApiReply.model_validate_json((await bus.request(API_APPLY, body)).data)


async def test_secret_template_is_sealed_at_rest_and_readable_by_foot(
    scheduler: SchedulerService, bus: Bus, nats_server: EmbeddedNats
) -> None:
    password, encoded, secret = password_secret()
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "shop"},
        "data": {"mode": "public"},
    }
    reply = await apply(bus, secret, config)
    assert reply.error is None, reply.error

    raw = await stored_values(nats_server.url, TEMPLATES.name)
    stored_secret = raw[SECRETS.key("shop", "db")]
    assert stored_secret.startswith(FORMAT_PREFIX)
    assert password.encode() not in stored_secret
    assert encoded.encode() not in stored_secret
    stored_config = raw[CONFIGMAPS.key("shop", "settings")]
    assert b"public" in stored_config  # only what carries secrets is sealed

    # A reader holding the installation's key (every service does) sees the object as sent.
    bus.secret_box = SecretBox.from_file(scheduler.settings.secret_key_file)
    read = await ObjectStore(bus, "test").get(SECRETS, "shop", "db")
    assert read is not None
    assert read.to_dict()["data"] == {"password": encoded}
    # The scheduler's own informer opened it too.
    assert any(key.endswith(".shop.db") for key in scheduler.templates)


async def test_a_sealed_value_without_the_key_is_a_clear_error(
    scheduler: SchedulerService, bus: Bus
) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "token", "namespace": "shop"},
        "data": {"token": base64.b64encode(b"t0ken").decode()},
    }
    assert (await apply(bus, secret)).error is None
    async with await Bus.connect(
        scheduler.settings.nats_url, "keyless", credentials_file=harness_credentials()
    ) as keyless:
        with pytest.raises(PermanentError, match="is sealed and this process has no sealing key"):
            await ObjectStore(keyless, "test").get(SECRETS, "shop", "token")
