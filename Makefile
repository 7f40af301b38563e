# Longread: `make run` installs and opens the app on the bundled model and sample document;
# `make test` installs the test tools and runs every test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# A portable llama.cpp (no -march=native): the same wheel runs on any x86-64 CPU with AVX2.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF
SAMPLE := resources/sample/harbor-lease-dispute.md
QUESTION := What is the award reference code, and what total amount was awarded?

.PHONY: run ask test test-fast lint bench package clean translations translations-update llama-server

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e ".[test]"
	touch $@ $(VENV)/.installed

# The window's translations (issue 18): resources/i18n/*.ts are committed, the .qm built.
QM := $(patsubst %.ts,%.qm,$(wildcard resources/i18n/*.ts))
resources/i18n/%.qm: resources/i18n/%.ts | $(VENV)/.installed
	$(BIN)/pyside6-lrelease -silent $< -qm $@
translations: $(QM)
# Refresh the .ts from the code's tr() strings; then translate the entries marked unfinished.
translations-update: $(VENV)/.installed
	$(BIN)/python packaging/translations.py update

run: $(VENV)/.installed translations
	$(BIN)/longread-app $(SAMPLE)

# The same job without a window: answer a sample question on the command line.
ask: $(VENV)/.installed
	$(BIN)/longread ask $(SAMPLE) -q "$(QUESTION)"

test: $(VENV)/.installed-test translations llama-server
	$(BIN)/ruff check engine app tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest

# llama.cpp's llama-server and RPC server for the server backend's tests (issue 16): built
# once per machine from the llama-cpp-python source package, in ~/.cache/longread (~8 min
# on two cores the first time; a no-op after).
llama-server: $(VENV)/.installed
	$(BIN)/python scripts/build_llama_server.py

# The fast tier: engine and window logic on the fake backend, no real model (under a minute).
test-fast: $(VENV)/.installed-test translations
	$(BIN)/python -m pytest -m "not slow and not packaging" -q

lint: $(VENV)/.installed-test
	$(BIN)/ruff check engine app tests benchmarks
	$(BIN)/ruff format --check engine app tests benchmarks
	$(BIN)/mypy

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/prefill.py

# The app as users install it (issue 8): dist/longread/ (PyInstaller one-folder) and, on
# Linux, dist/longread_<version>_<arch>.deb. See packaging/README.md.
package: $(VENV)/.installed-test
	$(BIN)/python packaging/build.py

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
