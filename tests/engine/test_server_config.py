"""The server backend's settings and the faults that need no server (issue 16): which URLs
are allowed, where the API key comes from and where it never goes, a server that is down."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from engine.errors import ConfigError, GenerationError, ModelError, ServerLost
from engine.runs import Status, status_for
from engine.runtime.server import ServerBackend, _Http, check_server_url
from engine.server_config import API_KEY_ENV, KEYRING_SERVICE, read_api_key
from tests.server_procs import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080",
        "http://localhost:8080/",
        "http://10.0.0.5:8080",
        "http://192.168.1.20",
        "http://[::1]:9",
    ],
)
def test_plain_http_is_allowed_to_this_machine_and_private_networks(url: str) -> None:
    assert check_server_url(url) == url.rstrip("/")


def test_plain_http_to_a_public_address_needs_a_confirmation() -> None:
    with pytest.raises(ConfigError) as refused:
        check_server_url("http://8.8.8.8:8080")
    assert "8.8.8.8" in refused.value.message and "--allow-plain-http" in refused.value.message
    assert check_server_url("http://8.8.8.8:8080", allow_plain_http=True) == "http://8.8.8.8:8080"
    assert check_server_url("https://8.8.8.8:8443/") == "https://8.8.8.8:8443"


@pytest.mark.parametrize("url", ["ftp://127.0.0.1", "127.0.0.1:8080", "http://", ""])
def test_a_url_that_is_not_http_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="is not a server URL"):
        check_server_url(url)


def test_the_key_comes_from_the_environment_first_then_the_keyring() -> None:
    asked: list[tuple[str, str]] = []

    def keyring_get(service: str, user: str) -> str | None:
        asked.append((service, user))
        return "from-the-keyring"

    env = {API_KEY_ENV: "from-the-env"}
    assert read_api_key("http://127.0.0.1:8080", environ=env, keyring_get=keyring_get) == "from-the-env"
    assert asked == []
    assert read_api_key("http://127.0.0.1:8080/", environ={}, keyring_get=keyring_get) == "from-the-keyring"
    assert asked == [(KEYRING_SERVICE, "http://127.0.0.1:8080")]
    assert read_api_key("http://127.0.0.1:8080", environ={}, keyring_get=lambda s, u: None) is None


def test_a_broken_keyring_sends_no_key_and_logs_no_secret(caplog: pytest.LogCaptureFixture) -> None:
    def locked(service: str, user: str) -> str | None:
        raise RuntimeError("locked: hunter2")

    with caplog.at_level(logging.WARNING, logger="longread.server"):
        assert read_api_key("http://127.0.0.1:8080", environ={}, keyring_get=locked) is None
    assert "could not be read" in caplog.text and "hunter2" not in caplog.text


def test_the_key_is_in_the_header_only_never_in_a_repr() -> None:
    http = _Http("http://127.0.0.1:9", "sk-very-secret")
    assert "sk-very-secret" not in repr(http)
    assert http._headers["Authorization"] == "Bearer sk-very-secret"


def test_a_server_that_is_down_is_named_in_the_message() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(ModelError) as down:
        ServerBackend(url, api_key="sk-very-secret")
    assert down.value.message == f"The server at {url} does not answer (connection refused). Is it running?"


def test_a_server_lost_mid_answer_marks_the_step_interrupted_with_its_message() -> None:
    status, message = status_for(ServerLost("The server at http://127.0.0.1:1 stopped mid-answer."))
    assert status is Status.INTERRUPTED and message is not None and "127.0.0.1:1" in message
    assert status_for(GenerationError("other"))[0] is Status.FAILED


def test_the_cli_names_a_server_that_is_down_and_refuses_public_plain_http(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("# A\n\nThe code is 42.\n")
    env = {"LONGREAD_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    url = f"http://127.0.0.1:{free_port()}"
    down = subprocess.run(
        [sys.executable, "-m", "engine.cli", "ask", str(doc), "-q", "Code?", "--server", url],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert down.returncode == 1
    assert f"The server at {url} does not answer" in down.stderr and "Traceback" not in down.stderr
    public = subprocess.run(
        [sys.executable, "-m", "engine.cli", "waves", str(doc), "-q", "Code?", "--server", "http://8.8.8.8:8080"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert public.returncode == 1 and "--allow-plain-http" in public.stderr
