"""Small helpers shared by the tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


async def eventually(check: Callable[[], bool], *, within: float = 10.0) -> None:
    """Poll `check` until it holds; fail with TimeoutError after `within` seconds.

    Polling is deliberate: the condition is state owned by the code under test,
    which offers no event to wait on.
    """
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


def deployment_template(namespace: str, name: str) -> dict[str, Any]:
    """A two-replica Deployment template labelled app=<name>."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": f"example.com/{name}:1"}]},
            },
        },
    }
