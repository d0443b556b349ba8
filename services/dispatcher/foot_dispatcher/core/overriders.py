"""Overriders: how one manifest is changed for one cluster (pure, no I/O).

Inside one rule the overriders run in Karmada's order (pkg/util/overridemanager):

1. imageOverrider, 2. commandOverrider, 3. argsOverrider, 4. labelsOverrider,
5. annotationsOverrider, 6. fieldOverrider, 7. plaintext,

each list in the order written. Every function returns a new manifest; a problem raises
`OverrideError` naming the JSON pointer and the reason.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from foot.kinds.policies import (
    CommandArgsOverrider,
    FieldOverrider,
    ImageOverrider,
    LabelAnnotationOverrider,
    Overriders,
    PlaintextOverrider,
)
from foot_dispatcher.core.pointer import OverrideError, apply_operation, get_pointer

Manifest = dict[str, Any]

POD_SPEC_PATHS: dict[str, str] = {
    "Pod": "/spec",
    "Deployment": "/spec/template/spec",
    "ReplicaSet": "/spec/template/spec",
    "StatefulSet": "/spec/template/spec",
    "DaemonSet": "/spec/template/spec",
    "Job": "/spec/template/spec",
    "CronJob": "/spec/jobTemplate/spec/template/spec",
}
"""Where the pod spec lives in the workload kinds image/command/args overriders know."""


def pod_spec_path(manifest: Manifest) -> str | None:
    return POD_SPEC_PATHS.get(str(manifest.get("kind")))


def _pod_spec(manifest: Manifest) -> dict[str, Any] | None:
    path = pod_spec_path(manifest)
    if path is None:
        return None
    try:
        spec = get_pointer(manifest, path)
    except OverrideError:
        return None
    return spec if isinstance(spec, dict) else None


# --- images ------------------------------------------------------------------------------

_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class ImageReference:
    """`[registry/]repository[:tag][@digest]`, split the way Docker does: the first path part is
    a registry when it has a '.' or ':' or is `localhost`."""

    registry: str
    repository: str
    tag: str
    digest: str

    @classmethod
    def parse(cls, image: str) -> ImageReference:
        digest = ""
        match = _DIGEST.search(image)
        if match:
            digest = match.group(0)[1:]
            image = image[: match.start()]
        registry = ""
        first, slash, rest = image.partition("/")
        if slash and ("." in first or ":" in first or first == "localhost"):
            registry, image = first, rest
        repository, tag = image, ""
        last_slash = image.rfind("/")
        colon = image.rfind(":")
        if colon > last_slash:
            repository, tag = image[:colon], image[colon + 1 :]
        return cls(registry, repository, tag, digest)

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}" if self.registry else self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def override_image(image: str, overrider: ImageOverrider) -> str:
    """add appends the value to the component, replace sets it, remove clears it (a removed
    tag leaves the reference untagged; a removed repository is refused)."""
    reference = ImageReference.parse(image)
    field = overrider.component.lower()
    current = str(getattr(reference, field))
    value = overrider.value or ""
    if overrider.operator == "add":
        new = current + value
    elif overrider.operator == "replace":
        new = value
    else:
        new = ""
    if field == "repository" and not new:
        raise OverrideError(f"image {image!r}: the repository cannot be removed")
    changes: dict[str, str] = {field: new}
    if field == "tag" and new:
        changes["digest"] = ""  # a new tag names the image; a stale digest would pin the old one
    return str(ImageReference(**{**_fields(reference), **changes}))


def _fields(reference: ImageReference) -> dict[str, str]:
    return {
        "registry": reference.registry,
        "repository": reference.repository,
        "tag": reference.tag,
        "digest": reference.digest,
    }


def _image_paths(manifest: Manifest, overrider: ImageOverrider) -> Iterator[str]:
    if overrider.predicate is not None:
        yield overrider.predicate.path
        return
    base = pod_spec_path(manifest)
    spec = _pod_spec(manifest)
    if base is None or spec is None:
        return
    for index, container in enumerate(spec.get("containers") or []):
        if isinstance(container, dict) and "image" in container:
            yield f"{base}/containers/{index}/image"


def apply_image_overrider(manifest: Manifest, overrider: ImageOverrider) -> Manifest:
    for path in list(_image_paths(manifest, overrider)):
        image = get_pointer(manifest, path)
        if not isinstance(image, str):
            raise OverrideError(f"{path}: is a {type(image).__name__}, not an image string")
        manifest = apply_operation(manifest, "replace", path, override_image(image, overrider))
    return manifest


# --- command and args --------------------------------------------------------------------


def apply_command_args_overrider(
    manifest: Manifest, overrider: CommandArgsOverrider, field: str
) -> Manifest:
    """add appends `value` to the container's command/args (creating it), remove deletes every
    item equal to one of `value`. A container that is not there is an error."""
    base = pod_spec_path(manifest)
    spec = _pod_spec(manifest)
    if base is None or spec is None:
        raise OverrideError(f"{field}Overrider: {manifest.get('kind')} has no pod template")
    containers = spec.get("containers") or []
    for index, container in enumerate(containers):
        if isinstance(container, dict) and container.get("name") == overrider.container_name:
            items = list(container.get(field) or [])
            if overrider.operator == "add":
                items += overrider.value
            else:
                items = [item for item in items if item not in overrider.value]
            changed: Manifest = apply_operation(
                manifest, "add", f"{base}/containers/{index}/{field}", items
            )
            return changed
    raise OverrideError(
        f"{base}/containers: no container named {overrider.container_name!r} for {field}Overrider"
    )


# --- labels and annotations --------------------------------------------------------------


def apply_metadata_overrider(
    manifest: Manifest, overrider: LabelAnnotationOverrider, field: str
) -> Manifest:
    """add sets the keys (creating the map), replace changes keys that exist (a missing key is
    an error, as a JSON-patch replace), remove deletes the keys (absent ones are fine)."""
    result = copy.deepcopy(manifest)
    metadata = result.setdefault("metadata", {})
    current = dict(metadata.get(field) or {})
    for key, value in overrider.value.items():
        if overrider.operator == "add":
            current[key] = value
        elif overrider.operator == "replace":
            if key not in current:
                raise OverrideError(
                    f"/metadata/{field}/{key} does not exist, so it cannot be replaced"
                )
            current[key] = value
        else:
            current.pop(key, None)
    metadata[field] = current
    return result


# --- documents inside strings ------------------------------------------------------------


def apply_field_overrider(manifest: Manifest, overrider: FieldOverrider) -> Manifest:
    path = overrider.field_path
    text = get_pointer(manifest, path)
    if not isinstance(text, str):
        raise OverrideError(f"{path}: is a {type(text).__name__}, not a string holding a document")
    as_yaml = bool(overrider.yaml)
    operations = overrider.yaml if as_yaml else overrider.json_
    try:
        document = yaml.safe_load(text) if as_yaml else json.loads(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        kind = "YAML" if as_yaml else "JSON"
        raise OverrideError(f"{path}: does not hold valid {kind}: {exc}") from None
    for operation in operations:
        try:
            document = apply_operation(
                document, operation.operator, operation.sub_path, operation.value
            )
        except OverrideError as exc:
            raise OverrideError(f"{path} (inside the document): {exc.message}") from None
    rendered = (
        yaml.safe_dump(document, sort_keys=False)
        if as_yaml
        else json.dumps(document, separators=(",", ":"))
    )
    changed: Manifest = apply_operation(manifest, "replace", path, rendered)
    return changed


def apply_plaintext(manifest: Manifest, overrider: PlaintextOverrider) -> Manifest:
    changed = apply_operation(manifest, overrider.operator, overrider.path, overrider.value)
    if not isinstance(changed, dict):
        raise OverrideError(f"{overrider.path}: the manifest must stay an object")
    return changed


# --- one rule ----------------------------------------------------------------------------


def apply_overriders(manifest: Manifest, overriders: Overriders) -> Manifest:
    """Every overrider of one rule, in the documented order."""
    for image in overriders.image_overrider:
        manifest = apply_image_overrider(manifest, image)
    for command in overriders.command_overrider:
        manifest = apply_command_args_overrider(manifest, command, "command")
    for args in overriders.args_overrider:
        manifest = apply_command_args_overrider(manifest, args, "args")
    for labels in overriders.labels_overrider:
        manifest = apply_metadata_overrider(manifest, labels, "labels")
    for annotation in overriders.annotations_overrider:
        manifest = apply_metadata_overrider(manifest, annotation, "annotations")
    for field in overriders.field_overrider:
        manifest = apply_field_overrider(manifest, field)
    for plaintext in overriders.plaintext:
        manifest = apply_plaintext(manifest, plaintext)
    return manifest
