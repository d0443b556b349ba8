"""The registry's pure core: health transitions, liveness rules, status, onboarding plans.

Nothing here does I/O (no asyncio, no NATS, no HTTP, no Kubernetes client): every
function maps immutable snapshots (clusters, health, messages' fields, the time) to
decisions and new snapshots. The shell modules beside this package (`onboarding`,
`health_monitor`, `status_collector`, `routing`) carry them out.
"""
