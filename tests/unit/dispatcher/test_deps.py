"""Dependencies of a workload (`core.deps`): what its pod template references."""

from __future__ import annotations

from dispatcher_support import config_map, deployment, parse
from foot_dispatcher.core.deps import dependencies
from foot_dispatcher.core.render import template_manifest


def test_dependencies_of_a_pod_template() -> None:
    manifest = template_manifest(
        parse(
            deployment(
                pod={
                    "serviceAccountName": "web-sa",
                    "imagePullSecrets": [{"name": "pull"}],
                    "volumes": [
                        {"name": "a", "configMap": {"name": "web-config"}},
                        {"name": "b", "secret": {"secretName": "tls"}},
                        {"name": "c", "persistentVolumeClaim": {"claimName": "data"}},
                        {"name": "d", "projected": {"sources": [{"configMap": {"name": "p"}}]}},
                    ],
                    "containers": [
                        {
                            "name": "web",
                            "image": "web",
                            "env": [
                                {
                                    "name": "X",
                                    "valueFrom": {"secretKeyRef": {"name": "env", "key": "k"}},
                                }
                            ],
                            "envFrom": [{"configMapRef": {"name": "envcm"}}],
                        }
                    ],
                }
            )
        )
    )
    assert dependencies(manifest) == [
        ("ServiceAccount", "web-sa"),
        ("Secret", "env"),
        ("Secret", "pull"),
        ("Secret", "tls"),
        ("ConfigMap", "envcm"),
        ("ConfigMap", "p"),
        ("ConfigMap", "web-config"),
        ("PersistentVolumeClaim", "data"),
    ]
    assert dependencies(template_manifest(parse(config_map()))) == []
