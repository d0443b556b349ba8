"""Fixtures for the registry tests on real kube-apiservers."""

from registry_support import log_lines, member_namespace, registry

__all__ = ["log_lines", "member_namespace", "registry"]
