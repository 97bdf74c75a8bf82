# listenwell — every target uses the project-local virtualenv in .venv (created on demand).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
KAFKA_PORT ?= 9092
export LISTENWELL_KAFKA_PORT ?= $(KAFKA_PORT)

.PHONY: install demo test test-unit lint typecheck bench chaos kafka-start kafka-stop kafka-status clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: install
	$(PY) -m services.cli demo

# The full suite: unit tests plus integration tests against a real Apache Kafka broker that the
# test session starts on a free port and stops by its pid at the end.
test: install
	$(PY) -m pytest

test-unit: install
	$(PY) -m pytest -m "not integration"

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy

# Issue 15's table: pipeline.py (end to end, latency, changelog on the broker), core.py (pure core,
# changelog payloads), restart.py (1,000 brands and 100,000 customers), hotbrand.py (1 vs 2 workers).
bench: install
	$(PY) bench/pipeline.py && $(PY) bench/core.py && $(PY) bench/gap.py --then-replay && $(PY) bench/restart.py && $(PY) bench/hotbrand.py && $(PY) bench/scoring.py && $(PY) bench/sentiment.py && $(PY) bench/detection.py && $(PY) bench/spikes.py

# Fault injection: 50,000 mentions through runner → Kafka → workers → notifier → Slack-like
# receiver while the driver kill -9s each part and the broker, once with the fused worker
# (bench/results/chaos.json) and once with the split deployment's two stages
# (bench/results/chaos-split.json).
chaos: install
	$(PY) bench/chaos.py && $(PY) bench/chaos.py --deployment split --results bench/results/chaos-split.json

kafka-start: install
	$(PY) -m services.cli kafka start --port $(KAFKA_PORT)
	$(PY) -m services.cli kafka create-topics --port $(KAFKA_PORT)

kafka-stop: install
	$(PY) -m services.cli kafka stop --port $(KAFKA_PORT)

kafka-status: install
	$(PY) -m services.cli kafka status --port $(KAFKA_PORT)

clean:
	rm -rf .listenwell .pytest_cache .mypy_cache .ruff_cache
