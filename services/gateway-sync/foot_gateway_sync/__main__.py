"""`python -m foot_gateway_sync` / `foot-gateway-sync`: run the gateway-sync service."""

from __future__ import annotations

from foot.runtime.main import run_service
from foot_gateway_sync.service import GatewaySyncService


def main() -> None:
    run_service(GatewaySyncService)


if __name__ == "__main__":
    main()
