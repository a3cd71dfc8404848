# sendguard: the two commands of the quick start.
#   make demo   set everything up and run sendguard on the bundled demo directory
#   make test   set everything up and run the whole test suite (what CI runs)

.PHONY: demo test lint setup

# Debian packages the integration and browser tests drive; installed by scripts/setup.sh when root.
export SENDGUARD_APT_PACKAGES ?= postfix swaks chromium

setup:
	@scripts/setup.sh

demo: setup
	@scripts/demo.sh

lint: setup
	.venv/bin/ruff check src tests bench
	.venv/bin/ruff format --check src tests bench
	.venv/bin/mypy

test: lint
	.venv/bin/python -m pytest
