"""Where a server backend's settings come from (issue 16): the URL and model name the
user gives, and the API key from the environment or the OS keyring.

Contract:
- ``read_api_key(url)`` returns ``$LONGREAD_SERVER_API_KEY`` if set, else the key the OS
  keyring holds for service ``longread-server`` and the server URL (the ``keyring``
  library, optional: without it only the variable is read), else None.
- The key is handed to the backend and nowhere else: it is never stored in SQLite,
  written to the log, put in an exception message or exported (tests grep for it).
- ``connect_server`` builds the ``ServerBackend`` (which checks the URL and the server).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Final

from engine.runtime.server import ServerBackend

API_KEY_ENV: Final = "LONGREAD_SERVER_API_KEY"
KEYRING_SERVICE: Final = "longread-server"

log = logging.getLogger("longread.server")

KeyringGet = Callable[[str, str], str | None]


def _system_keyring() -> KeyringGet | None:
    try:
        import keyring  # optional: `pip install keyring` for the OS keyring
    except ImportError:
        return None
    get: KeyringGet = keyring.get_password
    return get


def read_api_key(
    url: str,
    *,
    environ: Mapping[str, str] | None = None,
    keyring_get: KeyringGet | None = None,
) -> str | None:
    """The API key for the server at ``url``: the environment's, else the keyring's.

    Args:
        environ: the environment to read (default: this process's).
        keyring_get: ``keyring.get_password`` or a stand-in (default: the OS keyring if
            the ``keyring`` library is installed).
    """
    env = os.environ if environ is None else environ
    key = env.get(API_KEY_ENV)
    if key:
        return key
    getter = keyring_get if keyring_get is not None else _system_keyring()
    if getter is None:
        return None
    try:
        return getter(KEYRING_SERVICE, url.rstrip("/")) or None
    except Exception as exc:  # keyring backends raise their own types (locked, no D-Bus)
        log.warning("The system keyring could not be read (%s); no API key is sent.", type(exc).__name__)
        return None


def connect_server(
    url: str,
    *,
    model: str | None = None,
    allow_plain_http: bool = False,
    api_key: str | None = None,
) -> ServerBackend:
    """Connect to the server at ``url`` with the key from ``read_api_key`` unless given.

    Raises:
        ConfigError: the URL is not allowed (plain HTTP to a public address unconfirmed).
        ModelError: the server is down, refuses the key, or does not serve ``model``.
    """
    key = api_key if api_key is not None else read_api_key(url)
    return ServerBackend(url, model=model, api_key=key, allow_plain_http=allow_plain_http)
