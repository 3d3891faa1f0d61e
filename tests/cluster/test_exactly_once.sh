#!/usr/bin/env bash
# 2000 unique transactions over 4 namespaces, sent to all 4 nodes, are each
# finalized exactly once, in the same per-namespace order on every node, and a
# subscriber sees every height of every namespace once, with no gap.
TEST_NAME=exactly_once TEST_INDEX=1
source "$(dirname "$0")/lib.sh"

NODES=(0 1 2 3)
NSS=(11 12 13 14)
PER_NS=500
TOTAL=$((PER_NS * ${#NSS[@]}))
command -v python3 >/dev/null || fail "python3 is needed for the checks"

cluster up 4 --base-port "$BASE_PORT" >/dev/null || fail "cluster did not come up"
wait_until 20 "every node finalizes height 3" all_at_least 3 "${NODES[@]}"

# Transaction i of namespace ns goes to node i%4: each namespace's stream
# reaches the leader from every node.
run=$RANDOM$RANDOM
for ns in "${NSS[@]}"; do
    for j in "${NODES[@]}"; do
        for ((i = j; i < PER_NS; i += ${#NODES[@]})); do echo "eo-$run-ns$ns-tx$i"; done >"$T/in.$ns.$j"
    done
done
pids=()
for ns in "${NSS[@]}"; do
    for j in "${NODES[@]}"; do
        timeout 30 "$SEQCTL" submit --api "$(api_of "$j")" --ns "$ns" --lines <"$T/in.$ns.$j" >"$T/out.$ns.$j" 2>&1 &
        pids+=($!)
    done
done
for p in "${pids[@]}"; do wait "$p" || true; done
accepted=$(cat "$T"/out.* | grep -c '^accepted id=')
[ "$accepted" -eq "$TOTAL" ] || fail "$accepted of $TOTAL accepted: $(grep -hv '^accepted' "$T"/out.* | sort | uniq -c | head -3)"
log "$TOTAL transactions accepted by 4 nodes"

cat >"$T/check.py" <<'EOF'
# argv: expected_total height ns_list file... ; each file: one node's subscribe output.
import json, sys
total, height, nss, files = int(sys.argv[1]), int(sys.argv[2]), [int(x) for x in sys.argv[3].split(",")], sys.argv[4:]
orders, problems = [], []
for f in files:
    seen_heights = {ns: [] for ns in nss}
    order = {ns: [] for ns in nss}
    for line in open(f):
        b = json.loads(line)
        seen_heights[b["ns"]].append(b["height"])
        if len(b["txs"]) != b["tx_count"]:
            problems.append(f"{f}: height {b['height']} ns {b['ns']}: tx_count {b['tx_count']} but {len(b['txs'])} txs")
        order[b["ns"]].extend(t["data"] for t in b["txs"])
    for ns in nss:
        if seen_heights[ns] != list(range(1, height + 1)):
            problems.append(f"{f}: ns {ns}: heights are not 1..{height} consecutive (got {len(seen_heights[ns])})")
    orders.append(order)
    ids = [d for ns in nss for d in order[ns]]
    dup = len(ids) - len(set(ids))
    if dup:
        problems.append(f"{f}: {dup} transactions finalized more than once")
    missing = total - len(set(ids))
    if missing:
        print(f"MISSING {missing}")
        sys.exit(3)
for o in orders[1:]:
    for ns in nss:
        if o[ns] != orders[0][ns]:
            problems.append(f"ns {ns}: order differs between {files[0]} and another node")
for p in problems[:10]:
    print(p)
sys.exit(1 if problems else 0)
EOF

# Poll: every node's view of heights 1..H (H = lowest height among nodes) until
# all transactions are in it, within a bound.
ns_list=$(IFS=,; echo "${NSS[*]}")
deadline=$((SECONDS + 40))
while :; do
    h=$(min_height "${NODES[@]}")
    files=()
    for j in "${NODES[@]}"; do
        timeout 60 "$SEQCTL" subscribe --api "$(api_of "$j")" --ns "$ns_list" --from 1 --count $((h * ${#NSS[@]})) \
            >"$T/sub.$j" || fail "node$j: subscribe to $ns_list from 1 failed or timed out"
        files+=("$T/sub.$j")
    done
    out=$(python3 "$T/check.py" "$TOTAL" "$h" "$ns_list" "${files[@]}"); rc=$?
    [ $rc -eq 0 ] && break
    [ $rc -eq 3 ] || fail "$out"
    [ $SECONDS -ge $deadline ] && fail "not all finalized after 40 s at height $h: $out"
    sleep 1
done
log "PASS: $TOTAL transactions finalized exactly once up to height $h; same order on 4 nodes; no gap"
