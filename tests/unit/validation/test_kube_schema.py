"""Templates checked against the pinned Kubernetes schemas (compiled by jsonschema-rs): every
problem at once, each with its dotted path and a reason in FOOT's words."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from foot.errors import FieldProblem, InvalidObjectError
from foot.kinds import KINDS
from foot.kinds.custom import CustomResourceCheck
from foot.kinds.kube_schema import kubernetes_problems, kubernetes_validator, with_int_bounds

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "labels": {"app": "web"}},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
        },
    },
}


def problems_of(**spec: Any) -> dict[str, str]:
    document = copy.deepcopy(DEPLOYMENT)
    document["spec"].update(spec)
    validator = kubernetes_validator("apps/v1", "Deployment")
    assert validator is not None
    return {p.path: p.reason for p in kubernetes_problems(validator, document)}


def test_a_valid_deployment_has_no_problems() -> None:
    assert problems_of() == {}


def test_every_problem_is_reported_at_once_with_its_path() -> None:
    found = problems_of(replicas="x", paused="no", minReadySeconds=2**40, replicaz=3)
    assert found == {
        "spec.replicas": "must be an integer, got the string 'x'",
        "spec.paused": "must be a boolean, got the string 'no'",
        "spec.minReadySeconds": (
            "must be a 32-bit integer (from -2147483648 to 2147483647), got 1099511627776"
        ),
        "spec.replicaz": "unknown field",
    }


@pytest.mark.parametrize(
    ("replicas", "got"),
    [
        (2**31, "2147483648"),
        (-(2**31) - 1, "-2147483649"),
        (1e12, "1000000000000.0"),
        (2**70, str(2**70)),
    ],
)
def test_int32_bounds_hold_for_big_ints_and_whole_floats(replicas: float, got: str) -> None:
    assert problems_of(replicas=replicas)["spec.replicas"].endswith(f"got {got}")


def test_int32_bounds_are_inclusive() -> None:
    assert problems_of(replicas=2**31 - 1) == {}


def test_a_required_field_is_named_by_its_own_path() -> None:
    found = problems_of(template={"spec": {"containers": [{"image": "nginx"}]}})
    assert found["spec.template.spec.containers.0.name"] == "is required"


def test_int_or_string_says_which_types_it_takes() -> None:
    found = problems_of(strategy={"rollingUpdate": {"maxSurge": [1], "maxUnavailable": None}})
    assert found == {
        "spec.strategy.rollingUpdate.maxSurge": "must be a string or an integer, got a list",
        "spec.strategy.rollingUpdate.maxUnavailable": "must be a string or an integer, got null",
    }


def test_the_reason_quotes_the_value_the_document_holds() -> None:
    # jsonschema-rs hands back a NaN as null; the reason names what was sent.
    found = problems_of(replicas=float("nan"))
    assert found == {"spec.replicas": "must be an integer, got the number nan"}


def test_a_pod_of_many_containers_reports_each_bad_one() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "big"},
        "spec": {
            "containers": [
                {"name": f"c{i}", "image": "i", "ports": [{"containerPort": 80}]} for i in range(50)
            ]
        },
    }
    pod["spec"]["containers"][7]["ports"][0]["containerPort"] = 2**31  # type: ignore[index]
    pod["spec"]["containers"][42]["image"] = 3  # type: ignore[index]
    with pytest.raises(InvalidObjectError) as raised:
        KINDS.parse(pod)
    found = [(p.path, p.reason) for p in raised.value.problems]
    port = "spec.containers.7.ports.0.containerPort"
    assert [path for path, _ in found] == [port, "spec.containers.42.image", port]
    assert "32-bit" in found[0][1]
    assert found[1][1] == "must be a string, got the number 3"
    assert found[2][1] == "must be a port number from 1 to 65535, got 2147483648"


def test_int_bounds_keep_a_tighter_bound_the_schema_sets() -> None:
    bounded = with_int_bounds(
        {
            "properties": {
                "a": {"type": "integer", "format": "int32", "minimum": 1},
                "b": {"type": "integer", "format": "int64"},
            }
        }
    )
    assert bounded["properties"]["a"] == {
        "type": "integer",
        "format": "int32",
        "minimum": 1,
        "maximum": 2**31 - 1,
    }
    assert (bounded["properties"]["b"]["minimum"], bounded["properties"]["b"]["maximum"]) == (
        -(2**63),
        2**63 - 1,
    )


def custom_check(spec_schema: dict[str, Any]) -> CustomResourceCheck:
    return CustomResourceCheck({"type": "object", "properties": {"spec": spec_schema}})


def widget(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": spec,
    }


def test_a_custom_resource_gets_the_same_reasons() -> None:
    check = custom_check(
        {
            "type": "object",
            "properties": {
                "size": {"type": "integer", "format": "int64"},
                "port": {
                    "x-kubernetes-int-or-string": True,
                    "anyOf": [{"type": "integer"}, {"type": "string"}],
                },
                "note": {"type": "string", "nullable": True, "maxLength": 3},
            },
        }
    )
    assert check(widget(size=1, port="http", note=None)) == []
    found = {p.path: p.reason for p in check(widget(size=2**63, port=[1], note="long", x=1))}
    assert found == {
        "spec.size": (
            "must be a 64-bit integer (from -9223372036854775808 to 9223372036854775807), "
            "got 9223372036854775808"
        ),
        "spec.port": "must be an integer or a string, got a list",
        "spec.note": '"long" is longer than 3 characters',
        "spec.x": "unknown field",
    }


def test_enums_list_their_choices() -> None:
    # The Kubernetes schemas hold enums only for apiVersion and kind; CRDs use them freely.
    check = custom_check(
        {"type": "object", "properties": {"mode": {"type": "string", "enum": ["Fast", "Safe"]}}}
    )
    assert check(widget(mode="Safe")) == []
    assert check(widget(mode="Sometimes")) == [
        FieldProblem("spec.mode", "must be one of 'Fast', 'Safe', got 'Sometimes'")
    ]


def test_a_definition_whose_schema_cannot_be_compiled_refuses_its_resources() -> None:
    check = custom_check({"type": "object", "properties": {"a": {"type": "integr"}}})
    assert check.unusable
    reason = f"the schema of the CustomResourceDefinition cannot be used: {check.unusable}"
    assert check(widget(a=1)) == [FieldProblem("kind", reason)]
