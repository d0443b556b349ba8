"""Benchmark: what checking one resource template costs, as the Kubernetes API server would.

    .venv/bin/python bench/validation.py [--objects 2000] [--rounds 5]

In process, no bus: for a Deployment, a ConfigMap, a Pod of 50 containers and a Deployment
with three bad fields (every error reported), the time per object of

* `schema`: the Kubernetes checks alone (`KindInfo.check`: the OpenAPI schema of the pinned
  release plus the checks the API server makes in code), the validator already built;
* `parse`: `KINDS.parse`, what the front door and the owner run per object (the checks and
  the pydantic model);
* `model`: the pydantic model alone, the cost before issue 15 added the schema check.

Each figure is the median over `--rounds` rounds of `--objects` objects. The first use of a
kind builds its validator (reads its schema file; the shared definitions are read once per
process before): `compile` is that one-off cost.
"""

from __future__ import annotations

import argparse
import copy
import functools
import statistics
import time
from collections.abc import Callable
from typing import Any

from benchkit import Figure, report, say
from foot.errors import InvalidObjectError
from foot.kinds import KINDS
from foot.kinds.kube_schema import kubernetes_validator

SCHEMA_GOAL_US = 50.0
"""For a valid Deployment or ConfigMap, the Kubernetes checks alone: a few times the model's
cost and far below a store write (the 50-container Pod has no goal: its cost grows with its
containers, mostly in the checks made in Python)."""
GOALS = {"deployment": SCHEMA_GOAL_US, "configmap": SCHEMA_GOAL_US}


def deployment(name: str = "web", **spec: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "bench", "labels": {"app": name}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "nginx:1.27",
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                            "env": [{"name": "MODE", "value": "bench"}],
                        }
                    ]
                },
            },
        },
    }
    document["spec"].update(spec)
    return document


def config_map() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "bench", "labels": {"app": "web"}},
        "data": {f"key{i}": f"value {i}" for i in range(10)},
    }


def big_pod(containers: int = 50) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "big", "namespace": "bench", "labels": {"app": "big"}},
        "spec": {
            "containers": [
                {
                    "name": f"c{i}",
                    "image": f"registry.example.com/app/c{i}:1.0",
                    "args": ["--port", str(8000 + i)],
                    "ports": [{"containerPort": 8000 + i, "name": f"http{i}"}],
                    "env": [{"name": "INDEX", "value": str(i)}],
                    "resources": {"limits": {"cpu": "1", "memory": "128Mi"}},
                    "readinessProbe": {"httpGet": {"path": "/ready", "port": 8000 + i}},
                }
                for i in range(containers)
            ]
        },
    }


OBJECTS: dict[str, dict[str, Any]] = {
    "deployment": deployment(),
    "configmap": config_map(),
    "pod-50-containers": big_pod(),
    "deployment-3-errors": deployment("bad", replicas="x", paused="no", minReadySeconds=2**40),
}


def per_object_us(
    work: Callable[[dict[str, Any]], object], *, document: dict[str, Any], objects: int, rounds: int
) -> float:
    """Median over rounds of the mean time of one call, in microseconds."""
    documents = [copy.deepcopy(document) for _ in range(objects)]
    means = []
    for _ in range(rounds):
        started = time.perf_counter()
        for item in documents:
            work(item)
        means.append((time.perf_counter() - started) / objects * 1e6)
    return statistics.median(means)


def parse_or_refuse(document: dict[str, Any]) -> object:
    try:
        return KINDS.parse(document)
    except InvalidObjectError as exc:
        return exc


def model_only(document: dict[str, Any]) -> object:
    info = KINDS.lookup(document["apiVersion"], document["kind"])
    try:
        return info.model.model_validate(document, by_alias=True)
    except ValueError as exc:
        return exc


def measure(objects: int, rounds: int) -> list[Figure]:
    figures = []
    for label, document in OBJECTS.items():
        info = KINDS.lookup(document["apiVersion"], document["kind"])
        check = info.check
        assert check is not None  # noqa: S101 - every template kind has its check
        kubernetes_validator.cache_clear()
        started = time.perf_counter()
        kubernetes_validator(document["apiVersion"], document["kind"])
        compile_ms = (time.perf_counter() - started) * 1e3
        check(document)
        timed = functools.partial(per_object_us, document=document, objects=objects, rounds=rounds)
        schema = timed(check)
        figures += [
            Figure(f"{label} schema", schema, "us/object", GOALS.get(label)),
            Figure(f"{label} parse", timed(parse_or_refuse), "us/object"),
            Figure(f"{label} model", timed(model_only), "us/object"),
            Figure(f"{label} compile", compile_ms, "ms"),
        ]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    say(f"validation: {args.objects} objects x {args.rounds} rounds per figure")
    report("validation", measure(args.objects, args.rounds), "time per object, in process")


if __name__ == "__main__":
    main()
