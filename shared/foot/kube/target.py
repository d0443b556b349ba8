"""Where an API server is and how to authenticate to it, read from a kubeconfig or a
stored credential. Secrets are `SecretStr` and never appear in a repr or a message."""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import ssl
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import Field, SecretStr

from foot.cluster_credential import ClusterCredential
from foot.errors import FieldProblem, InvalidObjectError, PermanentError
from foot.objects import FrozenModel


class KubeconfigError(InvalidObjectError):
    """The kubeconfig cannot be used; each problem names its place in the file."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("kubeconfig", problems)


class KubeTarget(FrozenModel):
    """One API server and one identity."""

    server: str = Field(pattern=r"^https?://")
    """API server URL."""
    ca_pem: str | None = None
    """CA bundle (PEM) to verify the server; None uses the system's trust store."""
    insecure_skip_tls_verify: bool = False
    """Do not verify the server certificate."""
    tls_server_name: str | None = None
    """Name to verify the server certificate against."""
    token: SecretStr | None = None
    """Bearer token."""
    client_cert_pem: SecretStr | None = None
    """Client certificate (PEM) for certificate authentication."""
    client_key_pem: SecretStr | None = None
    """Client key (PEM) for certificate authentication."""

    @property
    def host(self) -> str:
        return urlsplit(self.server).hostname or ""

    @classmethod
    def from_credential(cls, credential: ClusterCredential) -> KubeTarget:
        return cls(
            server=credential.server,
            ca_pem=credential.ca_pem,
            insecure_skip_tls_verify=credential.insecure_skip_tls_verify,
            tls_server_name=credential.tls_server_name,
            token=credential.token,
        )

    @classmethod
    def from_kubeconfig(
        cls, text: str, *, context: str | None = None, base_dir: Path | None = None
    ) -> KubeTarget:
        """The target of `context` (default: current-context) in a kubeconfig's text."""
        return _Kubeconfig(text, base_dir).target(context)

    def ssl_context(self) -> ssl.SSLContext | bool:
        """What aiohttp needs to reach the server (False: no verification)."""
        if not self.server.startswith("https://"):
            return True
        context = (
            ssl.create_default_context(cadata=self.ca_pem)
            if self.ca_pem
            else (ssl.create_default_context())
        )
        if self.insecure_skip_tls_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.client_cert_pem is not None and self.client_key_pem is not None:
            _load_client_certificate(
                context,
                self.client_cert_pem.get_secret_value(),
                self.client_key_pem.get_secret_value(),
            )
        return context


def _load_client_certificate(context: ssl.SSLContext, cert_pem: str, key_pem: str) -> None:
    # The ssl module loads key pairs only from files: the pair lives for the length of this
    # call in a private folder in memory-backed storage where there is one.
    shm = Path("/dev/shm")  # noqa: S108 - a private 0700 folder is made inside it
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as folder:
        path = Path(folder) / "client.pem"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(cert_pem.rstrip() + "\n" + key_pem.rstrip() + "\n")
        try:
            context.load_cert_chain(str(path))
        except ssl.SSLError as exc:
            raise PermanentError("the client certificate and key do not form a pair") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


class _Kubeconfig:
    def __init__(self, text: str, base_dir: Path | None) -> None:
        self.base_dir = base_dir
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            where = getattr(exc, "problem_mark", None)
            line = f" (line {where.line + 1})" if where is not None else ""
            raise KubeconfigError(
                [FieldProblem("kubeconfig", f"is not valid YAML{line}")]
            ) from None
        if not isinstance(document, dict):
            raise KubeconfigError([FieldProblem("kubeconfig", "is not a YAML mapping")])
        self.document: dict[str, Any] = document

    def _named(self, section: str, name: str) -> dict[str, Any]:
        entries = self.document.get(section)
        if not isinstance(entries, list):
            raise KubeconfigError([FieldProblem(section, "is missing or not a list")])
        singular = section.removesuffix("s")
        for entry in entries:
            if isinstance(entry, dict) and entry.get("name") == name:
                body = entry.get(singular)
                if not isinstance(body, dict):
                    raise KubeconfigError(
                        [FieldProblem(f"{section}[{name}].{singular}", "is missing")]
                    )
                return body
        raise KubeconfigError([FieldProblem(section, f"has no entry named {name!r}")])

    def target(self, context_name: str | None) -> KubeTarget:
        name = context_name or self.document.get("current-context")
        if not name:
            raise KubeconfigError([FieldProblem("current-context", "is not set; pass a context")])
        context = self._named("contexts", str(name))
        cluster_name, user_name = context.get("cluster"), context.get("user")
        if not cluster_name or not user_name:
            raise KubeconfigError(
                [FieldProblem(f"contexts[{name}].context", "needs both cluster and user")]
            )
        cluster = self._named("clusters", str(cluster_name))
        user = self._named("users", str(user_name))
        problems: list[FieldProblem] = []
        fields = self._cluster_fields(str(cluster_name), cluster, problems)
        fields |= self._user_fields(str(user_name), user, problems)
        if problems:
            raise KubeconfigError(problems)
        try:
            return KubeTarget(**fields)
        except ValueError as exc:
            raise KubeconfigError(
                [FieldProblem(f"clusters[{cluster_name}].cluster.server", str(exc))]
            ) from None

    def _cluster_fields(
        self, name: str, cluster: Mapping[str, Any], problems: list[FieldProblem]
    ) -> dict[str, Any]:
        where = f"clusters[{name}].cluster"
        server = cluster.get("server")
        if not isinstance(server, str) or not server.startswith(("https://", "http://")):
            problems.append(FieldProblem(f"{where}.server", "must be an http(s) URL"))
        if cluster.get("proxy-url"):
            problems.append(FieldProblem(f"{where}.proxy-url", "proxies are not supported"))
        ca = self._data_or_file(cluster, "certificate-authority", where, problems)
        return {
            "server": server,
            "ca_pem": ca,
            "insecure_skip_tls_verify": bool(cluster.get("insecure-skip-tls-verify", False)),
            "tls_server_name": cluster.get("tls-server-name"),
        }

    def _user_fields(
        self, name: str, user: Mapping[str, Any], problems: list[FieldProblem]
    ) -> dict[str, Any]:
        where = f"users[{name}].user"
        problems.extend(
            FieldProblem(
                f"{where}.{unsupported}", "is not supported; use a token or a client certificate"
            )
            for unsupported in ("exec", "auth-provider", "username", "password")
            if unsupported in user
        )
        token = user.get("token")
        if token is None and user.get("tokenFile"):
            token = self._read(str(user["tokenFile"]), f"{where}.tokenFile", problems)
        cert = self._data_or_file(user, "client-certificate", where, problems)
        key = self._data_or_file(user, "client-key", where, problems)
        if (cert is None) != (key is None):
            problems.append(FieldProblem(where, "client-certificate and client-key go together"))
        if token is None and cert is None and not problems:
            problems.append(FieldProblem(where, "has no token and no client certificate"))
        return {
            "token": SecretStr(str(token).strip()) if token else None,
            "client_cert_pem": SecretStr(cert) if cert else None,
            "client_key_pem": SecretStr(key) if key else None,
        }

    def _data_or_file(
        self, section: Mapping[str, Any], field: str, where: str, problems: list[FieldProblem]
    ) -> str | None:
        data = section.get(f"{field}-data")
        if data:
            try:
                return base64.b64decode(str(data), validate=True).decode()
            except (binascii.Error, ValueError, UnicodeDecodeError):
                problems.append(FieldProblem(f"{where}.{field}-data", "is not base64 PEM"))
                return None
        path = section.get(field)
        if path:
            return self._read(str(path), f"{where}.{field}", problems)
        return None

    def _read(self, path: str, where: str, problems: list[FieldProblem]) -> str | None:
        resolved = Path(path)
        if not resolved.is_absolute() and self.base_dir is not None:
            resolved = self.base_dir / resolved
        try:
            return resolved.read_text()
        except OSError as exc:
            problems.append(FieldProblem(where, f"cannot read {resolved}: {exc.strerror}"))
            return None
