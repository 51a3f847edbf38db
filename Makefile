# The two commands a newcomer needs: `make up` runs the stack, `make test` checks it.
# Both create .venv with the pinned dependencies (constraints.txt) on first use.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: up docs check test lint typecheck unit test-docker-fresh benchmarks screenshot vendor-ui constraints clean

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

up: $(BIN)/.installed
	$(BIN)/shardstack up $(ARGS)

test: lint typecheck unit

# Between edits: lint, types and the in-process tier (no process besides pytest's own;
# tests/conftest.py sets each test's tier), in a new random order.
check: lint typecheck
	$(BIN)/pytest -q -m inprocess $(PYTEST_ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# The manual (mkdocs.yml, docs/), served with its reference pages generated from the code,
# rebuilt on every change: http://127.0.0.1:8001
docs: $(BIN)/.installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --dev-addr 127.0.0.1:8001

typecheck: $(BIN)/.installed
	$(BIN)/mypy

# The suite in a new random order (its seed is printed), with the coverage of every
# process it starts: what may share the machine (on WORKERS parallel workers), then what
# must have it alone (tests/phases.py); the slowest tests and the coverage report at the end.
WORKERS ?= 1
unit: $(BIN)/.installed
	rm -rf .coverage && mkdir .coverage
	$(BIN)/python -m tests.phases --workers $(WORKERS) $(PYTEST_ARGS)
	$(BIN)/coverage combine --quiet
	$(BIN)/coverage report

# The Docker tests as a new machine runs them: this project's images and the engine's
# build cache are removed first, so everything is built from nothing (about 3 minutes,
# one more to create .venv).
test-docker-fresh: $(BIN)/.installed
	$(BIN)/pytest -m docker --fresh-images $(PYTEST_ARGS)

# Regenerate docs/benchmarks.md and its plots (about 40 minutes; needs wrk and nginx).
benchmarks: $(BIN)/.installed
	$(BIN)/python -m benchmarks.regenerate $(ARGS)

# The panel's picture in the README (docs/panel.png), taken by its browser test: under
# load, with a fault on shard 3 (about a minute; needs chromium).
screenshot: $(BIN)/.installed
	$(BIN)/pytest -p no:randomly --panel-screenshot $(CURDIR)/docs/panel.png \
		tests/e2e/test_panel.py -k fault_from_the_form

# The browser pages' libraries (the panel's charts, the API document's Swagger UI), vendored
# so no page needs a CDN or a build step: fetched from the npm registry at the pinned
# version, checked against its published integrity, copied unchanged.
UPLOT := 1.6.32
SWAGGER_UI := 5.36.0
VENDOR := gateway/ui/assets/vendor

# $(call vendor,PACKAGE,VERSION,DIRECTORY,FILES): FILES of the package into $(VENDOR)/DIRECTORY.
define vendor
	cd .vendor-ui && npm pack --silent $(1)@$(2) >/dev/null
	test "$$(npm view $(1)@$(2) dist.integrity)" = \
		"sha512-$$(openssl dgst -sha512 -binary .vendor-ui/$(1)-$(2).tgz | base64 -w0)"
	rm -rf .vendor-ui/package $(VENDOR)/$(3) && mkdir -p $(VENDOR)/$(3)
	tar -xzf .vendor-ui/$(1)-$(2).tgz -C .vendor-ui
	cd .vendor-ui/package && cp $(4) $(CURDIR)/$(VENDOR)/$(3)/
	printf '%s\n' "$(1) $(2) from the npm registry (https://www.npmjs.com/package/$(1))," \
		"files unchanged: $(4); \`make vendor-ui\` fetches them again." \
		"integrity $$(npm view $(1)@$(2) dist.integrity)" > $(VENDOR)/$(3)/VERSION
endef

vendor-ui:
	rm -rf .vendor-ui && mkdir .vendor-ui
	$(call vendor,uplot,$(UPLOT),uplot,dist/uPlot.iife.min.js dist/uPlot.min.css LICENSE)
	$(call vendor,swagger-ui-dist,$(SWAGGER_UI),swagger-ui,swagger-ui-bundle.js swagger-ui.css LICENSE)
	rm -rf .vendor-ui

# Re-pin every dependency to the newest versions allowed by pyproject.toml.
constraints:
	rm -rf .venv-pin && $(PYTHON) -m venv .venv-pin
	.venv-pin/bin/pip install --quiet -e '.[dev]'
	.venv-pin/bin/pip freeze --exclude-editable | grep -v '^-e' > constraints.txt
	rm -rf .venv-pin

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .coverage
