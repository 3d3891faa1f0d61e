#!/usr/bin/env bash
# `make demo`: a 4-validator cluster of real seqd processes on 127.0.0.1 shared
# by three rollups. Each rollup sends its transactions to a different node; one
# rollup's batches are shown as they finalize; at the end every node must hold
# the same chain. Everything runs in a temp dir that is removed on exit.
# Env: DEMO_SECONDS (20), DEMO_BASE_PORT (17600), SEQ_BIN (./build).
set -u
root=$(cd "$(dirname "$0")/.." && pwd -P)
BIN=$(cd "${SEQ_BIN:-$root/build}" && pwd -P) || { echo "demo: no build dir"; exit 1; }
SEQCTL="$BIN/seqctl"
SECONDS_TOTAL=${DEMO_SECONDS:-20}
BASE_PORT=${DEMO_BASE_PORT:-17600}
ROLLUPS=(101 102 103)
declare -A NAME=([101]=rollup-a [102]=rollup-b [103]=rollup-c)
declare -A USERS=([101]="alice bob carol" [102]="dave erin" [103]="frank grace heidi ivan")

work=$(mktemp -d "${TMPDIR:-/tmp}/seq-demo.XXXXXX")
dir="$work/cluster"
export SEQ_GENESIS="$dir/genesis.json" # seqctl subscribe verifies every batch against it
bg_pids=()
cleanup() {
    local p
    for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${bg_pids[@]}"; do wait "$p" 2>/dev/null; done
    bash "$root/scripts/cluster.sh" down --dir "$dir" --bin "$BIN" >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cluster() { bash "$root/scripts/cluster.sh" "$@" --dir "$dir" --bin "$BIN"; }
api_of() { awk '/^\[api\]/ { s = 1; next } /^\[/ { s = 0 } s && $1 == "listen" { print $3; exit }' "$dir/node$1/seqd.conf"; }
height_of() { timeout 3 "$SEQCTL" status --api "$(api_of "$1")" 2>/dev/null | awk '$1 == "height" { print $2 }'; }
say() { printf '\n== %s\n' "$*"; }

for b in seqd seqctl; do [ -x "$BIN/$b" ] || { echo "demo: $BIN/$b missing: make build/seqd build/seqctl"; exit 1; }; done

say "Starting 4 validators (seqd) on 127.0.0.1, ports $BASE_PORT.. (p2p) and $((BASE_PORT + 1)).. (client API)"
cluster up 4 --base-port "$BASE_PORT" || exit 1
cluster status | sed 's/^/   /'
echo "   They agree on one ordered chain of blocks; a block holds batches of many rollups,"
echo "   each rollup (namespace) reads back only its own batches, in order."

# One sender per rollup, each talking to its own node: every second a handful
# of transactions; the accepted ones are counted in $work/sent.<ns>.
sender() {
    local ns=$1 node=$2 n=0 k users lines
    read -ra users <<<"${USERS[$ns]}"
    local end=$((SECONDS + SECONDS_TOTAL))
    while [ $SECONDS -lt $end ]; do
        lines=""
        for ((k = 0; k < 5 + RANDOM % 11; k++)); do
            n=$((n + 1))
            lines+="${NAME[$ns]} #$n: ${users[RANDOM % ${#users[@]}]} pays ${users[RANDOM % ${#users[@]}]} $((RANDOM % 100 + 1))"$'\n'
        done
        printf '%s' "$lines" | "$SEQCTL" submit --api "$(api_of "$node")" --ns "$ns" --lines 2>/dev/null |
            grep -c '^accepted' >>"$work/sent.$ns"
        sleep 1
    done
}

# One line per finalized batch of rollup-a, read from node 3: the subscriber
# is the background job itself (its pid is what cleanup kills), the formatter
# ends when it does.
show_batches() {
    "$SEQCTL" subscribe --api "$(api_of 3)" --ns 101 --from 1 --skip-empty 2>/dev/null > >(
        while IFS= read -r line; do
            [[ $line =~ ^\{\"height\":([0-9]+),[^{]*\"tx_count\":([0-9]+),\"txs\":\[\{[^}]*\"data\":\"([^\"]*)\" ]] || continue
            printf '   rollup-a batch  height %s  %s txs  first: "%s"\n' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" \
                "$(printf '%s' "${BASH_REMATCH[3]}" | base64 -d 2>/dev/null)"
        done) &
}

say "For ${SECONDS_TOTAL}s: rollup-a (ns 101) -> node0, rollup-b (ns 102) -> node1, rollup-c (ns 103) -> node2."
echo "   Below: rollup-a's batches as node3 finalizes them, and the cluster every 5 s."
i=0
for ns in "${ROLLUPS[@]}"; do
    : >"$work/sent.$ns"
    sender "$ns" "$i" & bg_pids+=($!)
    i=$((i + 1))
done
show_batches
bg_pids+=($!)

end=$((SECONDS + SECONDS_TOTAL))
while [ $SECONDS -lt $end ]; do
    left=$((end - SECONDS))
    sleep $((left < 5 ? left : 5))
    echo "   -- cluster at +$((SECONDS_TOTAL - (end - SECONDS)))s:"
    cluster status | awk '{ printf "      %s %s %s\n", $1, $3, $4 }'
done
wait "${bg_pids[0]}" "${bg_pids[1]}" "${bg_pids[2]}" 2>/dev/null

# Let the last transactions finalize (bounded), then stop showing batches.
deadline=$((SECONDS + 10))
while [ $SECONDS -lt $deadline ]; do
    pending=0
    for n in 0 1 2 3; do
        p=$(timeout 3 "$SEQCTL" status --api "$(api_of "$n")" 2>/dev/null | awk '$1 == "mempool_txs" { print $2 }')
        pending=$((pending + ${p:-0}))
    done
    [ $pending -eq 0 ] && break
    sleep 0.2
done
sleep 0.5
kill "${bg_pids[3]}" 2>/dev/null

say "Summary"
common=""
for n in 0 1 2 3; do
    h=$(height_of "$n")
    echo "   node$n finalized height ${h:-?}"
    if [ -n "$h" ] && { [ -z "$common" ] || [ "$h" -lt "$common" ]; }; then common=$h; fi
done
[ -n "$common" ] || { echo "demo: no node answers"; exit 1; }
total_sent=0 total_final=0
for ns in "${ROLLUPS[@]}"; do
    sent=$(awk '{ s += $1 } END { print s + 0 }' "$work/sent.$ns")
    final=$(timeout 30 "$SEQCTL" subscribe --api "$(api_of 0)" --ns "$ns" --from 1 --count "$common" 2>/dev/null |
            sed -nE 's/^\{[^{]*"tx_count":([0-9]+).*/\1/p' | awk '{ s += $1 } END { print s + 0 }')
    echo "   ${NAME[$ns]} (ns $ns): $sent transactions accepted, $final finalized by height $common"
    total_sent=$((total_sent + sent)); total_final=$((total_final + final))
done
echo "   total: $total_final of $total_sent transactions finalized"

hashes=""
for n in 0 1 2 3; do
    hh=$(timeout 10 "$SEQCTL" subscribe --api "$(api_of "$n")" --ns 101 --from "$common" --count 1 2>/dev/null |
         sed -E 's/.*"block_hash":"([0-9a-f]+)".*/\1/')
    echo "   node$n block at height $common: ${hh:0:16}..."
    hashes="$hashes$hh"$'\n'
done
if [ "$(printf '%s' "$hashes" | sort -u | grep -c .)" -eq 1 ]; then
    echo "   all 4 nodes hold the same block at height $common: one agreed chain."
    ok=1
else
    echo "   the nodes DISAGREE at height $common (a bug: please report it)"
    ok=0
fi

say "Stopping the cluster and removing $work"
cluster down >/dev/null
[ $ok -eq 1 ] && [ "$total_final" -eq "$total_sent" ]
