#!/usr/bin/env bash
# The HTTP port of a real 4-node cluster, with curl: every endpoint answers
# as documented on every node, /metrics passes promtool's parser and linter,
# a transaction POSTed over HTTP to one node is reported finalized by another
# (by id and by client key) and is in that height's batch on all nodes, the
# batches endpoint and a server-sent event stream give consecutive heights,
# a stream opened before a submit gets it live, and bad requests get their
# 4xx with a JSON error.
TEST_NAME=http TEST_INDEX=6
source "$(dirname "$0")/lib.sh"

NODES=(0 1 2 3)
NS=4242
for tool in curl python3 promtool; do
    command -v "$tool" >/dev/null || fail "$tool is needed (scripts/deps.sh installs it)"
done

http_of() { ini_get "$CDIR/node$1/seqd.conf" http listen; }
url() { echo "http://$(http_of "$1")$2"; }
# JSON field of stdin: json_get 'd["height"]'
json_get() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
code_of() { curl -s -o "$T/body" -w '%{http_code}' "$@"; }

cluster up 4 --base-port "$BASE_PORT" >/dev/null || fail "cluster did not come up"
wait_until 20 "every node finalizes height 3" all_at_least 3 "${NODES[@]}"

# ---- cluster.sh status names each node's HTTP address --------------------------------
cluster status >"$T/status"
for i in "${NODES[@]}"; do
    want="http=$(http_of "$i")"
    [ "$(http_of "$i")" = "127.0.0.1:$((BASE_PORT + 10 * i + 2))" ] || fail "node$i: http listen is $(http_of "$i")"
    grep -q "^node$i .* $want\$" "$T/status" || fail "cluster.sh status lacks $want for node$i: $(cat "$T/status")"
done
log "cluster.sh status prints http=HOST:PORT for each node"

# ---- health, status, metrics on every node ------------------------------------------
peers_all() { [ "$(curl -s "$(url "$1" /status)" | json_get 'd["peers"]')" = 3 ]; }
for i in "${NODES[@]}"; do
    [ "$(code_of "$(url "$i" /healthz)")" = 200 ] || fail "node$i /healthz: $(cat "$T/body")"
    [ "$(json_get 'd["ok"]' <"$T/body")" = True ] || fail "node$i /healthz body: $(cat "$T/body")"
    [ "$(code_of "$(url "$i" /status)")" = 200 ] || fail "node$i /status"
    [ "$(json_get 'd["validator"]' <"$T/body")" = "$i" ] || fail "node$i /status names another validator"
    [ "$(json_get 'd["height"] >= 3' <"$T/body")" = True ] || fail "node$i /status height: $(cat "$T/body")"
    wait_until 10 "node$i reports 3 peers" peers_all "$i"
done
log "healthz and status answer on every node"

check_metrics() {
    curl -s -D "$T/metrics.head" "$(url "$1" /metrics)" >"$T/metrics.$1" || fail "node$1 /metrics"
    grep -qi '^Content-Type: text/plain; version=0.0.4' "$T/metrics.head" || fail "node$1 /metrics content type"
    promtool check metrics <"$T/metrics.$1" >"$T/promtool.$1" 2>&1 ||
        fail "node$1: promtool check metrics: $(head -5 "$T/promtool.$1")"
    [ ! -s "$T/promtool.$1" ] || fail "node$1: promtool lint: $(head -5 "$T/promtool.$1")"
    local name
    for name in seq_height seq_view seq_view_timeouts_total seq_views_per_finalized_block \
        seq_finalized_txs_total seq_finalized_bytes_total seq_finalized_txs_per_second \
        seq_mempool_pending_txs seq_peers_connected seq_sync_lag_blocks seq_store_used_bytes \
        seq_resident_memory_bytes 'seq_compact_proposals_total{outcome="rebuilt"}'; do
        grep -q "^$name " "$T/metrics.$1" || fail "node$1 /metrics lacks $name"
    done
    grep -q '^seq_peers_connected 3$' "$T/metrics.$1" || fail "node$1: seq_peers_connected is not 3"
    awk '$1 == "seq_resident_memory_bytes" && $2 > 1000000 { ok = 1 } END { exit !ok }' "$T/metrics.$1" ||
        fail "node$1: implausible resident memory"
}
for i in "${NODES[@]}"; do check_metrics "$i"; done
log "/metrics passes promtool check metrics on every node"

# ---- a stream opened before the submit ----------------------------------------------
tip=$(curl -s "$(url 3 /status)" | json_get 'd["height"]')
curl -s -N --max-time 60 "$(url 3 "/v1/namespaces/$NS/stream")" >"$T/live.sse" &
live_pid=$!
subscribed() { curl -s "$(url 3 /metrics)" | grep -q '^seq_subscribers{port="http"} 1$'; }
wait_until 10 "node3 counts the stream as a subscriber" subscribed

# ---- submit over HTTP, finalized as seen from another node ----------------------------
payload="http-test-$RANDOM$RANDOM"
data=$(printf '%s' "$payload" | base64)
key="order-$RANDOM"
code=$(code_of -X POST -H 'Content-Type: application/json' \
    -d "{\"ns\": $NS, \"data\": \"$data\", \"client_key\": \"$key\"}" "$(url 1 /v1/tx)")
[ "$code" = 202 ] || fail "POST /v1/tx answered $code: $(cat "$T/body")"
id=$(json_get 'd["id"]' <"$T/body")
[ "$(json_get 'd["status"]' <"$T/body")" = accepted ] || fail "POST /v1/tx: $(cat "$T/body")"
log "node1 accepted tx $id over HTTP"

finalized_on() { [ "$(curl -s "$(url "$1" "/v1/tx/$id")" | json_get 'd["status"]')" = finalized ]; }
wait_until 20 "node2 reports tx $id finalized" finalized_on 2
curl -s "$(url 2 "/v1/tx/$id")" >"$T/txstatus"
height=$(json_get 'd["height"]' <"$T/txstatus")
[ "$(json_get 'd["ns"]' <"$T/txstatus")" = "$NS" ] || fail "tx status ns: $(cat "$T/txstatus")"
[ "$(json_get '",".join(sorted(d))' <"$T/txstatus")" = \
  "block_hash,cert,cert_path,header,height,id,index,ns,proof,status" ] || fail "tx status fields: $(cat "$T/txstatus")"
curl -s "$(url 1 "/v1/tx?client_key=$key")" >"$T/bykey"
[ "$(json_get 'd["id"] + " " + d["status"]' <"$T/bykey")" = "$id finalized" ] || fail "by client key: $(cat "$T/bykey")"
log "node2 reports it finalized at height $height; node1 finds it by client key"

# the same batch on every node, holding the payload
for i in "${NODES[@]}"; do
    [ "$(code_of "$(url "$i" "/v1/blocks/$height?ns=$NS")")" = 200 ] || fail "node$i /v1/blocks/$height"
    # certificates may differ (any quorum finalizes); the block's part may not
    json_get 'json.dumps([d[k] for k in ("block_hash", "prev_batch_hash", "header", "txs", "proof")])' \
        <"$T/body" >"$T/block.$i"
    cp "$T/body" "$T/block.$i.json"
    cmp -s "$T/block.0" "$T/block.$i" || fail "node0 and node$i serve different batches at height $height"
done
got=$(json_get '[__import__("base64").b64decode(t["data"]).decode() for t in d["txs"] if t["id"] == "'"$id"'"][0]' \
    <"$T/block.0.json") || fail "the batch at height $height lacks tx $id: $(head -c 300 "$T/block.0.json")"
[ "$got" = "$payload" ] || fail "the batch holds '$got', not '$payload'"
log "every node serves the same batch of height $height with the payload"

# the stream opened before the submit got it, live, after consecutive heights
has_tx() { grep -q "\"id\":\"$id\"" "$T/live.sse"; }
wait_until 10 "the stream delivers tx $id" has_tx
kill "$live_pid" 2>/dev/null
wait "$live_pid" 2>/dev/null
cat >"$T/sse.py" <<'EOF'
# argv: file first_height ns; checks ids consecutive from first_height, data = batch of that height and ns.
import json, sys
path, first, ns = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
events = [e for e in open(path).read().split("\n\n") if e.startswith("id: ")]
if not events:
    sys.exit("no events")
for k, e in enumerate(events):
    lines = e.split("\n")
    h = int(lines[0][4:])
    b = json.loads(lines[1][6:])
    if h != first + k or b["height"] != h or b["ns"] != ns or len(b["txs"]) != b["tx_count"]:
        sys.exit(f"event {k}: id {h}, batch height {b['height']} ns {b['ns']}; want {first + k}")
print(len(events))
EOF
first=$(grep -m1 '^id: ' "$T/live.sse" | cut -c5-)
[ "$first" -ge $((tip + 1)) ] || fail "the stream without from began at $first, before the tip $tip"
n=$(python3 "$T/sse.py" "$T/live.sse" "$first" "$NS") || fail "live stream: $n"
log "the live stream gave $n consecutive heights from $first, including tx $id"

# a stream from height 1, and the batches endpoint, give consecutive heights
curl -s -N --max-time 3 "$(url 0 "/v1/namespaces/$NS/stream?from=1")" >"$T/old.sse"
n=$(python3 "$T/sse.py" "$T/old.sse" 1 "$NS") || fail "stream from 1: $n"
[ "$n" -ge "$height" ] || fail "the stream from 1 gave $n events, the tx is at $height"
curl -s "$(url 0 "/v1/namespaces/$NS/batches?from=1&limit=5")" >"$T/batches"
[ "$(json_get '[b["height"] for b in d["batches"]] == [1, 2, 3, 4, 5] and d["next"] == 6' <"$T/batches")" = True ] ||
    fail "batches from 1 limit 5: $(head -c 300 "$T/batches")"
id2=$(curl -s -H 'Last-Event-ID: 4' -N --max-time 2 "$(url 0 "/v1/namespaces/$NS/stream?from=1")" | grep -m1 '^id: ')
[ "$id2" = "id: 5" ] || fail "Last-Event-ID 4 resumed at '$id2'"
log "stream from 1 ($n events), batches and Last-Event-ID resume agree"

# ---- bad requests -------------------------------------------------------------------
expect_code() {
    local want=$1
    shift
    local got
    got=$(code_of "$@")
    [ "$got" = "$want" ] || fail "curl $*: want $want, got $got: $(cat "$T/body")"
    [ "$(json_get 'd["code"]' <"$T/body")" = "$want" ] || fail "curl $*: no JSON error body: $(cat "$T/body")"
}
expect_code 400 "$(url 0 /v1/tx/not-an-id)"
expect_code 400 "$(url 0 "/v1/blocks/1?ns=x")"
expect_code 400 "$(url 0 "/v1/blocks/1")"
expect_code 400 "$(url 0 "/v1/namespaces/$NS/batches?from=1&bogus=1")"
expect_code 400 -X POST -d '{"ns": 1, "data": ' "$(url 0 /v1/tx)"
expect_code 400 -X POST -d '{"ns": 1, "data": "@@@"}' "$(url 0 /v1/tx)"
expect_code 404 "$(url 0 /nope)"
expect_code 404 "$(url 0 "/v1/blocks/999999999?ns=1")"
expect_code 405 -X DELETE "$(url 0 /status)"
expect_code 409 -X POST -d "{\"ns\": $NS, \"data\": \"$data\"}" "$(url 2 /v1/tx)"
printf 'BREW /coffee HTCPCP/1.0\r\n\r\n' >"$T/garbage"
python3 - "$(http_of 0)" "$T/garbage" >"$T/garbage.out" <<'EOF' || fail "garbage: $(cat "$T/garbage.out")"
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=5)
s.sendall(open(sys.argv[2], "rb").read())
reply = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    reply += chunk
status = reply.split(b"\r\n", 1)[0]
if status != b"HTTP/1.1 400 Bad Request":
    sys.exit(f"status line {status!r}")
print("closed after", len(reply), "bytes")
EOF
log "bad requests get 400/404/405/409 with JSON errors; garbage gets 400 and a close"

check_metrics 0
log "PASS"
