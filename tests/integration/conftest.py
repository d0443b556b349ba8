"""Fixtures shared by the integration tests of this folder (a module's own fixture of the
same name wins)."""

from bad_input_support import owning_scheduler

__all__ = ["owning_scheduler"]
