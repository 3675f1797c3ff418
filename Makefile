# The two set-up commands of the README. Both work on a fresh machine with python3, pip and gcc.
PYTHON ?= python3
VENV ?= .venv

.PHONY: demo test bench clean

$(VENV)/.ready: pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check nox
	$(VENV)/bin/pip install -q --disable-pip-version-check -e .
	touch $@

## demo: the stdlib demo, then the real aiohttp #10535 scenario on a leaking and a fixed release
demo: $(VENV)/.ready
	$(VENV)/bin/cyclescope demo --aiohttp 3.11.13 --aiohttp 3.11.15

## test: the whole suite on CPython 3.10-3.13 (nox), C core and pure-Python fallback
test: $(VENV)/.ready
	$(VENV)/bin/nox

## bench: capture + explain against gc.collect(), objgraph, refcycle and guppy3
bench: $(VENV)/.ready
	$(VENV)/bin/nox -s bench

clean:
	rm -rf $(VENV) .nox build src/*.egg-info
