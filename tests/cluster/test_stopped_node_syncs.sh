#!/usr/bin/env bash
# A node stopped while the others finalize more than 50 heights under load
# catches up after its restart and then holds the same blocks as the others.
# (View timeout 300 ms: the views the stopped node would lead pass quickly.)
TEST_NAME=stopped_node_syncs TEST_INDEX=3
source "$(dirname "$0")/lib.sh"

NODES=(0 1 2 3)
OTHERS=(0 1 2)
STOPPED=3
MISSED_MIN=60
NS=7

cluster up 4 --base-port "$BASE_PORT" --view-timeout-ms 300 >/dev/null || fail "cluster did not come up"
wait_until 20 "every node finalizes height 3" all_at_least 3 "${NODES[@]}"

cluster stop "$STOPPED" >/dev/null || fail "cannot stop node$STOPPED"
[ "$(node_state "$STOPPED")" = stopped ] || fail "node$STOPPED is $(node_state "$STOPPED"), want stopped"
h_stop=$(max_height "${OTHERS[@]}")
target=$((h_stop + MISSED_MIN))
log "stopped node$STOPPED at height $h_stop; loading the others until height $target"

# Batches of 50 transactions every 100 ms to the three live nodes in turn,
# until the slowest of them has finalized the target height (bounded).
deadline=$((SECONDS + 60))
sent=0 batch=0
until all_at_least "$target" "${OTHERS[@]}"; do
    [ $SECONDS -ge $deadline ] && fail "live nodes did not reach height $target in 60 s (at $(min_height "${OTHERS[@]}"))"
    node=${OTHERS[$((batch % ${#OTHERS[@]}))]}
    for ((k = 0; k < 50; k++)); do echo "sync-$batch-$k-$RANDOM"; done |
        timeout 10 "$SEQCTL" submit --api "$(api_of "$node")" --ns "$NS" --lines >"$T/submit.out" 2>&1 ||
        fail "submit to node$node failed: $(head -3 "$T/submit.out")"
    sent=$((sent + 50)); batch=$((batch + 1))
    sleep 0.1
done
[ "$(height_of "$STOPPED")" = "" ] || fail "node$STOPPED answers while stopped"
log "live nodes at height $(min_height "${OTHERS[@]}") after $sent transactions"

cluster start "$STOPPED" >/dev/null || fail "node$STOPPED did not restart"
h_restart=$(height_of "$STOPPED")
target=$(max_height "${OTHERS[@]}")
[ "${h_restart:-0}" -le $((h_stop + 1)) ] || log "note: node$STOPPED restarted already at height $h_restart"
wait_until 30 "node$STOPPED catches up to height $target" all_at_least "$target" "$STOPPED"
log "node$STOPPED caught up from height ${h_restart:-?} to $target"

compare_hashes "$(min_height "${NODES[@]}")" "${NODES[@]}"

# Its copy holds every transaction sent while it was down.
got=$(timeout 30 "$SEQCTL" subscribe --api "$(api_of "$STOPPED")" --ns "$NS" --from 1 --count "$(min_height "${NODES[@]}")" |
      sed -nE 's/^\{[^{]*"tx_count":([0-9]+).*/\1/p' | awk '{ s += $1 } END { print s + 0 }')
[ "$got" -eq "$sent" ] || fail "node$STOPPED holds $got transactions of namespace $NS, $sent were sent"
log "PASS: node$STOPPED holds all $sent transactions sent while it was down"
