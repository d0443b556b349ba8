"""FOOT member-cluster simulator: many virtual Kubernetes API servers in one asyncio process."""

from foot_sim.faults import Fault, FaultMode
from foot_sim.kubelet import NodeShape
from foot_sim.simulator import ClusterEndpoint, SimulatedCluster, Simulator

__all__ = ["ClusterEndpoint", "Fault", "FaultMode", "NodeShape", "SimulatedCluster", "Simulator"]
