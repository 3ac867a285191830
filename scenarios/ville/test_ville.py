"""Binds the ville couloir's feature files to pytest (pytest-bdd needs one test module)."""

from pytest_bdd import scenarios

scenarios(".")
