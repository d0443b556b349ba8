"""`foot-sim` / `python -m foot_sim`: serve N simulated member clusters until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import gc
import signal
import sys
from pathlib import Path

from foot_sim.files import write_private_file
from foot_sim.kubelet import NodeShape
from foot_sim.simulator import Simulator

_GC_THRESHOLD_GEN0 = 50_000


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="foot-sim", description=__doc__)
    parser.add_argument(
        "--clusters", type=int, default=3, help="number of virtual clusters (default 3)"
    )
    parser.add_argument(
        "--name-prefix", default="sim", help="clusters are named PREFIX-0, PREFIX-1, ..."
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    parser.add_argument(
        "--base-port", type=int, default=0, help="cluster i listens on BASE+i (default: any free)"
    )
    parser.add_argument(
        "--kubeconfig-dir", type=Path, default=Path(".foot/sim"), help="where kubeconfigs go"
    )
    parser.add_argument(
        "--admin-port", type=int, default=None, help="serve the /sim admin API on this port"
    )
    parser.add_argument(
        "--nodes", type=int, default=3, help="simulated nodes per cluster (default 3)"
    )
    parser.add_argument("--node-cpu", default="8", help="allocatable CPU per node (default 8)")
    parser.add_argument(
        "--node-memory", default="32Gi", help="allocatable memory per node (default 32Gi)"
    )
    parser.add_argument(
        "--node-pods", type=int, default=110, help="pod slots per node (default 110)"
    )
    parser.add_argument(
        "--no-tls", action="store_true", help="serve plain HTTP (kubectl then sends no token)"
    )
    parser.add_argument(
        "--ready-delay", type=float, default=1.0, help="seconds until placed replicas are ready"
    )
    return parser


async def _serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    simulator = Simulator(
        args.clusters,
        host=args.host,
        base_port=args.base_port,
        kubeconfig_dir=args.kubeconfig_dir,
        admin_port=args.admin_port,
        tls=not args.no_tls,
        name_prefix=args.name_prefix,
        nodes_per_cluster=args.nodes,
        node_shape=NodeShape(cpu=args.node_cpu, memory=args.node_memory, pods=args.node_pods),
        ready_delay=args.ready_delay,
    )
    async with simulator:
        # Stored objects are long-lived dicts: keep the cyclic collector from rescanning them
        # (full collections over 10,000s of objects are what would show as latency spikes).
        gc.freeze()
        gc.set_threshold(_GC_THRESHOLD_GEN0, 20, 20)
        out = sys.stdout
        for cluster in simulator.clusters:
            out.write(f"{cluster.name}\t{cluster.server}\t{cluster.kubeconfig_path}\n")
        if simulator.admin_url is not None:
            token_path = simulator.kubeconfig_dir / "admin-token"
            write_private_file(token_path, simulator.admin_token + "\n")
            out.write(f"admin\t{simulator.admin_url}/sim/clusters\t{token_path}\n")
        out.flush()
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.clusters < 1:
        raise SystemExit("--clusters must be at least 1")
    asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
