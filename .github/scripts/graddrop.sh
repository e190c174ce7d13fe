#!/usr/bin/env bash
# Runs `main.ts COMMAND ARGS...` the way the README's quick start does (npx, no Deno
# install), adding the workflow's --set overrides (GRADDROP_SET, space-separated
# PATH=VALUE) to the commands that build a plan, so every job computes the same cache keys.
set -euo pipefail
cmd=$1
shift
sets=()
if [[ $cmd == run || $cmd == plan || $cmd == status ]]; then
  # A value such as [1,2] must not be expanded as a glob.
  set -f
  for s in ${GRADDROP_SET:-}; do sets+=(--set "$s"); done
  set +f
fi
exec npx --yes deno@2.9.6 run -A main.ts "$cmd" "$@" "${sets[@]}"
