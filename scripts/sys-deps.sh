#!/usr/bin/env bash
# System tools the tests run besides the ones ui-deps.sh installs: strace,
# unshare (util-linux) and ip (iproute2) for the routing test that serves
# inside a network namespace holding only `lo` and records every connect()
# (crates/hearth-cli/tests/route_serve.rs). Installs only what is missing.
set -euo pipefail
pkgs=()
command -v strace >/dev/null || pkgs+=(strace)
command -v unshare >/dev/null || pkgs+=(util-linux)
command -v ip >/dev/null || pkgs+=(iproute2)
if [ ${#pkgs[@]} -gt 0 ]; then
  as_root=""
  [ "$(id -u)" = 0 ] || as_root="sudo"
  $as_root apt-get update -qq
  $as_root apt-get install -y -qq "${pkgs[@]}" >/dev/null
fi
echo "sys-deps: $(strace -V | head -1), $(unshare --version), $(ip -V)"
