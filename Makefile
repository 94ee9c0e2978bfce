# Two commands for a newcomer: `make run` (install + start with config.yaml, no external server) and `make test`.
# Everything installs into ./.venv, desktop/node_modules and tests/node_modules; `make test` also installs
# Debian's chromium (for the browser test), promtool (Debian's prometheus, for the /metrics lint), the
# PostgreSQL server binaries (Debian's postgresql, for the store suites on PostgreSQL) and redis-server (the
# tests start their own, on a free port) and nginx (docs/nginx.conf, run by the tests) when they are missing and
# we are root.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ARGS ?=
CHROMIUM_PATH ?= /usr/bin/chromium
export CHROMIUM_PATH
PROMTOOL ?= promtool
export PROMTOOL
REDIS_SERVER ?= redis-server
export REDIS_SERVER
NGINX ?= nginx
export NGINX

.PHONY: run test lint bench chromium promtool postgresql redis-server nginx

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# The agent desktop's runtime: the official CometD JavaScript client, served by the gateway at /desktop/.
desktop/node_modules/.installed: desktop/package.json desktop/package-lock.json
	npm ci --prefix desktop --no-audit --no-fund
	touch $@

tests/node_modules/.installed: tests/package.json tests/package-lock.json
	npm ci --prefix tests --no-audit --no-fund
	touch $@

## chromium: Debian's Chromium for the browser test (tests/browser), installed with apt-get when missing
chromium:
	@if [ ! -x "$(CHROMIUM_PATH)" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
		else \
			echo "Chromium missing at $(CHROMIUM_PATH): 'apt-get install chromium' as root (the browser test needs it)" >&2; \
		fi; \
	fi

## promtool: `promtool check metrics` for tests/integration/test_metrics.py, from Debian's prometheus package
## (without the recommended node exporter; the tests use only promtool, not the prometheus service it brings)
promtool:
	@if ! command -v "$(PROMTOOL)" >/dev/null; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; \
		else \
			echo "promtool missing: 'apt-get install --no-install-recommends prometheus' as root (the metrics lint test needs it)" >&2; \
		fi; \
	fi

## redis-server: Debian's redis-server for the Redis broker and registry tests (tests/servers/redis.py starts
## its own on a free port, without persistence; a Redis already running on the machine is never used)
redis-server:
	@if ! command -v "$(REDIS_SERVER)" >/dev/null; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server; \
		else \
			echo "redis-server missing: 'apt-get install redis-server' as root (the Redis tests need it)" >&2; \
		fi; \
	fi

## nginx: Debian's nginx for docs/nginx.conf's tests (tests/servers/nginx.py runs its own process with the
## tests' ports, in a temporary folder; the package's own service is not used)
nginx:
	@if ! PATH="$$PATH:/usr/sbin" command -v "$(NGINX)" >/dev/null; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx; \
		else \
			echo "nginx missing: 'apt-get install nginx' as root (the load-balancer tests need it)" >&2; \
		fi; \
	fi

## postgresql: Debian's PostgreSQL binaries (/usr/lib/postgresql/*/bin: initdb, postgres) for the store suites;
## the tests start their own server from them (tests/servers/postgres.py), not the package's service
postgresql:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; \
		else \
			echo "PostgreSQL binaries missing: 'apt-get install postgresql' as root (the PostgreSQL store tests need them)" >&2; \
		fi; \
	fi

## run: install, then serve with the shipped config.yaml (127.0.0.1:8080, SQLite in ./data, demo users,
## the agent desktop at /desktop/); pass options with ARGS="--port 9000"
run: $(BIN)/.installed desktop/node_modules/.installed
	$(BIN)/gateway --config config.yaml $(ARGS)

## lint: ruff and mypy --strict
lint: $(BIN)/.installed
	$(BIN)/ruff check gateway tests bench
	$(BIN)/ruff format --check gateway tests bench
	$(BIN)/mypy

## test: install what the suite needs (Python and Node packages, Chromium, promtool, PostgreSQL, redis-server, nginx),
## lint, then the whole suite
test: $(BIN)/.installed desktop/node_modules/.installed tests/node_modules/.installed chromium promtool postgresql redis-server nginx lint
	$(BIN)/pytest

## bench: the fan-out benchmark against Faye (see bench/README.md)
bench: $(BIN)/.installed
	npm ci --prefix bench --no-audit --no-fund
	$(BIN)/python bench/fanout.py $(ARGS)
