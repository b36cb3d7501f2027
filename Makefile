# The two commands of the README: `make demo` and `make test`. Both set themselves up on a
# fresh machine (venv cached by requirements hash, ROS 2 wheels, colcon build).
SHELL := /bin/bash
ENV := source scripts/env.sh &&
PYTEST_ARGS ?=

.PHONY: setup demo test lint bench clean

setup:
	./scripts/setup_env.sh >/dev/null

demo: setup
	$(ENV) python -m spatial_vlm_ros.cli demo $(DEMO_ARGS)

lint: setup
	$(ENV) ruff check .

test: setup
	$(ENV) ruff check . && python -m pytest -p no:dash -p no:cacheprovider test/ $(PYTEST_ARGS)

bench: setup
	$(ENV) python -m spatial_vlm_ros.cli bench all

clean:
	rm -rf build install log
