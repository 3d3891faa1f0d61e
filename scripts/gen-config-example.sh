#!/usr/bin/env bash
# Regenerates config/seqd.conf.example from the settings table in lib/config.c
# (test_config fails when the two differ).
set -euo pipefail
cd "$(dirname "$0")/.."
make --no-print-directory build/tests/test_config >/dev/null
build/tests/test_config --write-example > config/seqd.conf.example.tmp
mv config/seqd.conf.example.tmp config/seqd.conf.example
echo "wrote config/seqd.conf.example"
