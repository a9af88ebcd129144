"""Who asked for a registry change, named one way on every path that changes a stage.

Every registry change records an actor (``model_registry_events.actor``). The CLI and the
demo name the local account that ran them, from the process's real user id (not
``$USER``, which the caller sets), its host and the command; a Dagster run is named by
:func:`orchestration.client.launched_by` on top of :func:`local_user`.
"""

from __future__ import annotations

import getpass
import os
import socket


def local_user() -> str:
    """Return ``user@host`` of the account this process runs as (its real uid's name)."""
    try:
        import pwd

        name = pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):  # no pwd (Windows), or a uid without an entry (a container)
        name = getpass.getuser()
    return f"{name}@{socket.gethostname()}"


def by_command(command: str) -> str:
    """Return the actor of a ``tickwave <command>`` run by the local user."""
    return f"{local_user()} via `tickwave {command}`"
