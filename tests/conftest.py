"""Test-wide fixtures: the real embedded services, started once per run on free ports.

Fixtures live in ``tests/plugins/<area>.py``; add a module to ``pytest_plugins`` below.
"""

pytest_plugins = ["tests.plugins.services", "tests.plugins.warehouse", "tests.plugins.postgres"]
