"""NATS auth material: JWTs as NATS reads them, .creds files, and each identity's lists."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from pathlib import Path

import nkeys
import pytest

from foot.catalog import BUCKETS
from foot.natsauth import (
    AGENT_SUBJECT_FAMILIES,
    CLI_IDENTITY,
    SERVICES,
    NatsAuthHome,
    agent_inbox_prefix,
    agent_permissions,
    mint_agent_creds,
    service_permissions,
)
from foot.natsjwt import (
    NatsKeyError,
    NKey,
    Permissions,
    account_jwt,
    decode_claims,
    encode_jwt,
    parse_creds,
    user_jwt,
)


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_a_jwt_is_signed_by_its_issuer_and_names_its_claims() -> None:
    operator = NKey.generate("operator")
    token = encode_jwt(
        issuer=operator, subject="A1", name="x", nats={"type": "account", "version": 2}
    )
    header, body, signature = token.split(".")
    assert json.loads(_b64(header)) == {"typ": "JWT", "alg": "ed25519-nkey"}
    verifier = nkeys.from_seed(bytearray(operator.seed))
    assert verifier.verify(f"{header}.{body}".encode(), _b64(signature))
    claims = decode_claims(token)
    assert claims["iss"] == operator.public_key
    assert claims["sub"] == "A1"
    unset = dict(claims, jti="")
    digest = hashlib.sha256(json.dumps(unset, separators=(",", ":")).encode()).digest()
    assert claims["jti"] == base64.b32encode(digest).decode().rstrip("=")


def test_keys_have_the_prefix_of_their_kind_and_never_show_their_seed() -> None:
    assert NKey.generate("operator").public_key.startswith("O")
    assert NKey.generate("account").public_key.startswith("A")
    user = NKey.generate("user")
    assert user.public_key.startswith("U")
    assert user.seed.startswith(b"SU")
    assert user.seed.decode() not in repr(user)
    with pytest.raises(NatsKeyError):
        NKey.from_seed(b"not a seed")


def test_a_user_signed_by_a_signing_key_names_its_account() -> None:
    operator = NKey.generate("operator")
    account = NKey.generate("account")
    signing = NKey.generate("account")
    claims = decode_claims(
        account_jwt(operator, account.public_key, name="FOOT", signing_keys=(signing.public_key,))
    )
    assert claims["nats"]["signing_keys"] == [signing.public_key]
    user = NKey.generate("user")
    token = user_jwt(
        signing,
        user.public_key,
        name="u",
        account=account.public_key,
        permissions=Permissions(publish=("a",), subscribe=("b",), respond=True),
    )
    nats = decode_claims(token)["nats"]
    assert nats["issuer_account"] == account.public_key
    assert nats["pub"] == {"allow": ["a"]}
    assert nats["sub"] == {"allow": ["b"]}
    assert nats["resp"]["max"] == 1


def test_agent_creds_parse_back_fenced_to_their_cluster() -> None:
    signing = NKey.generate("account")
    text = mint_agent_creds(signing, account="AFOOT", cluster="alpha")
    token, key = parse_creds(text)
    claims = decode_claims(token)
    assert claims["sub"] == key.public_key
    allowed = claims["nats"]["pub"]["allow"] + claims["nats"]["sub"]["allow"]
    assert all("alpha" in subject for subject in allowed), allowed
    assert {s.rsplit(".", 1)[0] for s in allowed if s.startswith("foot.")} == set(
        AGENT_SUBJECT_FAMILIES
    )
    assert f"{agent_inbox_prefix('alpha')}.>" in allowed
    with pytest.raises(NatsKeyError):
        parse_creds("no creds here")


def test_only_a_buckets_owner_writes_it_and_agents_reach_none() -> None:
    agent = agent_permissions("alpha")
    assert not [s for s in agent.publish + agent.subscribe if s.startswith("$")]
    for service in SERVICES:
        permissions = service_permissions(service)
        writes = {s for s in permissions.publish if s.startswith("$KV.")}
        assert writes == {f"$KV.{b.name}.>" for b in BUCKETS if b.owner == service}
        assert "_INBOX.>" in permissions.subscribe
        assert not [s for s in permissions.subscribe if s.startswith("_INBOX_")]
    with pytest.raises(ValueError, match="unknown service"):
        service_permissions("stranger")


def test_the_home_holds_every_user_privately_and_keeps_their_keys(tmp_path: Path) -> None:
    auth = NatsAuthHome(tmp_path).ensure()
    creds = {name: auth.creds(name).read_text() for name in (*SERVICES, CLI_IDENTITY)}
    for path in auth.folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    NatsAuthHome(tmp_path).ensure()
    for name, text in creds.items():
        assert parse_creds(auth.creds(name).read_text())[1] == parse_creds(text)[1]
    assert "resolver: MEMORY" in auth.server_config.read_text()
