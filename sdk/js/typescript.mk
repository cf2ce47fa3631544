# TypeScript SDK rules (typescript-deps, typescript-plugins, typescript-test).
#
# A TypeScript policy is a folder with a `package.json`, a `tsconfig.json` that
# extends sdk/js/tsconfig.policy.json, `src/policy.ts` (it ends with
# `export const { configure, plan, planAfterRead, planBatch } = exportPolicy(MyPolicy)`)
# and its `*.test.ts`. Every `plugins/*/package.json` is built to
# build/plugins/DIR.wasm, every `tests/fixtures/*/package.json` to
# build/fixtures/DIR.wasm, by jco + componentize-js (StarlingMonkey inside the
# component). Policies have no node_modules of their own: sdk/js/bin/sluice-ts.mjs
# runs the SDK's toolchain for them (tsconfig paths resolve `@sluice/policy`).
.PHONY: typescript-deps typescript-plugins typescript-test

TS_SDK := sdk/js
# npm ci ran (and generated the WIT's types, its `prepare` script) after the lock last changed.
TS_DEPS_STAMP := $(TS_SDK)/node_modules/.sluice-deps
TS_TYPES := $(TS_SDK)/types/policy.d.ts
TS_TOOL := node $(TS_SDK)/bin/sluice-ts.mjs
# What every component is built from besides its own sources.
TS_SDK_SRC := $(filter-out %.test.ts,$(wildcard $(TS_SDK)/src/*.ts)) $(TS_SDK)/bin/sluice-ts.mjs \
  $(TS_SDK)/tsconfig.policy.json sdk/wit/policy.wit
TS_PLUGIN_DIRS := $(patsubst %/package.json,%,$(wildcard plugins/*/package.json))
TS_FIXTURE_DIRS := $(patsubst %/package.json,%,$(wildcard tests/fixtures/*/package.json))
TS_PLUGIN_WASM := $(patsubst plugins/%,build/plugins/%.wasm,$(TS_PLUGIN_DIRS))
TS_FIXTURE_WASM := $(patsubst tests/fixtures/%,build/fixtures/%.wasm,$(TS_FIXTURE_DIRS))

## jco 1.35 (componentize-js 0.23), TypeScript and @msgpack/msgpack in sdk/js/node_modules,
## installed with `npm ci` only when missing or older than the lock (needs Node >= 20.19).
typescript-deps: $(TS_DEPS_STAMP) $(TS_TYPES)

$(TS_DEPS_STAMP): $(TS_SDK)/package.json $(TS_SDK)/package-lock.json
	@command -v node >/dev/null || { echo "Node.js >= 20.19 is needed for TypeScript policies (https://nodejs.org; Debian bookworm's nodejs is 18.20, too old)" >&2; exit 1; }
	@node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 22 || (a === 22 && b >= 12) || (a === 20 && b >= 19) ? 0 : 1)' \
	  || { echo "Node.js >= 20.19 (or >= 22.12) is needed for TypeScript policies; this is $$(node --version) (Debian bookworm's nodejs is 18.20, too old)" >&2; exit 1; }
	cd $(TS_SDK) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The contract's types for TypeScript (jco guest-types), again whenever the WIT changes.
$(TS_TYPES): sdk/wit/policy.wit $(TS_DEPS_STAMP)
	cd $(TS_SDK) && npm run --silent prepare
	@touch $@

## Build every TypeScript policy that changed (about 8 s of CPU each), written to a
## temporary name and renamed: a running gateway never sees half a file.
typescript-plugins: $(TS_PLUGIN_WASM) $(TS_FIXTURE_WASM)

# $(1): the component, $(2): the policy's folder. It depends on the folder's
# sources (not its tests), the SDK and the toolchain's lock.
define ts_component
$(1): $$(filter-out %.test.ts,$$(shell find $(2)/src -name '*.ts')) $(2)/package.json $(2)/tsconfig.json \
  $$(TS_SDK_SRC) $$(TS_SDK)/package-lock.json | $$(TS_DEPS_STAMP) $$(TS_TYPES)
	@mkdir -p $$(dir $$@)
	$$(TS_TOOL) build $(2) -o $$@
endef
$(foreach d,$(TS_PLUGIN_DIRS),$(eval $(call ts_component,build/plugins/$(notdir $(d)).wasm,$(d))))
$(foreach d,$(TS_FIXTURE_DIRS),$(eval $(call ts_component,build/fixtures/$(notdir $(d)).wasm,$(d))))

## Type-check and run the native tests (node --test) of the SDK, every TypeScript policy and fixture.
typescript-test: typescript-deps
	@mkdir -p var; set -e; for d in $(TS_SDK) $(TS_PLUGIN_DIRS) $(TS_FIXTURE_DIRS); do \
	  echo "typescript-test: $$d"; $(TS_TOOL) test $$d > var/typescript-test.log 2>&1 \
	    || { cat var/typescript-test.log; exit 1; }; \
	  grep -E '^# (tests|pass|fail)' var/typescript-test.log | tr '\n' ' '; echo; done
