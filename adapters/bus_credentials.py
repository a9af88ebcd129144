"""The embedded broker's credentials: generated once under the state dir, read by its clients.

The broker (``app/services/kafka``) creates them at its first start: one random password
per principal and the CA that signed its certificate, exported as PEM. Clients of the
embedded broker read their principal's password and the CA from here when the settings
leave them unset. Every file is the owner's only (0600, in a 0700 folder); no secret is
ever passed on a command line or in an environment variable.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from tickwave.errors import ConfigurationError

ADMIN = "admin"  # the embedded broker's super user: the broker itself, `tickwave up`, `tickwave topics`


class EmbeddedCredentials:
    """The folder of the embedded broker's passwords and CA for one state dir."""

    def __init__(self, state_path: Path, folder: Path | None = None) -> None:
        """Use ``folder``, or ``<state dir>/secrets/kafka`` when it is None."""
        self.folder = folder or state_path / "secrets" / "kafka"

    @property
    def ca_file(self) -> Path:
        """The PEM certificate of the CA that signed the broker's certificate."""
        return self.folder / "ca.pem"

    def _password_path(self, name: str) -> Path:
        return self.folder / f"{name}.password"

    def password(self, principal: str) -> str:
        """Return the generated password of ``principal``.

        Raises:
            ConfigurationError: when the embedded broker has no such principal.
        """
        if not principal:
            raise ConfigurationError(
                f"the secured embedded Kafka needs to know who this process is: set kafka.username "
                f"(TICKWAVE_KAFKA_USERNAME) to one of its principals ({self._known()})"
            )
        try:
            return self._password_path(principal).read_text().strip()
        except FileNotFoundError:
            raise ConfigurationError(
                f"the embedded Kafka has no principal {principal!r} (known: {self._known()}); "
                f"set kafka.username to one of them"
            ) from None

    def _known(self) -> str:
        # The principals that have a password, for an error message (the folder is listed only then).
        names = sorted(path.stem for path in self.folder.glob("*.password") if not path.stem.startswith("."))
        return ", ".join(names) or "none yet"

    def ensure_password(self, name: str) -> str:
        """Return the password ``name`` has, generating and storing it (0600) the first time."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o700)
        path = self._password_path(name)
        if not path.exists():
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(secrets.token_urlsafe(24))
        return path.read_text().strip()
