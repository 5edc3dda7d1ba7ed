# The two commands a newcomer needs: `make run` and `make test`.
# Both bootstrap a local virtualenv (.venv) from this repository alone.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test test-xcb lint bench package package-smoke screenshot clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[gui,test,dask]'
	touch $(STAMP)

## Set up and start the app on the built-in default scenario.
run: $(STAMP)
	$(VENV)/bin/lazytsc-gui $(ARGS)

## Set up and run the whole test suite (lint + pytest), headless; then the GUI tests
## again on a real X server (Xvfb, Qt's xcb platform) when Xvfb is installed.
test: $(STAMP)
	$(PY) -m ruff check core lazytsc_gui tests benchmarks packaging
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest
	$(PY) packaging/xcb_tests.py

## Only the GUI tests on Xvfb with the xcb platform (LAZYTSC_XCB=1: fail if Xvfb is missing).
test-xcb: $(STAMP)
	$(PY) packaging/xcb_tests.py

lint: $(STAMP)
	$(PY) -m ruff check core lazytsc_gui tests benchmarks packaging

## Run every benchmark and print one line per figure with its target.
bench: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m benchmarks

## Build the one-folder desktop app with PyInstaller (packaging/).
package: $(STAMP)
	$(PY) -m pip install --quiet -e '.[gui,test,package]'
	$(PY) packaging/build.py

## Build the app, then start it offscreen on the default scenario and check it drew.
package-smoke: package
	$(PY) packaging/smoke.py

## Regenerate the README screenshot (docs/screenshot.png).
screenshot: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) packaging/screenshot.py docs/screenshot.png

clean:
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache
