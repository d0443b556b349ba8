"""Overriders (`core.overriders`): image components, the documented order, fields in strings."""

from __future__ import annotations

from typing import Any

import pytest

from dispatcher_support import config_map, deployment, parse
from foot.kinds.policies import ImageOverrider, Overriders
from foot_dispatcher.core.overriders import ImageReference, apply_overriders, override_image
from foot_dispatcher.core.pointer import OverrideError
from foot_dispatcher.core.render import template_manifest


@pytest.mark.parametrize(
    ("image", "component", "operator", "value", "expected"),
    [
        ("nginx:1.27", "Registry", "add", "docker.io", "docker.io/nginx:1.27"),
        ("a.io/x/y:1", "Registry", "replace", "b.io", "b.io/x/y:1"),
        ("a.io/x/y:1", "Registry", "remove", None, "x/y:1"),
        ("a.io/x/y:1", "Registry", "add", "-eu", "a.io-eu/x/y:1"),
        ("localhost:5000/web:1", "Tag", "replace", "2", "localhost:5000/web:2"),
        ("web", "Tag", "add", "v2", "web:v2"),
        ("web:1", "Tag", "remove", None, "web"),
        ("a.io/x/y:1", "Repository", "replace", "z", "a.io/z:1"),
        ("web@sha256:" + "a" * 64, "Tag", "replace", "3", "web:3"),
    ],
)
def test_image_components(
    image: str, component: Any, operator: Any, value: str | None, expected: str
) -> None:
    overrider = ImageOverrider(component=component, operator=operator, value=value)
    assert override_image(image, overrider) == expected


def test_image_reference_round_trips() -> None:
    for image in ["nginx", "nginx:1", "a.io:443/x/y:z", "a.io/x@sha256:" + "b" * 64]:
        assert str(ImageReference.parse(image)) == image


def test_overriders_run_in_the_documented_order() -> None:
    manifest = template_manifest(parse(deployment()))
    overriders = Overriders.model_validate(
        {
            "imageOverrider": [{"component": "Tag", "operator": "replace", "value": "2.0"}],
            "commandOverrider": [{"containerName": "web", "operator": "add", "value": ["-v"]}],
            "argsOverrider": [{"containerName": "side", "operator": "add", "value": ["x"]}],
            "labelsOverrider": [{"operator": "add", "value": {"tier": "front"}}],
            "annotationsOverrider": [{"operator": "add", "value": {"note": "eu"}}],
            # plaintext runs last, so it sees (and can undo) what the label overrider did
            "plaintext": [{"path": "/metadata/labels/tier", "operator": "replace", "value": "x"}],
        }
    )
    result = apply_overriders(manifest, overriders)
    pod = result["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "registry.example.com/shop/web:2.0"
    assert pod["containers"][1]["image"] == "busybox:2.0"
    assert pod["containers"][0]["command"] == ["serve", "-v"]
    assert pod["containers"][1]["args"] == ["x"]
    assert result["metadata"]["labels"] == {"app": "web", "tier": "x"}
    assert result["metadata"]["annotations"] == {"note": "eu"}
    removed = apply_overriders(
        result,
        Overriders.model_validate(
            {"commandOverrider": [{"containerName": "web", "operator": "remove", "value": ["-v"]}]}
        ),
    )
    assert removed["spec"]["template"]["spec"]["containers"][0]["command"] == ["serve"]


def test_field_overrider_edits_yaml_and_json_inside_strings() -> None:
    manifest = template_manifest(
        parse(config_map(data={"app.yaml": "port: 80\nmode: prod\n", "j": '{"a": [1]}'}))
    )
    result = apply_overriders(
        manifest,
        Overriders.model_validate(
            {
                "fieldOverrider": [
                    {
                        "fieldPath": "/data/app.yaml",
                        "yaml": [{"subPath": "/mode", "operator": "replace", "value": "eu"}],
                    },
                    {
                        "fieldPath": "/data/j",
                        "json": [{"subPath": "/a/-", "operator": "add", "value": 2}],
                    },
                ]
            }
        ),
    )
    assert result["data"]["app.yaml"] == "port: 80\nmode: eu\n"
    assert result["data"]["j"] == '{"a":[1,2]}'
    with pytest.raises(OverrideError, match=r"/data/j \(inside the document\): /b does not"):
        apply_overriders(
            manifest,
            Overriders.model_validate(
                {
                    "fieldOverrider": [
                        {
                            "fieldPath": "/data/j",
                            "json": [{"subPath": "/b", "operator": "remove"}],
                        }
                    ]
                }
            ),
        )


def test_command_overrider_for_a_missing_container_names_it() -> None:
    manifest = template_manifest(parse(deployment()))
    with pytest.raises(OverrideError, match="no container named 'db'"):
        apply_overriders(
            manifest,
            Overriders.model_validate(
                {"argsOverrider": [{"containerName": "db", "operator": "add", "value": ["x"]}]}
            ),
        )
