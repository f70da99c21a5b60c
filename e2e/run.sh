#!/bin/sh
# Runs the end-to-end tests (see README.md): installs the locked npm packages when they are
# missing or older than package-lock.json, then hands every argument to run.mjs.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
stamp="$here/node_modules/.package-lock.json"
if [ ! -f "$stamp" ] || [ "$here/package-lock.json" -nt "$stamp" ]; then
  (cd "$here" && npm ci --no-audit --no-fund)
fi
exec node "$here/run.mjs" "$@"
