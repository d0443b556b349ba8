"""`python -m foot_storage` / `foot-storage`: run the storage service."""

from __future__ import annotations

from foot.runtime.main import run_service
from foot_storage.service import StorageService


def main() -> None:
    run_service(StorageService)


if __name__ == "__main__":
    main()
