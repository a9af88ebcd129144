"""The ACLs of the topic registry are enforced by the broker before anything starts that needs them.

CreateAcls returns once the controller has committed the bindings; the broker applies them
a moment later, and a client writing in between is refused. ``apply_acls`` returns only
once the broker lists every binding (``wait_for_acls``), on this module's own secured broker.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from adapters.acls import Grant, grants, wait_for_acls
from adapters.bus import make_admin, resolve_admin
from adapters.bus_credentials import ADMIN
from adapters.endpoints import Endpoint
from tests.integration.platform.test_kafka_sasl_ssl import as_principal, secured_broker, secured_state
from tickwave.errors import ServiceError
from tickwave.topics import ANALYST

__all__ = ["secured_broker", "secured_state"]  # the fixtures, used by name


def test_acls_when_applied_then_in_effect_and_one_never_granted_is_waited_for_in_vain(
    secured_broker: Endpoint, secured_state: Path
) -> None:
    # The fixture's apply_acls returned once the broker listed (so enforces) every grant.
    settings = as_principal(secured_state, ADMIN)
    admin, granted = make_admin(resolve_admin(settings)), {grant.binding() for grant in grants(settings)}
    wait_for_acls(admin, granted, timeout_s=10.0)

    never = Grant(ANALYST, "topic", "never-granted", "READ").binding()
    started = time.monotonic()
    with pytest.raises(ServiceError, match="1 ACLs not in effect after 1 s"):
        wait_for_acls(admin, granted | {never}, timeout_s=1.0)
    assert time.monotonic() - started >= 1.0
