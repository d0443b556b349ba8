"""What the registry's onboarding, health monitor and status collector share.

The service builds it once in `setup` and hands the same one to each of them, so the
three never disagree about which roster, bucket or member-client factory they use.
"""

from __future__ import annotations

from dataclasses import dataclass

from foot.bus import KvStore
from foot.credentials import CredentialStore
from foot.secrets import SecretBox
from foot_registry.clusters import ClusterStore, Roster
from foot_registry.member import KubeFactory
from foot_registry.settings import RegistrySettings


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistryParts:
    roster: Roster
    """The clusters by name and their health, as this process knows them."""
    store: ClusterStore
    """The clusters bucket, written with optimistic concurrency."""
    credentials: CredentialStore
    """The push clusters' sealed kubeconfigs."""
    agents_kv: KvStore
    """The pull clusters' agent records (bootstrap token, public key)."""
    box: SecretBox
    """The installation's key: seals credentials and agent records."""
    settings: RegistrySettings
    make_kube: KubeFactory
    """How a client of a member cluster is made (looked up at each call)."""
