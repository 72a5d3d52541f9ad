# The two commands (README): `make run` starts gateway + dashboard; `make test` runs the suite.
SHELL := /bin/bash
.DEFAULT_GOAL := help

help:
	@echo "make run    install what running needs and start the gateway + dashboard (SQLite, in-process)"
	@echo "make test   add the test tools and run the whole test suite (SQLite, then PostgreSQL + Redis)"
	@echo "make bench  run the benchmark suite (see benchmarks/README.md)"
	@echo "make schema regenerate schema.graphql from the code"

install:
	bash scripts/install.sh

run:
	bash scripts/run.sh

test:
	bash scripts/test.sh

bench:
	WITH_TESTS=1 bash scripts/install.sh && .venv/bin/python benchmarks/run.py $(ARGS)

schema:
	.venv/bin/python -m backend.graphql.export > schema.graphql

lint:
	WITH_TESTS=1 bash scripts/install.sh && .venv/bin/ruff check backend tests benchmarks frontend_reflex && .venv/bin/mypy backend

.PHONY: help install run test bench schema lint
