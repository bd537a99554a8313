# CGM Tray: `make demo` runs the app on the simulated service, `make test` proves it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# What each target installed into .venv: the app alone (make demo), the build tools (make
# package), the test and lint tools besides (make test and the rest).
APP_STAMP := $(VENV)/.installed-app
PACKAGE_STAMP := $(VENV)/.installed-package
STAMP := $(VENV)/.installed-test

export QT_QPA_PLATFORM ?= offscreen
# Tests never touch the real keyring.
export PYTHON_KEYRING_BACKEND ?= keyring.backends.null.Keyring

.PHONY: demo demo-now test lint typecheck unit unit-noqt fuzz sysdeps venv venv-app bench clean package

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# The app and what it needs to run, nothing else (the demo's .venv: see the README for its size).
$(APP_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(PACKAGE_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[package]'
	touch $@ $(APP_STAMP)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test,package]'
	touch $@ $(PACKAGE_STAMP) $(APP_STAMP)

# Everything for development (tests, lint, packaging); `make venv-app` for the app alone.
venv: $(STAMP)

venv-app: $(APP_STAMP)

sysdeps:
	bash scripts/install-sysdeps.sh

# The tray app on the simulated service. Without a display, `make demo-now` prints one reading instead.
demo: $(APP_STAMP)
	env -u QT_QPA_PLATFORM $(BIN)/cgm-tray --demo

demo-now: $(APP_STAMP)
	$(BIN)/cgm-tray now --demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts packaging
	$(BIN)/ruff format --check src tests bench scripts packaging

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest tests/unit

# Long fuzzing: new random seeds every run and many more examples (the suite itself repeats the
# same examples every run, the "ci" profile of tests/conftest.py). Failures are kept in .hypothesis/.
fuzz: $(STAMP)
	$(BIN)/pytest -p no:cacheprovider --hypothesis-profile=explore --hypothesis-show-statistics \
		tests/unit/test_fuzz_*.py tests/ui/test_fuzz_worker.py tests/unit/test_storage_settings.py \
		tests/unit/test_share_wire.py tests/unit/test_share_errors.py

# The unit tier again with PySide6, shiboken6 and pyqtgraph unimportable (here and in child Pythons):
# it must pass on a machine without Qt. pytest-qt imports Qt as it loads, so it stays out.
unit-noqt: $(STAMP)
	$(BIN)/python -m pytest -p tests.support.block_qt -p no:pytest-qt tests/unit -q

test: sysdeps $(STAMP) lint typecheck unit-noqt package
	$(BIN)/coverage erase
	$(BIN)/pytest --cov=cgmtray --cov-report= tests
	$(BIN)/coverage report --include='src/cgmtray/domain/*' --fail-under=100

# The wheel, the sdist and (on Linux) the frozen app in dist/, each smoke-run; tests/package checks more.
package: $(PACKAGE_STAMP)
	$(BIN)/python packaging/build.py

bench: $(STAMP)
	$(BIN)/python bench/freshness.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .coverage dist build
