"""One virtual cluster's objects, resourceVersion counter and watch event log.

Everything here is synchronous and runs on the event loop: a write is atomic
with respect to other requests, which is what a single etcd revision gives a
real server. Stored objects are never mutated; each write stores a new dict,
so watch events and concurrent readers can hold references safely.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from foot_sim import errors
from foot_sim.errors import ApiError
from foot_sim.managed import record_update, server_side_apply
from foot_sim.patches import (
    PatchError,
    PatchFormatError,
    json_patch,
    merge_patch,
    strategic_merge_patch,
)
from foot_sim.resources import NAMESPACES, RESOURCE_TYPES, ResourceType
from foot_sim.selectors import FieldRequirement, LabelRequirement, fields_match, labels_match
from foot_sim.validation import apply_defaults, initial_status, validate, validate_status
from foot_sim.values import clone

JSON = dict[str, Any]
Key = tuple[str, str]  # (namespace or "", name)

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (MERGE_PATCH, STRATEGIC_MERGE_PATCH, JSON_PATCH, APPLY_PATCH)


_clock_text: tuple[int, str] = (-1, "")


def now_rfc3339() -> str:
    """The current second as the API server writes timestamps (formatted once per second)."""
    global _clock_text  # noqa: PLW0603 - a one-entry cache of the formatted second
    second = int(time.time())
    if _clock_text[0] != second:
        stamp = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        _clock_text = (second, stamp)
    return _clock_text[1]


@dataclass(frozen=True, slots=True)
class WatchEvent:
    resource_version: int
    type: str  # ADDED, MODIFIED or DELETED
    resource: ResourceType
    obj: JSON
    previous: JSON | None


@dataclass(slots=True)
class ListPage:
    items: list[JSON]
    resource_version: int
    continue_token: str
    remaining: int | None


@dataclass(slots=True)
class _Collection:
    objects: dict[Key, JSON] = field(default_factory=dict)
    sorted_keys: list[Key] = field(default_factory=list)


class ClusterStore:
    """Objects of one virtual cluster, keyed by resource type then (namespace, name)."""

    def __init__(self, *, event_window: int = 1000) -> None:
        self._collections: dict[ResourceType, _Collection] = {
            r: _Collection() for r in RESOURCE_TYPES
        }
        self.resource_version = 0
        self._events: deque[WatchEvent] = deque()
        self._event_window = event_window
        # Every event newer than this is still in the log; older watch starts get 410 Gone.
        self.compacted_resource_version = 0
        self._subscribers: list[Callable[[WatchEvent], None]] = []
        self.namespace_terminating_hook: Callable[[str], None] | None = None

    # --- reading ------------------------------------------------------------------------

    def count(self) -> int:
        return sum(len(c.objects) for c in self._collections.values())

    def get(self, resource: ResourceType, namespace: str, name: str) -> JSON:
        obj = self._collections[resource].objects.get((namespace, name))
        if obj is None:
            raise errors.not_found(resource, name)
        return obj

    def find(self, resource: ResourceType, namespace: str, name: str) -> JSON | None:
        return self._collections[resource].objects.get((namespace, name))

    def iter_objects(self, resource: ResourceType, namespace: str | None = None) -> Iterator[JSON]:
        collection = self._collections[resource]
        if namespace is None:
            for key in collection.sorted_keys:
                yield collection.objects[key]
            return
        start = bisect.bisect_left(collection.sorted_keys, (namespace, ""))
        for key in collection.sorted_keys[start:]:
            if key[0] != namespace:
                break
            yield collection.objects[key]

    def iter_created(self, resource: ResourceType) -> Iterator[JSON]:
        """Objects of one type in the order they were created."""
        # Dicts keep insertion order, and replacing a value keeps its position.
        return iter(self._collections[resource].objects.values())

    def list_objects(
        self,
        resource: ResourceType,
        namespace: str | None,
        labels: list[LabelRequirement],
        fields: list[FieldRequirement],
        *,
        limit: int = 0,
        continue_token: str = "",
    ) -> ListPage:
        collection = self._collections[resource]
        keys = collection.sorted_keys
        start = 0
        if continue_token:
            start = bisect.bisect_right(keys, _decode_continue(continue_token))
        elif namespace is not None:
            start = bisect.bisect_left(keys, (namespace, ""))
        items: list[JSON] = []
        position = start
        while position < len(keys):
            key = keys[position]
            position += 1
            if namespace is not None and key[0] != namespace:
                break
            obj = collection.objects[key]
            if labels and not labels_match(labels, obj["metadata"].get("labels")):
                continue
            if fields and not fields_match(fields, obj, resource.kind):
                continue
            items.append(obj)
            if limit and len(items) == limit:
                break
        more = (
            limit > 0
            and len(items) == limit
            and any(namespace is None or k[0] == namespace for k in keys[position : position + 1])
        )
        token = _encode_continue(keys[position - 1], self.resource_version) if more else ""
        remaining: int | None = None
        if more and not labels and not fields:
            remaining = sum(1 for k in keys[position:] if namespace is None or k[0] == namespace)
        return ListPage(items, self.resource_version, token, remaining)

    def events_since(self, resource_version: int) -> list[WatchEvent]:
        """Events after `resource_version`; 410 Expired when the log no longer has them all."""
        if resource_version < self.compacted_resource_version:
            raise errors.expired(
                f"too old resource version: {resource_version} ({self.compacted_resource_version})"
            )
        if not self._events or self._events[-1].resource_version <= resource_version:
            return []
        return [e for e in self._events if e.resource_version > resource_version]

    def subscribe(self, callback: Callable[[WatchEvent], None]) -> Callable[[], None]:
        """Call `callback` synchronously after every write; returns the unsubscribe function."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def mark_compacted(self) -> None:
        """Forget the event history so far (a fresh watch cache starts at the current revision)."""
        self._events.clear()
        self.compacted_resource_version = self.resource_version

    # --- writing ------------------------------------------------------------------------

    def _require_namespace(
        self, resource: ResourceType, namespace: str, name: str, *, creating: bool
    ) -> None:
        if not resource.namespaced:
            return
        ns = self._collections[NAMESPACES].objects.get(("", namespace))
        if ns is None:
            raise errors.not_found(NAMESPACES, namespace)
        if creating and ns["metadata"].get("deletionTimestamp"):
            raise errors.namespace_terminating(resource, name, namespace)

    def _emit(
        self, event_type: str, resource: ResourceType, obj: JSON, previous: JSON | None
    ) -> None:
        event = WatchEvent(self.resource_version, event_type, resource, obj, previous)
        self._events.append(event)
        if len(self._events) > self._event_window:
            evicted = self._events.popleft()
            self.compacted_resource_version = evicted.resource_version
        for subscriber in list(self._subscribers):
            subscriber(event)

    def _store(self, resource: ResourceType, key: Key, obj: JSON, previous: JSON | None) -> JSON:
        self.resource_version += 1
        obj["metadata"]["resourceVersion"] = str(self.resource_version)
        collection = self._collections[resource]
        if previous is None:
            bisect.insort(collection.sorted_keys, key)
        collection.objects[key] = obj
        self._emit("ADDED" if previous is None else "MODIFIED", resource, obj, previous)
        return obj

    def _remove(self, resource: ResourceType, key: Key, previous: JSON) -> JSON:
        self.resource_version += 1
        collection = self._collections[resource]
        del collection.objects[key]
        del collection.sorted_keys[bisect.bisect_left(collection.sorted_keys, key)]
        final = dict(previous)
        final["metadata"] = {**previous["metadata"], "resourceVersion": str(self.resource_version)}
        self._emit("DELETED", resource, final, previous)
        return final

    def _check_identity(
        self, resource: ResourceType, obj: Any, namespace: str, name: str | None
    ) -> JSON:
        if not isinstance(obj, dict):
            raise errors.bad_request("the object provided is unrecognized: expected a JSON object")
        kind, api_version = obj.get("kind"), obj.get("apiVersion")
        if api_version and api_version != resource.api_version:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({resource.api_version})"
            )
        if kind and kind != resource.kind:
            raise errors.bad_request(
                f'{kind} in version "{resource.version}" cannot be handled as a {resource.kind}: '
                f"converting ({resource.version}.{kind}) to ({resource.kind}): unknown conversion"
            )
        metadata = obj.get("metadata")
        if metadata is None:
            metadata = obj["metadata"] = {}
        if not isinstance(metadata, dict):
            raise errors.bad_request("metadata must be a JSON object")
        if resource.namespaced:
            body_namespace = metadata.get("namespace")
            if body_namespace and body_namespace != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on "
                    "the request"
                )
            metadata["namespace"] = namespace
        else:
            metadata.pop("namespace", None)
        if name is not None and metadata.get("name") and metadata["name"] != name:
            raise errors.bad_request(
                f"the name of the object ({metadata['name']}) does not match the name on the URL "
                f"({name})"
            )
        obj["kind"], obj["apiVersion"] = resource.kind, resource.api_version
        return obj

    def create(self, resource: ResourceType, namespace: str, body: Any, *, manager: str) -> JSON:
        obj = self._check_identity(
            resource, clone(body) if isinstance(body, dict) else body, namespace, None
        )
        metadata = obj["metadata"]
        if not metadata.get("name") and metadata.get("generateName"):
            metadata["name"] = metadata["generateName"] + uuid.uuid4().hex[:5]
        validate(resource, obj)
        name = metadata["name"]
        self._require_namespace(resource, namespace, name, creating=True)
        key = (namespace if resource.namespaced else "", name)
        if key in self._collections[resource].objects:
            raise errors.already_exists(resource, name)
        self._prepare_new(resource, obj)
        obj["metadata"]["managedFields"] = record_update(
            None, obj, kind=resource.kind, manager=manager, api_version=resource.api_version,
            subresource="", now=now_rfc3339(),
        )  # fmt: skip
        return self._store(resource, key, obj, None)

    def _prepare_new(self, resource: ResourceType, obj: JSON) -> None:
        metadata = obj["metadata"]
        for system_field in (
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
        ):
            metadata.pop(system_field, None)
        metadata["uid"] = str(uuid.uuid4())
        metadata["creationTimestamp"] = now_rfc3339()
        metadata.pop("managedFields", None)
        if resource.tracks_generation:
            metadata["generation"] = 1
        else:
            metadata.pop("generation", None)
        apply_defaults(resource, obj)
        status = initial_status(resource, obj)
        if status is not None:
            obj["status"] = status
        if resource is NAMESPACES:
            obj.setdefault("spec", {})["finalizers"] = ["kubernetes"]

    def _carry_system_fields(
        self, resource: ResourceType, old: JSON, new: JSON, subresource: str
    ) -> JSON:
        """Keep what clients cannot change on this endpoint, and bump generation on spec changes."""
        if subresource == "status":
            merged = dict(old)
            merged["status"] = new.get("status", {})
            merged["metadata"] = dict(old["metadata"])
            return merged
        metadata = new["metadata"]
        for system_field in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ):
            if system_field in old["metadata"]:
                metadata[system_field] = old["metadata"][system_field]
            else:
                metadata.pop(system_field, None)
        metadata["name"] = old["metadata"]["name"]
        metadata.pop("managedFields", None)
        if resource.has_status:
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        if resource is NAMESPACES:
            new["spec"] = old.get("spec", {})
        apply_defaults(resource, new)
        if resource.tracks_generation:
            generation = old["metadata"].get("generation", 1)
            if new.get("spec") != old.get("spec"):
                generation += 1
            metadata["generation"] = generation
        else:
            metadata.pop("generation", None)
        return new

    def _commit(
        self,
        resource: ResourceType,
        old: JSON,
        new: JSON,
        *,
        manager: str,
        subresource: str,
        managed_fields: list[JSON] | None = None,
    ) -> JSON:
        """Store `new` in place of `old` unless nothing changed (then no new resourceVersion)."""
        new = self._carry_system_fields(resource, old, new, subresource)
        if subresource == "status":
            validate_status(resource, new)
        else:
            validate(resource, new)
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        if managed_fields is None:
            managed_fields = record_update(
                old, new, kind=resource.kind, manager=manager, api_version=resource.api_version,
                subresource=subresource, now=now_rfc3339(),
            )  # fmt: skip
        new["metadata"]["managedFields"] = managed_fields
        if new == old:
            return old
        key = (old["metadata"].get("namespace", ""), old["metadata"]["name"])
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            return self._remove(resource, key, new)
        return self._store(resource, key, new, old)

    def update(
        self,
        resource: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        *,
        manager: str,
        subresource: str = "",
    ) -> JSON:
        new = self._check_identity(
            resource, clone(body) if isinstance(body, dict) else body, namespace, name
        )
        new["metadata"].setdefault("name", name)
        self._require_namespace(resource, namespace, name, creating=False)
        old = self.get(resource, namespace if resource.namespaced else "", name)
        _refuse_stale(resource, name, old, new)
        return self._commit(resource, old, new, manager=manager, subresource=subresource)

    def patch(
        self,
        resource: ResourceType,
        namespace: str,
        name: str,
        patch_type: str,
        body: Any,
        *,
        manager: str,
        force: bool = False,
        subresource: str = "",
    ) -> JSON:
        key_namespace = namespace if resource.namespaced else ""
        old = self.find(resource, key_namespace, name)
        if patch_type == APPLY_PATCH:
            return self._apply(
                resource,
                namespace,
                name,
                old,
                body,
                manager=manager,
                force=force,
                subresource=subresource,
            )
        if old is None:
            self._require_namespace(resource, namespace, name, creating=False)
            raise errors.not_found(resource, name)
        if patch_type == MERGE_PATCH and not isinstance(body, dict):
            raise errors.bad_request("merge patch must be a JSON object")
        try:
            if patch_type == MERGE_PATCH:
                patched = merge_patch(old, body)
            elif patch_type == STRATEGIC_MERGE_PATCH:
                patched = strategic_merge_patch(old, body, resource.kind)
            else:
                patched = json_patch(old, body)
        except PatchFormatError as error:
            raise errors.bad_request(str(error)) from error
        except PatchError as error:
            raise ApiError(
                422,
                "Invalid",
                "the server rejected our request due to an error in our request",
                {"causes": [{"reason": "UnexpectedServerResponse", "message": str(error)}]},
            ) from error
        new = self._check_identity(
            resource, clone(patched) if isinstance(patched, dict) else patched, namespace, name
        )
        _refuse_stale(resource, name, old, new)
        return self._commit(resource, old, new, manager=manager, subresource=subresource)

    def _apply(
        self,
        resource: ResourceType,
        namespace: str,
        name: str,
        old: JSON | None,
        body: Any,
        *,
        manager: str,
        force: bool,
        subresource: str,
    ) -> JSON:
        if not isinstance(body, dict):
            raise errors.bad_request("apply patch must be a YAML or JSON object")
        if body.get("apiVersion") != resource.api_version or body.get("kind") != resource.kind:
            raise errors.bad_request(
                f"invalid object type: {body.get('apiVersion', '')}, Kind={body.get('kind', '')}"
            )
        applied = self._check_identity(resource, clone(body), namespace, name)
        applied["metadata"].setdefault("name", name)
        if resource.has_status:
            if subresource == "status":
                applied = {
                    k: v
                    for k, v in applied.items()
                    if k in ("apiVersion", "kind", "metadata", "status")
                }
                applied["metadata"] = {
                    k: applied["metadata"][k]
                    for k in ("name", "namespace")
                    if k in applied["metadata"]
                }
            else:
                applied.pop("status", None)
        now = now_rfc3339()
        if old is None:
            if subresource:
                raise errors.not_found(resource, name)
            validate(resource, applied)
            self._require_namespace(resource, namespace, name, creating=True)
            created = server_side_apply(
                None, applied, kind=resource.kind, manager=manager, force=force,
                api_version=resource.api_version, subresource="", now=now,
            )  # fmt: skip
            managed_fields = created["metadata"]["managedFields"]
            self._prepare_new(resource, created)
            created["metadata"]["managedFields"] = managed_fields
            key = (namespace if resource.namespaced else "", name)
            return self._store(resource, key, created, None)
        _refuse_stale(resource, name, old, applied)
        merged = server_side_apply(
            old, applied, kind=resource.kind, manager=manager, force=force,
            api_version=resource.api_version, subresource=subresource, now=now,
        )  # fmt: skip
        managed_fields = merged["metadata"]["managedFields"]
        return self._commit(
            resource,
            old,
            merged,
            manager=manager,
            subresource=subresource,
            managed_fields=managed_fields,
        )

    def delete(
        self,
        resource: ResourceType,
        namespace: str,
        name: str,
        *,
        precondition_uid: str | None = None,
        precondition_resource_version: str | None = None,
    ) -> tuple[JSON, bool]:
        """Delete now, or mark for deletion while finalizers remain: (object, deleted now)."""
        self._require_namespace(resource, namespace, name, creating=False)
        key = (namespace if resource.namespaced else "", name)
        old = self.get(resource, key[0], name)
        metadata = old["metadata"]
        if precondition_uid and precondition_uid != metadata["uid"]:
            raise errors.precondition_failed(
                resource,
                name,
                f"the UID in the precondition ({precondition_uid}) does not match the UID in "
                f"record ({metadata['uid']}). "
                "The object might have been deleted and then recreated",
            )
        wanted_version = precondition_resource_version
        if wanted_version and wanted_version != metadata["resourceVersion"]:
            raise errors.precondition_failed(
                resource,
                name,
                f"the ResourceVersion in the precondition ({wanted_version}) does not match the "
                f"ResourceVersion in record ({metadata['resourceVersion']}). "
                "The object might have been modified",
            )
        if resource is NAMESPACES:
            return self._terminate_namespace(old), False
        if metadata.get("finalizers"):
            if metadata.get("deletionTimestamp"):
                return old, False
            marked = dict(old)
            marked["metadata"] = {
                **metadata,
                "deletionTimestamp": now_rfc3339(),
                "deletionGracePeriodSeconds": 0,
            }
            return self._store(resource, key, marked, old), False
        return self._remove(resource, key, old), True

    def _terminate_namespace(self, old: JSON) -> JSON:
        if old["metadata"].get("deletionTimestamp"):
            return old
        marked = dict(old)
        marked["metadata"] = {**old["metadata"], "deletionTimestamp": now_rfc3339()}
        marked["status"] = {**old.get("status", {}), "phase": "Terminating"}
        name = old["metadata"]["name"]
        stored = self._store(NAMESPACES, ("", name), marked, old)
        if self.namespace_terminating_hook is not None:
            self.namespace_terminating_hook(name)
        return stored

    def finalize_namespace(self, name: str) -> None:
        """What the namespace controller does: delete the contents, then the namespace."""
        namespace = self.find(NAMESPACES, "", name)
        if namespace is None or not namespace["metadata"].get("deletionTimestamp"):
            return
        for resource in RESOURCE_TYPES:
            if not resource.namespaced:
                continue
            for obj in list(self.iter_objects(resource, name)):
                self._remove(resource, (name, obj["metadata"]["name"]), obj)
        self._remove(NAMESPACES, ("", name), namespace)

    def write_status(
        self, resource: ResourceType, namespace: str, name: str, status: JSON, *, manager: str
    ) -> JSON:
        """A controller's status update (what the simulated kubelet and controllers use)."""
        old = self.get(resource, namespace, name)
        new = dict(old)
        new["status"] = status
        return self._commit(resource, old, new, manager=manager, subresource="status")


def _encode_continue(last_key: Key, resource_version: int) -> str:
    raw = orjson.dumps(
        {"v": "meta.k8s.io/v1", "rv": resource_version, "start": f"{last_key[0]}/{last_key[1]}"}
    )
    return base64.urlsafe_b64encode(raw).decode()


def _decode_continue(token: str) -> Key:
    try:
        decoded = orjson.loads(base64.urlsafe_b64decode(token.encode()))
        namespace, _, name = str(decoded["start"]).partition("/")
    except (binascii.Error, ValueError, KeyError, TypeError) as error:
        raise errors.bad_request(f"continue key is not valid: {error}") from error
    return (namespace, name)


def _refuse_stale(resource: ResourceType, name: str, stored: JSON, wanted: JSON) -> None:
    """Optimistic concurrency: a body that names a resourceVersion must name the stored one."""
    wanted_version = wanted["metadata"].get("resourceVersion")
    if wanted_version and wanted_version != stored["metadata"]["resourceVersion"]:
        raise errors.conflict(resource, name, errors.STALE_OBJECT)
