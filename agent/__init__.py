"""Deskhand's agent core: pure Python, no Qt."""

__version__ = "0.1.0"
