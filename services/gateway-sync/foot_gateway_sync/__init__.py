"""FOOT gateway-sync service."""
