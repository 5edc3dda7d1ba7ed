# The two commands a newcomer needs: `make run` and `make test`.
# Both bootstrap a local virtualenv (.venv) from this repository alone.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test test-xcb lint bench engine package package-smoke screenshot clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[gui,test,dask,compile]'
	touch $(STAMP)

## Compile the engine's hot modules with mypyc when a C compiler is present (a no-op when
## up to date; without a compiler the pure-Python engine runs). Prints which engine runs.
engine: $(STAMP)
	$(PY) packaging/compile_engine.py

## Set up and start the app on the built-in default scenario.
run: engine
	$(VENV)/bin/lazytsc-gui $(ARGS)

## Set up and run the whole test suite (lint + pytest), headless, on the pure-Python engine
## (LAZYTSC_ENGINE=pure: what every clone has, with or without a C compiler);
## tests/test_compiled_engine.py checks that the compiled build `make engine` made logs the
## same bytes (skipped, saying why, without a C compiler). Then the GUI tests again on a
## real X server (Xvfb, Qt's xcb platform) when Xvfb is installed, on the engine `make` built.
## The compile runs beside the suite (pytest uses one core of two); the compiled-engine test
## runs last and waits for it (compile_engine.py takes a lock).
test: $(STAMP)
	$(PY) -m ruff check core lazytsc_gui tests benchmarks packaging
	@mkdir -p build; $(PY) packaging/compile_engine.py > build/compile_engine.out 2>&1 & compile=$$!; \
	LAZYTSC_ENGINE=pure QT_QPA_PLATFORM=offscreen $(PY) -m pytest; rc=$$?; \
	wait $$compile || rc=1; cat build/compile_engine.out; exit $$rc
	$(PY) packaging/xcb_tests.py

## Only the GUI tests on Xvfb with the xcb platform (LAZYTSC_XCB=1: fail if Xvfb is missing).
test-xcb: $(STAMP)
	$(PY) packaging/xcb_tests.py

lint: $(STAMP)
	$(PY) -m ruff check core lazytsc_gui tests benchmarks packaging

## Run every benchmark and print one line per figure with its target.
bench: engine
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
	-test -x $(PY) && $(PY) packaging/compile_engine.py --clean
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache
