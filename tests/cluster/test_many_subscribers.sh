#!/usr/bin/env bash
# One node serves 250 concurrent subscriptions under load: every one of them
# gets every height, in order, while the cluster keeps finalizing.
TEST_NAME=many_subscribers TEST_INDEX=7
source "$(dirname "$0")/lib.sh"

NODES=(0 1 2 3)
SUBS=250
cluster up 4 --base-port "$BASE_PORT" >/dev/null || fail "cluster did not come up"
wait_until 20 "every node finalizes height 2" all_at_least 2 "${NODES[@]}"
apis=$(for i in "${NODES[@]}"; do printf '%s,' "$(api_of "$i")"; done)
"$SEQCTL" bench --api "${apis%,}" --rate 3000 --size 256 --namespaces 8 --duration 20 --warmup 1 >"$T/bench.out" 2>&1 &
bench_pid=$!
h0=$(height_of 0)
# All on node0, one namespace each (1..250: the 8 loaded ones and 242 empty).
"$SEQCTL" fanout --api "$(api_of 0)" --subscribers "$SUBS" --duration 8 >"$T/fanout.out" 2>"$T/fanout.err" ||
    fail "fanout: $(tail -2 "$T/fanout.out" "$T/fanout.err")"
grep -q "^fanout: attached $SUBS subscriptions in" "$T/fanout.err" || fail "fanout did not say when all were attached"
h1=$(height_of 0)
kill "$bench_pid" 2>/dev/null
wait "$bench_pid" 2>/dev/null
log "$(cat "$T/fanout.out"); node0 heights $h0 -> $h1"
min=$(sed -E 's/.*min_heights=([0-9]+).*/\1/' "$T/fanout.out")
# Each subscription starts at the height after its own status call and runs
# for the same 8 s: the least served must still have seen most of the heights.
[ "$min" -ge $(((h1 - h0) / 2)) ] || fail "a subscription got only $min heights of $((h1 - h0))"
[ "$h1" -ge $((h0 + 20)) ] || fail "node0 finalized only $((h1 - h0)) heights while serving $SUBS subscriptions"
