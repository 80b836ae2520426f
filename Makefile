# riskatlas: `make run` serves the demo region on http://127.0.0.1:8000, `make test` runs every test.
.PHONY: setup run test db demo bench lint clean

VENV := .venv/bin
HOST ?= 127.0.0.1
PORT ?= 8000

setup:
	./scripts/setup.sh

db: setup
	$(VENV)/riskatlas db start

demo: db
	$(VENV)/riskatlas demo

run: demo
	$(VENV)/riskatlas serve --host $(HOST) --port $(PORT)

test:
	RISKATLAS_WITH_BROWSER=1 ./scripts/setup.sh
	$(VENV)/riskatlas db start
	$(MAKE) --no-print-directory lint
	$(VENV)/pytest -q -n auto --maxprocesses=4 --durations=15

lint:
	$(VENV)/lint-imports
	$(VENV)/ruff check .
	$(VENV)/mypy

bench: db
	$(VENV)/pip install -q -e ".[bench]"
	$(VENV)/python -m bench.load_bench

clean:
	-$(VENV)/riskatlas db stop
	rm -rf .riskatlas
