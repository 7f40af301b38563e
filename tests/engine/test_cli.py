"""The ``longread`` CLI as a user runs it: a real process, the real model, a real store."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import fact_pages, write_encrypted_pdf, write_pdf

ROOT = Path(__file__).parents[2]


def _run(
    home: Path, *args: str, timeout: float = 300, env: dict[str, str] | None = None, pass_fds: tuple[int, ...] = ()
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **(env or {}), "LONGREAD_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        pass_fds=pass_fds,
    )


@pytest.mark.slow  # a CLI child process reads with the bundled model
def test_ask_streams_an_answer_and_stores_the_session(fact_pdf: Path, home: Path) -> None:
    out = _run(home, "ask", str(fact_pdf), "-q", "What is the vault access code?", "--max-answer", "30")
    assert out.returncode == 0, out.stderr
    assert "482913" in out.stdout
    assert "Corpus: 1 document, 4 pages" in out.stderr
    assert "Reading:" in out.stderr and "tokens/s" in out.stderr
    assert "Session 1, question 1" in out.stderr

    listed = _run(home, "sessions")
    assert listed.returncode == 0
    assert "What is the vault access code?" in listed.stdout

    shown = _run(home, "show", "1")
    assert shown.returncode == 0
    assert "Q1: What is the vault access code?" in shown.stdout
    assert "482913" in shown.stdout
    assert "handbook.pdf (4 p.)" in shown.stdout


@pytest.mark.slow  # a CLI child process reads with the bundled model
def test_follow_up_in_a_session_uses_its_documents(fact_pdf: Path, home: Path) -> None:
    first = _run(home, "ask", str(fact_pdf), "-q", "What is the vault access code?", "--max-answer", "20")
    assert first.returncode == 0, first.stderr
    second = _run(home, "ask", "--session", "1", "-q", "Who signs in at the front desk?", "--max-answer", "20")
    assert second.returncode == 0, second.stderr
    assert "Session 1, question 2" in second.stderr
    db = sqlite3.connect(home / "longread.db")
    assert db.execute("SELECT count(*) FROM documents").fetchone()[0] == 1
    assert db.execute("SELECT count(*) FROM runs WHERE session_id = 1").fetchone()[0] == 2


def test_bad_file_exits_1_with_a_message_and_no_traceback(tmp_path: Path, home: Path) -> None:
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.7\n" + b"\x00garbage" * 50)
    out = _run(home, "ask", str(bad), "-q", "Anything?")
    assert out.returncode == 1
    assert "broken.pdf" in out.stderr
    assert "Traceback" not in out.stderr
    assert out.stdout == ""


@pytest.mark.slow  # a CLI child process reads with the bundled model
def test_corpus_that_does_not_fit_exits_1(fact_pdf: Path, home: Path) -> None:
    out = _run(home, "ask", str(fact_pdf), "-q", "What is the code?", "--ctx", "256")
    assert out.returncode == 1
    assert "does not fit" in out.stderr and "window 256" in out.stderr
    assert "Traceback" not in out.stderr
    assert "Read it in waves" not in out.stderr  # a 256-token window holds no wave either


def test_a_corpus_past_the_window_is_refused_with_the_waves_command(tmp_path: Path, home: Path) -> None:
    """Issue 13 item 6: no dead end: the refusal names the waves command and its time."""
    big = tmp_path / "big.txt"
    big.write_text(" ".join(f"Clause {i} says the rent is due on day {i % 28 + 1}." for i in range(4000)), "utf-8")
    out = _run(home, "ask", str(big), "-q", "What is the code?")
    assert out.returncode == 1 and "does not fit" in out.stderr, out.stderr
    assert re.search(
        rf"Read it in waves: longread waves {re.escape(str(big))} -q 'What is the code\?' \(about \d+ min, each next question about \d+ min\)",
        out.stderr,
    ), out.stderr
    # No machine speed is measured in a fresh home: the estimate says it is rough.
    assert "a rough guess: this machine's speed is not measured yet" in out.stderr


def test_plan_states_both_costs_of_reading_in_waves(tmp_path: Path, home: Path) -> None:
    """Issue 13 item 3: before starting, ``plan`` says what the first question and each
    next one cost in waves, and the snapshots' disk."""
    big = tmp_path / "big.txt"
    big.write_text(" ".join(f"Clause {i} says the rent is due on day {i % 28 + 1}." for i in range(4000)), "utf-8")
    out = _run(home, "plan", str(big), "--no-calibrate")
    assert re.search(
        r"Read in waves \(longread waves\): first question about \d+ min, each next one about \d+ min, "
        r"[\d.]+ [MG]B of snapshots at f16 \(\d+ waves of 8,192 tokens, ",
        out.stdout,
    ), out.stdout + out.stderr


def test_not_a_model_exits_1(fact_pdf: Path, home: Path, tmp_path: Path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_text("not a model", encoding="utf-8")
    out = _run(home, "ask", str(fact_pdf), "-q", "What is the code?", "--model", str(fake))
    assert out.returncode == 1
    assert "model.gguf" in out.stderr and "GGUF" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.slow  # a CLI child process reads with the bundled model
def test_ctrl_c_exits_130_and_keeps_the_question(tmp_path: Path, home: Path) -> None:
    pdf = write_pdf(tmp_path / "long.pdf", fact_pages(40))
    env = {**os.environ, "LONGREAD_HOME": str(home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "ask", str(pdf), "-q", "What is the code?"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 240
    for line in proc.stderr:  # wait until the model is reading
        if line.startswith("Reading:") or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    db = sqlite3.connect(home / "longread.db")
    rows = db.execute("SELECT question, status FROM runs").fetchall()
    assert rows == [("What is the code?", "cancelled")]
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.slow  # a CLI child process reads with the bundled model
def test_encrypted_pdf_takes_its_password_from_the_environment(tmp_path: Path, home: Path) -> None:
    pdf = write_encrypted_pdf(tmp_path / "sealed.pdf", owner="owner-secret", user="letmein")
    no_password = {"LONGREAD_PDF_PASSWORD": ""}
    locked = _run(home, "ask", str(pdf), "-q", "What is the vault access code?", env=no_password)
    assert locked.returncode == 1
    assert "sealed.pdf is encrypted: enter its password" in locked.stderr

    question = ["-q", "What is the vault access code?", "--max-answer", "8"]
    out = _run(home, "ask", str(pdf), *question, env={"LONGREAD_PDF_PASSWORD": "letmein"})
    assert out.returncode == 0, out.stderr
    assert "Corpus: 1 document, 3 pages" in out.stderr
    assert "letmein" not in out.stderr + out.stdout
    db = sqlite3.connect(home / "longread.db")
    assert "482913" in db.execute("SELECT text FROM pages WHERE number = 3").fetchone()[0]


@pytest.mark.slow  # a CLI child process reads with the bundled model
def test_encrypted_pdf_takes_its_password_from_a_file_descriptor(tmp_path: Path, home: Path) -> None:
    pdf = write_encrypted_pdf(tmp_path / "sealed.pdf", owner="owner-secret", user="pass word")
    read_end, write_end = os.pipe()
    os.write(write_end, b"pass word\n")
    os.close(write_end)
    try:
        question = ["-q", "What is the vault access code?", "--max-answer", "8"]
        fd = ["--password-fd", str(read_end)]
        out = _run(home, "ask", str(pdf), *question, *fd, env={"LONGREAD_PDF_PASSWORD": "wrong"}, pass_fds=(read_end,))
    finally:
        os.close(read_end)
    assert out.returncode == 0, out.stderr
    assert "Corpus: 1 document, 3 pages" in out.stderr

    bad = _run(home, "ask", str(pdf), "-q", "Anything?", "--password-fd", "97")
    assert bad.returncode == 1
    assert "Cannot read the password from file descriptor 97" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_a_password_value_on_the_command_line_is_refused(tmp_path: Path, home: Path) -> None:
    pdf = write_encrypted_pdf(tmp_path / "sealed.pdf", owner="owner-secret", user="letmein")
    for args in (["--password", "letmein"], ["--password=letmein"]):
        out = _run(home, "ask", str(pdf), "-q", "What is the code?", *args)
        assert out.returncode == 2  # argparse's usage error, before anything is read
        assert "--password takes no value" in out.stderr
        assert "LONGREAD_PDF_PASSWORD" in out.stderr and "--password-fd" in out.stderr
        assert "letmein" not in out.stderr
    assert not (home / "longread.db").exists()
    shown = _run(home, "ask", "--help")  # the help does not offer a value either
    assert "--password-fd N" in shown.stdout and "[PASSWORD]" not in shown.stdout


@pytest.mark.slow  # CLI child processes read with the bundled model
def test_a_reordered_corpus_is_assembled_and_read_fresh_on_request(tmp_path: Path, home: Path) -> None:
    filler = "The harbor office checks the mooring lines every morning and logs the tides. " * 6
    paths = []
    for name, fact in (("tides.txt", "The tide gauge serial is 731904."), ("cranes.txt", "The crane code is 562817.")):
        paths.append(tmp_path / name)
        paths[-1].write_text(f"Report on {name[:-4]}. {filler}{fact} {filler}", encoding="utf-8")
    question = ("-q", "What is the crane code?", "--max-answer", "12")
    first = _run(home, "ask", str(paths[0]), str(paths[1]), *question)
    assert first.returncode == 0, first.stderr
    assembled = _run(home, "ask", str(paths[1]), str(paths[0]), *question)
    assert assembled.returncode == 0, assembled.stderr
    assert re.search(
        r"Corpus assembled from 2 documents' snapshots in [\d.]+ s \([\d,]+ tokens read again\)", assembled.stderr
    )
    assert "--no-assemble reads it fresh." in assembled.stderr
    fresh = _run(home, "ask", str(paths[1]), str(paths[0]), *question, "--no-assemble")
    assert fresh.returncode == 0, fresh.stderr
    assert "assembled" not in fresh.stderr and "Saved a snapshot of the corpus" in fresh.stderr
