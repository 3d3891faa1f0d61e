#!/usr/bin/env bash
# Bad peers and clients cannot hurt a node: a validator whose key is not in
# the genesis refuses to start with a message naming the genesis; a second
# seqd on a running node's home refuses before it writes anything; a peer whose
# key is not in the genesis is refused by a running node (and logged), while a
# genesis key is accepted; garbage, an oversized length header and a malformed
# frame on the p2p and API ports only close that connection, and the node keeps
# finalizing and answering.
TEST_NAME=bad_peers TEST_INDEX=4
source "$(dirname "$0")/lib.sh"

NODES=(0 1 2 3)
VICTIM=0
command -v python3 >/dev/null || fail "python3 is needed for the raw connections"

cluster up 4 --base-port "$BASE_PORT" >/dev/null || fail "cluster did not come up"
wait_until 20 "every node finalizes height 3" all_at_least 3 "${NODES[@]}"

# ---- a validator key the genesis does not list -------------------------------
"$SEQD" init --home "$T/rogue" >/dev/null 2>&1 || fail "seqd init of the rogue home failed"
ini_set "$T/rogue/seqd.conf" node genesis_file "$CDIR/genesis.json"
ini_set "$T/rogue/seqd.conf" p2p listen "127.0.0.1:$((BASE_PORT + 90))"
ini_set "$T/rogue/seqd.conf" api listen "127.0.0.1:$((BASE_PORT + 91))"
timeout 10 "$SEQD" start --home "$T/rogue" >"$T/rogue.out" 2>&1; rc=$?
[ $rc -ne 124 ] || fail "seqd with a key not in genesis was still running after 10 s"
[ $rc -ne 0 ] || fail "seqd with a key not in genesis exited 0"
grep -qi genesis "$T/rogue.out" || fail "the refusal does not mention the genesis: $(tail -3 "$T/rogue.out")"
log "seqd with an unknown key refused to start (exit $rc): $(grep -i genesis "$T/rogue.out" | head -1)"

# ---- a second seqd on a running node's home ----------------------------------
# It must refuse before it writes anything, say which process holds the store,
# and leave the running node as it was.
h0=$(height_of "$VICTIM")
timeout 10 "$SEQD" start --home "$CDIR/node$VICTIM" >"$T/second.out" 2>&1; rc=$?
[ $rc -ne 124 ] || fail "a second seqd on node$VICTIM's home was still running after 10 s"
[ $rc -ne 0 ] || fail "a second seqd on node$VICTIM's home exited 0"
grep -q "in use by another process" "$T/second.out" || fail "the refusal does not say why: $(tail -3 "$T/second.out")"
holder=$(cat "$CDIR/node$VICTIM/data/writer.lock")
[ "$holder" = "$(cat "$CDIR/node$VICTIM/seqd.pid")" ] || fail "writer.lock holds pid $holder, not the node's"
wait_until 20 "node$VICTIM finalizes past $h0 after the refused start" all_at_least $((h0 + 2)) "$VICTIM"
log "a second seqd on a running home refused (exit $rc): $(grep "in use" "$T/second.out" | head -1)"

# ---- a peer whose key is not in genesis, on the running cluster --------------
# seqctl peer-check dials like a validator; with a fresh key the node must
# close the connection in the handshake and log why.
refusal_re='warn event=net_handshake_failed .*reason="identity key not in genesis"'
refusals() { grep -c -E "$refusal_re" "$CDIR/node$VICTIM/seqd.log"; }
refusals_above() { [ "$(refusals)" -gt "$1" ]; }
peer_check() { timeout 20 "$SEQCTL" peer-check --p2p "$(p2p_of "$VICTIM")" --genesis "$CDIR/genesis.json" "$@" 2>&1; }

before=$(refusals)
out=$(peer_check); rc=$?
[ $rc -eq 1 ] || fail "peer-check with a key not in genesis exited $rc, not 1: $out"
[ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] && [[ $out == "peer-check: refused reason="* ]] ||
    fail "peer-check with a key not in genesis was not refused: $out"
wait_until 5 "node$VICTIM logs the refused key" refusals_above "$before"
log "outsider key: $out; node$VICTIM logged: $(grep -E "$refusal_re" "$CDIR/node$VICTIM/seqd.log" | tail -1)"

# The control: the same check with node1's genesis key is accepted (the node
# may swap that link with node1's live one for a moment; the checks at the
# end show the links and finality recover).
out=$(peer_check --key "$CDIR/node1/key"); rc=$?
[ $rc -eq 0 ] && [[ $out == "peer-check: accepted peer=1 name=node1" ]] ||
    fail "peer-check with node1's key against node$VICTIM: exit $rc: $out"
log "node1's key: $out"

# ---- raw connections ---------------------------------------------------------
cat >"$T/poke.py" <<'EOF'
# poke.py HOST:PORT MODE: one raw TCP connection. Modes:
#   garbage  64 KiB of random bytes, then close (the node may or may not answer)
#   huge     a length header of 0xFFFFFFFF: the node must close the connection
#   junk     a 200-byte frame of random bytes: the node must close the connection
#   churn    100 connections opened and closed at once
# Exit 0 when the expectation holds, 1 with a message otherwise.
import os, socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
mode = sys.argv[2]
addr = (host, int(port))

def closed_by_peer(s, secs):
    s.settimeout(0.2)
    end = time.time() + secs
    while time.time() < end:
        try:
            if s.recv(65536) == b"":
                return True
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return True
    return False

if mode == "churn":
    for _ in range(100):
        socket.create_connection(addr, timeout=3).close()
    sys.exit(0)
s = socket.create_connection(addr, timeout=3)
try:
    if mode == "garbage":
        s.sendall(os.urandom(65536))
        closed_by_peer(s, 1)
        sys.exit(0)
    payload = b"\xff\xff\xff\xff" + os.urandom(64) if mode == "huge" else (200).to_bytes(4, "big") + os.urandom(200)
    s.sendall(payload)
except (ConnectionResetError, BrokenPipeError):
    sys.exit(0)  # closed while we were still sending: what we want
if closed_by_peer(s, 8):
    sys.exit(0)
print(f"{sys.argv[1]} {mode}: connection still open after 8 s")
sys.exit(1)
EOF

h_before=$(height_of "$VICTIM")
for port_kind in p2p api; do
    addr=$("${port_kind}_of" "$VICTIM")
    for mode in garbage huge junk churn; do
        out=$(timeout 30 python3 "$T/poke.py" "$addr" "$mode" 2>&1) ||
            fail "$port_kind $addr $mode: ${out:-poke timed out}"
        [ "$(node_state "$VICTIM")" = running ] || fail "node$VICTIM died after $mode on its $port_kind port"
    done
    log "$port_kind port $addr: garbage, 0xFFFFFFFF header, malformed frame, 100 connects: each closed, node up"
done

# The node still answers, keeps its peer links and keeps finalizing.
answers() { [ -n "$(height_of "$1")" ]; }
peers_are() { [ "$(status_field "$1" peers)" = "$2" ]; }
wait_until 10 "node$VICTIM answers status" answers "$VICTIM"
wait_until 15 "node$VICTIM finalizes 5 more heights" all_at_least $((h_before + 5)) "$VICTIM"
wait_until 15 "node$VICTIM links up with its 3 peers" peers_are "$VICTIM" 3
echo "bad-peers-ok" | "$SEQCTL" submit --api "$(api_of "$VICTIM")" --ns 5 --lines | grep -q '^accepted' ||
    fail "node$VICTIM does not accept a transaction any more"
compare_hashes "$(min_height "${NODES[@]}")" "${NODES[@]}"
log "PASS: node$VICTIM at height $(height_of "$VICTIM") with $(status_field "$VICTIM" peers) peers"
