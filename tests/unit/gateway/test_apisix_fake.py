"""The strict APISIX Admin API fake pins each behaviour of shared/reference/apisix-admin-api.md.

Every test talks HTTP to a real listening fake (in process), like the client does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from foot_testenv.apisix_fake import ApisixFake

KEY = "admin-key-for-tests-0001"
VIEWER = "viewer-key-for-tests-01"
UPSTREAM = {"type": "roundrobin", "nodes": {"10.0.0.1:80": 1}}


class Admin:
    def __init__(self, fake: ApisixFake, session: aiohttp.ClientSession) -> None:
        self.fake = fake
        self.session = session

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        key: str | None = KEY,
        params: dict[str, str] | None = None,
    ) -> tuple[int, Any, aiohttp.ClientResponse]:
        headers = {"X-API-KEY": key} if key is not None else {}
        async with self.session.request(
            method,
            f"{self.fake.url}/apisix/admin/{path}",
            json=body,
            headers=headers,
            params=params,
        ) as response:
            return response.status, await response.json(), response


@pytest.fixture
async def admin() -> AsyncIterator[Admin]:
    async with ApisixFake(admin_key=KEY, viewer_key=VIEWER) as fake, aiohttp.ClientSession() as s:
        yield Admin(fake, s)


# ---- transport and auth ----------------------------------------------------------------------


async def test_missing_and_wrong_key_are_401_with_description(admin: Admin) -> None:
    status, body, response = await admin.call("GET", "upstreams", key=None)
    assert status == 401
    assert body == {"error_msg": "failed to check token", "description": "missing apikey"}
    assert response.headers["X-API-VERSION"] == "v3"
    status, body, _ = await admin.call("GET", "upstreams", key="nope")
    assert (status, body["description"]) == (401, "wrong apikey")
    assert admin.fake.objects("upstreams") == {}


async def test_key_in_query_arg_or_cookie(admin: Admin) -> None:
    status, _, _ = await admin.call("GET", "routes", key=None, params={"api_key": KEY})
    assert status == 200
    async with admin.session.get(
        f"{admin.fake.url}/apisix/admin/routes", cookies={"api_key": KEY}
    ) as response:
        assert response.status == 200


async def test_viewer_may_only_get(admin: Admin) -> None:
    status, body, _ = await admin.call("PUT", "upstreams/u1", UPSTREAM, key=VIEWER)
    assert status == 401
    assert body["error_msg"] == "failed to check token"
    assert admin.fake.objects("upstreams") == {}
    status, _, _ = await admin.call("GET", "upstreams", key=VIEWER)
    assert status == 200


async def test_every_response_has_the_version_header(admin: Admin) -> None:
    for method, path, body in [
        ("PUT", "upstreams/u1", UPSTREAM),
        ("GET", "upstreams/u1", None),
        ("GET", "upstreams/missing", None),
        ("PUT", "upstreams/bad", {"nodes": {}, "retries": -1}),
        ("GET", "nothing", None),
    ]:
        _, _, response = await admin.call(method, path, body)
        assert response.headers["X-API-VERSION"] == "v3", (method, path)


# ---- PUT / GET / envelopes ---------------------------------------------------------------------


async def test_put_creates_201_then_replaces_200_keeping_create_time(admin: Admin) -> None:
    status, body, _ = await admin.call("PUT", "upstreams/u1", UPSTREAM)
    assert status == 201
    assert body["key"] == "/apisix/upstreams/u1"
    assert set(body) == {"key", "value"}
    created = body["value"]["create_time"]
    admin.fake.data["upstreams"]["u1"].value["create_time"] = created - 100  # an older object
    status, body, _ = await admin.call("PUT", "upstreams/u1", {"nodes": {"10.0.0.2:80": 3}})
    assert status == 200
    assert body["value"]["create_time"] == created - 100
    assert body["value"]["nodes"] == {"10.0.0.2:80": 3}  # the whole object was replaced


async def test_get_one_envelope_with_indexes_and_defaults_filled(admin: Admin) -> None:
    await admin.call(
        "PUT", "upstreams/u1", {"nodes": [{"host": "10.0.0.1", "port": 80, "weight": 2}]}
    )
    status, body, _ = await admin.call("GET", "upstreams/u1")
    assert status == 200
    assert set(body) == {"key", "value", "createdIndex", "modifiedIndex"}
    value = body["value"]
    assert value["id"] == "u1"
    assert value["type"] == "roundrobin"
    assert value["scheme"] == "http"
    assert value["pass_host"] == "pass"
    assert value["hash_on"] == "vars"
    assert value["nodes"] == [{"host": "10.0.0.1", "port": 80, "weight": 2, "priority": 0}]
    assert isinstance(value["create_time"], int)
    assert isinstance(value["update_time"], int)


async def test_missing_id_is_404_with_message_shape(admin: Admin) -> None:
    status, body, _ = await admin.call("GET", "routes/none")
    assert (status, body) == (404, {"message": "Key not found"})
    status, body, _ = await admin.call("DELETE", "upstreams/none")
    assert (status, body) == (404, {"message": "Key not found"})
    status, body, _ = await admin.call("PATCH", "upstreams/none", {"retries": 1})
    assert (status, body) == (404, {"message": "Key not found"})


async def test_id_in_url_and_body_must_agree(admin: Admin) -> None:
    status, body, _ = await admin.call("PUT", "upstreams/u1", {**UPSTREAM, "id": "u2"})
    assert (status, body) == (400, {"error_msg": "wrong upstream id"})
    status, body, _ = await admin.call("PUT", "upstreams/u1", {**UPSTREAM, "id": "u1"})
    assert status == 201


async def test_create_and_update_time_in_body_are_refused(admin: Admin) -> None:
    for stamp in ("create_time", "update_time"):
        status, body, _ = await admin.call("PUT", "upstreams/u1", {**UPSTREAM, stamp: 1})
        assert status == 400
        assert stamp in body["error_msg"]
    assert admin.fake.objects("upstreams") == {}


async def test_bad_id_in_url_is_400(admin: Admin) -> None:
    status, body, _ = await admin.call("PUT", "upstreams/" + "x" * 65, UPSTREAM)
    assert status == 400
    assert "id" in body["error_msg"]


async def test_post_assigns_an_id_but_not_for_plugin_configs(admin: Admin) -> None:
    status, body, _ = await admin.call("POST", "upstreams", UPSTREAM)
    assert status == 200
    new_id = body["value"]["id"]
    assert body["key"] == f"/apisix/upstreams/{new_id}"
    assert new_id in admin.fake.objects("upstreams")
    status, _, _ = await admin.call("POST", "plugin_configs", {"plugins": {}})
    assert status == 405


async def test_list_envelope_paging_and_filters(admin: Admin) -> None:
    for index in range(12):
        labels = {"managed-by": "foot"} if index % 2 == 0 else {"team": "x"}
        await admin.call(
            "PUT", f"upstreams/u{index}", {**UPSTREAM, "name": f"up-{index}", "labels": labels}
        )
    status, body, _ = await admin.call("GET", "upstreams")
    assert status == 200
    assert body["total"] == 12
    assert len(body["list"]) == 12
    assert set(body["list"][0]) == {"key", "value", "createdIndex", "modifiedIndex"}
    _, body, _ = await admin.call("GET", "upstreams", params={"page": "2", "page_size": "10"})
    assert (body["total"], len(body["list"])) == (12, 2)
    for size in ("9", "501"):
        status, body, _ = await admin.call("GET", "upstreams", params={"page_size": size})
        assert status == 400
        assert "page_size" in body["error_msg"]
    _, body, _ = await admin.call("GET", "upstreams", params={"name": "^up-1[01]$"})
    assert sorted(item["value"]["id"] for item in body["list"]) == ["u10", "u11"]
    _, body, _ = await admin.call("GET", "upstreams", params={"label": "managed-by:foot"})
    assert body["total"] == 6


async def test_route_list_filters_by_uri_and_upstream_id(admin: Admin) -> None:
    await admin.call("PUT", "upstreams/1", UPSTREAM)
    await admin.call("PUT", "upstreams/2", UPSTREAM)
    await admin.call("PUT", "routes/a", {"uri": "/shop/*", "upstream_id": "1"})
    await admin.call("PUT", "routes/b", {"uri": "/blog", "upstream_id": "2"})
    _, body, _ = await admin.call("GET", "routes", params={"uri": "/shop"})
    assert [item["value"]["id"] for item in body["list"]] == ["a"]
    _, body, _ = await admin.call("GET", "routes", params={"filter": "upstream_id=2"})
    assert [item["value"]["id"] for item in body["list"]] == ["b"]


async def test_unknown_resource_type(admin: Admin) -> None:
    status, body, _ = await admin.call("GET", "gizmos")
    assert status == 404
    assert "gizmos" in body["error_msg"]


# ---- PATCH ------------------------------------------------------------------------------------


async def test_patch_merges_deeply_null_deletes_and_nodes_map_only_grows(admin: Admin) -> None:
    await admin.call(
        "PUT",
        "upstreams/u1",
        {"nodes": {"10.0.0.1:80": 1, "10.0.0.2:80": 1}, "retries": 2, "desc": "x"},
    )
    status, body, _ = await admin.call(
        "PATCH", "upstreams/u1", {"nodes": {"10.0.0.3:80": 5, "10.0.0.1:80": 2}, "desc": None}
    )
    assert status == 200
    value = admin.fake.objects("upstreams")["u1"]
    # The node left out stays: removing nodes needs PUT or a sub-path PATCH.
    assert value["nodes"] == {"10.0.0.1:80": 2, "10.0.0.2:80": 1, "10.0.0.3:80": 5}
    assert "desc" not in value
    assert value["retries"] == 2
    assert body["value"] == value


async def test_patch_replaces_arrays_whole(admin: Admin) -> None:
    await admin.call(
        "PUT",
        "upstreams/u1",
        {
            "nodes": [
                {"host": "10.0.0.1", "port": 80, "weight": 1},
                {"host": "10.0.0.2", "port": 80, "weight": 1},
            ]
        },
    )
    await admin.call(
        "PATCH", "upstreams/u1", {"nodes": [{"host": "10.0.0.9", "port": 81, "weight": 4}]}
    )
    assert admin.fake.objects("upstreams")["u1"]["nodes"] == [
        {"host": "10.0.0.9", "port": 81, "weight": 4, "priority": 0}
    ]


async def test_patch_of_sub_path_replaces_it(admin: Admin) -> None:
    await admin.call("PUT", "upstreams/u1", {"nodes": {"10.0.0.1:80": 1, "10.0.0.2:80": 1}})
    status, _, _ = await admin.call("PATCH", "upstreams/u1/nodes", {"10.0.0.7:80": 9})
    assert status == 200
    assert admin.fake.objects("upstreams")["u1"]["nodes"] == {"10.0.0.7:80": 9}


async def test_patch_is_validated_and_nothing_half_applied(admin: Admin) -> None:
    await admin.call("PUT", "upstreams/u1", UPSTREAM)
    before = admin.fake.objects("upstreams")
    status, body, _ = await admin.call("PATCH", "upstreams/u1", {"retries": -1, "desc": "new"})
    assert status == 400
    assert "retries" in body["error_msg"]
    assert admin.fake.objects("upstreams") == before


async def test_concurrent_change_during_patch_is_503(admin: Admin) -> None:
    await admin.call("PUT", "upstreams/u1", UPSTREAM)
    admin.fake.race_next_patch()
    status, body, _ = await admin.call("PATCH", "upstreams/u1", {"retries": 1})
    assert (status, body) == (503, {"error_msg": "value changed before overwritten"})
    assert "retries" not in admin.fake.objects("upstreams")["u1"]


# ---- upstream schema ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (
            {"nodes": {}, "retries": -1},
            'property "retries" validation failed: expected -1 to be at least 0',
        ),
        ({"nodes": {}, "surprise": 1}, "additional properties forbidden, found surprise"),
        ({"retries": 1}, "value should match only one schema, but matches none"),
        ({"nodes": {}, "service_name": "a", "discovery_type": "dns"}, "matches both schemas"),
        ({"nodes": [{"host": "10.0.0.1", "port": 80}]}, "nodes"),
        ({"nodes": [{"host": "10.0.0.1", "port": 70000, "weight": 1}]}, "nodes"),
        ({"nodes": [{"host": "10.0.0.1", "port": 80, "weight": -1}]}, "nodes"),
        ({"nodes": {}, "timeout": {"connect": 1, "send": 1}}, 'property "read" is required'),
        ({"nodes": {}, "timeout": {"connect": 0, "send": 1, "read": 1}}, "greater than 0"),
        ({"nodes": {}, "type": "chash"}, "missing key"),
        ({"nodes": {}, "type": "chash", "hash_on": "cookie"}, "missing key"),
        ({"nodes": {}, "hash_on": "body"}, "enum"),
        ({"nodes": {}, "scheme": "ftp"}, "enum"),
        ({"nodes": {}, "pass_host": "rewrite"}, "upstream_host"),
        ({"nodes": {}, "keepalive_pool": {"size": 0}}, "size"),
        ({"nodes": {}, "checks": {"passive": {}}}, 'property "active" is required'),
        ({"nodes": {}, "checks": {"active": {"type": "udp"}}}, "enum"),
        ({"nodes": {}, "labels": {"a": "has space"}}, "labels"),
        ({"nodes": {}, "name": ""}, "name"),
        ({"nodes": {}, "desc": "d" * 257}, "desc"),
    ],
)
async def test_upstream_schema_rejections(
    admin: Admin, body: dict[str, Any], fragment: str
) -> None:
    status, answer, _ = await admin.call("PUT", "upstreams/u1", body)
    assert status == 400, answer
    assert answer["error_msg"].startswith("invalid configuration: ")
    assert fragment in answer["error_msg"]
    assert admin.fake.objects("upstreams") == {}


async def test_upstream_schema_acceptances(admin: Admin) -> None:
    accepted = [
        {"nodes": {}},  # empty nodes are allowed (502 at request time)
        {"nodes": {"[::1]:80": 1}},
        {"nodes": {}, "type": "unknown-balancer"},  # no enum on type
        {"nodes": {}, "type": "chash", "hash_on": "consumer"},
        {"nodes": {}, "type": "chash", "hash_on": "header", "key": "x-user"},
        {"service_name": "svc", "discovery_type": "dns"},
        {"nodes": {}, "pass_host": "rewrite", "upstream_host": "example.com"},
        {"nodes": [{"host": "10.0.0.1", "port": 80, "weight": 0, "priority": -1}]},
    ]
    for index, body in enumerate(accepted):
        status, answer, _ = await admin.call("PUT", f"upstreams/u{index}", body)
        assert status == 201, (body, answer)


async def test_health_check_defaults_are_filled(admin: Admin) -> None:
    await admin.call(
        "PUT", "upstreams/u1", {"nodes": {}, "checks": {"active": {"http_path": "/healthz"}}}
    )
    active = admin.fake.objects("upstreams")["u1"]["checks"]["active"]
    assert active["type"] == "http"
    assert active["http_path"] == "/healthz"
    assert active["timeout"] == 1
    assert active["concurrency"] == 10
    assert active["healthy"] == {"interval": 1, "http_statuses": [200, 302], "successes": 2}
    assert active["unhealthy"]["http_failures"] == 5
    assert active["unhealthy"]["tcp_failures"] == 2
    assert active["unhealthy"]["timeouts"] == 3


async def test_schema_validate_endpoint(admin: Admin) -> None:
    status, _, _ = await admin.call("POST", "schema/validate/upstreams", UPSTREAM)
    assert status == 200
    status, body, _ = await admin.call("POST", "schema/validate/routes", {"uri": "/x"})
    assert status == 400
    assert "error_msg" in body
    assert admin.fake.objects("upstreams") == {}


# ---- routes, references, traffic-split -----------------------------------------------------------


async def test_route_schema_rules(admin: Admin) -> None:
    await admin.call("PUT", "upstreams/1", UPSTREAM)
    bad = [
        ({"upstream_id": "1"}, "matches none"),
        ({"uri": "/a", "uris": ["/b"], "upstream_id": "1"}, "matches both"),
        ({"uri": "/a", "host": "a.io", "hosts": ["b.io"], "upstream_id": "1"}, "host"),
        ({"uri": "/a"}, "plugins, upstream, upstream_id, service_id"),
        ({"uri": "/a", "upstream_id": "1", "methods": ["FETCH"]}, "methods"),
        ({"uri": "/a", "upstream_id": "1", "status": 2}, "status"),
        ({"uri": "", "upstream_id": "1"}, "uri"),
        ({"uri": "/a", "upstream_id": "1", "plugins": {"no-such-plugin": {}}}, "unknown plugin"),
        ({"uri": "/a", "upstream": {"nodes": {}, "retries": -1}}, "retries"),
    ]
    for body, fragment in bad:
        status, answer, _ = await admin.call("PUT", "routes/r1", body)
        assert status == 400, body
        assert fragment in answer["error_msg"], (body, answer)
    assert admin.fake.objects("routes") == {}
    status, answer, _ = await admin.call(
        "PUT",
        "routes/r1",
        {"uris": ["/a", "/b"], "hosts": ["a.io"], "methods": ["GET"], "upstream_id": "1"},
    )
    assert status == 201, answer
    assert answer["value"]["priority"] == 0
    assert answer["value"]["status"] == 1


async def test_route_upstream_id_must_exist(admin: Admin) -> None:
    status, body, _ = await admin.call("PUT", "routes/r1", {"uri": "/a", "upstream_id": "nope"})
    assert status == 400
    assert body == {
        "error_msg": "failed to fetch upstream info by upstream id [nope], response code: 404"
    }
    status, body, _ = await admin.call("PUT", "routes/r1", {"uri": "/a", "service_id": "s"})
    assert status == 400
    assert "service id [s]" in body["error_msg"]


async def test_traffic_split_upstream_id_is_not_checked(admin: Admin) -> None:
    await admin.call("PUT", "upstreams/stable", UPSTREAM)
    route = {
        "uri": "/a",
        "upstream_id": "stable",
        "plugins": {
            "traffic-split": {
                "rules": [
                    {"weighted_upstreams": [{"upstream_id": "ghost", "weight": 10}, {"weight": 90}]}
                ]
            }
        },
    }
    status, _, _ = await admin.call("PUT", "routes/r1", route)
    assert status == 201  # APISIX accepts it; requests would get 500s


async def test_traffic_split_schema(admin: Admin) -> None:
    await admin.call("PUT", "upstreams/1", UPSTREAM)
    too_many = [{"upstream_id": "1", "weight": 1}] * 21
    rules: list[dict[str, Any]]
    for rules in (
        [{"weighted_upstreams": []}],
        [{"weighted_upstreams": too_many}],
        [{"weighted_upstreams": [{"upstream_id": "1", "weight": -1}]}],
        [{"match": [{"vars": [["arg_x", "==", "1"]]}]}],
    ):
        route = {"uri": "/a", "upstream_id": "1", "plugins": {"traffic-split": {"rules": rules}}}
        status, body, _ = await admin.call("PUT", "routes/r1", route)
        assert status == 400, rules
        assert "traffic-split" in body["error_msg"]


async def test_delete_of_upstream_in_use_is_refused_unless_forced(admin: Admin) -> None:
    await admin.call("PUT", "upstreams/a", UPSTREAM)
    await admin.call("PUT", "upstreams/b", UPSTREAM)
    await admin.call("PUT", "routes/r1", {"uri": "/a", "upstream_id": "a"})
    await admin.call(
        "PUT",
        "routes/r2",
        {
            "uri": "/b",
            "upstream": {"nodes": {}},
            "plugins": {
                "traffic-split": {
                    "rules": [{"weighted_upstreams": [{"upstream_id": "b", "weight": 1}]}]
                }
            },
        },
    )
    status, body, _ = await admin.call("DELETE", "upstreams/a")
    assert (status, body) == (
        400,
        {"error_msg": "can not delete this upstream, route [r1] is still using it now"},
    )
    status, body, _ = await admin.call("DELETE", "upstreams/b")
    assert (status, body) == (
        400,
        {"error_msg": "can not delete this upstream, route [r2] is still using it now"},
    )
    assert set(admin.fake.objects("upstreams")) == {"a", "b"}
    status, body, _ = await admin.call("DELETE", "upstreams/a", params={"force": "true"})
    assert (status, body) == (200, {"deleted": "1", "key": "/apisix/upstreams/a"})
    await admin.call("DELETE", "routes/r2")
    status, _, _ = await admin.call("DELETE", "upstreams/b")
    assert status == 200
    assert set(admin.fake.objects("upstreams")) == set()


async def test_pause_refuses_connections_and_resume_keeps_data(admin: Admin) -> None:
    await admin.call("PUT", "upstreams/u1", UPSTREAM)
    await admin.fake.pause()
    with pytest.raises(aiohttp.ClientConnectionError):
        await admin.call("GET", "upstreams/u1")
    await admin.fake.resume()
    status, body, _ = await admin.call("GET", "upstreams/u1")
    assert status == 200
    assert body["value"]["nodes"] == UPSTREAM["nodes"]
