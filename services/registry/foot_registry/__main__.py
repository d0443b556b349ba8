"""`python -m foot_registry` / `foot-registry`: run the registry service."""

from __future__ import annotations

from foot.runtime.main import run_service
from foot_registry.service import RegistryService


def main() -> None:
    run_service(RegistryService)


if __name__ == "__main__":
    main()
