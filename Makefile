# Two set-up commands: `make demo` (the main job) and `make test`. Each creates .venv and
# installs torch (the CPU build on disk) before the package, so `torch>=` pulls nothing more.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
PIP     = $(PY) -m pip
STAMP   = $(VENV)/.installed

.PHONY: install test demo bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[dev]'
	touch $(STAMP)

# One thread per test process (the fixtures are tiny nets, where extra threads only add
# overhead) and one test process per core (pytest-xdist).
test: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m pytest -n auto --durations=15

demo: $(STAMP)
	$(VENV)/bin/advforge demo

# torchattacks is only the speed/quality yardstick; --no-deps keeps torchvision out.
bench: $(STAMP)
	$(PIP) install --quiet --no-deps torchattacks
	$(PY) benchmarks/attack_speed.py

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .ruff_cache
