"""FOOT scheduler service."""
