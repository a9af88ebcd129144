"""One error hierarchy for Tickwave, split by what the operator must do.

- ``ConfigurationError``: fatal; fix the configuration or the machine, then restart.
- ``ServiceError``: an embedded service could not start, stop or answer.
- ``ContractError``: bytes on the bus are not a valid message; quarantine them.
- ``DataQualityError``: a well-formed message carries impossible data; quarantine it.
- ``RetryableError``: transient; the caller may retry with backoff.
- ``OrderRejected``: a broker or the risk gate refused an order; never retried blindly.
"""

from __future__ import annotations


class TickwaveError(Exception):
    """Base of every error Tickwave raises on purpose."""


class ConfigurationError(TickwaveError):
    """The configuration or the machine is wrong; nothing can run until it is fixed."""


class ServiceError(TickwaveError):
    """An embedded service failed to start, stop or become ready."""


class ContractError(TickwaveError):
    """Bytes could not be decoded into a valid message.

    Attributes:
        reason: why decoding failed, suitable for a dead-letter record.
        raw: the offending bytes (possibly truncated by the caller before logging).
    """

    def __init__(self, reason: str, raw: bytes = b"") -> None:
        super().__init__(reason)
        self.reason = reason
        self.raw = raw


class DataQualityError(TickwaveError):
    """A message is well-formed but its content is impossible (e.g. ask < bid)."""


class RetryableError(TickwaveError):
    """A transient failure; retrying with backoff may succeed."""


class OrderRejected(TickwaveError):
    """An order was refused by the risk gate or the broker."""
