PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test test-deploy lint kafka-jars demo demo-kafka bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check modstream tests bench
	$(BIN)/ruff format --check modstream tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest

# The deployment tier: deploy/docker-compose.yml up on podman (tests/stack says how), built from
# stand-ins where no registry serves an image. Without podman it skips, unless
# MODSTREAM_REQUIRE_DEPLOY=1 (CI), which fails instead.
test-deploy: $(STAMP)
	PYTHONPATH=tests $(BIN)/python -m stack --prepare || [ "$${MODSTREAM_REQUIRE_DEPLOY:-0}" = 0 ]
	$(BIN)/pytest -m deploy tests/deploy

# The Apache Kafka tier's jars, resolved by Maven as a step of its own (the test session would
# otherwise do it before its first test); prints how long it took. MODSTREAM_MAVEN_REPO=DIR
# resolves into another local repository.
kafka-jars: $(STAMP)
	PYTHONPATH=tests $(BIN)/python -m apache_kafka --resolve

demo: $(STAMP)
	$(BIN)/modstream demo

# The demo on a throwaway Apache Kafka node (needs java and mvn; Maven fetches the broker once).
demo-kafka: $(STAMP)
	PYTHONPATH=tests $(BIN)/python -m apache_kafka $(BIN)/modstream demo --bootstrap-servers {bootstrap}

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
