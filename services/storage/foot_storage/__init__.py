"""FOOT storage service."""
