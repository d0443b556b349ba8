"""The storage service's pure core: naming, planning, the provisioning state machine, delivery.

Nothing here does I/O: every function maps immutable snapshots (claims,
provisioning records, clusters, bindings) to decisions and new snapshots.
"""
