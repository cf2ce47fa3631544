# Python SDK rules (python-deps, python-plugins, python-test).
#
# A Python policy is a folder with a `policy.py` (it ends with
# `WitWorld = export(MyPolicy)`) and its `test_*.py`: every `plugins/*/policy.py`
# is built to build/plugins/DIR.wasm, every `tests/fixtures/*/policy.py` to
# build/fixtures/DIR.wasm, by componentize-py (CPython 3.14 inside the component).
# Natively the same files run under the venv's Python with pytest.
.PHONY: python-deps python-plugins python-test

# The toolchain, in a virtualenv of its own under var/ (ignored by git), pinned:
# the component embeds what the build used (CPython, the msgpack fallback).
PY_VENV := var/sdk-venv
PY_DEPS_STAMP := $(PY_VENV)/.sluice-deps
COMPONENTIZE_PY := $(PY_VENV)/bin/componentize-py
# The WIT bindings (wit_world), generated for native tests; the component build
# generates its own.
PY_BINDINGS := var/py-bindings
PY_BINDINGS_STAMP := $(PY_BINDINGS)/wit_world/__init__.py
PY_SDK_SRC := $(wildcard sdk/python/sluice_policy/*.py) sdk/wit/policy.wit
PY_PLUGIN_DIRS := $(patsubst %/policy.py,%,$(wildcard plugins/*/policy.py))
PY_FIXTURE_DIRS := $(patsubst %/policy.py,%,$(wildcard tests/fixtures/*/policy.py))
PY_PLUGIN_WASM := $(patsubst plugins/%,build/plugins/%.wasm,$(PY_PLUGIN_DIRS))
PY_FIXTURE_WASM := $(patsubst tests/fixtures/%,build/fixtures/%.wasm,$(PY_FIXTURE_DIRS))
# Natively: no .pyc or .pytest_cache beside the sources.
PY_NATIVE = PYTHONDONTWRITEBYTECODE=1 PYTHONPATH=$(PY_BINDINGS):sdk/python$(if $(1),:$(1))

## componentize-py, msgpack and pytest in var/sdk-venv, and the bindings, when missing
## (Debian's python3 needs python3-venv for a virtualenv; installed only when missing).
python-deps: $(PY_DEPS_STAMP) $(PY_BINDINGS_STAMP)

$(PY_DEPS_STAMP):
	@python3 -c 'import venv, ensurepip' 2>/dev/null || { $(SUDO) apt-get update && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-venv; }
	python3 -m venv $(PY_VENV)
	$(PY_VENV)/bin/pip install --quiet --disable-pip-version-check \
	  'componentize-py==0.25.1' 'msgpack==1.2.4' 'pytest==9.2.0'
	@touch $@

$(PY_BINDINGS_STAMP): sdk/wit/policy.wit $(PY_DEPS_STAMP)
	rm -rf $(PY_BINDINGS).tmp
	$(COMPONENTIZE_PY) -d sdk/wit -w policy bindings $(PY_BINDINGS).tmp
	rm -rf $(PY_BINDINGS) && mv $(PY_BINDINGS).tmp $(PY_BINDINGS)

## Build every Python policy that changed (about 10 s of CPU each), written to a
## temporary name and renamed: a running gateway never sees half a file.
python-plugins: $(PY_PLUGIN_WASM) $(PY_FIXTURE_WASM)

# $(1): the component, $(2): the policy's folder. It depends on the folder's
# modules (not its tests) and the SDK. componentize-py bundles only the modules
# imported at build time, from the folder, the SDK and the venv's site-packages
# (msgpack: its C extension is skipped, its pure-Python fallback is used).
define PY_COMPONENT
$(1): $$(filter-out $(2)/test_% $(2)/conftest.py,$$(wildcard $(2)/*.py)) $$(PY_SDK_SRC) | $$(PY_DEPS_STAMP)
	@mkdir -p $$(@D)
	env -u VIRTUAL_ENV $$(COMPONENTIZE_PY) -d sdk/wit -w policy componentize \
	  -p $(2) -p sdk/python -p "$$$$($$(PY_VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
	  -o $$(@D)/.$$(@F).tmp policy >/dev/null
	@find $(2) sdk/python -name __pycache__ -prune -exec rm -rf {} + # the build's CPython 3.14 leaves .pyc files
	mv $$(@D)/.$$(@F).tmp $$@
endef
$(foreach d,$(PY_PLUGIN_DIRS) $(PY_FIXTURE_DIRS),$(eval $(call PY_COMPONENT,$(if $(filter plugins/%,$(d)),build/plugins,build/fixtures)/$(notdir $(d)).wasm,$(d))))

## pytest of the SDK, then of each Python policy in its own run (each has a
## `policy` module); a run that collects no test fails (pytest exits 5).
python-test: python-deps
	$(call PY_NATIVE) $(PY_VENV)/bin/python -m pytest -q -p no:cacheprovider sdk/python/tests
	@set -e; for d in $(PY_PLUGIN_DIRS) $(PY_FIXTURE_DIRS); do \
	  echo "pytest $$d"; \
	  $(call PY_NATIVE,$$d) $(PY_VENV)/bin/python -m pytest -q -p no:cacheprovider $$d; done
