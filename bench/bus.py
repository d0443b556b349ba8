"""Benchmark: publish → handle → ack through FOOT's bus layer and through raw nats-py.

    .venv/bin/python bench/bus.py [--messages N] [--rounds R] [--concurrency C]

One real nats-server (JetStream, file storage, like `foot up`). Each round sends
N messages to a stream from this process while a durable pull consumer in another
process handles them (as between two FOOT services), once with raw nats-py (fetch
a batch, handle each, ack) and once with FOOT's layer (`Bus.publish` with message
id, a producer span and trace headers; `Consumer` with bounded concurrency, a span
per message continuing the publisher's trace, ack after the handler; both sides
with the SDK tracer provider installed, as services run). Variants alternate
round by round on the same server so machine noise hits both alike; figures are
medians over rounds. Latency is per message, from the start of its publish to the
end of its ack (wall clock, same machine). The overhead is the layer's cost
relative to raw in the same run (goal: under 25 %).
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import json
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nats
from nats.aio.msg import Msg
from nats.js import api as js_api

from benchkit import Figure, bench_credentials, bench_nats_auth, percentile, report
from foot.bus import Bus, Consumer, ConsumerSpec, Delivery, StreamSpec
from foot.telemetry import configure_tracing
from foot_cli.natsserver import EmbeddedNats

STREAM = StreamSpec(name="BENCH", subjects=("bench.>",), description="benchmark messages")
OVERHEAD_GOAL_PERCENT = 25.0
_STAMP = struct.Struct("!q")
_published_at: contextvars.ContextVar[int] = contextvars.ContextVar("published_at")


@dataclass
class Round:
    """One variant's consumer: when each message's ack finished, relative to its publish."""

    expected: int
    latencies_ns: list[int] = field(default_factory=list)
    last_ack_ns: int = 0
    all_acked: asyncio.Event = field(default_factory=asyncio.Event)

    def acked(self, published_ns: int) -> None:
        self.last_ack_ns = time.time_ns()
        self.latencies_ns.append(self.last_ack_ns - published_ns)
        if len(self.latencies_ns) >= self.expected:
            self.all_acked.set()


@dataclass(frozen=True)
class Result:
    rate: float
    p50_ms: float
    p99_ms: float


# ---- consumer side (runs in its own process) ------------------------------------------


async def consume_raw(url: str, name: str, run: Round, concurrency: int) -> None:
    client = await nats.connect(url, user_credentials=str(bench_credentials()))
    js = client.jetstream()
    config = js_api.ConsumerConfig(
        durable_name=name,
        ack_policy=js_api.AckPolicy.EXPLICIT,
        max_ack_pending=max(concurrency * 4, 64),
        filter_subject=f"bench.{name}.>",
    )
    subscription = await js.pull_subscribe(
        f"bench.{name}.>", durable=name, stream=STREAM.name, config=config
    )
    print("ready", flush=True)

    async def handle(msg: Msg) -> None:
        (published_ns,) = _STAMP.unpack(msg.data[: _STAMP.size])
        await msg.ack()
        run.acked(published_ns)

    try:
        while not run.all_acked.is_set():
            try:
                batch = await subscription.fetch(concurrency, timeout=0.5)
            except nats.errors.TimeoutError:
                continue
            await asyncio.gather(*(handle(msg) for msg in batch))
    finally:
        await client.close()


async def consume_layer(url: str, name: str, run: Round, concurrency: int) -> None:
    bus = await Bus.connect(url, name="bench", credentials_file=bench_credentials())

    async def handle(delivery: Delivery) -> None:
        (published_ns,) = _STAMP.unpack(delivery.data[: _STAMP.size])
        _published_at.set(published_ns)  # read back in on_outcome, after the ack

    def on_outcome(outcome: str, _seconds: float) -> None:
        if outcome == "ok":
            run.acked(_published_at.get())

    spec = ConsumerSpec(
        stream=STREAM.name,
        durable=name,
        filter_subject=f"bench.{name}.>",
        concurrency=concurrency,
        fetch_timeout_seconds=0.5,
    )
    consumer = Consumer(bus, spec, handle, on_outcome=on_outcome)
    await consumer.subscribe()
    print("ready", flush=True)
    task = asyncio.create_task(consumer.run(), name="bench-layer-consumer")
    try:
        await run.all_acked.wait()
    finally:
        await consumer.drain(deadline_seconds=2)
        await task
        await bus.close()


def serve_consumer(variant: str, url: str, name: str, count: int, concurrency: int) -> None:
    """Child process: consume `count` messages, then print the figures as one JSON line."""
    configure_tracing("foot-bench-consumer")
    run = Round(count)
    consume = consume_raw if variant == "raw" else consume_layer
    asyncio.run(consume(url, name, run, concurrency))
    print(json.dumps({"latencies_ns": run.latencies_ns, "last_ack_ns": run.last_ack_ns}))


# ---- publisher side (this process) --------------------------------------------------------


def start_consumer(
    variant: str, url: str, name: str, count: int, concurrency: int
) -> subprocess.Popen[str]:
    argv = [sys.executable, __file__, "--serve-consumer", variant, "--url", url]
    argv += ["--name", name, "--messages", str(count), "--concurrency", str(concurrency)]
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None  # noqa: S101 - PIPE was asked for
    if child.stdout.readline().strip() != "ready":
        raise RuntimeError(f"the {variant} consumer did not start")
    return child


async def publish_raw(url: str, name: str, count: int) -> None:
    client = await nats.connect(url, user_credentials=str(bench_credentials()))
    js = client.jetstream()
    for index in range(count):
        payload = _STAMP.pack(time.time_ns()) + b"x" * 200
        await js.publish(f"bench.{name}.{index % 10}", payload)
    await client.close()


async def publish_layer(url: str, name: str, count: int) -> None:
    bus = await Bus.connect(url, name="bench", credentials_file=bench_credentials())
    for index in range(count):
        payload = _STAMP.pack(time.time_ns()) + b"x" * 200
        await bus.publish(f"bench.{name}.{index % 10}", payload, msg_id=f"{name}-{index}")
    await bus.close()


async def one_round(variant: str, url: str, name: str, count: int, concurrency: int) -> Result:
    child = await asyncio.to_thread(start_consumer, variant, url, name, count, concurrency)
    started_ns = time.time_ns()
    await (publish_raw if variant == "raw" else publish_layer)(url, name, count)
    output, _ = await asyncio.to_thread(child.communicate, None, 120)
    figures = json.loads(output.strip().splitlines()[-1])
    latencies: list[int] = figures["latencies_ns"]
    return Result(
        rate=count / ((figures["last_ack_ns"] - started_ns) / 1e9),
        p50_ms=percentile(latencies, 0.50) / 1e6,
        p99_ms=percentile(latencies, 0.99) / 1e6,
    )


def median_result(results: list[Result]) -> Result:
    return Result(
        rate=statistics.median(r.rate for r in results),
        p50_ms=statistics.median(r.p50_ms for r in results),
        p99_ms=statistics.median(r.p99_ms for r in results),
    )


async def run_bench(messages: int, rounds: int, concurrency: int) -> dict[str, Result]:
    with tempfile.TemporaryDirectory(prefix="foot-bench-bus-") as folder:
        server = EmbeddedNats(
            data_dir=Path(folder) / "nats",
            log_path=Path(folder) / "nats.log",
            auth=bench_nats_auth(Path(folder) / "home"),
        )
        server.start()
        try:
            bus = await Bus.connect(
                server.url, name="bench-setup", credentials_file=bench_credentials()
            )
            await bus.declare_stream(STREAM)
            await bus.close()
            results: dict[str, list[Result]] = {"raw": [], "layer": []}
            # One uncounted round of each first: stream files, connections and imports.
            for variant in ("raw", "layer"):
                await one_round(variant, server.url, f"warm{variant}", 500, concurrency)
            for number in range(rounds):
                order = ("raw", "layer") if number % 2 == 0 else ("layer", "raw")
                for variant in order:
                    name = f"{variant}{number}"
                    result = await one_round(variant, server.url, name, messages, concurrency)
                    results[variant].append(result)
                    print(
                        f"  round {number + 1} {variant:<5} {result.rate:>8.0f} msg/s "
                        f"p50 {result.p50_ms:.2f} ms p99 {result.p99_ms:.2f} ms",
                        flush=True,
                    )
        finally:
            server.stop()
    return {variant: median_result(found) for variant, found in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000, help="messages per round")
    parser.add_argument("--rounds", type=int, default=4, help="rounds per variant (median)")
    parser.add_argument("--concurrency", type=int, default=16, help="handlers at once")
    parser.add_argument("--serve-consumer", choices=("raw", "layer"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--name", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_consumer:
        serve_consumer(args.serve_consumer, args.url, args.name, args.messages, args.concurrency)
        return
    # Services run with the SDK tracer provider installed (spans exist even without an
    # exporter, so logs carry trace ids): measure the layer the way it runs.
    configure_tracing("foot-bench")
    print(f"bus: {args.messages} messages x {args.rounds} rounds, concurrency {args.concurrency}")
    medians = asyncio.run(run_bench(args.messages, args.rounds, args.concurrency))
    raw, layer = medians["raw"], medians["layer"]
    throughput_overhead = (raw.rate / layer.rate - 1) * 100
    latency_overhead = (layer.p50_ms / raw.p50_ms - 1) * 100

    print(f"\n{'variant':<8} {'msg/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for variant, result in medians.items():
        print(f"{variant:<8} {result.rate:>9.0f} {result.p50_ms:>8.2f} {result.p99_ms:>8.2f}")
    print(
        f"layer overhead: throughput {throughput_overhead:+.1f} %, "
        f"p50 latency {latency_overhead:+.1f} % (goal < {OVERHEAD_GOAL_PERCENT:.0f} %)"
    )
    figures = [
        Figure("raw_messages_per_second", raw.rate, "msg/s"),
        Figure("raw_p50_latency_ms", raw.p50_ms, "ms"),
        Figure("raw_p99_latency_ms", raw.p99_ms, "ms"),
        Figure("layer_messages_per_second", layer.rate, "msg/s"),
        Figure("layer_p50_latency_ms", layer.p50_ms, "ms"),
        Figure("layer_p99_latency_ms", layer.p99_ms, "ms"),
        Figure(
            "layer_throughput_overhead_percent", throughput_overhead, "%", OVERHEAD_GOAL_PERCENT
        ),
        Figure("layer_p50_latency_overhead_percent", latency_overhead, "%", OVERHEAD_GOAL_PERCENT),
    ]
    report("bus", figures)


if __name__ == "__main__":
    main()
