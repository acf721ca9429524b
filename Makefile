# The two commands of the README: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: run test venv stack-up stack-down stack-status lint bench drills clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

## Start Kafka + Redis (unless KAFKA_BOOTSTRAP_SERVERS / REDIS_URL are set; a Redis Cluster
## with STACK_REDIS_CLUSTER_NODES=3), the projector and the API in the foreground; Ctrl-C
## stops all of it.
run: venv
	$(PY) -m scripts.stack run -- $(PY) -m scripts.serve

## Start what the tests need, run the whole suite on a single Redis, then the Redis tests again
## on a 3-master Redis Cluster (scripts/suite.py; TEST_PASSES=single|cluster picks one), stop
## what was started.
test: venv
	$(PY) -m scripts.stack test-deps
	$(VENV)/bin/ruff check .
	$(PY) -m scripts.suite $(PYTEST_ARGS)

## The long reliability drills (the soak runs SOAK_SECONDS, default 600); docs/reliability.md.
drills: venv
	$(PY) -m scripts.stack run -- $(PY) -m pytest -m drill -s $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

stack-up: venv
	$(PY) -m scripts.stack start

stack-down:
	$(PY) -m scripts.stack stop

stack-status:
	$(PY) -m scripts.stack status

clean: stack-down
	rm -rf .state
