#!/usr/bin/env bash
# Set up everything sendguard and its tests need, idempotently:
# a virtual environment with the package and test tools, and (as root) the
# Debian packages the integration tests drive.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=.venv/.sendguard-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".[test]"
    touch "$stamp"
fi

# Debian packages for the integration tests (Postfix, swaks, Chromium).
APT_PACKAGES="${SENDGUARD_APT_PACKAGES-}"
if [ -n "$APT_PACKAGES" ]; then
    missing=""
    for p in $APT_PACKAGES; do
        dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        if [ "$(id -u)" = 0 ]; then
            echo "installing Debian packages:$missing"
            echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
            echo "postfix postfix/mailname string sendguard.test" | debconf-set-selections
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
        else
            echo "note: not root, so these Debian packages are not installed:$missing" >&2
            echo "      the tests that need them will be skipped" >&2
        fi
    fi
fi
