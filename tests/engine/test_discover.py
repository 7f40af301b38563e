"""Model discovery: a fake home folder laid out like LM Studio, GPT4All and the Hugging
Face cache, holding symlinks to (and a copy of) the real bundled SmolLM2 GGUF."""

from __future__ import annotations

import shutil
from pathlib import Path

from engine.models.discover import discover_models, is_model_file, model_folders
from engine.models.gguf import inspect_gguf


def _link(target: Path, link: Path) -> Path:
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)
    return link


def test_finds_models_in_lm_studio_gpt4all_and_hf_cache(tmp_path: Path, smollm2_path: Path) -> None:
    home = tmp_path / "home"
    # LM Studio: publisher/model/file.gguf, a real copy (distinct file).
    lm = home / ".lmstudio" / "models" / "HuggingFaceTB" / "SmolLM2" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    lm.parent.mkdir(parents=True)
    shutil.copyfile(smollm2_path, lm)
    # GPT4All: flat folder, a symlink to the bundled file; plus a projector that must be skipped.
    gpt = _link(smollm2_path, home / ".local" / "share" / "nomic.ai" / "GPT4All" / "smol.gguf")
    _link(smollm2_path, home / ".local" / "share" / "nomic.ai" / "GPT4All" / "mmproj-smol-f16.gguf")
    # Hugging Face: snapshots/<rev>/file.gguf -> ../../blobs/<hash>, as huggingface_hub lays it out.
    repo = home / ".cache" / "huggingface" / "hub" / "models--HuggingFaceTB--SmolLM2-135M-Instruct-GGUF"
    blob = repo / "blobs" / "0123abcd"
    blob.parent.mkdir(parents=True)
    shutil.copyfile(smollm2_path, blob)
    hf = _link(blob, repo / "snapshots" / "rev1" / "smollm2-135m-instruct-q4_1.gguf")
    # A dangling link from an interrupted download and a non-GGUF file are ignored.
    _link(repo / "blobs" / "missing", repo / "snapshots" / "rev1" / "broken.gguf")
    (repo / "snapshots" / "rev1" / "README.md").write_text("not a model")

    found = discover_models(home=home, env={}, platform="linux")

    assert [(m.source, m.path) for m in found] == [("LM Studio", lm), ("GPT4All", gpt), ("Hugging Face", hf)]
    size = smollm2_path.stat().st_size
    assert all(m.size_bytes == size for m in found)
    # Every found file is a real model the inspector can describe.
    infos = [inspect_gguf(m.path) for m in found]
    assert {i.architecture for i in infos} == {inspect_gguf(smollm2_path).architecture}


def test_same_file_in_two_places_is_listed_once(tmp_path: Path, smollm2_path: Path) -> None:
    home = tmp_path / "home"
    _link(smollm2_path, home / ".lmstudio" / "models" / "a" / "smol.gguf")
    _link(smollm2_path, home / ".cache" / "lm-studio" / "models" / "b" / "smol.gguf")
    found = discover_models(home=home, env={}, platform="linux")
    assert len(found) == 1
    assert found[0].path == home / ".lmstudio" / "models" / "a" / "smol.gguf"


def test_hf_home_and_platform_folders(tmp_path: Path, smollm2_path: Path) -> None:
    home = tmp_path / "home"
    hf_home = tmp_path / "hf"
    model = _link(smollm2_path, hf_home / "hub" / "models--x--y" / "snapshots" / "r" / "m.gguf")
    found = discover_models(home=home, env={"HF_HOME": str(hf_home)}, platform="linux")
    assert [m.path for m in found] == [model]

    mac = [f.path for f in model_folders(home=home, env={}, platform="darwin")]
    assert home / "Library" / "Application Support" / "nomic.ai" / "GPT4All" in mac
    win = [f.path for f in model_folders(home=home, env={"LOCALAPPDATA": str(tmp_path / "L")}, platform="win32")]
    assert tmp_path / "L" / "nomic.ai" / "GPT4All" in win


def test_split_models_list_only_their_first_part() -> None:
    assert is_model_file(Path("big-00001-of-00003.gguf"))
    assert not is_model_file(Path("big-00002-of-00003.gguf"))
    assert not is_model_file(Path("mmproj-model-f16.gguf"))
    assert not is_model_file(Path("notes.txt"))


def test_empty_home_finds_nothing(tmp_path: Path) -> None:
    assert discover_models(home=tmp_path, env={}, platform="linux") == []
