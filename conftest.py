"""Root pytest configuration: loads the harness plugin for couloir scenarios.

The harness plugin (fixtures for the test PKI, the mocks, the SUT, and the verdict
recorder) is registered by `segur run` itself; this file keeps `pytest scenarios/`
working from a checkout with the same plugin.
"""
