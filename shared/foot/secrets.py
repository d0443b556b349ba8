"""Sealing secrets at rest: credentials are stored only as AES-256-GCM ciphertext.

The key lives in a file readable by its owner only (`secret_key_file` in the
settings; `foot up` creates one under FOOT_HOME). Each sealed value is bound to
where it is stored (bucket and key as associated data), so a sealed credential
copied under another cluster's key does not open.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from foot.errors import PermanentError

KEY_BYTES = 32
NONCE_BYTES = 12
FORMAT_PREFIX = b"foot-sealed-v1:"


class SecretKeyError(PermanentError):
    """The sealing key is missing, unreadable or malformed."""


class UnsealError(PermanentError):
    """A sealed value does not open with this key (wrong key, tampered, or moved)."""


class SecretBox:
    """Seals and opens small secrets with one AES-256-GCM key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise SecretKeyError(f"the sealing key must be {KEY_BYTES} bytes, got {len(key)}")
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"

    @classmethod
    def from_file(cls, path: Path, *, create: bool = False) -> SecretBox:
        """Load the base64 key in `path`; with `create`, write a new random key if absent."""
        if create and not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            encoded = base64.b64encode(secrets.token_bytes(KEY_BYTES))
            try:
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # another process created it first; use theirs
            else:
                with os.fdopen(descriptor, "wb") as handle:
                    handle.write(encoded + b"\n")
        try:
            text = path.read_bytes().strip()
        except OSError as exc:
            raise SecretKeyError(f"cannot read the sealing key file {path}: {exc}") from exc
        if path.stat().st_mode & 0o077:
            raise SecretKeyError(f"the sealing key file {path} is readable by others; chmod 600 it")
        try:
            key = base64.b64decode(text, validate=True)
        except ValueError as exc:
            raise SecretKeyError(f"the sealing key file {path} is not base64") from exc
        return cls(key)

    def seal(self, plaintext: bytes, *, context: str) -> bytes:
        """Encrypt `plaintext` for storage at `context` (e.g. `cluster-credentials/east`)."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext, context.encode())
        return FORMAT_PREFIX + base64.b64encode(nonce + sealed)

    def open_if_sealed(self, value: bytes, *, context: str) -> bytes:
        """`value` opened if it is sealed; as it is otherwise (a key-value store whose bus
        holds the key has opened it already)."""
        return self.open(value, context=context) if value.startswith(FORMAT_PREFIX) else value

    def open(self, sealed: bytes, *, context: str) -> bytes:
        """Decrypt a value sealed for `context`, or raise UnsealError."""
        if not sealed.startswith(FORMAT_PREFIX):
            raise UnsealError(f"the value at {context} is not a sealed value")
        try:
            raw = base64.b64decode(sealed[len(FORMAT_PREFIX) :], validate=True)
            return self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode())
        except (ValueError, InvalidTag) as exc:
            raise UnsealError(
                f"the value at {context} does not open with this key (wrong key or tampered)"
            ) from exc
