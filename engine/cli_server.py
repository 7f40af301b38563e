"""The CLI's server options (issue 16): ``--server URL``, ``--server-model NAME`` and
``--allow-plain-http`` on every command that reads with a model; the API key comes from
``$LONGREAD_SERVER_API_KEY`` or the OS keyring (engine/server_config.py), never from the
command line (it would show in ``ps`` and the shell history)."""

from __future__ import annotations

import argparse
from typing import Any

from engine.runtime.backend import Backend
from engine.server_config import API_KEY_ENV, connect_server


def add_server_options(parser: Any) -> None:
    """Add the server options to one subcommand's parser."""
    group = parser.add_argument_group("inference server (instead of a local model)")
    group.add_argument(
        "--server",
        metavar="URL",
        help=f"read through an OpenAI-compatible server such as llama-server (API key: ${API_KEY_ENV} "
        "or the system keyring)",
    )
    group.add_argument("--server-model", metavar="NAME", help="the model's name on the server (default: its first)")
    group.add_argument(
        "--allow-plain-http",
        action="store_true",
        help="confirm plain http:// to a server outside this machine and private networks",
    )


def server_backend(args: argparse.Namespace) -> Backend | None:
    """The server backend the options ask for, or None to read locally.

    Raises:
        ConfigError, ModelError: the URL is refused or the server cannot be used (the
            message names the server).
    """
    url = getattr(args, "server", None)
    if not url:
        return None
    return connect_server(
        url, model=getattr(args, "server_model", None), allow_plain_http=bool(getattr(args, "allow_plain_http", False))
    )
