"""The dispatcher's works cache on an in-memory bucket: indexes, staging, revision checks."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from foot.bus.kv import Entry
from foot.errors import ConflictError
from foot.kinds.works import Work
from foot_dispatcher.works import (
    WRITE_ATTEMPTS,
    WorksCache,
    carries_secret,
    encode_work,
    split_work_key,
)
from memory_kv import MemoryKv

BINDING = "work.foot.dev.ResourceBinding.shop.web"
OTHER_BINDING = "work.foot.dev.ResourceBinding.shop.api"


def config_map(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "shop"},
    }


def ident(name: str) -> tuple[str, str, str | None, str]:
    return ("v1", "ConfigMap", "shop", name)


def work(
    cluster: str,
    *objects: str,
    binding: str = "web",
    deleting: bool = False,
    manifests: list[dict[str, Any]] | None = None,
) -> Work:
    return Work.model_validate(
        {
            "apiVersion": "work.foot.dev/v1alpha1",
            "kind": "Work",
            "metadata": {"name": f"{binding}.{cluster}", "namespace": "shop"},
            "spec": {
                "cluster": cluster,
                "binding": {"apiVersion": "apps/v1", "kind": "Deployment", "name": binding},
                "manifests": manifests
                if manifests is not None
                else [config_map(o) for o in objects],
                "manifestsHash": "+".join(objects),
                "deleting": deleting,
            },
        }
    )


def key(cluster: str, binding_key: str = BINDING) -> str:
    return f"{cluster}.{binding_key}"


def replace_with(new: Work) -> Any:
    return lambda _current: new


async def stored(bucket: MemoryKv, work_key: str) -> Work | None:
    entry = await bucket.get(work_key)
    return None if entry is None or entry.value is None else Work.from_json(entry.value)


@pytest.fixture
def bucket() -> MemoryKv:
    return MemoryKv("works")


@pytest.fixture
def cache(bucket: MemoryKv) -> WorksCache:
    return WorksCache(bucket)


def test_a_work_key_names_its_cluster_then_its_binding() -> None:
    assert split_work_key(key("m1")) == ("m1", BINDING)
    assert split_work_key("m1") == ("m1", "")


def test_the_stored_form_leaves_out_the_revision_and_a_secret_is_sealed() -> None:
    plain = work("m1", "a")
    with_revision = plain.model_copy(
        update={"metadata": plain.metadata.model_copy(update={"revision": 9})}
    )
    assert encode_work(with_revision) == encode_work(plain)
    assert orjson.loads(encode_work(with_revision))["metadata"].get("revision", 0) == 0
    assert not carries_secret(plain)
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "shop"}}
    assert carries_secret(work("m1", manifests=[config_map("a"), secret]))


async def test_a_new_work_is_created_and_indexed(cache: WorksCache, bucket: MemoryKv) -> None:
    new = work("m1", "a", "b")
    assert await cache.put(key("m1"), replace_with(new)) == new
    assert await stored(bucket, key("m1")) == new
    assert cache.get(key("m1")) == new
    assert cache.current(key("m1")) == new
    assert cache.revision(key("m1")) == bucket.revision
    assert cache.items() == [(key("m1"), new)]
    assert cache.keys_of_cluster("m1") == {key("m1")}
    assert cache.binding_works(BINDING) == {"m1": (key("m1"), new)}
    assert cache.works_with("m1", ident("a")) == {key("m1")}
    assert cache.works_with("m2", ident("a")) == set()
    assert cache.identities(key("m1")) == {ident("a"), ident("b")}


async def test_a_sealed_write_for_a_work_carrying_a_secret(
    cache: WorksCache, bucket: MemoryKv
) -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "shop"}}
    await cache.put(key("m1"), replace_with(work("m1", "s", manifests=[secret])))
    await cache.put(key("m2"), replace_with(work("m2", "a")))
    assert bucket.sealed == {key("m1")}


async def test_an_update_names_the_revision_known(cache: WorksCache, bucket: MemoryKv) -> None:
    await cache.put(key("m1"), replace_with(work("m1", "a")))
    first = cache.revision(key("m1"))
    second = work("m1", "a", "b")
    seen: list[Work | None] = []

    def change(current: Work | None) -> Work | None:
        seen.append(current)
        return second

    assert await cache.put(key("m1"), change) == second
    assert seen == [work("m1", "a")]
    assert cache.revision(key("m1")) == bucket.revision > first
    assert await stored(bucket, key("m1")) == second


async def test_no_change_writes_nothing(cache: WorksCache, bucket: MemoryKv) -> None:
    assert await cache.put(key("m1"), lambda _current: None) is None
    assert bucket.writes == 0
    first = work("m1", "a")
    await cache.put(key("m1"), replace_with(first))
    assert await cache.put(key("m1"), lambda _current: None) == first
    assert bucket.writes == 1


async def test_a_new_spec_moves_the_object_index(cache: WorksCache) -> None:
    await cache.put(key("m1"), replace_with(work("m1", "a", "b")))
    await cache.put(key("m1"), replace_with(work("m1", "b", "c")))
    assert cache.works_with("m1", ident("a")) == set()
    assert cache.works_with("m1", ident("b")) == {key("m1")}
    assert cache.works_with("m1", ident("c")) == {key("m1")}


async def test_a_write_in_between_is_read_and_the_change_made_over_it(
    cache: WorksCache, bucket: MemoryKv
) -> None:
    await cache.put(key("m1"), replace_with(work("m1", "a")))
    theirs = work("m1", "a", "theirs")
    await bucket.update(key("m1"), encode_work(theirs), cache.revision(key("m1")))
    seen: list[Work | None] = []

    def add_object(current: Work | None) -> Work | None:
        seen.append(current)
        assert current is not None
        return work("m1", *(m["metadata"]["name"] for m in current.spec.manifests), "ours")

    result = await cache.put(key("m1"), add_object)
    assert seen == [work("m1", "a"), theirs], "tried on the stale copy, then on theirs"
    assert result == work("m1", "a", "theirs", "ours")
    assert await stored(bucket, key("m1")) == result
    assert cache.revision(key("m1")) == bucket.revision
    assert cache.works_with("m1", ident("theirs")) == {key("m1")}


async def test_a_create_that_finds_the_key_reads_it_and_updates(
    cache: WorksCache, bucket: MemoryKv
) -> None:
    theirs = work("m1", "theirs")
    await bucket.create(key("m1"), encode_work(theirs))
    ours = work("m1", "ours")
    seen: list[Work | None] = []

    def change(current: Work | None) -> Work | None:
        seen.append(current)
        return ours

    assert await cache.put(key("m1"), change) == ours
    assert seen == [None, theirs]
    assert await stored(bucket, key("m1")) == ours
    assert cache.works_with("m1", ident("theirs")) == set()


class AlwaysBehind(MemoryKv):
    """A bucket someone else writes to just before each of our updates."""

    async def update(self, key: str, value: bytes, revision: int, *, seal: bool = False) -> int:
        entry = await self.get(key)
        assert entry is not None
        assert entry.value is not None
        await self.put(key, entry.value)
        return await super().update(key, value, revision, seal=seal)


async def test_a_write_that_keeps_losing_gives_up_with_a_conflict() -> None:
    bucket = AlwaysBehind("works")
    cache = WorksCache(bucket)
    await cache.put(key("m1"), replace_with(work("m1", "a")))
    attempts = 0

    def change(_current: Work | None) -> Work | None:
        nonlocal attempts
        attempts += 1
        return work("m1", "b")

    with pytest.raises(ConflictError) as raised:
        await cache.put(key("m1"), change)
    assert attempts == WRITE_ATTEMPTS
    assert (raised.value.bucket, raised.value.key) == ("works", key("m1"))
    assert await stored(bucket, key("m1")) == work("m1", "a")


async def test_a_delete_drops_the_work_and_its_indexes(cache: WorksCache, bucket: MemoryKv) -> None:
    await cache.put(key("m1"), replace_with(work("m1", "a")))
    await cache.delete(key("m1"))
    assert await bucket.get(key("m1")) is None
    assert cache.get(key("m1")) is None
    assert cache.revision(key("m1")) == 0
    assert cache.keys_of_cluster("m1") == set()
    assert cache.binding_works(BINDING) == {}
    assert cache.works_with("m1", ident("a")) == set()
    writes = bucket.writes
    await cache.delete(key("m1"))  # nothing known: nothing to do
    assert bucket.writes == writes


async def test_a_delete_of_a_stale_copy_conflicts_and_reads_it_again(
    cache: WorksCache, bucket: MemoryKv
) -> None:
    await cache.put(key("m1"), replace_with(work("m1", "a")))
    theirs = work("m1", "b")
    await bucket.update(key("m1"), encode_work(theirs), cache.revision(key("m1")))
    with pytest.raises(ConflictError):
        await cache.delete(key("m1"))
    assert cache.get(key("m1")) == theirs
    assert cache.revision(key("m1")) == bucket.revision
    assert cache.works_with("m1", ident("a")) == set()
    assert cache.works_with("m1", ident("b")) == {key("m1")}
    await cache.delete(key("m1"))
    assert await bucket.get(key("m1")) is None


async def test_a_refresh_of_a_key_deleted_meanwhile_forgets_it(
    cache: WorksCache, bucket: MemoryKv
) -> None:
    await cache.put(key("m1"), replace_with(work("m1", "a")))
    await bucket.delete(key("m1"))
    await cache.refresh(key("m1"))
    assert cache.get(key("m1")) is None
    assert cache.works_with("m1", ident("a")) == set()


def test_remember_and_forget_keep_every_index_in_step(cache: WorksCache) -> None:
    cache.remember(key("m1"), work("m1", "a"), 3)
    cache.remember(key("m2"), work("m2", "a"), 4)
    cache.remember(key("m1", OTHER_BINDING), work("m1", "a", binding="api"), 5)
    assert cache.keys_of_cluster("m1") == {key("m1"), key("m1", OTHER_BINDING)}
    assert set(cache.binding_works(BINDING)) == {"m1", "m2"}
    assert cache.works_with("m1", ident("a")) == {key("m1"), key("m1", OTHER_BINDING)}
    cache.forget(key("m1"))
    assert cache.keys_of_cluster("m1") == {key("m1", OTHER_BINDING)}
    assert set(cache.binding_works(BINDING)) == {"m2"}
    assert cache.works_with("m1", ident("a")) == {key("m1", OTHER_BINDING)}
    assert cache.works_with("m2", ident("a")) == {key("m2")}
    cache.forget(key("m9"))  # never known: nothing happens


def test_a_staged_work_counts_in_the_binding_view_and_the_object_index(
    cache: WorksCache,
) -> None:
    applied = work("m1", "a", "b")
    cache.remember(key("m1"), applied, 1)
    desired = work("m1", "b", "c")
    cache.stage(key("m1"), desired)
    assert cache.staged(key("m1")) == desired
    assert cache.current(key("m1")) == desired
    assert cache.get(key("m1")) == applied
    assert cache.has_staged(BINDING)
    assert cache.staged_keys(BINDING) == [key("m1")]
    assert cache.binding_works(BINDING) == {"m1": (key("m1"), applied)}
    assert cache.binding_view(BINDING) == {"m1": (key("m1"), desired)}
    assert cache.identities(key("m1")) == {ident("a"), ident("b"), ident("c")}
    for name in ("a", "b", "c"):
        assert cache.works_with("m1", ident(name)) == {key("m1")}, name


def test_staging_again_replaces_the_staged_objects_only(cache: WorksCache) -> None:
    cache.remember(key("m1"), work("m1", "a"), 1)
    cache.stage(key("m1"), work("m1", "a", "b"))
    cache.stage(key("m1"), work("m1", "c"))
    assert cache.works_with("m1", ident("a")) == {key("m1")}, "still stored"
    assert cache.works_with("m1", ident("b")) == set(), "neither stored nor staged any more"
    assert cache.works_with("m1", ident("c")) == {key("m1")}


def test_unstaging_drops_what_only_the_staged_work_had(cache: WorksCache) -> None:
    cache.remember(key("m1"), work("m1", "a"), 1)
    staged = work("m1", "a", "b")
    cache.stage(key("m1"), staged)
    assert not cache.unstage(key("m1"), only=work("m1", "x")), "not the staged one"
    assert cache.staged(key("m1")) is staged
    assert cache.unstage(key("m1"), only=staged)
    assert not cache.unstage(key("m1")), "nothing staged any more"
    assert cache.staged(key("m1")) is None
    assert not cache.has_staged(BINDING)
    assert cache.staged_keys(BINDING) == []
    assert cache.works_with("m1", ident("a")) == {key("m1")}
    assert cache.works_with("m1", ident("b")) == set()
    assert cache.binding_view(BINDING) == cache.binding_works(BINDING)


def test_a_binding_stays_staged_while_one_of_its_works_is(cache: WorksCache) -> None:
    cache.stage(key("m1"), work("m1", "a"))
    cache.stage(key("m2"), work("m2", "a"))
    assert cache.unstage(key("m1"))
    assert cache.has_staged(BINDING)
    assert cache.binding_view(BINDING) == {"m2": (key("m2"), work("m2", "a"))}
    assert cache.unstage(key("m2"))
    assert not cache.has_staged(BINDING)


def test_forgetting_a_stored_work_keeps_what_its_staged_successor_has(
    cache: WorksCache,
) -> None:
    cache.remember(key("m1"), work("m1", "a", "b"), 1)
    cache.stage(key("m1"), work("m1", "b"))
    cache.forget(key("m1"))
    assert cache.works_with("m1", ident("a")) == set()
    assert cache.works_with("m1", ident("b")) == {key("m1")}
    assert cache.binding_view(BINDING) == {"m1": (key("m1"), work("m1", "b"))}


async def test_storing_a_work_keeps_the_objects_of_the_one_staged(cache: WorksCache) -> None:
    cache.stage(key("m1"), work("m1", "a", "b"))
    await cache.put(key("m1"), replace_with(work("m1", "c")))
    await cache.put(key("m1"), replace_with(work("m1", "d")))
    assert cache.works_with("m1", ident("a")) == {key("m1")}, "the staged work has it"
    assert cache.works_with("m1", ident("c")) == set()
    assert cache.works_with("m1", ident("d")) == {key("m1")}


def test_an_object_is_wanted_elsewhere_by_another_live_work_of_its_cluster(
    cache: WorksCache,
) -> None:
    shared = config_map("shared")
    cache.remember(key("m1"), work("m1", "shared"), 1)
    assert not cache.wanted_elsewhere(key("m1"), "m1", shared), "only its own work has it"
    cache.remember(key("m2", OTHER_BINDING), work("m2", "shared", binding="api"), 2)
    assert not cache.wanted_elsewhere(key("m1"), "m1", shared), "another cluster's"
    cache.stage(key("m1", OTHER_BINDING), work("m1", "shared", binding="api"))
    assert cache.wanted_elsewhere(key("m1"), "m1", shared), "a staged work counts"
    cache.unstage(key("m1", OTHER_BINDING))
    cache.remember(key("m1", OTHER_BINDING), work("m1", "shared", binding="api"), 3)
    assert cache.wanted_elsewhere(key("m1"), "m1", shared)
    leaving = work("m1", "shared", binding="api", deleting=True)
    cache.remember(key("m1", OTHER_BINDING), leaving, 4)
    assert not cache.wanted_elsewhere(key("m1"), "m1", shared), "a work being deleted"


async def test_an_entry_is_news_unless_it_is_our_own_write(cache: WorksCache) -> None:
    await cache.put(key("m1"), replace_with(work("m1", "a")))
    revision = cache.revision(key("m1"))
    assert not cache.is_news(key("m1"), revision, deleted=False), "our own write"
    assert not cache.is_news(key("m1"), revision - 1, deleted=True), "older than ours"
    assert cache.is_news(key("m1"), revision + 1, deleted=False)
    assert cache.is_news(key("m2"), 1, deleted=False), "never seen"


def test_the_works_replay_skips_our_own_writes(cache: WorksCache) -> None:
    cache.on_entry(Entry(key=key("m1"), value=encode_work(work("m1", "a")), revision=3))
    assert cache.get(key("m1")) == work("m1", "a")
    assert cache.revision(key("m1")) == 3
    cache.forget(key("m1"))
    cache.remember(key("m1"), work("m1", "a"), 7)
    cache.on_entry(Entry(key=key("m1"), value=None, revision=7))
    assert cache.get(key("m1")) is not None, "already known"
    cache.on_entry(Entry(key=key("m1"), value=None, revision=8))
    assert cache.get(key("m1")) is None
    assert cache.works_with("m1", ident("a")) == set()


async def test_an_entry_for_a_key_being_written_waits_for_that_write() -> None:
    """While our write of a key is in flight, it updates the cache itself (a deletion
    still counts: the write then finds another revision and reads it again)."""
    writing = asyncio.Event()
    release = asyncio.Event()

    def change(_current: Work | None) -> Work | None:
        writing.set()
        return work("m1", "a")

    class Slow(MemoryKv):
        async def create(self, key: str, value: bytes, *, seal: bool = False) -> int:
            await release.wait()
            return await super().create(key, value, seal=seal)

    slow_cache = WorksCache(Slow("works"))
    write = asyncio.create_task(slow_cache.put(key("m1"), change))
    await writing.wait()
    assert not slow_cache.is_news(key("m1"), 5, deleted=False)
    assert slow_cache.is_news(key("m1"), 5, deleted=True)
    release.set()
    await write
    assert slow_cache.get(key("m1")) == work("m1", "a")
