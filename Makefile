# The two commands a newcomer needs: `make demo` and `make test`. Both create .venv with
# everything required, starting from nothing but python3.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
# PyTorch is an optional test oracle; `make test WITH_TORCH=0` skips installing it.
WITH_TORCH ?= 1
TORCH_PIN   = torch==2.13.0

# Packages are installed with uv (a PyPI package, many times faster than pip: parallel downloads,
# one resolution, a shared cache), which pip puts into the venv first; where uv cannot be had,
# pip installs everything itself (slower, same packages).
UV = $(BIN)/uv
# uv does not read pip's settings. Where pip is told to look for wheels in local folders (as on
# machines that keep a CPU-only PyTorch wheel on disk), uv is handed the same folders, so both
# pick the same packages.
FIND_LINKS ?= $(or $(PIP_FIND_LINKS),$(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null))
# `$(INSTALL) ARGS` installs ARGS into the venv (and says so): with uv where it is there, else pip.
INSTALL = install() { \
	    if [ -x $(UV) ]; then \
	      echo "uv pip install $$*"; \
	      $(UV) pip install --quiet --python $(BIN)/python $(foreach l,$(FIND_LINKS),--find-links $(l)) "$$@"; \
	    else echo "pip install $$*"; $(BIN)/python -m pip install --quiet "$$@"; fi; }; install

.PHONY: demo test setup setup-dev graphviz benchmark docs clean

demo: setup graphviz
	$(BIN)/minigrad demo

test: setup-dev graphviz
# The step-through page's test drives a real browser: Debian's chromium and chromedriver,
# installed here as root; elsewhere that test is skipped and says why.
	@{ command -v chromium && command -v chromedriver; } >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null 2>&1 \
	    || (apt-get update -qq && apt-get install -y -qq --no-install-recommends \
	        chromium chromium-driver >/dev/null) \
	    || echo "note: could not install chromium; the browser test will be skipped"; \
	  else \
	    echo "note: chromium/chromedriver not found (apt-get install chromium chromium-driver);" \
	         "the browser test will be skipped"; \
	  fi; }
	$(BIN)/python -m pytest -q -n auto  # one worker per core (pytest-xdist)

benchmark: setup-dev
	$(BIN)/python benchmarks/run_all.py

# Redraws docs/images and reruns the full experiments into docs/batchnorm.md (several minutes).
docs: setup graphviz
	$(BIN)/python docs/make_images.py
	$(BIN)/python docs/make_results.py

# notebooks/ is generated from examples/ (the source): `make notebooks` after editing a script.
# `make notebook` opens them in Jupyter, with the venv's Python as the kernel.
.PHONY: notebook notebooks
notebooks: setup-dev
	$(BIN)/python notebooks/generate.py

notebook: $(VENV)/.installed-notebook graphviz
	$(BIN)/jupyter notebook notebooks/ $$([ "$$(id -u)" = "0" ] && echo --allow-root)  # Jupyter refuses root unless told

$(VENV)/.installed-notebook: pyproject.toml | $(BIN)/python
	@$(INSTALL) -e ".[examples,notebook,fast]" || { $(no_numba); $(INSTALL) -e ".[examples,notebook]"; }
	touch $@

setup: $(VENV)/.installed-examples
setup-dev: $(VENV)/.installed-dev

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv \
	|| { echo "note: could not install uv; installing with pip (slower)"; \
	     $(BIN)/python -m pip install --quiet --upgrade pip; }

# The [fast] extra (Numba's compiled kernels) is optional: where it cannot be installed, minigrad
# runs on its NumPy path and says so.
no_numba = echo "note: Numba could not be installed; minigrad runs without its compiled kernels"

$(VENV)/.installed-examples: pyproject.toml | $(BIN)/python
	@$(INSTALL) -e ".[examples,fast]" || { $(no_numba); $(INSTALL) -e ".[examples]"; }
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	@$(INSTALL) -e ".[dev,examples,fast]" || { $(no_numba); $(INSTALL) -e ".[dev,examples]"; }
	@if [ "$(WITH_TORCH)" = "1" ]; then \
	  $(INSTALL) "$(TORCH_PIN)" \
	  || echo "note: PyTorch could not be installed; the tests that compare with it will be skipped"; \
	fi
	touch $@ $(VENV)/.installed-examples  # the dev set-up holds the demo's too

# The `dot` program renders graphs to SVG/PNG. Install it where we can (Debian, as root);
# without it minigrad still writes .dot files and says how to install Graphviz.
graphviz:
	@command -v dot >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && apt-get install -y -qq graphviz >/dev/null) \
	    || echo "note: could not install Graphviz; graphs will be written as .dot only"; \
	  else \
	    echo "note: Graphviz 'dot' not found (install it: apt-get install graphviz / brew install graphviz);" \
	         "graphs will be written as .dot only"; \
	  fi; }

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis
