# The targets README and CI run. Each sets itself up on a fresh machine.
VENV    ?= .venv
PY      := $(VENV)/bin/python
# The CPU build of torch. An unpinned torch pulls a multi-GB CUDA build; elsewhere,
# TORCH_SPEC='torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu' does the same.
TORCH_SPEC ?= torch==2.13.0
STAMP   := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
PIP_QUIET := -q --disable-pip-version-check
# Everything (the two README commands need no more): pyproject.toml lists what each extra is for.
EXTRAS  ?= worker,train,api,parquet,plot,embedded,rocksdb,test
GPU_ORT ?= $(VENV)/onnxruntime-gpu

.PHONY: setup demo up test unit integration reliability lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@command -v redis-server >/dev/null || { echo "installing redis-server"; \
	  if [ "$$(id -u)" = 0 ]; then (apt-get update -qq && apt-get install -y -qq redis-server) >/dev/null; \
	  else sudo apt-get install -y redis-server; fi; }
	@# Debian's chromium: the web console's test drives it (Playwright cannot download its own here).
	@command -v chromium >/dev/null || { echo "installing chromium"; \
	  if [ "$$(id -u)" = 0 ]; then (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null; \
	  else sudo apt-get install -y chromium; fi; }
	@# readelf (binutils): the GPU image test reads the libraries onnxruntime-gpu's CUDA provider links.
	@command -v readelf >/dev/null || { echo "installing binutils"; \
	  if [ "$$(id -u)" = 0 ]; then (apt-get update -qq && apt-get install -y -qq binutils) >/dev/null; \
	  else sudo apt-get install -y binutils; fi; }
	@test -x $(PY) || python3 -m venv $(VENV)
	@echo "installing torch (CPU build) and streamrec into $(VENV) (a few minutes the first time)"
	@$(PY) -m pip install $(PIP_QUIET) $(TORCH_SPEC) 2>&1 | grep -v "is ignored" || true
	@# The CPU onnxruntime of [worker]; venvs made before the extras had onnxruntime-gpu, and
	@# both install the same `onnxruntime` module.
	@$(PY) -m pip uninstall $(PIP_QUIET) -y onnxruntime-gpu 2>/dev/null || true
	@# One pip call for the rest: faust-streaming pins click<8.4, and transformers must be
	@# resolved in the same call to land on versions that accept it.
	@$(PY) -m pip install $(PIP_QUIET) -e '.[$(EXTRAS)]' 2>&1 | grep -v "is ignored" || true
	@# The onnxruntime-gpu wheel [gpu] resolves to, unpacked beside the venv, not on its path (both
	@# install the `onnxruntime` module): the GPU image test reads the CUDA libraries its provider
	@# links, and the device tests run it on this machine, which has no CUDA.
	@echo "unpacking the onnxruntime-gpu of [gpu] into $(GPU_ORT) (~250 MB download, for the GPU tests)"
	@rm -rf $(GPU_ORT) && $(PY) -m pip install $(PIP_QUIET) --no-deps --target $(GPU_ORT) "$$($(PY) -c \
	  "import tomllib; g = tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['gpu']; \
	  print(next(d for d in g if d.startswith('onnxruntime-gpu')))")" 2>&1 | grep -v "is ignored"; \
	  test -f $(GPU_ORT)/onnxruntime/capi/libonnxruntime_providers_cuda.so
	@$(PY) -c "import streamrec.cli, torch, faust, onnxruntime, transformers, fastapi, uvicorn" 
	@rm -f $(VENV)/.installed-* && touch $@

demo: setup
	$(VENV)/bin/streamrec demo $(ARGS)

up: setup
	$(VENV)/bin/streamrec up $(ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint
	$(VENV)/bin/pytest -q -m "not reliability" $(ARGS)

unit: setup
	$(VENV)/bin/pytest -q tests/unit $(ARGS)

integration: setup
	$(VENV)/bin/pytest -q -m integration $(ARGS)

reliability: setup
	$(VENV)/bin/pytest -q -m reliability $(ARGS)

bench: setup
	$(VENV)/bin/streamrec bench --json bench/results.json $(ARGS)

clean:
	rm -rf $(VENV) .streamrec .pytest_cache .ruff_cache
