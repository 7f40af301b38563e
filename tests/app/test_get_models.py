"""The "Get models" dialog against the local Hub (tests/hub_server.py): suggested models,
a repository's files with sizes, the planner's line, a download with progress and
cancel on the dialog's own lane; the downloaded model reaches the picker and the gauge."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QItemSelectionModel

from app.views.get_models import FileFacts, GetModelsDialog
from engine.models.discover import discover_models
from engine.models.gguf import inspect_gguf
from engine.models.hub import Hub, HubFile, curated_models
from tests.hub_server import FakeHub

REPO = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF"
NAME = "smollm2-135m-instruct-q4_1.gguf"


@pytest.fixture
def hub(gguf_file: Path) -> Iterator[FakeHub]:
    server = FakeHub(repos={REPO: {NAME: gguf_file}}).start()
    yield server
    server.stop()


_open: list[GetModelsDialog] = []


@pytest.fixture(autouse=True)
def _close_dialogs() -> Iterator[None]:
    """Close every dialog (which stops its lane's thread) before Qt may delete it."""
    yield
    while _open:
        _open.pop().close()


def dialog_for(qtbot, endpoint: str, root: Path) -> GetModelsDialog:
    dialog = GetModelsDialog(make_hub=lambda: Hub(endpoint=endpoint), root=root)
    qtbot.addWidget(dialog)
    _open.append(dialog)
    return dialog


def make_dialog(qtbot, hub: FakeHub, root: Path) -> GetModelsDialog:
    return dialog_for(qtbot, hub.endpoint, root)


def list_and_plan(qtbot, dialog: GetModelsDialog) -> FileFacts:
    dialog.repo_edit.setText(REPO)
    with qtbot.waitSignal(dialog.facts_shown, timeout=30000) as shown:
        dialog.list_button.click()
    facts = shown.args[0]
    assert isinstance(facts, FileFacts)
    return facts


def test_lists_plans_and_downloads(qtbot, hub: FakeHub, tmp_path: Path, gguf_file: Path) -> None:
    root = tmp_path / "models"
    dialog = make_dialog(qtbot, hub, root)
    assert dialog.curated.count() == len(curated_models())
    assert "32,768-token window" in dialog.curated.item(0).text()

    facts = list_and_plan(qtbot, dialog)
    assert facts.file.name == NAME
    text = dialog.facts.text()
    assert "98 MB to download" in text and "free on disk" in text
    assert "Fits in the memory free now" in text and "trained window 8,192" in text
    assert dialog.download_button.isEnabled()

    with qtbot.waitSignal(dialog.model_downloaded, timeout=60000) as done:
        dialog.download_button.click()
        assert dialog.cancel_button.isEnabled()
    path = done.args[0]
    assert path == root / "HuggingFaceTB" / "SmolLM2-135M-Instruct-GGUF" / NAME
    assert path.read_bytes() == gguf_file.read_bytes()
    assert dialog.progress.value() == 1000
    assert "Ready:" in dialog.status.text()
    assert not dialog.cancel_button.isEnabled()


def test_main_thread_stays_free_and_cancel_keeps_the_bytes(qtbot, hub: FakeHub, tmp_path: Path) -> None:
    root = tmp_path / "models"
    dialog = make_dialog(qtbot, hub, root)
    list_and_plan(qtbot, dialog)
    hub.chunk_delay = 0.01  # about 6 MB/s: the download takes a while
    partial = root / ".partial" / REPO.replace("/", "--") / (NAME + ".part")
    dialog.download_button.click()
    # The event loop keeps turning while the lane downloads: progress arrives as signals.
    qtbot.waitUntil(lambda: " of " in dialog.status.text() and "left" in dialog.status.text(), timeout=30000)
    assert 0 < dialog.progress.value() < 1000
    # Planning another file still answers during the download (its own lane).
    with qtbot.waitSignal(dialog.facts_shown, timeout=30000):
        dialog.files.setCurrentRow(-1)
        dialog.files.setCurrentRow(0)
    assert dialog.download_lane.busy
    dialog.cancel_button.click()
    assert "Cancelled" in dialog.status.text()  # said at once, before the lane stops
    assert dialog.download_button.isEnabled() and not dialog.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: not dialog.download_lane.busy, timeout=30000)
    kept = partial.stat().st_size
    assert 0 < kept < Path(hub.repos[REPO][NAME]).stat().st_size
    # Downloading again resumes from the kept bytes.
    hub.chunk_delay = 0.0
    with qtbot.waitSignal(dialog.model_downloaded, timeout=60000):
        dialog.download_button.click()
    assert hub.downloads(NAME)[-1].range == f"bytes={kept}-"


def test_offline_and_unknown_repository_are_said_in_the_dialog(qtbot, hub: FakeHub, tmp_path: Path) -> None:
    dialog = make_dialog(qtbot, hub, tmp_path / "models")
    dialog.repo_edit.setText("nobody/nothing")
    with qtbot.waitSignal(dialog.failed, timeout=30000) as failed:
        dialog.list_button.click()
    assert "There is no repository nobody/nothing" in failed.args[0]
    assert dialog.status.text() == failed.args[0]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens here once closed
    offline = dialog_for(qtbot, dead, tmp_path / "models")
    offline.repo_edit.setText(REPO)
    with qtbot.waitSignal(offline.failed, timeout=30000) as said:
        offline.list_button.click()
    assert "Cannot reach the Hugging Face Hub" in said.args[0]
    assert offline.files.count() == 0 and not offline.download_button.isEnabled()


def test_picker_lists_the_download_and_the_gauge_plans_it(
    qtbot, make_window, hub: FakeHub, home: Path, fact_pdf: Path
) -> None:
    window = make_window(discover=lambda: discover_models(home=home, env={"LONGREAD_HOME": str(home)}))
    window.hub_endpoint = hub.endpoint
    dialog = window.open_get_models()
    _open.append(dialog)
    assert dialog.root == home / "models"
    list_and_plan(qtbot, dialog)
    with qtbot.waitSignal(window.model_changed, timeout=60000) as changed:
        dialog.download_button.click()
    path = changed.args[0]
    assert path == home / "models" / "HuggingFaceTB" / "SmolLM2-135M-Instruct-GGUF" / NAME
    # Listed by discovery (Longread's models folder), whichever lane answers first.
    qtbot.waitUntil(
        lambda: any(e.path == path and e.source == "Longread" for e in window.picker.entries), timeout=30000
    )
    entry = next(e for e in window.picker.entries if e.path == path)
    assert entry.summary is not None
    assert entry.summary.context_length == inspect_gguf(path).context_length
    assert NAME in window.picker.combo.currentText()
    with qtbot.waitSignal(window.measured, timeout=60000) as measured:
        window.add_paths([fact_pdf])
    assert measured.args[0].plan.model.path == path  # the gauge planned the downloaded model


def test_the_picker_offers_the_dialog(qtbot, make_window, hub: FakeHub) -> None:
    window = make_window()
    window.hub_endpoint = hub.endpoint
    combo = window.picker.combo
    qtbot.waitUntil(lambda: combo.findData("__get__") >= 0, timeout=30000)  # filled once the models are listed
    index = combo.findData("__get__")
    assert index >= 0 and "Get models" in combo.itemText(index)
    with qtbot.waitSignal(window.picker.get_requested, timeout=5000):
        window.picker._on_combo_activated(index)
    qtbot.waitUntil(lambda: isinstance(getattr(window, "get_models", None), GetModelsDialog), timeout=5000)
    _open.append(window.get_models)


def test_hubfile_is_what_the_list_holds(qtbot, hub: FakeHub, tmp_path: Path) -> None:
    dialog = make_dialog(qtbot, hub, tmp_path / "models")
    dialog.repo_edit.setText(REPO)
    with qtbot.waitSignal(dialog.files_listed, timeout=30000) as listed:
        dialog.list_button.click()
    (file,) = listed.args[0]
    assert isinstance(file, HubFile) and dialog.selected_file() == file
    assert "98 MB" in dialog.files.item(0).text()


def test_real_gauge_plans_the_downloaded_model(qtbot, make_real_window, hub: FakeHub, home: Path) -> None:
    window = make_real_window(discover=lambda: discover_models(home=home, env={"LONGREAD_HOME": str(home)}))
    window.hub_endpoint = hub.endpoint
    dialog = window.open_get_models()
    _open.append(dialog)
    list_and_plan(qtbot, dialog)
    with qtbot.waitSignal(window.model_changed, timeout=60000) as changed:
        dialog.download_button.click()
    path = changed.args[0]
    sample = Path(__file__).resolve().parents[2] / "resources" / "sample" / "harbor-lease-dispute.md"
    with qtbot.waitSignal(window.measured, timeout=120000) as measured:
        window.add_paths([sample])
    plan = measured.args[0].plan
    info = inspect_gguf(path)
    assert plan.model.path == path and plan.model.tensor_bytes == info.tensor_bytes
    assert plan.corpus_tokens > 1000  # counted with the downloaded model's own vocabulary
    assert "Fits" in window.gauge.verdict.text()


def test_choosing_a_suggested_model_lists_it_and_selects_its_recommended_file(
    qtbot, tmp_path: Path, gguf_file: Path
) -> None:
    qwen = curated_models()[0]
    files = {
        name: gguf_file
        for name in ("qwen2.5-1.5b-instruct-q2_k.gguf", qwen.recommended, "qwen2.5-1.5b-instruct-q8_0.gguf")
    }
    server = FakeHub(repos={qwen.repo: files}).start()
    try:
        dialog = dialog_for(qtbot, server.endpoint, tmp_path / "models")
        # Focus makes the first row current without selecting it: nothing is listed for that.
        dialog.curated.setCurrentRow(0, QItemSelectionModel.SelectionFlag.NoUpdate)
        qtbot.wait(50)
        assert dialog.repo_edit.text() == "" and not server.log
        with qtbot.waitSignal(dialog.facts_shown, timeout=30000) as shown:
            dialog.curated.item(0).setSelected(True)
        assert dialog.repo_edit.text() == qwen.repo
        assert dialog.files.count() == 3
        assert shown.args[0].file.name == qwen.recommended == dialog.selected_file().name
    finally:
        server.stop()
