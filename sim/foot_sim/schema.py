"""The slice of the Kubernetes OpenAPI schema that merging needs: how lists merge.

Strategic merge patch and server-side apply both need to know, for a list at
some path, whether it is atomic (replaced whole), a set of scalars, or a map
keyed by some fields of its items (containers by name, ports by containerPort
and protocol, ...). Paths are tuples of field names from the object root, with
list positions left out: a Deployment's container ports live at
("spec", "template", "spec", "containers", "ports").
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

Path = tuple[str, ...]


class ListType(Enum):
    ATOMIC = "atomic"
    SET = "set"
    MAP = "map"


@dataclass(frozen=True, slots=True)
class ListSchema:
    list_type: ListType
    # Server-side apply identifies map items by all of these fields.
    keys: tuple[str, ...] = ()

    @property
    def merge_key(self) -> str | None:
        """The single key strategic merge patch matches items on."""
        return self.keys[0] if self.keys else None


ATOMIC = ListSchema(ListType.ATOMIC)
_SET = ListSchema(ListType.SET)
_BY_NAME = ListSchema(ListType.MAP, ("name",))
_CONTAINER_PORTS = ListSchema(ListType.MAP, ("containerPort", "protocol"))
_SERVICE_PORTS = ListSchema(ListType.MAP, ("port", "protocol"))

# Lists identified by their own field name wherever they appear in a pod spec or metadata.
_LISTS_BY_FIELD: dict[str, ListSchema] = {
    "containers": _BY_NAME,
    "initContainers": _BY_NAME,
    "ephemeralContainers": _BY_NAME,
    "volumes": _BY_NAME,
    "env": _BY_NAME,
    "imagePullSecrets": _BY_NAME,
    "volumeMounts": ListSchema(ListType.MAP, ("mountPath",)),
    "volumeDevices": ListSchema(ListType.MAP, ("devicePath",)),
    "hostAliases": ListSchema(ListType.MAP, ("ip",)),
    "conditions": ListSchema(ListType.MAP, ("type",)),
    "ownerReferences": ListSchema(ListType.MAP, ("uid",)),
    "finalizers": _SET,
}

_CONTAINER_LISTS = frozenset({"containers", "initContainers", "ephemeralContainers"})

# Key fields that the server defaults, so an applied item without them still has an identity.
KEY_DEFAULTS: dict[str, object] = {"protocol": "TCP"}

# Maps a manager owns as one value rather than key by key.
_ATOMIC_MAP_FIELDS = frozenset({"selector", "nodeSelector"})

# Maps whose entries are free-form keys (not struct fields): on update their creation
# is itself a managed field, marked "." in FieldsV1 as the real server does.
GRANULAR_MAP_FIELDS = frozenset(
    {
        "labels",
        "annotations",
        "data",
        "binaryData",
        "stringData",
        "requests",
        "limits",
        "matchLabels",
    }
)


def list_schema(kind: str, path: Path) -> ListSchema:
    """How the list at `path` (field names from the root) merges for this kind."""
    field = path[-1] if path else ""
    if field == "ports":
        if path[-2:-1] and path[-2] in _CONTAINER_LISTS:
            return _CONTAINER_PORTS
        if kind == "Service" and path == ("spec", "ports"):
            return _SERVICE_PORTS
        return ATOMIC
    return _LISTS_BY_FIELD.get(field, ATOMIC)


def is_atomic_map(path: Path) -> bool:
    return bool(path) and path[-1] in _ATOMIC_MAP_FIELDS and path[0] == "spec"
