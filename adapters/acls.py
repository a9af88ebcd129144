"""The ACLs of a secured cluster, generated from the topic registry (``tickwave/topics.py``).

Each registered topic names the principals that write and read it; this module turns that
table into Kafka ACL bindings: WRITE for writers, READ for readers (both with DESCRIBE and
DESCRIBE_CONFIGS), READ on the consumer groups of each reading principal. Nothing else is allowed:
the embedded broker runs with ``allow.everyone.if.no.acl.found=false``, so a principal
with no entry (the analyst) reaches no topic at all.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)

from tickwave.config import Settings
from tickwave.errors import ServiceError
from tickwave.topics import (
    AUDIT,
    DATAFLOW,
    EXECUTION,
    EXECUTION_TRANSACTIONAL_ID,
    LOADER,
    OPERATOR,
    READER,
    topic_specs,
)

logger = logging.getLogger(__name__)

ANY_HOST = "*"
_RESOURCES = {
    "topic": ResourceType.TOPIC,
    "group": ResourceType.GROUP,
    "transactional_id": ResourceType.TRANSACTIONAL_ID,
}
# What a user of a topic may also look at: its metadata, and its configs (quixstreams checks them
# before it reads or writes, and refuses to start without DESCRIBE_CONFIGS).
_LOOK = ("DESCRIBE", "DESCRIBE_CONFIGS")


@dataclass(frozen=True, order=True)
class Grant:
    """One allowed operation: a principal may do ``operation`` on a topic, consumer group or transactional id."""

    principal: str
    resource: str  # "topic", "group" or "transactional_id"
    name: str
    operation: str  # "WRITE", "READ", "DESCRIBE" or "DESCRIBE_CONFIGS"
    is_prefix: bool = False

    def binding(self) -> AclBinding:
        """Return the Kafka ACL binding of this grant."""
        return AclBinding(
            _RESOURCES[self.resource],
            self.name,
            ResourcePatternType.PREFIXED if self.is_prefix else ResourcePatternType.LITERAL,
            f"User:{self.principal}",
            ANY_HOST,
            AclOperation[self.operation],
            AclPermissionType.ALLOW,
        )


def consumer_groups(settings: Settings) -> dict[str, tuple[tuple[str, bool], ...]]:
    """Return the consumer groups each reading principal owns, as (name, is_prefix): no two principals share one."""
    prefix = settings.kafka.topic_prefix
    execution = settings.execution.consumer_group
    return {
        # The dataflow assigns its partitions and commits nothing; it names this group only.
        DATAFLOW: ((f"{prefix}tickwave-streams-unused", True), ("tickwave-streams-unused", True)),
        LOADER: ((f"{prefix}tickwave-streams-loader", False),),
        EXECUTION: (
            (execution, False),
            (f"{execution}-prime-", True),
            (f"{execution}.fence", False),
            (f"{execution}.control.", True),
        ),
        AUDIT: ((f"{execution}-audit", False),),
        OPERATOR: (("tickwave-cli-", True),),
        READER: (("tickwave-tools-", True),),
    }


def tail_group(settings: Settings) -> str:
    """Return the consumer group a diagnostic read (``tickwave topics tail``) names: one its principal may use.

    The read joins no group and commits nothing, but the cluster still checks the group it names.
    """
    owned = consumer_groups(settings).get(settings.kafka.username or "", (("tickwave-tools-", True),))
    prefixes = [name for name, is_prefix in owned if is_prefix]
    return f"{prefixes[0]}tail" if prefixes else owned[0][0]


def grants(settings: Settings) -> list[Grant]:
    """Return every grant the registry implies, sorted (one table: the registry's writers and readers)."""
    prefix = settings.kafka.topic_prefix
    found: set[Grant] = set()
    groups = consumer_groups(settings)
    for spec in topic_specs(settings):
        name = spec.name(prefix)
        for principal in spec.writers:
            found |= {Grant(principal, "topic", name, operation) for operation in ("WRITE", *_LOOK)}
        for principal in spec.readers:
            found |= {Grant(principal, "topic", name, operation) for operation in ("READ", *_LOOK)}
            found |= {Grant(principal, "group", group, "READ", is_prefix) for group, is_prefix in groups[principal]}
    # The account fence (execution/fence.py): a transactional producer per account, ids under one prefix.
    fence = f"{prefix}{EXECUTION_TRANSACTIONAL_ID}"
    found |= {Grant(EXECUTION, "transactional_id", fence, grant, is_prefix=True) for grant in ("WRITE", "DESCRIBE")}
    return sorted(found)


def apply_acls(admin: AdminClient, settings: Settings, timeout_s: float = 30.0) -> int:
    """Create the registry's ACLs on the cluster (existing ones are kept); return how many were sent.

    Raises:
        ServiceError: when the cluster refuses them (the client is not a super user or has no ALTER on the cluster).
    """
    bindings = [grant.binding() for grant in grants(settings)]
    for binding, future in admin.create_acls(bindings, request_timeout=timeout_s).items():
        try:
            future.result(timeout=timeout_s)
        except KafkaException as exc:
            raise ServiceError(f"creating ACL {binding} failed: {exc.args[0].str()}") from exc
    wait_for_acls(admin, set(bindings), timeout_s)
    logger.info("applied %d ACLs from the topic registry", len(bindings))
    return len(bindings)


def wait_for_acls(admin: AdminClient, bindings: set[AclBinding], timeout_s: float) -> None:
    """Return once the broker answers with every one of ``bindings`` (its authorizer enforces what it lists).

    CreateAcls returns when the controller has committed them; a broker applies them from the
    metadata log a moment later, and a client that writes in between is refused (seen under load
    right after ``tickwave up``). DescribeAcls is answered from the broker's own authorizer.

    Raises:
        ServiceError: when they are not all listed within ``timeout_s``.
    """
    everything = AclBindingFilter(
        ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY, AclPermissionType.ANY
    )
    deadline = time.monotonic() + timeout_s
    while True:
        listed = set(admin.describe_acls(everything, request_timeout=timeout_s).result(timeout=timeout_s))
        missing = bindings - listed
        if not missing:
            return
        if time.monotonic() > deadline:
            raise ServiceError(
                f"{len(missing)} ACLs not in effect after {timeout_s:.0f} s, e.g. {min(map(str, missing))}"
            )
        time.sleep(0.1)
