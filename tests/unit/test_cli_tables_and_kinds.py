"""What `foot get` and `foot apply` make of what a person types (issue 21, findings 5 and 7):
every kind by each of its names, listed once in the help; an ambiguous name refused naming
the candidates; tables whole whatever the width; READY and CLUSTERS for templates; an empty
file refused."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from foot.errors import NotFoundError
from foot.kinds import KINDS, KindInfo, KindRegistry
from foot.kinds.bindings import ResourceBinding
from foot.kinds.works import AggregatedStatus, Work
from foot.objects import KubeObject
from foot_cli import console
from foot_cli.get import render
from foot_cli.main import main

LONG = "web-front-end-whose-name-is-longer-than-any-column-should-be"


@pytest.mark.parametrize("info", list(KINDS), ids=lambda i: f"{i.kind}.{i.group or 'core'}")
def test_every_kind_is_got_by_each_of_its_names(info: KindInfo) -> None:
    qualified = [info.qualified, f"{info.kind}.{info.group or 'core'}"]
    version = info.api_version.rpartition("/")[2]
    qualified.append(f"{info.plural}.{version}.{info.group}" if info.group else f"{info.plural}.v1")
    for spelling in qualified:
        assert KINDS.resolve_all(spelling) == [info], spelling
    for spelling in [info.plural, info.kind, info.kind.lower(), *info.short_names]:
        found = KINDS.resolve_all(spelling)
        assert info in found, spelling
        assert all(other.same_kind(info) for other in found), spelling


def test_a_policy_of_both_groups_is_got_by_its_plain_names() -> None:
    spellings = ("propagationpolicies", "propagationpolicy", "pp", "PropagationPolicy")
    for spelling in spellings:
        assert [i.api_version for i in KINDS.resolve_all(spelling)] == [
            "policy.foot.dev/v1alpha1",
            "policy.karmada.io/v1alpha1",
        ]
        assert KINDS.resolve(spelling).api_version == "policy.foot.dev/v1alpha1"
    karmada = KINDS.resolve("propagationpolicies.policy.karmada.io")
    assert karmada.api_version == "policy.karmada.io/v1alpha1"
    assert KINDS.resolve("pp.policy.karmada.io") is karmada


def test_two_kinds_of_one_plural_ask_for_kind_dot_group() -> None:
    registry = KindRegistry()
    base = KINDS.resolve("configmaps")
    for api_version, model in (("a.example.com/v1", Work), ("b.example.com/v1", ResourceBinding)):
        registry.register(
            KindInfo(
                api_version=api_version,
                kind="Gadget",
                model=model,
                owner=base.owner,
                bucket=base.bucket,
                plural="gadgets",
                namespaced=True,
                short_names=("gd",),
            )
        )
    for spelling in ("gadgets", "gadget", "gd"):
        with pytest.raises(NotFoundError) as refused:
            registry.resolve(spelling)
        assert "say which, as KIND.GROUP" in refused.value.message
        assert "gadgets.a.example.com, gadgets.b.example.com" in refused.value.message
    assert registry.resolve("gadgets.b.example.com").api_version == "b.example.com/v1"
    assert registry.spellings() == "gadgets.a.example.com (gd), gadgets.b.example.com (gd)"


def test_the_help_lists_every_kind_once(capsys: pytest.CaptureFixture[str]) -> None:
    entries = re.split(r", (?![^(]*\))", KINDS.spellings())  # commas outside the brackets
    assert [entry.split(" (")[0] for entry in entries] == sorted({i.plural for i in KINDS})
    assert "propagationpolicies (pp)" in entries
    with pytest.raises(SystemExit):
        main(["get", "--help"])
    assert KINDS.spellings() in " ".join(capsys.readouterr().out.split())


@pytest.fixture
def narrow(monkeypatch: pytest.MonkeyPatch) -> None:
    """stdout is not a terminal and rich thinks it is 40 columns wide."""
    monkeypatch.setattr(console.out, "width", 40)
    assert not console.out.is_terminal


def binding(name: str) -> ResourceBinding:
    return ResourceBinding.model_validate(
        {
            "apiVersion": "work.foot.dev/v1alpha1",
            "kind": "ResourceBinding",
            "metadata": {"name": f"{name}-deployment", "namespace": "shop"},
            "spec": {
                "resource": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                "clusters": [{"name": "member-in-europe", "replicas": 2}],
            },
        }
    )


def lines(captured: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line.strip()) for line in captured.splitlines()]


def test_tables_are_never_cut_or_wrapped(narrow: None, capsys: pytest.CaptureFixture[str]) -> None:
    info = KINDS.resolve("bindings")
    render([binding(LONG), binding("web")], info, "table", single=False, show_namespace=True)
    shown = lines(capsys.readouterr().out)
    assert shown == [
        ["NAMESPACE", "NAME", "TEMPLATE", "POLICY", "SCHEDULED", "REASON", "CLUSTERS"],
        ["shop", f"{LONG}-deployment", f"Deployment/{LONG}", "<none>", "Unknown", "-",
         "member-in-europe=2"],
        ["shop", "web-deployment", "Deployment/web", "<none>", "Unknown", "-",
         "member-in-europe=2"],
    ]  # fmt: skip


def deployment(name: str) -> KubeObject:
    return KINDS.parse(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {
                "replicas": 5,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "nginx"}]},
                },
            },
        }
    )


def status(name: str, clusters: list[dict[str, Any]], **overall: Any) -> AggregatedStatus:
    return AggregatedStatus.model_validate(
        {
            "resource": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "binding": f"work.foot.dev.ResourceBinding.shop.{name}-deployment",
            "clusters": [{"work": "-", **c} for c in clusters],
            **overall,
        }
    )


def test_templates_show_ready_and_clusters(
    narrow: None, capsys: pytest.CaptureFixture[str]
) -> None:
    info = KINDS.resolve("deployments")
    statuses = {
        info.key("shop", "web"): status(
            "web",
            [
                {"cluster": "eu", "replicas": 2, "readyReplicas": 2},
                {"cluster": "us", "replicas": 3, "readyReplicas": 1},
                {"cluster": "old", "replicas": 1, "readyReplicas": 1, "leaving": True},
            ],
            replicas=5,
            readyReplicas=4,
            applied=True,
            health="Progressing",
        )
    }
    objects = [deployment("new"), deployment("web")]
    render(objects, info, "table", single=False, show_namespace=False, statuses=statuses)
    table = lines(capsys.readouterr().out)
    assert [row[:3] for row in table] == [
        ["NAME", "READY", "CLUSTERS"],
        ["new", "-", "-"],  # not dispatched yet
        ["web", "4/5", "eu,us"],
    ]
    assert table[0][-1] == "AGE"
    render(objects, info, "wide", single=False, show_namespace=True, statuses=statuses)
    wide = lines(capsys.readouterr().out)
    assert wide[0] == [
        "NAMESPACE", "NAME", "READY", "CLUSTERS", "HEALTH", "APPLIED", "PER CLUSTER",
        "GENERATION", "AGE",
    ]  # fmt: skip
    assert wide[2][:8] == [
        "shop", "web", "4/5", "eu,us", "Progressing", "true",
        "eu=2/2,us=1/3,old=1/1(leaving)", "0",
    ]  # fmt: skip


def test_works_show_their_cluster_and_state(capsys: pytest.CaptureFixture[str]) -> None:
    work = Work.model_validate(
        {
            "apiVersion": "work.foot.dev/v1alpha1",
            "kind": "Work",
            "metadata": {"name": "web-deployment.eu", "namespace": "shop"},
            "spec": {
                "cluster": "eu",
                "binding": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "manifestsHash": "h1",
            },
            "status": {"appliedHash": "h1", "health": "Healthy"},
        }
    )
    render([work], KINDS.resolve("works"), "table", single=False, show_namespace=True)
    assert lines(capsys.readouterr().out)[:2] == [
        ["NAMESPACE", "NAME", "CLUSTER", "APPLIED", "HEALTH", "AGE"],
        ["shop", "web-deployment.eu", "eu", "true", "Healthy", "-"],
    ]


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n# nothing\n---\n", "[]"])
def test_an_empty_file_is_refused_naming_it(
    text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "app.yaml"
    path.write_text(text)
    with pytest.raises(SystemExit) as exited:
        main(["apply", "-f", str(path), "--nats-url", "nats://127.0.0.1:1", "--timeout", "1"])
    assert exited.value.code == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f"error: no objects in {path} (it is empty, or only comments and `---`)"
    ]
