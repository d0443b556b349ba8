"""FOOT's pull-mode agent: registers its cluster with the hub and heartbeats, dialling out
to NATS only (`foot agent`, `python -m foot_agent`, `foot-agent`)."""
