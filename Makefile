# The two commands: `make demo` and `make test`. Both set up .venv themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test bench lint serve clean docs

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/clm demo

# Two pytest workers (one per core here; TEST_WORKERS=auto uses every core), each with its own databases;
# tests are handed out one by one (the access matrices hold 3,400 of the 5,200 tests).
TEST_WORKERS ?= 2

test: $(STAMP)
	$(BIN)/ruff check clm tests bench scripts
	$(BIN)/pytest -n $(TEST_WORKERS) --dist load

bench: $(STAMP)
	$(BIN)/python -m bench

docs: $(STAMP)
	$(BIN)/python scripts/gen_docs.py

lint: $(STAMP)
	$(BIN)/ruff check clm tests bench

serve: $(STAMP)
	$(BIN)/clm serve

clean:
	rm -rf $(VENV) *.db *.db-wal *.db-shm .pytest_cache
