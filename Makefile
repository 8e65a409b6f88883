# StyleLedger: `make run` (the platform with its worker, embedded defaults) and
# `make test` (the whole suite against throwaway PostgreSQL, Redis, a real Celery
# worker and Chromium). Both work on a fresh machine.

PYTHON     ?= python3
VENV       ?= .venv
PY         := $(VENV)/bin/python
PIP        := $(PY) -m pip
# The torch build to install first. The default is the local CPU build; on a CUDA
# machine, e.g.: make run TORCH_SPEC="torch==2.5.1 --index-url https://download.pytorch.org/whl/cu124"
TORCH_SPEC ?= torch==2.13.0
EXTRAS     ?=

.PHONY: run test venv install install-dev system-deps lint bench gpu-check compose-check clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# Installs are stamped by the content of pyproject.toml so re-runs are instant.
$(VENV)/.installed: pyproject.toml | $(PY)
	$(PIP) install --quiet $(TORCH_SPEC)
	$(PIP) install --quiet -e ".$(if $(EXTRAS),[$(EXTRAS)])"
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(PY)
	$(PIP) install --quiet $(TORCH_SPEC)
	$(PIP) install --quiet -e ".[dev]"
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	$(PY) manage.py runplatform

system-deps:
	bash tests/tools/ensure_system_packages.sh

test: install-dev system-deps
	$(PY) -m tests.launch

lint: install-dev
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

bench: install
	$(PY) -m inversion bench

# On a CUDA machine, e.g. make gpu-check EXTRAS=gpu TORCH_SPEC="torch==2.5.1 --index-url ...":
# mamba-ssm's scan vs the torch and CPU scans, bf16/fp16 vs fp32 PSNR, throughput at
# batch 1/8/32 for 256 and 1024 FFHQ shapes. Exits 1 (after writing the CPU part) without CUDA.
gpu-check: install
	$(PY) -m inversion gpucheck --out gpu-check.json

compose-check:
	docker-compose -f docker/compose.yml config -q

clean:
	rm -rf var test-output .pytest_cache
