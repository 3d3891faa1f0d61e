#!/usr/bin/env bash
# `seqctl read` beside a running node: transactions submitted to one
# namespace (through another node) are read from node1's store read-only,
# live with --follow and again from height 1 to the tip; each appears exactly
# once with its payload, every line is verified against the genesis, heights
# are consecutive, and nothing of another namespace leaks in.
TEST_NAME=reader TEST_INDEX=8
source "$(dirname "$0")/lib.sh"

NODES=(0 1 2 3)
NS=21
NS_OTHER=22
N_TXS=300
N_OTHER=40
READ_NODE=1
command -v python3 >/dev/null || fail "python3 is needed for the checks"

reader_pid=""
# Our background reader goes down with the test, whatever ends it.
trap 'rc=$?; [ -n "$reader_pid" ] && kill "$reader_pid" 2>/dev/null; (exit $rc); cleanup' EXIT

cluster up 4 --base-port "$BASE_PORT" >/dev/null || fail "cluster did not come up"
wait_until 20 "every node finalizes height 2" all_at_least 2 "${NODES[@]}"
HOME_DIR="$CDIR/node$READ_NODE"

timeout 90 "$SEQCTL" read --home "$HOME_DIR" --ns "$NS" --from 1 --follow >"$T/follow.json" 2>"$T/follow.err" &
reader_pid=$!

run=$RANDOM$RANDOM
for ((i = 0; i < N_TXS; i++)); do echo "rd-$run-$i"; done >"$T/in"
for ((i = 0; i < N_OTHER; i++)); do echo "other-$run-$i"; done >"$T/in.other"
timeout 30 "$SEQCTL" submit --api "$(api_of 2)" --ns "$NS" --lines <"$T/in" >"$T/out" 2>&1 || fail "submit: $(tail -1 "$T/out")"
timeout 30 "$SEQCTL" submit --api "$(api_of 3)" --ns "$NS_OTHER" --lines <"$T/in.other" >"$T/out.other" 2>&1 ||
    fail "submit to $NS_OTHER: $(tail -1 "$T/out.other")"
sed -n 's/^accepted id=//p' "$T/out" >"$T/ids"
[ "$(wc -l <"$T/ids")" -eq "$N_TXS" ] || fail "$(wc -l <"$T/ids") of $N_TXS accepted: $(grep -v '^accepted' "$T/out" | head -2)"
log "$N_TXS transactions accepted into ns $NS, $N_OTHER into ns $NS_OTHER"

cat >"$T/check.py" <<'EOF'
# argv: ns ids_file payloads_file reads_file [partial]
# Exit 0 when every id is in the reads exactly once with its payload, every
# line verified, heights 1..H consecutive; 3 when ids are still missing
# (only then: the reads may be behind); 1 with the problems otherwise.
import base64, json, sys
ns, ids_file, payloads_file, reads_file = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
partial = len(sys.argv) > 5
ids = [l.strip() for l in open(ids_file) if l.strip()]
payloads = dict(zip(ids, (l.rstrip("\n").encode() for l in open(payloads_file))))
lines = open(reads_file).read().split("\n")
if partial and lines and lines[-1] != "":
    lines = lines[:-1]          # a line still being written by --follow
problems, seen, height = [], {}, 0
for n, line in enumerate(l for l in lines if l):
    b = json.loads(line)
    height += 1
    if b["height"] != height:
        problems.append(f"line {n + 1}: height {b['height']}, expected {height}")
        height = b["height"]
    if b["verified"] is not True:
        problems.append(f"height {b['height']}: not verified")
    if b["ns"] != ns:
        problems.append(f"height {b['height']}: ns {b['ns']}")
    if b["tx_count"] != len(b["txs"]) or b["header"]["height"] != b["height"]:
        problems.append(f"height {b['height']}: inconsistent batch")
    for t in b["txs"]:
        seen[t["id"]] = seen.get(t["id"], 0) + 1
        want = payloads.get(t["id"])
        if want is None:
            problems.append(f"height {b['height']}: tx {t['id'][:12]} was not submitted to ns {ns}")
        elif base64.b64decode(t["data"], validate=True) != want:
            problems.append(f"height {b['height']}: tx {t['id'][:12]} payload differs")
dups = [i for i, c in seen.items() if c > 1]
if dups:
    problems.append(f"{len(dups)} transactions read more than once")
if problems:
    print("\n".join(problems[:10]))
    sys.exit(1)
missing = [i for i in ids if i not in seen]
if missing:
    print(f"MISSING {len(missing)} of {len(ids)} (read {height} heights)")
    sys.exit(3)
print(f"{len(ids)} transactions in {height} heights")
EOF

# Live: the follower sees every transaction as it is finalized (bounded).
deadline=$((SECONDS + 40))
while :; do
    out=$(python3 "$T/check.py" "$NS" "$T/ids" "$T/in" "$T/follow.json" partial); rc=$?
    [ $rc -eq 0 ] && break
    [ $rc -eq 3 ] || fail "seqctl read --follow: $out"
    kill -0 "$reader_pid" 2>/dev/null || fail "seqctl read --follow exited: $(tail -2 "$T/follow.err")"
    [ $SECONDS -ge $deadline ] && fail "follow: not all read after 40 s: $out"
    sleep 0.5
done
log "follow: $out"
kill "$reader_pid" 2>/dev/null
wait "$reader_pid" 2>/dev/null
reader_pid=""

# Again from height 1 to the tip, the node still running and finalizing.
timeout 60 "$SEQCTL" read --home "$HOME_DIR" --ns "$NS" --from 1 >"$T/read.json" 2>"$T/read.err" ||
    fail "seqctl read: $(tail -2 "$T/read.err")"
out=$(python3 "$T/check.py" "$NS" "$T/ids" "$T/in" "$T/read.json") || fail "seqctl read: $out"
[ ! -s "$T/read.err" ] || fail "seqctl read wrote to stderr: $(head -2 "$T/read.err")"
# --verify-runs: the same transactions; the history is read ahead in runs,
# so batches below each run's last are proven final by it (final_by).
timeout 60 "$SEQCTL" read --home "$HOME_DIR" --ns "$NS" --from 1 --verify-runs >"$T/runs.json" 2>"$T/runs.err" ||
    fail "seqctl read --verify-runs: $(tail -2 "$T/runs.err")"
out_runs=$(python3 "$T/check.py" "$NS" "$T/ids" "$T/in" "$T/runs.json") || fail "seqctl read --verify-runs: $out_runs"
grep -q '"final_by":' "$T/runs.json" || fail "seqctl read --verify-runs: no batch proven by a later one"

# --limit and a second namespace: exactly L lines, alternating namespaces.
timeout 30 "$SEQCTL" read --home "$HOME_DIR" --ns "$NS,$NS_OTHER" --from 1 --limit 10 >"$T/limit.json" ||
    fail "seqctl read --limit 10 failed"
[ "$(wc -l <"$T/limit.json")" -eq 10 ] || fail "--limit 10 printed $(wc -l <"$T/limit.json") lines"
python3 -c '
import json, sys
bs = [json.loads(l) for l in open(sys.argv[1])]
want = [(1 + i // 2, [int(sys.argv[2]), int(sys.argv[3])][i % 2]) for i in range(10)]
sys.exit(0 if [(b["height"], b["ns"]) for b in bs] == want and all(b["verified"] for b in bs) else 1)
' "$T/limit.json" "$NS" "$NS_OTHER" || fail "--ns $NS,$NS_OTHER --limit 10: not heights 1..5 in namespace order"
log "PASS: read from node$READ_NODE's store: $out, each once, all verified"
