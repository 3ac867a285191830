"""Couloir hopital."""
