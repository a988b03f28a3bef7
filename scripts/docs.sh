#!/usr/bin/env bash
# Build the documentation site into site/ with `mkdocs build --strict` (a broken link, reference
# or snippet fails the build). The dev extra that setup_venv.sh installs includes the docs extra.
#   bash scripts/docs.sh            build site/
#   bash scripts/docs.sh serve      serve it on http://127.0.0.1:8000 with live reload
# Other arguments go to mkdocs.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup_venv.sh"
cd "$ROOT"
export NO_MKDOCS_2_WARNING=1   # Material's banner about MkDocs 2; not a problem of this site
if [ "${1:-}" = "serve" ]; then
  shift
  exec "$ROOT/.venv/bin/mkdocs" serve "$@"
fi
exec "$ROOT/.venv/bin/mkdocs" build --strict "$@"
