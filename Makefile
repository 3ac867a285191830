# Two entry points a newcomer needs: `make demo` (the main job) and `make test`.
# Both create the virtual environment on first use; the stamp file re-installs
# only when pyproject.toml changes.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean

$(BIN)/.installed-runtime: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(BIN)/.installed-dev: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(BIN)/.installed-runtime

demo: $(BIN)/.installed-runtime
	$(BIN)/segur demo

# The report tests drive Debian's chromium and the npm Allure CLI: installed here when missing.
test: $(BIN)/.installed-dev
	$(BIN)/ruff check .
	scripts/ensure-chromium
	scripts/ensure-allure
	$(BIN)/python -m pytest

bench: $(BIN)/.installed-dev
	$(BIN)/python bench/insi_bench.py
	$(BIN)/python bench/psc_bench.py
	$(BIN)/python bench/dmp_bench.py
	$(BIN)/python bench/couloir_bench.py

clean:
	rm -rf reports/out .segur
