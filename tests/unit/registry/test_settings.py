"""Registry settings: the checks across fields."""

from __future__ import annotations

import pytest

from foot_registry.settings import RegistrySettings


@pytest.mark.parametrize(("lease", "period"), [(1.0, 1.0), (0.5, 1.0)])
def test_lease_must_outlast_the_heartbeat_period(lease: float, period: float) -> None:
    with pytest.raises(ValueError, match="heartbeat_lease_seconds"):
        RegistrySettings(heartbeat_lease_seconds=lease, heartbeat_period_seconds=period)
