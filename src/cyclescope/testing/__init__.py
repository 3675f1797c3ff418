"""Support for the pytest plugin: the run's findings, the baseline file, objects a test left behind."""
