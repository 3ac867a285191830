"""Step definitions, one module per service socle, loaded as pytest plugins by segur.pytest_plugin."""
