"""The bus: FOOT's typed layer over NATS JetStream (streams, KV buckets, consumers)."""

from foot.bus.connection import Bus
from foot.bus.consumer import Consumer, ConsumerSpec, Delivery
from foot.bus.kv import Entry, KvStore
from foot.bus.reconcile import Informer, ReconcileQueue
from foot.catalog import BucketSpec, StreamSpec

__all__ = [
    "BucketSpec",
    "Bus",
    "Consumer",
    "ConsumerSpec",
    "Delivery",
    "Entry",
    "Informer",
    "KvStore",
    "ReconcileQueue",
    "StreamSpec",
]
