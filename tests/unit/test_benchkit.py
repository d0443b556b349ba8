"""The benchmarks' helper module: one percentile, one figure and its JSON line, /proc sampling."""

from __future__ import annotations

import asyncio
import json
import os
import time

import pytest

from benchkit import (
    Figure,
    cpu_seconds,
    json_line,
    percentile,
    rss_mb,
    table,
    until_answers,
    wait_for,
)


def test_percentile_is_the_nearest_rank_on_n_minus_1() -> None:
    ten = [float(n) for n in range(1, 11)]
    assert percentile(ten, 0.5) == 5.0  # index round(4.5) == 4: the 5th of 10
    assert percentile(ten, 0.0) == 1.0
    assert percentile(ten, 1.0) == 10.0
    hundred = [float(n) for n in range(100)]
    assert percentile(hundred, 0.99) == 98.0  # not the maximum: one outlier is not the p99
    assert percentile(hundred, 0.5) == 50.0  # index round(49.5) == 50 (halves go to even)
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0  # unsorted input, odd count: the median
    assert percentile([7.0], 0.99) == 7.0


def test_percentile_refuses_no_samples_and_fractions_outside_0_to_1() -> None:
    with pytest.raises(ValueError, match="no samples"):
        percentile([], 0.5)
    with pytest.raises(ValueError, match="not within"):
        percentile([1.0], 99)


def test_a_figure_knows_its_goal_in_either_direction() -> None:
    latency = Figure("p99", 0.8, "s", 1.0)
    assert latency.meets_goal() is True
    assert latency.goal_text() == "<= 1"
    rate = Figure("rate", 900, "1/s", 1000.0, higher_is_better=True)
    assert rate.meets_goal() is False
    assert rate.goal_text() == ">= 1000"
    assert Figure("count", 3, "n").meets_goal() is None


def test_the_json_line_has_the_five_fields_and_rounds_floats() -> None:
    line = json.loads(json_line("bus", Figure("layer_p99_latency_ms", 1.234567, "ms", 25.0)))
    assert line == {
        "bench": "bus",
        "metric": "layer_p99_latency_ms",
        "value": 1.2346,
        "unit": "ms",
        "goal": 25.0,
    }
    assert json.loads(json_line("x", Figure("n", 12, "count")))["value"] == 12
    assert json.loads(json_line("x", Figure("n", 12, "count")))["goal"] is None


def test_the_table_has_a_row_per_figure_with_goal_and_verdict() -> None:
    header, met, missed, plain = table(
        [
            Figure("fast", 0.5, "s", 1.0),
            Figure("slow_rate", 10, "1/s", 20.0, higher_is_better=True),
            Figure("size", 3.5, "MB"),
        ]
    )
    assert header.split() == ["metric", "value", "unit", "goal", "met"]
    assert met.split() == ["fast", "0.5", "s", "<=", "1", "yes"]
    assert missed.split() == ["slow_rate", "10", "1/s", ">=", "20", "NO"]
    assert plain.split() == ["size", "3.5", "MB"]


def test_cpu_seconds_and_rss_of_this_process() -> None:
    before = cpu_seconds(os.getpid())
    started = time.process_time()
    while time.process_time() - started < 0.1:
        pass
    assert cpu_seconds(os.getpid()) - before >= 0.05
    assert rss_mb(os.getpid()) > 1
    assert rss_mb(os.getpid(), "VmHWM") >= rss_mb(os.getpid()) * 0.5
    with pytest.raises(RuntimeError, match="VmNothing"):
        rss_mb(os.getpid(), "VmNothing")


async def test_wait_for_returns_once_the_check_holds_and_times_out_otherwise() -> None:
    flag = asyncio.Event()
    asyncio.get_running_loop().call_later(0.02, flag.set)
    await wait_for(flag.is_set, within=5)
    with pytest.raises(TimeoutError):
        await wait_for(lambda: False, within=0.05)


async def test_until_answers_retries_failures_and_check_can_give_up() -> None:
    attempts: list[int] = []

    async def answers_on_the_third_try() -> None:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("not yet")

    await until_answers(answers_on_the_third_try, within=5, interval=0.001)
    assert len(attempts) == 3

    def exited() -> None:
        raise RuntimeError("the service exited")

    with pytest.raises(RuntimeError, match="exited"):
        await until_answers(answers_on_the_third_try, within=5, check=exited)
