"""schemathesis against the registry (it serves every admin route) from the OpenAPI document
the project publishes, with the admin token: no 5xx, every answer as the document says
(status, media type, body schema), and every error in the one shape."""

from __future__ import annotations

from typing import Any

import schemathesis
from fuzz.fuzz_support import TALLY, FuzzTarget, LoopThread, clear_error_problems
from hypothesis import HealthCheck, settings
from pydantic import TypeAdapter
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from foot.catalog import CLUSTERS
from foot.kinds.clusters import Cluster
from foot.kinds.policies import Labels
from foot.runtime.openapi import admin_api_document
from support import stored_values

OPENAPI_EXAMPLES = 100
"""Per operation (15 operations), positive and negative cases."""

schema = schemathesis.openapi.from_dict(admin_api_document())
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], deterministic=True
)


@schemathesis.check
def errors_in_the_one_shape(ctx: Any, response: Any, case: Any) -> bool | None:
    """A 4xx answer carries an `error` (the request's, or each refused object's) with a code,
    a message and, when Invalid, its fields."""
    if response.status_code < 400 or case.path == "/readyz":
        return None
    body = response.json()
    errors = [body.get("error")] if body.get("error") is not None else []
    errors += [r["error"] for r in body.get("results") or [] if r.get("error") is not None]
    problems = [p for error in errors for p in clear_error_problems(error)]
    if not errors:
        problems.append(f"no error in {body!r}")
    assert not problems, f"{case.method} {case.path} {response.status_code}: {problems}"
    return True


@schema.parametrize()
@settings(
    max_examples=OPENAPI_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    suppress_health_check=list(HealthCheck),
)
def test_the_admin_api_answers_as_its_document_says(case: Any, fuzz_target: FuzzTarget) -> None:
    TALLY["openapi"] += 1
    try:
        case.call_and_validate(
            base_url=fuzz_target.registry_url,
            headers=fuzz_target.credentials.admin_headers(),
            additional_checks=[errors_in_the_one_shape],
            # The document says what shape an object has, not the Kubernetes schemas of
            # every kind: an object of that shape may still be refused (422, with fields).
            excluded_checks=[positive_data_acceptance],
        )
    except Exception:
        TALLY["crash"] += 1
        raise


def test_every_cluster_the_run_stored_is_valid(
    fuzz_target: FuzzTarget, fuzz_loop: LoopThread
) -> None:
    """The generated requests that were valid registered clusters; nothing invalid among
    them (a Cluster that parses, with labels Kubernetes would accept)."""
    stored = fuzz_loop.run(stored_values(fuzz_target.nats.url, CLUSTERS.name))
    labels = TypeAdapter(Labels)
    for key, value in stored.items():
        cluster = Cluster.from_json(value)
        try:
            labels.validate_python(cluster.metadata.labels)
        except ValueError:
            TALLY["stored"] += 1
            raise AssertionError(f"cluster {key} stored with invalid labels") from None
