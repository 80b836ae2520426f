#!/usr/bin/env bash
# Set up riskatlas on Debian 12: system packages (as root), the virtualenv and the package itself.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

want_apt=()
need() { dpkg -s "$1" >/dev/null 2>&1 || want_apt+=("$1"); }
need postgresql-15
need postgresql-15-postgis-3
need gdal-bin
need python3-venv
if [ "${RISKATLAS_WITH_BROWSER:-0}" = "1" ]; then need chromium; need fonts-wqy-microhei; fi
if [ ${#want_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing Debian packages: ${want_apt[*]} (run as root, or install them with apt-get)" >&2
    exit 2
  fi
  echo "installing ${want_apt[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${want_apt[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.riskatlas-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install -q --disable-pip-version-check -U pip wheel
  .venv/bin/pip install -q --disable-pip-version-check -e ".[test]"
  touch "$stamp"
fi
