"""Asking the registry over NATS without a secret crossing the bus in the clear.

`RegistryClient.ask` is how the CLI (and benchmarks and tests, as users would) send
registry requests: a join's or unjoin's `kubeconfig` is sealed to the registry's public
key (asked once per client with `sealing-key`) and sent as `sealedKubeconfig`; a
registration carries a key made for that one request, and its answer's bootstrap token and
manifests are opened with it. The requests and replies are otherwise those of
`foot.registry_api`.
"""

from __future__ import annotations

from typing import Any

import orjson

from foot.bus import Bus
from foot.catalog import registry_subject
from foot.registry_api import RegistryReply, join_context
from foot.secrets import BoxKey, seal_to


class RegistryClient:
    """Registry requests over one bus connection."""

    def __init__(self, bus: Bus, *, wait_seconds: float = 30.0) -> None:
        self._bus = bus
        self._wait_seconds = wait_seconds
        self._sealing_key: str | None = None

    async def _request(self, verb: str, body: dict[str, Any]) -> RegistryReply:
        msg = await self._bus.request(
            registry_subject(verb), orjson.dumps(body), wait_seconds=self._wait_seconds
        )
        return RegistryReply.model_validate_json(msg.data)

    async def sealing_key(self) -> str:
        """The registry's public key to seal kubeconfigs to (asked once)."""
        if self._sealing_key is None:
            reply = await self._request("sealing-key", {})
            if reply.error is not None or reply.sealing_key is None:
                reason = reply.error.message if reply.error else "no key in the answer"
                raise RuntimeError(f"the registry did not give its sealing key: {reason}")
            self._sealing_key = reply.sealing_key
        return self._sealing_key

    async def ask(self, verb: str, body: dict[str, Any]) -> RegistryReply:
        """Send `body` as the registry's `verb` request, its secrets sealed; the reply
        opened. `body` is the request as the registry's API documents it (camelCase)."""
        body = dict(body)
        kubeconfig = body.pop("kubeconfig", None)
        if kubeconfig is not None and verb in {"join", "unjoin"}:
            context = join_context(verb, str(body.get("name")))
            body["sealedKubeconfig"] = seal_to(
                await self.sealing_key(), str(kubeconfig).encode(), context=context
            )
        elif kubeconfig is not None:
            body["kubeconfig"] = kubeconfig  # not a verb that takes one: the registry says so
        if verb != "register":
            return await self._request(verb, body)
        reply_key = BoxKey()
        body["replyKey"] = reply_key.public_key
        reply = await self._request(verb, body)
        return reply.opened_with(reply_key, str(body.get("name")))
