# mmvit_plugins — every target uses the environment that `make install` sets up.
# VENV=.venv (default): a virtualenv in the repository root.
# VENV=none: the Python on PATH as it is (an existing OpenMMLab environment).
VENV ?= .venv
ifeq ($(VENV),none)
PY := python
else
PY := $(VENV)/bin/python
endif
export VENV

PYTEST_ARGS ?=
# pytest-xdist workers of `make test` (one torch thread each, see tests/conftest.py); tests that
# share an expensive module fixture stay on one worker (--dist loadgroup). TEST_WORKERS=0: serial.
TEST_WORKERS ?= 2

.PHONY: install test demo benchmark sanitize clean help

help:
	@echo "make install    install the pinned OpenMMLab stack and build our ops (idempotent)"
	@echo "make test       make install, then the whole test suite"
	@echo "make demo       the main job on bundled demo data"
	@echo "make benchmark  compiled ops vs their PyTorch references (table + JSON)"
	@echo "make sanitize   the op and fuzz tests on an ASan/UBSan build of the ops (build/asan)"

install:
	bash tools/install_env.sh

test: install
	$(PY) -m pytest tests -q -ra -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# The main job on bundled demo data: generate data/demo (deterministic), train Mask R-CNN +
# HRViT-b1 on the CPU, evaluate COCO bbox/segm mAP, draw predictions (work_dirs/demo/).
DEMO_ARGS ?=
demo: install
	$(PY) tools/demo.py $(DEMO_ARGS)

benchmark: install
	$(PY) tools/analysis/benchmark_ops.py

# Our CPU kernels built with -fsanitize=address,undefined into build/asan/ (the installed build is
# untouched), and the op tests plus their hypothesis fuzzing run on it; any report fails.
sanitize: install
	$(PY) tools/build_sanitized_ext.py -- $(PY) -m pytest tests/test_ops_na.py tests/test_ops_elsa.py tests/test_fuzz_ops.py -q -p no:cacheprovider --capture=sys

clean:
	rm -rf build mmvit_plugins/_ext*.so *.egg-info .pytest_cache
