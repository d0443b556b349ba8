"""How FOOT reaches a member cluster: the credential the registry minted at join.

A contract (what the registry stores and the dispatcher and the Kubernetes client read), kept
apart from the store (`foot.credentials`) so that the Kubernetes client does not depend on
the bus. The token never appears in a repr or a log line (`SecretStr`).
"""

from __future__ import annotations

from pydantic import Field, SecretStr

from foot.objects import FrozenModel


class ClusterCredential(FrozenModel):
    """A ServiceAccount token for one member cluster's API server."""

    cluster: str = Field(min_length=1)
    """Member cluster name."""
    server: str = Field(pattern=r"^https?://")
    """API server URL."""
    token: SecretStr
    """Bearer token of FOOT's ServiceAccount in that cluster."""
    ca_pem: str | None = None
    """PEM of the CA that signed the API server's certificate (None: system trust)."""
    insecure_skip_tls_verify: bool = False
    """Skip TLS verification (only when the joining kubeconfig said so)."""
    tls_server_name: str | None = None
    """Server name to verify the certificate against, when it differs from the URL's host."""
    service_account: str = "foot/foot-controller"
    """`namespace/name` of the ServiceAccount the token belongs to."""
