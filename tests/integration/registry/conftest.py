"""Fixtures for the registry tests on a real nats-server and the simulator."""

from registry_support import log_lines, member_namespace, registry

__all__ = ["log_lines", "member_namespace", "registry"]
