#!/usr/bin/env bash
# Every validator stopped at once under load, then started again: the chain
# must move on. A view whose votes were all cast but whose certificates died
# with the processes' memory is re-certified from the votes each node resends
# when a link comes up, and the blocks voted for are served from the kept
# store (lib/store.h). Three rounds: SIGTERM, SIGKILL, SIGTERM.
TEST_NAME=restart_all TEST_INDEX=5
source "$(dirname "$0")/lib.sh"

NODES=(0 1 2 3)
cluster up 4 --base-port "$BASE_PORT" --view-timeout-ms 500 >/dev/null || fail "cluster did not come up"
wait_until 20 "every node finalizes height 3" all_at_least 3 "${NODES[@]}"

load() { # background load on two nodes; it ends when the nodes go away
    "$BIN/seqctl" bench --api "$(api_of 0),$(api_of 1)" --rate 3000 --size 100 --namespaces 2 \
        --duration 30 --warmup 0 >/dev/null 2>&1 &
    echo $!
}

for sig in TERM KILL TERM; do
    pid=$(load)
    sleep 2
    before=$(max_height "${NODES[@]}")
    for i in "${NODES[@]}"; do
        p=$(cat "$CDIR/node$i/seqd.pid" 2>/dev/null) && kill -"$sig" "$p" 2>/dev/null
    done
    for i in "${NODES[@]}"; do wait_until 15 "node$i exits after SIG$sig" sh -c "[ \"\$(bash '$CLUSTER_SH' status --dir '$CDIR' --bin '$BIN' | awk '\$1 == \"node$i\" { print \$3 }')\" != state=running ]"; done
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    for i in "${NODES[@]}"; do cluster start "$i" >/dev/null || fail "node$i did not restart after SIG$sig"; done
    wait_until 20 "the chain moves past height $before after SIG$sig to every node" all_at_least $((before + 3)) "${NODES[@]}"
    log "SIG$sig to every node at height $before: all moved on to $(min_height "${NODES[@]}")"
done

compare_hashes "$(min_height "${NODES[@]}")" "${NODES[@]}"
log "PASS"
