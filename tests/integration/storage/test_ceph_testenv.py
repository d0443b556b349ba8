"""The test environment's real Ceph: every daemon FOOT's storage service relies on answers."""

from __future__ import annotations

import json
import urllib.request

from foot_testenv.ceph import CephCluster


def test_ceph_is_healthy_with_every_daemon(ceph: CephCluster) -> None:
    status = json.loads(ceph.ceph("status", "-f", "json"))
    assert status["health"]["status"] == "HEALTH_OK"
    assert status["osdmap"]["num_up_osds"] >= 1
    assert status["fsmap"]["up"] == 1  # the MDS serves the CephFS volume
    volumes = json.loads(ceph.ceph("fs", "volume", "ls", "-f", "json"))
    assert [v["name"] for v in volumes] == [ceph.fs_name]
    assert len(ceph.daemon_pids()) == 5  # mon, mgr, osd, mds, rgw


def test_dashboard_and_rgw_answer(ceph: CephCluster) -> None:
    body = json.dumps({"username": ceph.dashboard_user, "password": ceph.dashboard_password})
    request = urllib.request.Request(  # noqa: S310 - loopback URL from the fixture
        f"{ceph.dashboard_url}/api/auth",
        data=body.encode(),
        headers={
            "Accept": "application/vnd.ceph.api.v1.0+json",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
        assert answer.status == 201
        assert json.loads(answer.read())["token"]
    with urllib.request.urlopen(ceph.rgw_url, timeout=10) as answer:  # noqa: S310
        assert b"ListAllMyBucketsResult" in answer.read()
