#!/usr/bin/env bash
# A verifying subscriber that is disconnected and reconnects (to another
# node each time) at least 20 times during a loaded 4-node run receives every
# transaction of its namespace exactly once and in order, every batch
# verified, and the result equals what every node stored (read from each
# node's store with the reader).
TEST_NAME=subscribe_reconnect TEST_INDEX=10
source "$(dirname "$0")/lib.sh"

NODES=(0 1 2 3)
NS=7
TXS=1500
RECONNECT_EVERY=20      # batches per connection (one batch per height)
command -v python3 >/dev/null || fail "python3 is needed for the checks"

cluster up 4 --base-port "$BASE_PORT" >/dev/null || fail "cluster did not come up"
wait_until 20 "every node finalizes height 3" all_at_least 3 "${NODES[@]}"
apis=$(for i in "${NODES[@]}"; do printf '%s,' "$(api_of "$i")"; done)
apis=${apis%,}

# Background load on other namespaces for the whole run.
"$SEQCTL" bench --api "$apis" --rate 3000 --size 256 --namespaces 4 --duration 60 --warmup 1 >"$T/bench.out" 2>&1 &
bench_pid=$!

# The subscriber, from height 1, rotating over the four nodes.
"$SEQCTL" subscribe --api "$apis" --ns "$NS" --from 1 --reconnect-every "$RECONNECT_EVERY" \
    >"$T/sub.jsonl" 2>"$T/sub.err" &
sub_pid=$!

# TXS transactions of namespace NS, spread over the nodes, in bursts while
# the subscriber keeps reconnecting.
run=$RANDOM$RANDOM
# One output file per submit process: four processes appending to one file
# through stdio can split a line across two writes and interleave them.
accepted_at_least() { [ "$(cat "$T"/submit.*.out 2>/dev/null | grep -c '^accepted id=')" -ge "$1" ]; }
for ((k = 0; k < 5; k++)); do
    for j in "${NODES[@]}"; do
        for ((i = j; i < TXS / 5; i += 4)); do echo "rc-$run-b$k-tx$i"; done |
            timeout 30 "$SEQCTL" submit --api "$(api_of "$j")" --ns "$NS" --lines >"$T/submit.$k.$j.out" 2>&1 &
    done
    wait_until 20 "burst $k accepted" accepted_at_least $(((k + 1) * TXS / 5))
    sleep 1
done
log "$TXS transactions accepted"

received() { python3 -c '
import json, sys
n = 0
for line in open(sys.argv[1]):
    try: n += json.loads(line)["tx_count"]
    except Exception: pass
print(n)' "$T/sub.jsonl"; }
reconnects() { grep -c 'reconnected to' "$T/sub.err"; }
enough() { [ "$(received)" -ge "$TXS" ] && [ "$(reconnects)" -ge 20 ]; }
wait_until 90 "the subscriber gets all $TXS transactions across 20 reconnects" enough
kill "$sub_pid" "$bench_pid" 2>/dev/null
wait "$sub_pid" 2>/dev/null
wait "$bench_pid" 2>/dev/null
grep -q 'verifying against genesis' "$T/sub.err" || fail "the subscriber did not verify: $(head -2 "$T/sub.err")"
if grep -v -E 'verifying against genesis|reconnected to|connection lost' "$T/sub.err" | grep -q .; then
    fail "the subscriber complained: $(grep -v -E 'verifying|reconnected|connection lost' "$T/sub.err" | head -3)"
fi
top=$(python3 -c 'import json,sys; print(max(json.loads(l)["height"] for l in open(sys.argv[1])))' "$T/sub.jsonl")
log "subscriber: $(reconnects) reconnects, heights 1..$top, $(received) transactions"

for i in "${NODES[@]}"; do
    timeout 60 "$SEQCTL" read --home "$CDIR/node$i" --ns "$NS" --from 1 --limit "$top" >"$T/read.$i.jsonl" ||
        fail "node$i: seqctl read failed"
done

cat >"$T/check.py" <<'PY'
# argv: run txs sub.jsonl read.*.jsonl: every height 1..top once, in order,
# verified; the namespace's transactions exactly the submitted ones, each
# once; and the same (height, ids) sequence as each node's store.
import base64, json, sys
run, txs, sub, reads = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
def load(path):
    out, heights = [], []
    for line in open(path):
        b = json.loads(line)
        if not b["verified"]: sys.exit("%s: height %d not verified" % (path, b["height"]))
        heights.append(b["height"])
        out += [(b["height"], t["id"], base64.b64decode(t["data"]).decode()) for t in b["txs"]]
    if heights != list(range(1, len(heights) + 1)):
        sys.exit("%s: heights are not exactly 1..%d once each" % (path, len(heights)))
    return out
got = load(sub)
mine = [p for _, _, p in got if p.startswith("rc-%s-" % run)]
if len(mine) != txs or len(set(mine)) != txs:
    sys.exit("subscriber: %d of ours, %d distinct, want %d" % (len(mine), len(set(mine)), txs))
for r in reads:
    stored = load(r)
    if [(h, i) for h, i, _ in stored] != [(h, i) for h, i, _ in got]:
        sys.exit("%s differs from what the subscriber received" % r)
print("ok: %d transactions once each, in the stored order of %d nodes" % (txs, len(reads)))
PY
python3 "$T/check.py" "$run" "$TXS" "$T/sub.jsonl" "$T"/read.*.jsonl >"$T/check.out" 2>&1 || fail "$(cat "$T/check.out")"
log "$(cat "$T/check.out")"
