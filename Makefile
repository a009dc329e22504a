# Two commands are the contract: `make demo` and `make test`. Both create .venv if missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench install clean strip-notebooks

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required, found " + sys.version' 
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	# tinysoundfont's pyaudio dependency does not build and is only needed for live playback.
	$(BIN)/python -m pip install --quiet --no-deps tinysoundfont==0.3.7
	# The pretrained judges ship their weights inside their wheels; their metadata pins an old numpy
	# (musicnn) and TensorFlow (basic-pitch) that the weights do not need.
	$(BIN)/python -m pip install --quiet --no-deps musicnn==0.1.0 basic-pitch==0.4.0
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e . || $(BIN)/python -m pip install --quiet --no-deps -e .
	# numba's cache filled by one process before any two compile at once (numba#10128: segfaults)
	$(BIN)/python -m vae_tfp.audio.numba_cache
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/vae-tfp demo --out outputs/demo --data data

# Two pytest workers (pytest-xdist), each test file kept on one worker so that module fixtures
# (the JupyterLab server, trained models) are built once: on the 2-core CI machine the suite took
# 7.6 min this way against 11.5-13.5 min in one process (much of it is waiting: browsers,
# subprocesses, numba compiling). TEST_WORKERS=0 runs it in one process. --no-loadscope-reorder: the
# files go out heaviest first, in the order tests/conftest.py gives them (HEAVY_FIRST).
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

strip-notebooks: $(STAMP)
	$(BIN)/python tools/strip_notebooks.py notebooks/*.ipynb

clean:
	rm -rf $(VENV) outputs .pytest_cache
