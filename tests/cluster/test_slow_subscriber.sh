#!/usr/bin/env bash
# A subscriber that stops reading cannot hurt the node: under a steady load
# of about 5 MB/s, one raw subscriber on node0 subscribes and never reads.
# Finalization goes on at node0 while it stalls, what node0 queues for it
# stays within its configured bound (and its memory with it), and after
# api.subscriber_stall_ms node0 disconnects it and logs why.
TEST_NAME=slow_subscriber TEST_INDEX=9
source "$(dirname "$0")/lib.sh"

NODES=(0 1 2 3)
STALL_MS=4000
command -v python3 >/dev/null || fail "python3 is needed for the raw subscriber"

cluster up 4 --base-port "$BASE_PORT" >/dev/null || fail "cluster did not come up"
wait_until 20 "every node finalizes height 2" all_at_least 2 "${NODES[@]}"
# node0 with small client bounds, so the queue bound is what is tested
cluster stop 0 >/dev/null
ini_set "$CDIR/node0/seqd.conf" api frame_bytes_max 1048576
ini_set "$CDIR/node0/seqd.conf" api send_queue_bytes_max 2097152
ini_set "$CDIR/node0/seqd.conf" api subscriber_stall_ms "$STALL_MS"
cluster start 0 >/dev/null
wait_until 20 "node0 finalizes again" all_at_least "$(($(max_height 1 2 3) + 2))" 0

apis=$(for i in "${NODES[@]}"; do printf '%s,' "$(api_of "$i")"; done)
"$SEQCTL" bench --api "${apis%,}" --rate 5000 --size 1024 --namespaces 2 --duration 40 --warmup 1 \
    >"$T/bench.out" 2>&1 &
bench_pid=$!
sleep 3 # the load ramps up before the baseline is taken

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$(cat "$CDIR/node0/seqd.pid")/status"; }
base_rss=$(rss_kb)
h0=$(height_of 0)

# The raw subscriber: a tiny receive buffer, subscribe to namespace 1 from
# height 1 (all of the stream so far, then live), then read nothing until
# told to, then drain and expect the node to have closed the connection.
cat >"$T/stall.py" <<'PY'
import socket, struct, sys, time, os
host, port = sys.argv[1].rsplit(":", 1)
go = sys.argv[2]
def varint(v):
    out = b""
    while True:
        b = v & 0x7f; v >>= 7
        out += bytes([b | (0x80 if v else 0)])
        if not v: return out
sub = b"\x0a" + varint(len(varint(1))) + varint(1) + b"\x10" + varint(1)   # namespaces=[1], from_height=1
req = b"\x08" + varint(7) + b"\x1a" + varint(len(sub)) + sub               # request_id=7, subscribe
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect((host, int(port)))
s.sendall(struct.pack(">I", len(req)) + req)
print("subscribed", flush=True)
deadline = time.time() + 90
while not os.path.exists(go):
    if time.time() > deadline: sys.exit("never told to drain")
    time.sleep(0.1)
s.settimeout(20)
total = 0
try:
    while True:
        d = s.recv(1 << 16)
        if not d: break
        total += len(d)
except socket.timeout:
    sys.exit("node did not close the stalled connection (read %d bytes)" % total)
except ConnectionResetError:
    pass
print("closed after %d bytes" % total, flush=True)
PY
: >"$T/stall.out"
python3 "$T/stall.py" "$(api_of 0)" "$T/drain" >"$T/stall.out" 2>&1 &
stall_pid=$!
wait_until 5 "the raw subscriber connects" grep -q subscribed "$T/stall.out"

# While it stalls: node0 keeps finalizing, and its memory stays bounded.
max_rss=$base_rss
grew() { local r; r=$(rss_kb); [ "$r" -gt "$max_rss" ] && max_rss=$r; [ "$(height_of 0)" -ge $((h0 + 30)) ]; }
wait_until 30 "node0 finalizes 30 heights while a subscriber stalls" grew
slow_logged() { grep -q 'event=api_subscriber_slow' "$CDIR/node0/seqd.log"; }
sample_until_slow() { local r; r=$(rss_kb); [ "$r" -gt "$max_rss" ] && max_rss=$r; slow_logged; }
wait_until $((STALL_MS / 1000 + 20)) "node0 disconnects the stalled subscriber" sample_until_slow
h1=$(height_of 0)
growth_mb=$(((max_rss - base_rss) / 1024))
# What the stalled stream was owed meanwhile: the load's namespace-1 share.
log "node0: heights $h0 -> $h1 while stalled; RSS ${base_rss} kB -> max ${max_rss} kB (+${growth_mb} MiB)"
# Bound: the send queue (2 MiB) + the shared batch cache (32 MiB) + the
# blocks it holds + allocator slack.
# (Not under AddressSanitizer, whose quarantine keeps freed memory resident.)
if [[ $BIN != *asan* ]]; then
    [ "$growth_mb" -lt 64 ] || fail "node0 grew by ${growth_mb} MiB while one subscriber stalled"
fi
# The direct evidence: what was queued for it when it was cut off is within
# send_queue_bytes_max plus one frame (frame_bytes_max), whatever it was owed.
line=$(grep 'event=api_subscriber_slow' "$CDIR/node0/seqd.log" | head -1)
log "node0 logged: $line"
queued=$(sed -E 's/.*queued=([0-9]+).*/\1/' <<<"$line")
[ "$queued" -le $((2097152 + 1048576)) ] || fail "node0 had $queued bytes queued for the stalled subscriber"

touch "$T/drain"
wait "$stall_pid" || fail "raw subscriber: $(cat "$T/stall.out")"
log "raw subscriber: $(tail -1 "$T/stall.out")"
wait_until 10 "node0 keeps finalizing after the disconnect" all_at_least $((h1 + 3)) 0
kill "$bench_pid" 2>/dev/null
wait "$bench_pid" 2>/dev/null
log "ok"
