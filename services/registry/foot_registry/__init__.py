"""FOOT registry service."""
