#!/usr/bin/env bash
# Killing the current leader with SIGKILL stalls the chain for at most about
# two view timeouts; the restarted node catches up and every node holds the
# same block at every height.
TEST_NAME=leader_kill TEST_INDEX=2
source "$(dirname "$0")/lib.sh"

VIEW_TIMEOUT_MS=1000
SLACK_MS=1500
NODES=(0 1 2 3)

cluster up 4 --base-port "$BASE_PORT" --view-timeout-ms "$VIEW_TIMEOUT_MS" >/dev/null || fail "cluster did not come up"
wait_until 20 "every node finalizes height 5" all_at_least 5 "${NODES[@]}"

# The leader of node0's current view; its index in genesis is its node index
# (seqctl testnet names validator i node<i>).
leader=$(status_field 0 leader)
[ -n "$leader" ] && [ -d "$CDIR/node$leader" ] || fail "no leader index from node0's status (got '$leader')"
survivors=()
for i in "${NODES[@]}"; do [ "$i" != "$leader" ] && survivors+=("$i"); done

cluster kill "$leader" >/dev/null || fail "cannot kill node$leader"
t_kill=$(now_ms)
h_kill=$(max_height "${survivors[@]}")
log "killed leader node$leader (view $(status_field "${survivors[0]}" view)) at height $h_kill"

bound_ms=$((2 * VIEW_TIMEOUT_MS + SLACK_MS))
grows() { [ "$(max_height "${survivors[@]}")" -gt "$h_kill" ]; }
until grows; do
    [ $(($(now_ms) - t_kill)) -gt $bound_ms ] && fail "height stuck at $h_kill for ${bound_ms} ms after killing the leader"
    sleep 0.05
done
log "height grew past $h_kill $(($(now_ms) - t_kill)) ms after the kill (bound ${bound_ms} ms)"

# A few more heights without it, then restart it and let it catch up.
wait_until 30 "survivors finalize 5 more heights" all_at_least $((h_kill + 5)) "${survivors[@]}"
[ "$(node_state "$leader")" = dead ] || fail "node$leader should be dead, is $(node_state "$leader")"
cluster start "$leader" >/dev/null || fail "node$leader did not restart"
target=$(max_height "${survivors[@]}")
wait_until 30 "restarted node$leader reaches height $target" all_at_least "$target" "$leader"
log "node$leader restarted and reached height $target"

compare_hashes "$(min_height "${NODES[@]}")" "${NODES[@]}"
log "PASS"
