"""The API front door: objects submitted by other systems, validated, stored by their owner.

Two layers, both on plain NATS request-reply:

* `foot.api.apply` / `foot.api.delete`: the front door, answered by whichever
  service instance gets the request (queue group `foot-api`). It finds each
  document's owner from its apiVersion and kind, hands the documents to their
  owners and gathers the answers in the order of the documents.
* `foot.api.apply.<owner>` / `foot.api.delete.<owner>`: the owner's own
  subjects; the only place objects are written.

Each document is checked once on its way (the Kubernetes schemas, the model):
by its owner, which checks everything arriving on its subject whoever sent it,
so that check is the one that counts. The front door checks only the documents
it applies itself (the answering instance owns them) and those no owner can be
found for (to say why); it forwards the rest unchecked.

An invalid document is never stored: it gets an error naming its fields and
an event on `foot.events.rejected`. Other documents of the same request are
still applied (each object is applied whole or not at all).

The owner validates every document of a request before it stores any, then
stores the valid ones concurrently (at most `APPLY_CONCURRENCY` writes in
flight, each with its own optimistic concurrency; documents naming the same
object are applied in their order). The front door hands documents the
answering instance owns itself straight to its own apply path (already
checked and parsed, no bus round trip); the rest go to their owner's subject.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import orjson

from foot.api import ApiError, ApiReply, ApiRequest, ObjectRef, ObjectResult, Outcome, ref_of
from foot.bus.connection import Bus
from foot.catalog import (
    API_APPLY,
    API_DELETE,
    REJECTED,
    owner_apply_subject,
    owner_delete_subject,
)
from foot.errors import FieldProblem, FootError, InvalidObjectError, NotFoundError, TransportError
from foot.kinds import KINDS, DocumentCheck, KindInfo
from foot.kinds.custom import CRD_API_VERSION, CRD_KIND, custom_kind_checks
from foot.kinds.templates import refuse_unregistered
from foot.objects import KubeObject
from foot.runtime.metrics import ServiceMetrics
from foot.runtime.requests import Responder
from foot.store import ObjectStore
from foot.yamlsafe import NO_OBJECTS, load_json

log = logging.getLogger(__name__)

FRONT_DOOR_QUEUE = "foot-api"
OWNER_REQUEST_SECONDS = 10.0
APPLY_CONCURRENCY = 32
"""Stores of one request in flight at once."""


def _encode(reply: ApiReply) -> bytes:
    return orjson.dumps(reply.model_dump(mode="json", by_alias=True))


def _error_reply(error: ApiError) -> bytes:
    return _encode(ApiReply(error=error))


def _rejected(document: dict[str, Any], exc: FootError) -> ObjectResult:
    return ObjectResult(
        ref=ref_of(document), outcome="rejected", error=ApiError.from_exception(exc)
    )


def parse_request(data: bytes) -> ApiRequest:
    """A request body read with the same limits as every other input (foot.yamlsafe), its
    problems reported as field paths; a request without objects is refused."""
    body = load_json(data, source="request")
    if not isinstance(body, dict):
        raise InvalidObjectError("request", [FieldProblem("", "must be a JSON object")])
    objects = body.get("objects")
    problems = [FieldProblem(key, "unknown field") for key in body if key != "objects"]
    if objects is None:
        problems.append(FieldProblem("objects", "is required, a list of objects"))
    elif not isinstance(objects, list):
        given = "a mapping" if isinstance(objects, dict) else f"{objects!r}"[:80]
        problems.append(FieldProblem("objects", f"must be a list of objects, got {given}"))
    elif not objects:
        problems.append(FieldProblem("objects", NO_OBJECTS))
    else:
        problems += [
            FieldProblem(f"objects.{index}", "must be a mapping")
            for index, document in enumerate(objects)
            if not isinstance(document, dict)
        ]
    if problems:
        raise InvalidObjectError("request", problems)
    return ApiRequest.model_validate({"objects": objects})


def _unregistered(document: dict[str, Any]) -> bool:
    api_version, kind = document.get("apiVersion"), document.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return False
    try:
        return KINDS.lookup(api_version, kind).check is refuse_unregistered
    except InvalidObjectError:
        return False


def _owner_of(document: dict[str, Any]) -> str | None:
    """The service that owns a document's kind; None when its apiVersion or kind does not name
    one (the front door then checks the document itself, to say why)."""
    api_version, kind = document.get("apiVersion"), document.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str) or not (api_version and kind):
        return None
    try:
        return KINDS.lookup(api_version, kind).owner
    except InvalidObjectError:
        return None


def _resolve_ref(document: dict[str, Any]) -> tuple[KindInfo, ObjectRef]:
    ref = ref_of(document)
    problems = [
        FieldProblem(path, "is required")
        for path, value in (
            ("apiVersion", ref.api_version),
            ("kind", ref.kind),
            ("metadata.name", ref.name),
        )
        if not value
    ]
    if problems:
        raise InvalidObjectError(str(ref), problems)
    info = KINDS.lookup(ref.api_version, ref.kind)
    namespace = ref.namespace or ("default" if info.namespaced else None)
    return info, ref.model_copy(update={"namespace": namespace})


class ApiIngest:
    """Serves the owner subjects for the kinds `owner` owns, and the shared front door."""

    def __init__(
        self, bus: Bus, owner: str, metrics: ServiceMetrics, responder: Responder | None = None
    ) -> None:
        self.bus = bus
        self.owner = owner
        self.metrics = metrics
        self.store = ObjectStore(bus, owner)
        self.kinds = KINDS.owned_by(owner)
        self.responder = responder or Responder(bus)
        """Shared with the service's own request subjects when it runs in one (`Service`)."""

    async def start(self) -> None:
        serve = self._serve
        if self.kinds:
            await serve(owner_apply_subject(self.owner), self._owner_apply, queue=self.owner)
            await serve(owner_delete_subject(self.owner), self._owner_delete, queue=self.owner)
        await serve(API_APPLY, self._front_apply, queue=FRONT_DOOR_QUEUE)
        await serve(API_DELETE, self._front_delete, queue=FRONT_DOOR_QUEUE)

    async def _serve(
        self, subject: str, handle: Callable[[ApiRequest], Awaitable[ApiReply]], *, queue: str
    ) -> None:
        async def answer(data: bytes) -> bytes:
            try:
                request = parse_request(data)
            except InvalidObjectError as exc:
                return _encode(ApiReply(error=ApiError.from_exception(exc)))
            return _encode(await handle(request))

        await self.responder.serve(
            subject, answer, error_reply=_error_reply, queue=queue, span="api"
        )

    # ---- the owner: validate everything it is sent (whoever sent it) and store ----------

    async def apply_documents(self, documents: Iterable[dict[str, Any]]) -> ApiReply:
        """Validate every document, then store the valid ones (concurrently); one result per
        document, in order."""
        documents = list(documents)
        custom = await self.custom_kinds(documents)
        checked: list[KubeObject | FootError] = []
        for document in documents:
            try:
                checked.append(self._parse_owned(document, custom))
            except FootError as exc:
                checked.append(exc)
        return ApiReply(results=await self._apply_checked(documents, checked))

    async def _apply_checked(
        self, documents: list[dict[str, Any]], checked: list[KubeObject | FootError]
    ) -> list[ObjectResult]:
        results: list[ObjectResult | None] = [None] * len(documents)
        lanes: dict[tuple[str, str, str | None, str], list[int]] = {}
        for index, item in enumerate(checked):
            if isinstance(item, FootError):
                continue
            identity = (item.api_version, item.kind, item.metadata.namespace, item.name)
            lanes.setdefault(identity, []).append(index)
        in_flight = asyncio.Semaphore(APPLY_CONCURRENCY)

        async def lane(indexes: list[int]) -> None:
            # Documents naming the same object are applied one after another, in order.
            async with in_flight:
                for index in indexes:
                    parsed = checked[index]
                    assert isinstance(parsed, KubeObject)  # noqa: S101 - lanes hold parsed ones
                    results[index] = await self._store_one(documents[index], parsed)

        async with asyncio.TaskGroup() as group:
            for index, item in enumerate(checked):
                if isinstance(item, FootError):
                    results[index] = await self._refuse(documents[index], item)
            for indexes in lanes.values():
                group.create_task(lane(indexes), name="api-apply")
        return [r for r in results if r is not None]

    async def custom_kinds(
        self, documents: list[dict[str, Any]]
    ) -> dict[tuple[str, str], DocumentCheck] | None:
        """The custom resource kinds registered by the stored CRDs, read only when a document
        needs them (read at every such request: every instance sees the same CRDs)."""
        if not any(_unregistered(d) for d in documents):
            return None
        definitions = await self.store.list(KINDS.lookup(CRD_API_VERSION, CRD_KIND))
        return custom_kind_checks(d.to_dict() for d in definitions)

    def _parse_owned(
        self, document: dict[str, Any], custom: dict[tuple[str, str], DocumentCheck] | None
    ) -> KubeObject:
        parsed = KINDS.parse(document, custom=custom)
        self._check_owned(document, parsed)
        return parsed

    def _check_owned(self, document: dict[str, Any], parsed: KubeObject) -> None:
        owner = KINDS.lookup(parsed.api_version, parsed.kind).owner
        if owner != self.owner:
            reason = f"is owned by the {owner} service, not {self.owner}"
            raise InvalidObjectError(str(ref_of(document)), [FieldProblem("kind", reason)])

    async def _owner_apply(self, request: ApiRequest) -> ApiReply:
        return await self.apply_documents(request.objects)

    async def _refuse(self, document: dict[str, Any], exc: FootError) -> ObjectResult:
        if isinstance(exc, InvalidObjectError):
            await self._publish_rejection(document, exc)
            self.metrics.api_requests.labels("apply", "rejected").inc()
        else:
            self.metrics.api_requests.labels("apply", "error").inc()
        return _rejected(document, exc)

    async def _store_one(self, document: dict[str, Any], parsed: KubeObject) -> ObjectResult:
        try:
            outcome, stored = await self.store.apply(parsed)
        except FootError as exc:
            return await self._refuse(document, exc)
        self.metrics.api_requests.labels("apply", outcome).inc()
        ref = ObjectRef(
            api_version=stored.api_version,
            kind=stored.kind,
            name=stored.metadata.name,
            namespace=stored.metadata.namespace,
        )
        return ObjectResult(ref=ref, outcome=outcome, generation=stored.metadata.generation)

    async def delete_documents(self, documents: Iterable[dict[str, Any]]) -> ApiReply:
        results = []
        for document in documents:
            try:
                info, ref = _resolve_ref(document)
                deleted = await self.store.delete(info, ref.namespace, ref.name)
            except FootError as exc:
                results.append(_rejected(document, exc))
                continue
            outcome: Outcome = "deleted" if deleted else "not-found"
            self.metrics.api_requests.labels("delete", outcome).inc()
            error = None
            if not deleted:
                error = ApiError.from_exception(NotFoundError(f"{ref} does not exist"))
            results.append(ObjectResult(ref=ref, outcome=outcome, error=error))
        return ApiReply(results=results)

    async def _owner_delete(self, request: ApiRequest) -> ApiReply:
        return await self.delete_documents(request.objects)

    async def _publish_rejection(self, document: dict[str, Any], exc: InvalidObjectError) -> None:
        event = {
            "ref": ref_of(document).model_dump(mode="json", by_alias=True),
            "error": ApiError.from_exception(exc).model_dump(mode="json", by_alias=True),
            "service": self.owner,
        }
        try:
            await self.bus.publish(REJECTED, orjson.dumps(event))
        except FootError as publish_error:
            log.warning("could not publish the rejection event: %s", publish_error)

    # ---- the front door ------------------------------------------------------------------

    async def _front_apply(self, request: ApiRequest) -> ApiReply:
        results: list[ObjectResult | None] = [None] * len(request.objects)
        by_owner: dict[str, list[int]] = {}
        checked_here: list[int] = []
        for index, document in enumerate(request.objects):
            owner = _owner_of(document)
            if owner is not None and not (owner == self.owner and self.kinds):
                # Another service owns it: its check (`apply_documents`) is the one that
                # counts, as it answers its own subject to anyone; checking here as well
                # would only double the cost of every valid object.
                by_owner.setdefault(owner, []).append(index)
            else:
                checked_here.append(index)  # this instance owns it, or nobody can
        custom = await self.custom_kinds([request.objects[i] for i in checked_here])
        mine: list[tuple[int, KubeObject]] = []
        for index in checked_here:
            document = request.objects[index]
            try:
                parsed = KINDS.parse(document, custom=custom)
            except InvalidObjectError as exc:
                await self._publish_rejection(document, exc)
                results[index] = _rejected(document, exc)
                continue
            mine.append((index, parsed))  # validated just now: stored without a second check

        async def apply_mine() -> None:
            local = await self._apply_checked(
                [request.objects[i] for i, _ in mine], [parsed for _, parsed in mine]
            )
            for (index, _), result in zip(mine, local, strict=True):
                results[index] = result

        async with asyncio.TaskGroup() as group:
            if mine:
                group.create_task(apply_mine(), name="api-apply-local")
            group.create_task(
                self._forward(request.objects, by_owner, results, owner_apply_subject),
                name="api-forward",
            )
        return ApiReply(results=[r for r in results if r is not None])

    async def _front_delete(self, request: ApiRequest) -> ApiReply:
        results: list[ObjectResult | None] = [None] * len(request.objects)
        by_owner: dict[str, list[int]] = {}
        for index, document in enumerate(request.objects):
            try:
                info, _ = _resolve_ref(document)
            except InvalidObjectError as exc:
                results[index] = _rejected(document, exc)
                continue
            by_owner.setdefault(info.owner, []).append(index)
        await self._forward(request.objects, by_owner, results, owner_delete_subject)
        return ApiReply(results=[r for r in results if r is not None])

    async def _forward(
        self,
        documents: list[dict[str, Any]],
        by_owner: dict[str, list[int]],
        results: list[ObjectResult | None],
        subject_of: Callable[[str], str],
    ) -> None:
        async def ask(owner: str, indexes: list[int]) -> None:
            batch = ApiRequest(objects=[documents[i] for i in indexes])
            try:
                msg = await self.bus.request(
                    subject_of(owner),
                    orjson.dumps(batch.model_dump(mode="json", by_alias=True)),
                    wait_seconds=OWNER_REQUEST_SECONDS,
                )
                reply = ApiReply.model_validate_json(msg.data)
                if reply.error is not None:
                    raise TransportError(f"{owner}: {reply.error.message}")
            except FootError as exc:
                for i in indexes:
                    results[i] = _rejected(documents[i], exc)
                return
            for i, result in zip(indexes, reply.results, strict=True):
                results[i] = result

        async with asyncio.TaskGroup() as group:
            for owner, indexes in by_owner.items():
                group.create_task(ask(owner, indexes), name=f"api-forward:{owner}")
