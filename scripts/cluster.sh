#!/usr/bin/env bash
# A local cluster of seqd processes on 127.0.0.1: create it, start and stop
# nodes, show their state. It only ever signals processes whose pid file it
# wrote and whose command line is seqd with that node's home.
set -u

usage() {
    cat <<'EOF'
usage: scripts/cluster.sh <command> [options]

commands:
  up [N]      create a testnet of N validators (default 4) in DIR unless DIR
              already holds genesis.json, start every node that is not
              running, and wait until each answers `seqctl status`
  status      one line per node: pid, state, finalized height, addresses (p2p, api, http)
  start I     start node I (and wait until it answers)
  stop I      SIGTERM node I and wait until it exits
  kill I      SIGKILL node I (its pid file stays: status shows it as dead)
  down        stop every node (TERM, then KILL after 10 s), remove pid files
  logs I      print the end of node I's log (-f to follow, -n L for L lines)

options:
  --dir DIR              cluster directory (default ./cluster)
  --bin DIR              directory of seqd and seqctl (default ./build)
  --base-port P          up: node i listens p2p P+10*i, api P+10*i+1, http P+10*i+2
                         (default 7600)
  --view-timeout-ms T    up: consensus view timeout written into each config
  --log-level L          seqd --log-level for the nodes started (debug|info|warn|error)
  --wait S               seconds to wait for a node to answer (default 20)
  -h, --help             this text

Node i's home is DIR/node<i>: its log is seqd.log (appended), its pid seqd.pid.
EOF
}

DIR=./cluster
BIN=./build
BASE_PORT=""
VIEW_TIMEOUT=""
LOG_LEVEL=""
WAIT_S=20
FOLLOW=0
LOG_LINES=60
CMD=""
ARG=""

die() { echo "cluster: $*" >&2; exit 1; }

parse_args() {
    while [ $# -gt 0 ]; do
        case "$1" in
            -h|--help) usage; exit 0 ;;
            --dir) DIR=${2:?--dir needs a value}; shift 2 ;;
            --bin) BIN=${2:?--bin needs a value}; shift 2 ;;
            --base-port) BASE_PORT=${2:?--base-port needs a value}; shift 2 ;;
            --view-timeout-ms) VIEW_TIMEOUT=${2:?--view-timeout-ms needs a value}; shift 2 ;;
            --log-level) LOG_LEVEL=${2:?--log-level needs a value}; shift 2 ;;
            --wait) WAIT_S=${2:?--wait needs a value}; shift 2 ;;
            -f) FOLLOW=1; shift ;;
            -n) LOG_LINES=${2:?-n needs a value}; shift 2 ;;
            -*) echo "cluster: unknown option $1 (see --help)" >&2; exit 2 ;;
            *)
                if [ -z "$CMD" ]; then CMD=$1
                elif [ -z "$ARG" ]; then ARG=$1
                else echo "cluster: unexpected argument $1" >&2; exit 2
                fi
                shift ;;
        esac
    done
    [ -n "$CMD" ] || { usage >&2; exit 2; }
    case "$CMD" in
        up|status|start|stop|kill|down|logs) ;;
        *) echo "cluster: unknown command $CMD (see --help)" >&2; exit 2 ;;
    esac
}

# Value of KEY in [SECTION] of an ini file (spaces around '=' trimmed).
conf_get() {
    awk -v sec="$2" -v key="$3" '
        /^[ \t]*\[/ { gsub(/[][ \t]/, ""); cur = $0; next }
        cur == sec && $0 ~ "^[ \t]*" key "[ \t]*=" {
            sub(/^[^=]*=[ \t]*/, ""); sub(/[ \t]*$/, ""); print; exit
        }' "$1"
}

home_of() { echo "$DIR/node$1"; }
api_of() { conf_get "$(home_of "$1")/seqd.conf" api listen; }
p2p_of() { conf_get "$(home_of "$1")/seqd.conf" p2p listen; }
http_of() { conf_get "$(home_of "$1")/seqd.conf" http listen; }

# Node indexes present in DIR, ascending.
nodes() {
    local d
    for d in "$DIR"/node*/; do
        d=${d%/}; d=${d##*/node}
        case "$d" in ''|*[!0-9]*) continue ;; esac
        echo "$d"
    done | sort -n
}

need_node() {
    case "$1" in ''|*[!0-9]*) die "node index expected, got '$1'" ;; esac
    [ -f "$(home_of "$1")/seqd.conf" ] || die "no node $1 in $DIR (no $(home_of "$1")/seqd.conf)"
}

# True when PID is a live seqd started with --home HOME (never a reused pid,
# never a zombie: a zombie's cmdline is empty).
is_our_seqd() {
    local pid=$1 home=$2 prog="" prev="" arg home_ok=0
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
    while IFS= read -r -d '' arg; do
        [ -z "$prog" ] && prog=$arg
        [ "$prev" = "--home" ] && [ "$arg" = "$home" ] && home_ok=1
        prev=$arg
    done <"/proc/$pid/cmdline"
    [ "${prog##*/}" = "seqd" ] && [ $home_ok -eq 1 ]
}

pid_of() { local f; f="$(home_of "$1")/seqd.pid"; [ -f "$f" ] && cat "$f"; }

running_pid() {
    local pid
    pid=$(pid_of "$1") || return 1
    is_our_seqd "$pid" "$(home_of "$1")" && echo "$pid"
}

height_of() {
    timeout 3 "$BIN/seqctl" status --api "$1" 2>/dev/null | awk '$1 == "height" { print $2 }'
}

start_node() {
    local i=$1 home pid
    home=$(home_of "$i")
    if pid=$(running_pid "$i"); then
        echo "node$i already running (pid $pid)"
        return 0
    fi
    echo "---- $(date '+%F %T') cluster.sh start node$i" >>"$home/seqd.log"
    local args=(start --home "$home")
    [ -n "$LOG_LEVEL" ] && args+=(--log-level "$LOG_LEVEL")
    # The inner shell writes its own pid, then becomes seqd: the pid file holds
    # seqd's pid even when setsid has to fork.
    setsid sh -c 'echo $$ >"$0"; exec "$@"' "$home/seqd.pid" "$BIN/seqd" "${args[@]}" \
        </dev/null >>"$home/seqd.log" 2>&1 &
}

# Waits until node I answers `seqctl status`; on failure names it with its log.
wait_answering() {
    local i=$1 api deadline pid
    api=$(api_of "$i")
    deadline=$((SECONDS + WAIT_S))
    while [ $SECONDS -lt $deadline ]; do
        if [ -n "$(height_of "$api")" ]; then return 0; fi
        pid=$(pid_of "$i")
        if [ -n "$pid" ] && ! is_our_seqd "$pid" "$(home_of "$i")" && ! kill -0 "$pid" 2>/dev/null; then
            echo "cluster: node$i (api $api) exited during startup; end of $(home_of "$i")/seqd.log:" >&2
            tail -n 15 "$(home_of "$i")/seqd.log" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "cluster: node$i (api $api) did not answer within ${WAIT_S}s; end of $(home_of "$i")/seqd.log:" >&2
    tail -n 15 "$(home_of "$i")/seqd.log" >&2
    return 1
}

# Sends SIG to node I (when it is ours) and waits up to S seconds for it to go.
signal_and_wait() {
    local i=$1 sig=$2 secs=$3 pid home deadline
    home=$(home_of "$i")
    pid=$(running_pid "$i") || return 0
    kill "-$sig" "$pid" 2>/dev/null
    deadline=$((SECONDS + secs))
    while is_our_seqd "$pid" "$home"; do
        [ $SECONDS -ge $deadline ] && return 1
        sleep 0.05
    done
    return 0
}

cmd_up() {
    local n=${ARG:-4} i fail=0
    case "$n" in ''|*[!0-9]*) die "up: validator count expected, got '$n'" ;; esac
    [ -x "$BIN/seqd" ] && [ -x "$BIN/seqctl" ] || die "no seqd/seqctl in $BIN (make build/seqd build/seqctl)"
    if [ ! -f "$DIR/genesis.json" ]; then
        local args=(testnet --validators "$n" --out "$DIR")
        [ -n "$BASE_PORT" ] && args+=(--base-port "$BASE_PORT")
        [ -n "$VIEW_TIMEOUT" ] && args+=(--view-timeout-ms "$VIEW_TIMEOUT")
        "$BIN/seqctl" "${args[@]}" >/dev/null || die "seqctl testnet failed"
    fi
    for i in $(nodes); do start_node "$i"; done
    for i in $(nodes); do wait_answering "$i" || fail=1; done
    [ $fail -eq 0 ] || exit 1
    echo "cluster: $(nodes | wc -l) nodes up in $DIR"
}

cmd_status() {
    local i pid state h
    for i in $(nodes); do
        pid=$(pid_of "$i") || pid=""
        h="-"
        if [ -z "$pid" ]; then
            state=stopped; pid="-"
        elif is_our_seqd "$pid" "$(home_of "$i")"; then
            state=running
            h=$(height_of "$(api_of "$i")"); h=${h:--}
        else
            state=dead
        fi
        echo "node$i pid=$pid state=$state height=$h p2p=$(p2p_of "$i") api=$(api_of "$i") http=$(http_of "$i")"
    done
}

cmd_stop() {
    need_node "$ARG"
    running_pid "$ARG" >/dev/null || { echo "node$ARG is not running"; rm -f "$(home_of "$ARG")/seqd.pid"; return 0; }
    if ! signal_and_wait "$ARG" TERM 10; then
        echo "cluster: node$ARG ignored SIGTERM for 10 s; sending SIGKILL" >&2
        signal_and_wait "$ARG" KILL 5 || die "node$ARG survives SIGKILL"
    fi
    rm -f "$(home_of "$ARG")/seqd.pid"
    echo "node$ARG stopped"
}

cmd_kill() {
    need_node "$ARG"
    running_pid "$ARG" >/dev/null || die "node$ARG is not running"
    signal_and_wait "$ARG" KILL 5 || die "node$ARG survives SIGKILL"
    echo "node$ARG killed (SIGKILL)"
}

cmd_start() {
    need_node "$ARG"
    [ -x "$BIN/seqd" ] || die "no seqd in $BIN"
    start_node "$ARG"
    wait_answering "$ARG" || exit 1
    echo "node$ARG started (pid $(pid_of "$ARG"))"
}

cmd_down() {
    local i pid deadline left
    [ -d "$DIR" ] || return 0
    for i in $(nodes); do
        pid=$(running_pid "$i") && kill -TERM "$pid" 2>/dev/null
    done
    deadline=$((SECONDS + 10))
    while :; do
        left=""
        for i in $(nodes); do running_pid "$i" >/dev/null && left="$left $i"; done
        [ -z "$left" ] && break
        if [ $SECONDS -ge $deadline ]; then
            echo "cluster: nodes$left still up after 10 s; sending SIGKILL" >&2
            for i in $left; do signal_and_wait "$i" KILL 5; done
            break
        fi
        sleep 0.05
    done
    for i in $(nodes); do rm -f "$(home_of "$i")/seqd.pid"; done
    echo "cluster: down ($DIR)"
}

cmd_logs() {
    need_node "$ARG"
    if [ $FOLLOW -eq 1 ]; then
        exec tail -n "$LOG_LINES" -f "$(home_of "$ARG")/seqd.log"
    fi
    tail -n "$LOG_LINES" "$(home_of "$ARG")/seqd.log"
}

main() {
    parse_args "$@"
    # Homes are matched against seqd's command line: use one absolute spelling.
    if [ "$CMD" != "up" ] && [ ! -d "$DIR" ]; then
        [ "$CMD" = "down" ] && exit 0
        die "no cluster directory $DIR"
    fi
    mkdir -p "$DIR" || die "cannot create $DIR"
    DIR=$(cd "$DIR" && pwd -P)
    BIN=$(cd "$BIN" 2>/dev/null && pwd -P) || die "no directory $BIN (--bin)"
    case "$CMD" in
        up) cmd_up ;;
        status) cmd_status ;;
        start) cmd_start ;;
        stop) cmd_stop ;;
        kill) cmd_kill ;;
        down) cmd_down ;;
        logs) cmd_logs ;;
    esac
}

main "$@"
