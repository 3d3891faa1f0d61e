#!/usr/bin/env bash
# Runs each unit test binary; prints one closing line "N passed, N failed".
set -u
passed=0; failed=0; failed_names=()
for t in "$@"; do
  if "$t"; then passed=$((passed + 1)); else failed=$((failed + 1)); failed_names+=("$(basename "$t")"); fi
done
echo "unit: ${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ] || { echo "unit: failing: ${failed_names[*]}" >&2; exit 1; }
