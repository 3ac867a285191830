"""Root pytest configuration: loads the harness plugin.

With it, ``pytest scenarios/hopital --couloir hopital --sut reference`` runs a couloir
exactly as ``segur run`` does; without ``--couloir`` the plugin stays inert, so the
project's own tests (``make test``) are unaffected.
"""

pytest_plugins = ["segur.pytest_plugin"]
