#!/usr/bin/env bash
# seqctl as a rollup uses it against real nodes: subscribe verifies every
# batch against the genesis by default and says so; without a genesis it
# refuses, naming --genesis and --no-verify; --no-verify warns; a genesis of
# other validators or another chain stops it with the reason (exit 1).
# submit --key retries idempotently and `seqctl tx --key` finds the
# transaction finalized with a proof that verifies; the consumer example,
# built against an installed libseqclient, prints the same blocks.
TEST_NAME=verified_client TEST_INDEX=11
source "$(dirname "$0")/lib.sh"

NS=21
cluster up 4 --base-port "$BASE_PORT" >/dev/null || fail "cluster did not come up"
API=$(api_of 0)
G="$CDIR/genesis.json"

# Idempotent keyed submit: the retry gets the same id.
id1=$(timeout 10 "$SEQCTL" submit --api "$API" --ns $NS --data "keyed-payload" --key order-42) || fail "submit --key: $id1"
id2=$(timeout 10 "$SEQCTL" submit --api "$(api_of 0)" --ns $NS --data "keyed-payload" --key order-42) ||
    fail "the retry with the same key was refused: $id2"
[ "$id1" = "$id2" ] || fail "retry answered '$id2', first '$id1'"
id=${id1#accepted id=}
log "submit --key: the retry got the first answer ($id1)"

tx_status() { timeout 10 "$SEQCTL" tx --api "$API" "$@" 2>"$T/tx.err"; }
finalized() { tx_status --key order-42 --genesis "$G" >"$T/tx.json" && grep -q '"status":"finalized"' "$T/tx.json"; }
wait_until 20 "the keyed transaction is finalized" finalized
grep -q '"verified":true' "$T/tx.json" || fail "tx status not verified: $(cat "$T/tx.json" "$T/tx.err")"
grep -q "verified against genesis $G" "$T/tx.err" || fail "tx did not say it verified: $(cat "$T/tx.err")"
height=$(sed -E 's/^\{[^{]*"height":([0-9]+),.*/\1/' "$T/tx.json")
tx_status "$id" --genesis "$G" >"$T/tx2.json" || fail "tx by id: $(cat "$T/tx.err")"
cmp -s "$T/tx.json" "$T/tx2.json" || fail "tx by id and by key differ"
tx_status --key order-42 --genesis "$G.other" >/dev/null 2>&1 && fail "tx with a missing genesis file succeeded"
log "tx --key and tx ID: finalized at height $height, proof verified"

# Verified by default (SEQ_GENESIS from lib.sh): stderr says against what.
N=$((height + 9)) # a few empty blocks past it too
timeout 20 "$SEQCTL" subscribe --api "$API" --ns $NS --from 1 --count "$N" >"$T/sub.json" 2>"$T/sub.err" ||
    fail "verified subscribe failed: $(cat "$T/sub.err")"
grep -q "verifying against genesis $G (chain [0-9]*, 4 validators)" "$T/sub.err" ||
    fail "subscribe did not say what it verifies against: $(cat "$T/sub.err")"
[ "$(grep -c '"verified":true' "$T/sub.json")" -eq "$N" ] || fail "not every line is \"verified\":true"
grep -q "\"id\":\"$id\"" "$T/sub.json" || fail "the keyed transaction is not in the batches"

# --verify-runs: the same batches; the node sends a catch-up's heights in one
# write, so some arrive together and are proven final by a later one.
timeout 20 "$SEQCTL" subscribe --api "$API" --ns $NS --from 1 --count "$N" --verify-runs >"$T/runs.json" \
    2>"$T/runs.err" || fail "subscribe --verify-runs failed: $(cat "$T/runs.err")"
[ "$(grep -c '"verified":true' "$T/runs.json")" -eq "$N" ] || fail "--verify-runs: not every line is verified"
sed -E 's/"verified":true(,"final_by":[0-9]+)?}$/"verified":true}/' "$T/runs.json" | cmp -s - "$T/sub.json" ||
    fail "--verify-runs printed other batches than subscribe"
proven=$(grep -c '"final_by":' "$T/runs.json")
[ "$proven" -gt 0 ] || fail "--verify-runs: no batch was proven final by a later one"
python3 - "$T/runs.json" <<'PY' || fail "a final_by is not above its batch's height"
import json, sys
for line in open(sys.argv[1]):
    b = json.loads(line)
    assert b.get("final_by", b["height"] + 1) > b["height"], line[:80]
PY
log "subscribe --verify-runs: the same $N batches, $proven of them proven final by a later one"

# The consumer example, built against an installed libseqclient, prints the
# same blocks as seqctl (both verified).
make -s --no-print-directory -C "$ROOT" BUILD="$BIN" install PREFIX="$T/prefix" >"$T/install.log" 2>&1 ||
    fail "make install: $(tail -5 "$T/install.log")"
# shellcheck disable=SC2046
cc -o "$T/consumer" "$ROOT/examples/consumer.c" $(PKG_CONFIG_PATH="$T/prefix/lib/pkgconfig" pkg-config --cflags --libs seqclient) ||
    fail "consumer.c does not build against the installed library"
LD_LIBRARY_PATH="$T/prefix/lib" timeout 20 "$T/consumer" --api "$API" --ns $NS --genesis "$G" --count "$N" \
    >"$T/consumer.out" 2>"$T/consumer.err" || fail "consumer failed: $(cat "$T/consumer.err")"
awk '$1 == "height" { print $2, $6 }' "$T/consumer.out" >"$T/consumer.blocks"
sed -E 's/^\{"height":([0-9]+),"ns":[0-9]+,"block_hash":"(.{16}).*/\1 \2/' "$T/sub.json" >"$T/sub.blocks"
cmp -s "$T/consumer.blocks" "$T/sub.blocks" || fail "consumer and seqctl disagree: $(diff "$T/consumer.blocks" "$T/sub.blocks" | head -3)"
grep -q 'keyed-payload' "$T/consumer.out" || fail "the consumer did not print the keyed transaction"
log "consumer (installed libseqclient) printed the same $N verified blocks as seqctl"

# No genesis anywhere: refused, naming both ways out.
(cd "$T" && env -u SEQ_GENESIS timeout 10 "$SEQCTL" subscribe --api "$API" --ns $NS --from 1 --count 1 \
    >/dev/null 2>"$T/none.err") && fail "subscribe without any genesis succeeded"
grep -q -- '--genesis' "$T/none.err" && grep -q -- '--no-verify' "$T/none.err" ||
    fail "no-genesis error does not name --genesis and --no-verify: $(cat "$T/none.err")"
# --no-verify: a warning, and "verified":false.
timeout 10 "$SEQCTL" subscribe --api "$API" --ns $NS --from 1 --count 1 --no-verify >"$T/nv.json" 2>"$T/nv.err" ||
    fail "--no-verify failed"
grep -qi 'warning' "$T/nv.err" && grep -q '"verified":false' "$T/nv.json" || fail "--no-verify did not warn"

# Other validators (every key changed) and another chain id: stopped with the reason.
python3 - "$G" "$T" <<'PY' || fail "cannot write the wrong genesis files"
import json, sys
g = json.load(open(sys.argv[1]))
g["chain_id"] += 1
json.dump(g, open(sys.argv[2] + "/other_chain.json", "w"))
g = json.load(open(sys.argv[1]))
for i, v in enumerate(g["validators"]):
    k = v["public_key"]
    v["public_key"] = json.load(open(sys.argv[1]))["validators"][(i + 1) % len(g["validators"])]["public_key"]
json.dump(g, open(sys.argv[2] + "/other_keys.json", "w"))
PY
for bad in other_chain other_keys; do
    timeout 10 "$SEQCTL" subscribe --api "$API" --ns $NS --from 1 --count 1 --genesis "$T/$bad.json" \
        >"$T/$bad.out" 2>"$T/$bad.err"
    rc=$?
    [ $rc -eq 1 ] || fail "$bad: subscribe exited $rc, want 1"
    [ ! -s "$T/$bad.out" ] || fail "$bad: a batch was printed: $(head -c 200 "$T/$bad.out")"
    grep -q 'failed verification' "$T/$bad.err" || fail "$bad: no reason given: $(cat "$T/$bad.err")"
    log "$bad: refused: $(grep -o 'failed verification.*' "$T/$bad.err")"
done
timeout 10 "$SEQCTL" tx --api "$API" "$id" --genesis "$T/other_keys.json" >/dev/null 2>"$T/txbad.err" &&
    fail "tx verified against other validators"
grep -q 'does NOT verify' "$T/txbad.err" || fail "tx with other validators: $(cat "$T/txbad.err")"
log "PASS: verified by default, refused without genesis or with another network's, tx proof checked"
