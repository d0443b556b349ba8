"""The fuzz suite (issue 15, acceptance 3): generated bad inputs sent to the admin HTTP API
(Hypothesis, and schemathesis from the published OpenAPI document), to `foot.api.apply` on
NATS and to the CLI's loader. One target for the whole suite: the scheduler and the
registry in processes of their own, as `foot up` runs them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from admin_support import AdminCredentials
from fuzz.fuzz_support import TALLY, FuzzTarget, LoopThread, running_target, summary_line


@pytest.fixture(scope="session")
def fuzz_target(
    tmp_path_factory: pytest.TempPathFactory, admin_credentials: AdminCredentials
) -> Iterator[FuzzTarget]:
    with running_target(tmp_path_factory.mktemp("fuzz-target"), admin_credentials) as target:
        yield target


@pytest.fixture(scope="session")
def fuzz_loop() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if any(TALLY.values()):
        terminalreporter.write_line(summary_line())
