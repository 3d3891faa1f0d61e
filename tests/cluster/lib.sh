# Shared by the cluster tests (sourced): a temp dir and a cluster per test that
# is always taken down, bounded waits on conditions, node addresses and heights.
# A test sets TEST_NAME and TEST_INDEX (its port slot) before sourcing.
set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
BIN=$(cd "${SEQ_BIN:-$ROOT/build}" && pwd -P)
CLUSTER_SH="$ROOT/scripts/cluster.sh"
SEQCTL="$BIN/seqctl"
SEQD="$BIN/seqd"

T=$(mktemp -d "${TMPDIR:-/tmp}/seq-${TEST_NAME}.XXXXXX")
CDIR="$T/cluster"
# seqctl subscribe and tx verify against the cluster's genesis (written by `up`).
export SEQ_GENESIS="$CDIR/genesis.json"
# Below the Linux ephemeral range (32768+) so outgoing connections never hold
# our ports; one 1000-port slot per test, a random 40-port window inside it.
BASE_PORT=$((20000 + 1000 * TEST_INDEX + 40 * (RANDOM % 24)))

log() { echo "$TEST_NAME: $*"; }

cleanup() {
    local rc=$?
    bash "$CLUSTER_SH" down --dir "$CDIR" --bin "$BIN" >/dev/null 2>&1
    # Under a sanitizer build (SEQ_BIN=build/asan) a report in a node's log,
    # even one written at shutdown, fails the test.
    local bad
    bad=$(grep -l -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$CDIR"/node*/seqd.log 2>/dev/null)
    if [ -n "$bad" ]; then
        echo "$TEST_NAME: FAIL: sanitizer report in $bad:"
        grep -h -A 12 -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' $bad | head -40
        [ $rc -eq 0 ] && rc=1
    fi
    if [ $rc -ne 0 ] && [ -d "$CDIR" ]; then
        local f
        for f in "$CDIR"/node*/seqd.log; do
            [ -f "$f" ] || continue
            echo "---- last lines of $f"
            grep -v 'event=finalized' "$f" | tail -n 8
        done
    fi
    # A failed test keeps its logs (not its stores) for a look afterwards.
    if [ -n "${KEEP:-}" ]; then
        echo "$TEST_NAME: kept $T"
    elif [ $rc -ne 0 ]; then
        rm -rf "$CDIR"/node*/data
        echo "$TEST_NAME: logs kept in $T"
    else
        rm -rf "$T"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "$TEST_NAME: FAIL: $*"; exit 1; }

cluster() { bash "$CLUSTER_SH" "$@" --dir "$CDIR" --bin "$BIN"; }

ini_get() {
    awk -v sec="$2" -v key="$3" '
        /^[ \t]*\[/ { gsub(/[][ \t]/, ""); cur = $0; next }
        cur == sec && $0 ~ "^[ \t]*" key "[ \t]*=" {
            sub(/^[^=]*=[ \t]*/, ""); sub(/[ \t]*$/, ""); print; exit
        }' "$1"
}

# Rewrites KEY in [SECTION] of an ini file to VALUE (the key must exist).
ini_set() {
    local f=$1 sec=$2 key=$3 val=$4
    awk -v sec="$sec" -v key="$key" -v val="$val" '
        /^[ \t]*\[/ { s = $0; gsub(/[][ \t]/, "", s); cur = s }
        cur == sec && $0 ~ "^[ \t]*" key "[ \t]*=" { print key " = " val; next }
        { print }' "$f" >"$f.tmp" && mv "$f.tmp" "$f"
    [ "$(ini_get "$f" "$sec" "$key")" = "$val" ] || fail "could not set [$sec] $key in $f"
}

api_of() { ini_get "$CDIR/node$1/seqd.conf" api listen; }
p2p_of() { ini_get "$CDIR/node$1/seqd.conf" p2p listen; }

# Field of `seqctl status` (height, view, leader, peers, mempool_txs); empty when
# the node does not answer.
status_field() {
    timeout 3 "$SEQCTL" status --api "$(api_of "$1")" 2>/dev/null | awk -v k="$2" '$1 == k { print $2 }'
}
height_of() { status_field "$1" height; }

# Smallest / largest height among the given nodes (a silent node counts as 0).
min_height() {
    local i h m=""
    for i in "$@"; do
        h=$(height_of "$i"); h=${h:-0}
        if [ -z "$m" ] || [ "$h" -lt "$m" ]; then m=$h; fi
    done
    echo "$m"
}
max_height() {
    local i h m=0
    for i in "$@"; do
        h=$(height_of "$i"); h=${h:-0}
        [ "$h" -gt "$m" ] && m=$h
    done
    echo "$m"
}

now_ms() { date +%s%3N; }

# wait_until SECONDS DESCRIPTION COMMAND...: polls COMMAND every 100 ms; fails
# the test naming DESCRIPTION when it is still false after SECONDS.
wait_until() {
    local secs=$1 what=$2 deadline
    shift 2
    deadline=$(($(now_ms) + secs * 1000))
    until "$@"; do
        [ "$(now_ms)" -ge $deadline ] && fail "timed out after ${secs}s waiting for: $what"
        sleep 0.1
    done
}

# Each node's block hashes at heights 1..H must be identical, one line per height.
compare_hashes() {
    local h=$1 i first=""
    shift
    for i in "$@"; do
        timeout 60 "$SEQCTL" subscribe --api "$(api_of "$i")" --ns 1 --from 1 --count "$h" >"$T/hashes.$i.json" ||
            fail "node$i: subscribe --from 1 --count $h failed or timed out"
        sed -E 's/.*"height":([0-9]+),.*"block_hash":"([0-9a-f]+)".*/\1 \2/' "$T/hashes.$i.json" >"$T/hashes.$i"
        [ "$(wc -l <"$T/hashes.$i")" -eq "$h" ] || fail "node$i: $(wc -l <"$T/hashes.$i") batches for $h heights"
        awk -v h="$h" '$1 != NR { exit 1 } END { if (NR != h) exit 1 }' "$T/hashes.$i" ||
            fail "node$i: heights are not exactly 1..$h"
        if [ -z "$first" ]; then
            first=$i
        elif ! cmp -s "$T/hashes.$first" "$T/hashes.$i"; then
            fail "node$first and node$i differ: $(diff "$T/hashes.$first" "$T/hashes.$i" | head -3 | tr '\n' ' ')"
        fi
    done
    log "same block hash at every height 1..$h on nodes $*"
}

# True while a seqd of node I is alive (per cluster.sh status).
node_state() { cluster status | awk -v n="node$1" '$1 == n { sub("state=", "", $3); print $3 }'; }

# True when every given node has finalized height H (for wait_until).
all_at_least() {
    local h=$1
    shift
    [ "$(min_height "$@")" -ge "$h" ]
}
