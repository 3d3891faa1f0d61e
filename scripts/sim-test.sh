#!/usr/bin/env bash
# The simulator part of `make test`: tolerated faults must show no violation,
# and the checker must catch a violation when the protocol's bound is exceeded
# (n=4 with 2 Byzantine validators), or it proves nothing.
# usage: sim-test.sh SIM_BIN SEEDS_N4 SEEDS_N7
set -u
sim=$1; seeds4=$2; seeds7=$3
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT

# The two tolerated configurations run side by side (2 cores).
"$sim" --seeds "$seeds4" --nodes 4 --byzantine 1 >"$log/n4" 2>&1 & p4=$!
"$sim" --seeds "$seeds7" --nodes 7 --byzantine 2 >"$log/n7" 2>&1 & p7=$!
wait $p4; rc4=$?
wait $p7; rc7=$?
grep -v '^sim: [0-9]' "$log/n4" | tail -5
grep -v '^sim: [0-9]' "$log/n7" | tail -5

# Planted bugs the checker must catch: more Byzantine validators than the
# protocol tolerates (agreement), and nodes that forget their own votes on
# restart (no honest double vote). Both run side by side.
"$sim" --seeds 200 --nodes 4 --byzantine 2 >"$log/over" 2>&1 & po=$!
"$sim" --seeds 100 --nodes 4 --byzantine 1 --plant amnesia >"$log/amnesia" 2>&1 & pa=$!
wait $po; rc_over=$?
wait $pa; rc_amnesia=$?
first=$(grep -m1 -E '^seed=[0-9]+ violation=agreement' "$log/over")
first_amnesia=$(grep -m1 -E '^seed=[0-9]+ violation=no-honest-double-vote' "$log/amnesia")
tail -1 "$log/over"
tail -1 "$log/amnesia"

passed=0; failed=0
if [ $rc4 -eq 0 ]; then passed=$((passed+1)); else failed=$((failed+1)); echo "sim: n=4 b=1 FAILED (replay with the seed above)"; fi
if [ $rc7 -eq 0 ]; then passed=$((passed+1)); else failed=$((failed+1)); echo "sim: n=7 b=2 FAILED (replay with the seed above)"; fi
if [ $rc_over -ne 0 ] && [ -n "$first" ]; then
  passed=$((passed+1)); echo "sim: checker caught the over-threshold run: $first"
else
  failed=$((failed+1)); echo "sim: checker FAILED to find an agreement violation with 2 of 4 Byzantine"
fi
if [ $rc_amnesia -ne 0 ] && [ -n "$first_amnesia" ]; then
  passed=$((passed+1)); echo "sim: checker caught the planted amnesia bug: $first_amnesia"
else
  failed=$((failed+1)); echo "sim: checker FAILED to catch nodes forgetting their votes (--plant amnesia)"
fi
# The tolerated runs must have taken both ways a compact proposal goes:
# rebuilt from the mempool, and fetched whole when gossip lost a transaction.
compact=$(grep -h '^sim: compact_proposals' "$log/n4" "$log/n7")
if [ "$(grep -cE 'rebuilt=[1-9][0-9]* fetched=[1-9]' <<<"$compact")" -eq 2 ]; then
  passed=$((passed+1)); echo "sim: compact proposals exercised: $(tr '\n' ' ' <<<"$compact")"
else
  failed=$((failed+1)); echo "sim: compact proposals NOT exercised both ways: $compact"
fi
echo "sim: ${passed} passed, ${failed} failed"
[ $failed -eq 0 ]
