"""Per-cluster certificates and credentials, generated fresh for every run.

ECDSA P-256 keys throughout: generating one takes well under a millisecond where
RSA-2048 takes tens, and kube-apiserver accepts them for serving, client and
ServiceAccount-token signing.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Clients reach the apiserver on loopback; the in-cluster names and the first
# service IP are there so that certificates look like a real cluster's.
SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/16"
KUBERNETES_SERVICE_IP = "10.96.0.1"
SERVING_DNS_NAMES = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
ADMIN_USER = "kubernetes-admin"
ADMIN_GROUP = "system:masters"
FRONT_PROXY_CLIENT_NAME = "front-proxy-client"
# Test sessions last minutes; a week leaves room for a paused debugger.
VALIDITY = dt.timedelta(days=7)
# Tolerates a little clock skew between this process and the apiserver.
BACKDATE = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class ClusterPki:
    """Paths of one cluster's credentials (all inside its pki folder)."""

    directory: Path
    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path
    admin_key: Path
    front_proxy_ca_cert: Path
    front_proxy_client_cert: Path
    front_proxy_client_key: Path
    service_account_key: Path
    service_account_public_key: Path
    token_file: Path
    admin_token: str


def write_cluster_pki(directory: Path, cluster_name: str) -> ClusterPki:
    """Create a CA, serving, admin and front-proxy certificates, SA keys and a token file."""
    ca_key, ca_cert, serving_key, serving_cert = _ca_and_serving_cert(
        directory,
        f"foot-testenv-ca-{cluster_name}",
        "kube-apiserver",
        [
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address(KUBERNETES_SERVICE_IP)),
            *(x509.DNSName(name) for name in SERVING_DNS_NAMES),
        ],
    )
    admin_key, admin_cert = _new_leaf(
        ca_key,
        ca_cert,
        x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, ADMIN_GROUP),
                x509.NameAttribute(NameOID.COMMON_NAME, ADMIN_USER),
            ]
        ),
        ExtendedKeyUsageOID.CLIENT_AUTH,
    )
    front_proxy_ca_key, front_proxy_ca_cert = _new_ca(f"foot-testenv-front-proxy-ca-{cluster_name}")
    front_proxy_client_key, front_proxy_client_cert = _new_leaf(
        front_proxy_ca_key,
        front_proxy_ca_cert,
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, FRONT_PROXY_CLIENT_NAME)]),
        ExtendedKeyUsageOID.CLIENT_AUTH,
    )
    service_account_key = ec.generate_private_key(ec.SECP256R1())
    admin_token = secrets.token_hex(16)

    pki = ClusterPki(
        directory=directory,
        ca_cert=directory / "ca.crt",
        ca_key=directory / "ca.key",
        serving_cert=directory / "apiserver.crt",
        serving_key=directory / "apiserver.key",
        admin_cert=directory / "admin.crt",
        admin_key=directory / "admin.key",
        front_proxy_ca_cert=directory / "front-proxy-ca.crt",
        front_proxy_client_cert=directory / "front-proxy-client.crt",
        front_proxy_client_key=directory / "front-proxy-client.key",
        service_account_key=directory / "sa.key",
        service_account_public_key=directory / "sa.pub",
        token_file=directory / "tokens.csv",
        admin_token=admin_token,
    )
    _write_cert(pki.ca_cert, ca_cert)
    _write_key(pki.ca_key, ca_key)
    _write_cert(pki.serving_cert, serving_cert)
    _write_key(pki.serving_key, serving_key)
    _write_cert(pki.admin_cert, admin_cert)
    _write_key(pki.admin_key, admin_key)
    _write_cert(pki.front_proxy_ca_cert, front_proxy_ca_cert)
    _write_cert(pki.front_proxy_client_cert, front_proxy_client_cert)
    _write_key(pki.front_proxy_client_key, front_proxy_client_key)
    _write_key(pki.service_account_key, service_account_key)
    pki.service_account_public_key.write_bytes(
        service_account_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    # Static token file format: token,user,uid,"group1,group2".
    _write_secret(pki.token_file, f"{admin_token},token-admin,token-admin,{ADMIN_GROUP}\n".encode())
    return pki


@dataclass(frozen=True)
class ServerPki:
    """A CA and one serving certificate for loopback (127.0.0.1, localhost)."""

    ca_cert: Path
    serving_cert: Path
    serving_key: Path


def write_server_pki(directory: Path, name: str) -> ServerPki:
    """A fresh CA and a certificate `name` serves loopback with (e.g. a TLS nats-server)."""
    _, ca_cert, serving_key, serving_cert = _ca_and_serving_cert(
        directory,
        f"foot-testenv-ca-{name}",
        name,
        [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")],
    )
    pki = ServerPki(
        ca_cert=directory / "ca.crt",
        serving_cert=directory / f"{name}.crt",
        serving_key=directory / f"{name}.key",
    )
    _write_cert(pki.ca_cert, ca_cert)
    _write_cert(pki.serving_cert, serving_cert)
    _write_key(pki.serving_key, serving_key)
    return pki


def _ca_and_serving_cert(
    directory: Path, ca_name: str, common_name: str, alt_names: list[x509.GeneralName]
) -> tuple[
    ec.EllipticCurvePrivateKey, x509.Certificate, ec.EllipticCurvePrivateKey, x509.Certificate
]:
    """A private folder, a new CA, and a server certificate it signs (CA key and cert, serving
    key and cert); the caller writes what it needs."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    ca_key, ca_cert = _new_ca(ca_name)
    serving_key, serving_cert = _new_leaf(
        ca_key,
        ca_cert,
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]),
        ExtendedKeyUsageOID.SERVER_AUTH,
        subject_alt_names=alt_names,
    )
    return ca_key, ca_cert, serving_key, serving_cert


def _new_ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        _certificate_builder(name, name, key, ca=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _new_leaf(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    subject: x509.Name,
    usage: x509.ObjectIdentifier,
    subject_alt_names: list[x509.GeneralName] | None = None,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        _certificate_builder(subject, ca_cert.subject, key, ca=False)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if subject_alt_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(subject_alt_names), critical=False
        )
    return key, builder.sign(ca_key, hashes.SHA256())


def _certificate_builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, *, ca: bool
) -> x509.CertificateBuilder:
    """What CA and leaf certificates share: a fresh serial, valid from BACKDATE ago for
    VALIDITY, and a key usage that lets only a CA sign certificates and CRLs."""
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    _write_secret(
        path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def _write_secret(path: Path, content: bytes) -> None:
    """Write a file only its owner can read, without a window where others could."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)
