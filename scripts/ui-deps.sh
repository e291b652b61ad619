#!/usr/bin/env bash
# What the chat page's browser test (crates/hearth-cli/tests/ui.rs) needs:
# Debian's chromium and node, and the npm packages pinned in
# tests/ui/package-lock.json (playwright-core, axe-core) installed into
# tests/ui/node_modules. Safe to run again; does nothing when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."

# Only what is missing: a machine with its own Node.js keeps it.
pkgs=()
command -v node >/dev/null && command -v npm >/dev/null || pkgs+=(nodejs npm)
[ -x /usr/bin/chromium ] || pkgs+=(chromium)
if [ ${#pkgs[@]} -gt 0 ]; then
  as_root=""
  [ "$(id -u)" = 0 ] || as_root="sudo"
  $as_root apt-get update -qq
  $as_root apt-get install -y -qq "${pkgs[@]}" >/dev/null
fi
if [ ! -d tests/ui/node_modules/playwright-core ] || [ ! -d tests/ui/node_modules/axe-core ] \
  || [ tests/ui/package-lock.json -nt tests/ui/node_modules ]; then
  (cd tests/ui && npm ci --no-audit --no-fund --silent)
fi
echo "ui-deps: $(node --version), $(/usr/bin/chromium --version 2>/dev/null | head -1), playwright-core $(node -p 'require("./tests/ui/node_modules/playwright-core/package.json").version')"
