"""Cluster credentials as values: the token never shows."""

from __future__ import annotations

from pydantic import SecretStr

from foot.cluster_credential import ClusterCredential


def test_credential_hides_its_token() -> None:
    credential = ClusterCredential(
        cluster="east", server="https://127.0.0.1:6443", token=SecretStr("s3cr3t-token")
    )
    assert "s3cr3t-token" not in repr(credential)
    assert "s3cr3t-token" not in credential.model_dump_json()
