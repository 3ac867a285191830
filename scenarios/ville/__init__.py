"""Couloir ville."""
