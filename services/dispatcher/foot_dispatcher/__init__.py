"""FOOT dispatcher service."""
