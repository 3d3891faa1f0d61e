#!/usr/bin/env bash
# libseqclient as a rollup gets it: `make install` into a temporary PREFIX
# (and a DESTDIR-staged one), then examples/consumer.c built with nothing but
# `pkg-config --cflags --libs seqclient`, linked and run (--help), shared and
# static. Also checks the library pulls in neither libuv nor LMDB.
# usage: tests/client/test_install.sh BUILD_DIR   (run by `make client-install-test`)
set -u
NAME=client_install
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
BUILD=${1:-build}
MAKE=${MAKE:-make}
CC=${CC:-cc}
T=$(mktemp -d "${TMPDIR:-/tmp}/seq-$NAME.XXXXXX")
trap 'rm -rf "$T"' EXIT

fail() { echo "$NAME: FAIL: $*"; exit 1; }
log() { echo "$NAME: $*"; }

install_to() { # PREFIX [DESTDIR]
    "$MAKE" -s --no-print-directory -C "$ROOT" BUILD="$BUILD" install PREFIX="$1" DESTDIR="${2:-}" >"$T/install.log" 2>&1 ||
        fail "make install PREFIX=$1 DESTDIR=${2:-}: $(tail -5 "$T/install.log")"
}

# ---- a plain PREFIX ----------------------------------------------------------
P="$T/prefix"
install_to "$P"
for f in lib/libseqclient.a lib/libseqclient.so.1 lib/libseqclient.so lib/pkgconfig/seqclient.pc \
         include/seqclient/seqclient.h include/seqclient/client.h include/seqclient/verify.h; do
    [ -e "$P/$f" ] || fail "make install did not write $f"
done
[ "$(readlink "$P/lib/libseqclient.so")" = libseqclient.so.1 ] || fail "libseqclient.so is not a link to libseqclient.so.1"
grep -q "^prefix=$P\$" "$P/lib/pkgconfig/seqclient.pc" || fail "seqclient.pc does not name prefix $P"
! grep -q '@' "$P/lib/pkgconfig/seqclient.pc" || fail "seqclient.pc has an unfilled @FIELD@"

# Nothing of the node: no libuv or LMDB symbol wanted, no such library needed.
so="$P/lib/libseqclient.so.1"
bad=$(nm -D --undefined-only "$so" | awk '{ print $2 }' | grep -E '^(uv_|mdb_)' | head -3)
[ -z "$bad" ] || fail "libseqclient.so wants $bad"
bad=$(nm -u "$P/lib/libseqclient.a" 2>/dev/null | awk '{ print $2 }' | grep -E '^(uv_|mdb_)' | sort -u | head -3)
[ -z "$bad" ] || fail "libseqclient.a wants $bad"
readelf -d "$so" | grep -E 'NEEDED.*(libuv|liblmdb)' && fail "libseqclient.so needs libuv or LMDB"
for sym in seq_client_connect seq_client_verify_with seq_client_next_batch seq_client_tx_status_verify \
           seq_verifier_check seq_genesis_load seq_batch_free; do
    nm -D --defined-only "$so" | grep -qw "$sym" || fail "libseqclient.so does not export $sym"
done
log "installed into $P: $(ls "$P/include/seqclient" | wc -l) headers, .a, .so.1, seqclient.pc; no libuv or LMDB symbol"

export PKG_CONFIG_PATH="$P/lib/pkgconfig"
flags=$(pkg-config --cflags --libs seqclient) || fail "pkg-config --cflags --libs seqclient failed"
[ "$(pkg-config --modversion seqclient)" != "" ] || fail "seqclient.pc has no version"
# shellcheck disable=SC2086 # flags are words
"$CC" -Wall -Wextra -Werror -o "$T/consumer" "$ROOT/examples/consumer.c" $flags 2>"$T/cc.log" ||
    fail "consumer.c does not build with '$flags': $(head -20 "$T/cc.log")"
readelf -d "$T/consumer" | grep -q 'NEEDED.*libseqclient.so.1' || fail "consumer is not linked to libseqclient.so.1"
out=$(LD_LIBRARY_PATH="$P/lib" "$T/consumer" --help) || fail "consumer --help exited $?"
grep -q '^usage: consumer' <<<"$out" || fail "consumer --help printed: $out"
LD_LIBRARY_PATH="$P/lib" "$T/consumer" >/dev/null 2>&1
[ $? -eq 2 ] || fail "consumer without --ns should exit 2 (usage)"
log "consumer.c built with '$flags' only; it runs --help"

# Static: the archive alone with the libraries pkg-config --static names.
sflags=$(pkg-config --static --libs seqclient)
sflags=${sflags/-lseqclient/-Wl,-Bstatic -lseqclient -Wl,-Bdynamic}
# shellcheck disable=SC2086
"$CC" -Wall -Wextra -Werror -o "$T/consumer-static" "$ROOT/examples/consumer.c" $(pkg-config --cflags seqclient) \
    $sflags 2>"$T/cc.log" || fail "consumer.c does not link statically with '$sflags': $(head -20 "$T/cc.log")"
readelf -d "$T/consumer-static" | grep -q 'NEEDED.*libseqclient' && fail "the static consumer still needs libseqclient.so"
"$T/consumer-static" --help >/dev/null || fail "static consumer --help exited $?"
log "consumer.c links libseqclient.a statically and runs --help"

# ---- DESTDIR staging (a package build): files under DESTDIR, paths without it.
S="$T/stage"
install_to /opt/seqclient "$S"
[ -e "$S/opt/seqclient/lib/pkgconfig/seqclient.pc" ] || fail "DESTDIR install did not stage under $S/opt/seqclient"
grep -q '^prefix=/opt/seqclient$' "$S/opt/seqclient/lib/pkgconfig/seqclient.pc" ||
    fail "staged seqclient.pc should name /opt/seqclient, not the staging dir"
cflags=$(PKG_CONFIG_SYSROOT_DIR="$S" PKG_CONFIG_PATH="$S/opt/seqclient/lib/pkgconfig" pkg-config --cflags seqclient)
# shellcheck disable=SC2086
"$CC" -Wall -Wextra -Werror -c -o "$T/consumer.o" "$ROOT/examples/consumer.c" $cflags ||
    fail "consumer.c does not compile against the staged headers ($cflags)"
log "PASS: make install with PREFIX and with DESTDIR; pkg-config builds a consumer, shared and static"
