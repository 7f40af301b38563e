"""``longread memory`` and ``ask --no-memory`` through the CLI's own ``main`` (fake backend
libraries are not reachable from the command line, so this works on the store alone, and
on a session written through a fake ``Library`` first)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.cli import main
from engine.runtime.fake import FakeBackend
from tests.conftest import fake_library, text_pages_file


def test_memory_commands_list_show_add_pin_edit_forget(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    library = fake_library(home, tmp_path, backend=FakeBackend(["The code is 482913 [lease.txt p.1]."]))
    docs, _ = library.add_documents([text_pages_file(tmp_path / "lease.txt", ["The code is 482913. " * 20])])
    from engine.corpus import Corpus

    result = library.ask(Corpus(tuple(docs)), "What is the code?")
    library.close()

    assert main(["memory", "add", "I act for the tenant.", "--session", str(result.session_id)]) == 0
    assert main(["memory", "add", "Answer in Russian.", "--pin"]) == 0
    assert main(["memory", "list"]) == 0
    out = capsys.readouterr().out
    assert "Remembered as entry 2." in out and "Remembered as entry 3." in out
    lines = [line for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert [line.split()[0] for line in lines] == ["1", "2", "3"]
    assert "asked" in lines[0] and "What is the code?" in lines[0] and "pinned" in lines[2]

    assert main(["memory", "show", "1"]) == 0
    shown = capsys.readouterr().out
    assert "Answer: The code is 482913 [lease.txt p.1]." in shown and "Citations: lease.txt p.1" in shown
    assert main(["memory", "list", "--session", str(result.session_id)]) == 0
    assert [ln.split()[0] for ln in capsys.readouterr().out.splitlines() if ln.strip()] == ["1", "2", "3"]
    assert main(["memory", "pin", "2"]) == 0 and main(["memory", "edit", "2", "I act for the landlord."]) == 0
    assert main(["memory", "list", "--search", "landlord"]) == 0
    out = capsys.readouterr().out
    assert "Entry 2 pinned." in out and "I act for the landlord." in out and "tenant" not in out.split("changed")[1]
    assert main(["memory", "forget", "2"]) == 0
    assert main(["memory", "show", "2"]) == 1
    captured = capsys.readouterr()
    assert "Entry 2 forgotten" in captured.out and "There is no memory entry 2." in captured.err
    assert main(["memory", "add", "Floating."]) == 1
    assert "no session would carry it" in capsys.readouterr().err
