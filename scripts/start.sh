#!/usr/bin/env bash
# Set up (idempotent), build the demo library if the library is empty, start the app.
# Extra arguments go to `streamlit run` (e.g. --server.port 8502).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m core demo --if-empty
echo "PhotoLore: open http://127.0.0.1:${PORT:-8501}" >&2
exec .venv/bin/python -m streamlit run app.py --server.port "${PORT:-8501}" "$@"
