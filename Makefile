# The two commands a newcomer needs: `make demo` and `make test`. Both create .venv with
# everything required, starting from nothing but python3.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
# PyTorch is an optional test oracle; `make test WITH_TORCH=0` skips installing it.
WITH_TORCH ?= 1
TORCH_PIN   = torch==2.13.0

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
	$(BIN)/python -m pytest -q

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
	$(BIN)/python -m pip install --quiet -e ".[examples,notebook]"
	touch $@

setup: $(VENV)/.installed-examples
setup-dev: $(VENV)/.installed-dev

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-examples: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[examples]"
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev,examples]"
	if [ "$(WITH_TORCH)" = "1" ]; then \
	  $(BIN)/python -m pip install --quiet "$(TORCH_PIN)" \
	  || echo "note: PyTorch could not be installed; the tests that compare with it will be skipped"; \
	fi
	touch $@

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
