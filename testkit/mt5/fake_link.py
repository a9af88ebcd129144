"""The IPC link of the fake ``MetaTrader5`` terminal: attach, log in, fail, and record every call.

Every call of the package returns ``None`` (or ``False``) on failure and leaves
``(code, description)`` in :meth:`FakeTerminalLink.last_error`; calls made before
:meth:`FakeTerminalLink.initialize` fail with ``(-10004, 'No IPC connection')``.

Adding a call (the market data and trading fakes do): start it with
``if not self._enter("order_send", ...): return None`` (connection check, injected
faults, call log), finish with ``self._succeed()`` or ``return self._fail(code)``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from adapters.mt5.api import Constants
from testkit.mt5.fake_records import DESCRIPTIONS, AccountInfo, TerminalInfo


@dataclass
class _Fault:
    call: str
    code: int
    remaining: int


class FakeTerminalLink(Constants):
    """The fake terminal's link, login and fault injection, without symbols or trading.

    Args:
        terminal: what ``terminal_info`` reports.
    """

    def __init__(self, terminal: TerminalInfo | None = None) -> None:
        self.terminal = terminal or TerminalInfo()
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.initialize_count = 0
        self._accounts: dict[int, tuple[str, str]] = {}
        self._account: AccountInfo | None = None
        self._is_attached = False
        self._disconnect_code = self.RES_E_INTERNAL_FAIL_CONNECT
        self._startup_failures = 0
        self._faults: deque[_Fault] = deque()
        self._last_error: tuple[int, str] = (self.RES_S_OK, DESCRIPTIONS[self.RES_S_OK])

    # ----------------------------------------------------------------------------------
    # Test controls (not part of the package)
    # ----------------------------------------------------------------------------------

    def add_account(self, login: int, password: str, server: str) -> None:
        """Accept ``login``/``password`` on ``server``."""
        self._accounts[login] = (password, server)

    def disconnect(self, code: int = Constants.RES_E_INTERNAL_FAIL_CONNECT) -> None:
        """Break the IPC link: every call fails with ``code`` until :meth:`initialize` succeeds."""
        self._is_attached = False
        self._disconnect_code = code

    def restart_terminal(self, startup_failures: int = 2) -> None:
        """Simulate a terminal restart: the link breaks and the next ``initialize`` calls time out."""
        self.disconnect(self.RES_E_INTERNAL_FAIL_CONNECT)
        self._startup_failures = startup_failures

    def fail_next(self, call: str, code: int, times: int = 1) -> None:
        """Make the next ``times`` calls of ``call`` fail with ``code``."""
        self._faults.append(_Fault(call, code, times))

    @property
    def is_attached(self) -> bool:
        """True while a client is attached over IPC."""
        return self._is_attached

    # ----------------------------------------------------------------------------------
    # Plumbing shared by every call (and by subclasses adding calls)
    # ----------------------------------------------------------------------------------

    def _enter(self, call: str, *args: Any, needs_link: bool = True, **kwargs: Any) -> bool:
        """Record the call; return False (with last_error set) if it must fail."""
        self.calls.append((call, args, kwargs))
        for fault in self._faults:
            if fault.call == call and fault.remaining > 0:
                fault.remaining -= 1
                if fault.code in (self.RES_E_INTERNAL_FAIL_CONNECT, self.RES_E_INTERNAL_FAIL_TIMEOUT):
                    self._is_attached = False
                    self._disconnect_code = fault.code
                self._fail(fault.code)
                return False
        if needs_link and not self._is_attached:
            self._fail(self._disconnect_code)
            return False
        return True

    def _fail(self, code: int, description: str | None = None) -> None:
        self._last_error = (code, description or DESCRIPTIONS.get(code, "Terminal: error"))

    def _succeed(self) -> None:
        self._last_error = (self.RES_S_OK, DESCRIPTIONS[self.RES_S_OK])

    # ----------------------------------------------------------------------------------
    # The package's API: the link, the login, the terminal and the account
    # ----------------------------------------------------------------------------------

    def initialize(
        self,
        path: str | None = None,
        /,
        *,
        login: Any = None,  # the package wants an int; anything else is "Invalid params"
        password: str | None = None,
        server: str | None = None,
        timeout: int | None = None,
        portable: bool = False,
    ) -> bool:
        """Attach to the terminal; log in when ``login`` is given."""
        if not self._enter("initialize", path, needs_link=False, login=login, server=server, timeout=timeout):
            return False
        self.initialize_count += 1
        if self._startup_failures > 0:
            self._startup_failures -= 1
            self._fail(self.RES_E_INTERNAL_FAIL_TIMEOUT)
            return False
        if login is not None and not isinstance(login, int):
            self._fail(self.RES_E_INVALID_PARAMS)
            return False
        self._is_attached = True
        if login is not None and not self._authorize(login, password, server):
            self._is_attached = False
            return False
        if self._account is None:
            self._account = AccountInfo(login=0)
        self._succeed()
        return True

    def _authorize(self, login: Any, password: str | None, server: str | None) -> bool:
        expected = self._accounts.get(login)
        if expected is None or password != expected[0] or (server is not None and server != expected[1]):
            self._fail(self.RES_E_AUTH_FAILED)
            return False
        self._account = AccountInfo(login=login, server=expected[1])
        return True

    def login(self, login: Any, password: str | None = None, server: str | None = None, timeout: int = 60_000) -> bool:
        """Log in to another account."""
        if not self._enter("login", login, server=server, timeout=timeout):
            return False
        if not isinstance(login, int):
            self._fail(self.RES_E_INVALID_PARAMS)
            return False
        if not self._authorize(login, password, server):
            return False
        self._succeed()
        return True

    def shutdown(self) -> None:
        """Detach from the terminal."""
        self.calls.append(("shutdown", (), {}))
        self._is_attached = False
        self._disconnect_code = self.RES_E_INTERNAL_FAIL_CONNECT
        self._succeed()

    def last_error(self) -> tuple[int, str]:
        """Return ``(code, description)`` of the last call."""
        return self._last_error

    def version(self) -> tuple[int, int, str] | None:
        """Return ``(500, build, build date)``."""
        if not self._enter("version"):
            return None
        self._succeed()
        return (500, self.terminal.build, "13 Jan 2025")

    def terminal_info(self) -> TerminalInfo | None:
        """Return the terminal's state and settings."""
        if not self._enter("terminal_info"):
            return None
        self._succeed()
        return self.terminal

    def account_info(self) -> AccountInfo | None:
        """Return the account the terminal is logged in to."""
        if not self._enter("account_info"):
            return None
        self._succeed()
        return self._account
