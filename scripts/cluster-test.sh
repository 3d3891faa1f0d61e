#!/usr/bin/env bash
# The cluster part of `make test`: every tests/cluster/test_*.sh against real
# seqd processes on 127.0.0.1, one after another (each starts 4 nodes), each
# under a time bound. Prints one line per test and "cluster: N passed, M failed".
# usage: scripts/cluster-test.sh [BUILD_DIR] [TEST_NAME...]
set -u
root=$(cd "$(dirname "$0")/.." && pwd -P)
export SEQ_BIN=$(cd "${1:-$root/build}" && pwd -P) || { echo "cluster: no build directory ${1:-}"; exit 1; }
shift || true
TEST_TIMEOUT_S=${CLUSTER_TEST_TIMEOUT_S:-150}

for b in seqd seqctl; do
    [ -x "$SEQ_BIN/$b" ] || { echo "cluster: $SEQ_BIN/$b missing (make build/seqd build/seqctl)"; exit 1; }
done

if [ $# -gt 0 ]; then
    tests=()
    for t in "$@"; do tests+=("$root/tests/cluster/${t%.sh}.sh"); done
else
    tests=("$root"/tests/cluster/test_*.sh)
fi

passed=0 failed=0 start=$SECONDS
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for t in "${tests[@]}"; do
    name=$(basename "$t" .sh)
    t0=$SECONDS
    # Each test takes its cluster down in its own EXIT trap; timeout's TERM
    # reaches that trap too.
    timeout -k 15 "$TEST_TIMEOUT_S" bash "$t" >"$out" 2>&1
    rc=$?
    if [ $rc -eq 0 ]; then
        passed=$((passed + 1))
        echo "cluster: $name ok ($((SECONDS - t0))s)"
    else
        failed=$((failed + 1))
        [ $rc -eq 124 ] && echo "cluster: $name timed out after ${TEST_TIMEOUT_S}s"
        echo "cluster: $name FAILED (exit $rc, $((SECONDS - t0))s); its output:"
        sed 's/^/    /' "$out" | tail -n 60
    fi
done
echo "cluster: ${passed} passed, ${failed} failed ($((SECONDS - start))s)"
[ $failed -eq 0 ]
