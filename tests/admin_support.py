"""Admin HTTP credentials for tests, made the way `foot up` makes them: two token files,
mode 600, that services read through `admin_token_file` / `read_token_file`."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from foot_cli.up import write_token_file


@dataclass(frozen=True)
class AdminCredentials:
    admin_file: Path
    read_file: Path

    @property
    def admin(self) -> str:
        return self.admin_file.read_text().strip()

    @property
    def read(self) -> str:
        return self.read_file.read_text().strip()

    def settings(self) -> dict[str, object]:
        """Settings fields that give a service these tokens."""
        return {"admin_token_file": self.admin_file, "read_token_file": self.read_file}

    def admin_headers(self, content_type: str | None = None) -> dict[str, str]:
        return _headers(self.admin, content_type)

    def read_headers(self, content_type: str | None = None) -> dict[str, str]:
        return _headers(self.read, content_type)


def _headers(token: str, content_type: str | None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    return headers


def make_admin_credentials(directory: Path) -> AdminCredentials:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    admin_file, read_file = directory / "admin.token", directory / "read.token"
    write_token_file(admin_file, secrets.token_urlsafe(32))
    write_token_file(read_file, secrets.token_urlsafe(32))
    return AdminCredentials(admin_file, read_file)
