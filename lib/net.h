/* Peer links between the validators of one genesis: libuv TCP, a handshake
 * that proves each side holds its genesis identity key, then encrypted and
 * authenticated frames. The node hands it whole frames (plaintext protobuf
 * PeerMessage bytes) and gets whole frames back; it knows nothing of their
 * content. All calls on the loop's thread.
 *
 * Handshake (lib/handshake.c, pure, no sockets): each side sends Hello in
 * clear (version, fresh crypto_kx public key, identity key, chain id); the
 * dialer is the crypto_kx client. Each side signs the transcript hash
 * (both Hellos, in dialer-acceptor order, and its role) with its identity key
 * and sends HelloAuth, then a crypto_secretstream header; every later frame is
 * one secretstream message, so a replayed, dropped, reordered or altered frame
 * fails to decrypt and closes the link.
 *
 * Both sides dial each other; when two authenticated links to one peer exist,
 * the one dialed by the lower validator index is kept. Dropped links are
 * redialed with exponential backoff (reconnect_min_ms .. reconnect_max_ms) and
 * jitter. A peer whose identity key is not in genesis (or is our own), a bad
 * signature, a wrong chain id, a frame over frame_bytes_max, a frame that fails
 * to decrypt, or a handshake not finished within handshake_timeout_ms: that
 * connection is closed, a warn line is logged, a counter is raised. */
#ifndef SEQ_NET_H
#define SEQ_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "assert.h"
#include "crypto.h"
#include "types.h"

typedef struct seq_net seq_net;

typedef struct {
    uv_loop_t *loop;
    uint64_t chain_id;
    const seq_validators *validators; /* borrowed, outlives the net */
    const char *const *addresses;     /* addresses[i]: "host:port" of validator i */
    uint32_t self;                    /* our index */
    const seq_keypair *key;           /* borrowed; our identity key */
    const char *listen;               /* "host:port" to accept peers on */
    uint32_t frame_bytes_max;         /* plaintext frame limit */
    uint32_t handshake_timeout_ms;
    uint32_t reconnect_min_ms;
    uint32_t reconnect_max_ms;
    size_t send_queue_bytes_max;      /* per peer: bytes written but not yet flushed */
} seq_net_config;

typedef struct {
    void *ctx;
    /* One decrypted frame from validator `from`; data valid during the call. */
    void (*on_frame)(void *ctx, uint32_t from, const uint8_t *data, size_t len);
    /* The authenticated link to `peer` came up (up = true) or went down. */
    void (*on_peer)(void *ctx, uint32_t peer, bool up);
} seq_net_callbacks;

/* Binds the listener (SEQ_EADDR for a bad address, SEQ_EIO when the bind
 * fails: the message names the address) and starts dialing every peer.
 * *out owned by the caller (seq_net_close). */
int seq_net_start(seq_net **out, const seq_net_config *cfg, const seq_net_callbacks *cb) SEQ_MUST_CHECK;

/* Queues one frame to peer (copied and encrypted before return).
 * SEQ_ENOTCONN when no link to peer is up, SEQ_EFULL when its send queue is
 * over send_queue_bytes_max (the frame is dropped and counted: consensus
 * messages are retried by the protocol), SEQ_ETOOBIG over frame_bytes_max. */
int seq_net_send(seq_net *n, uint32_t peer, const uint8_t *data, size_t len) SEQ_MUST_CHECK;

/* Queues the same frame to every peer whose link is up. */
void seq_net_broadcast(seq_net *n, const uint8_t *data, size_t len);

/* Closes the link to peer (it sent data the node found invalid); logged.
 * Like any lost link it is redialed with backoff. */
void seq_net_drop(seq_net *n, uint32_t peer, const char *why);

/* Authenticated links up now. */
uint32_t seq_net_peers_up(const seq_net *n);
bool seq_net_peer_up(const seq_net *n, uint32_t peer);

typedef struct {
    uint64_t handshakes_ok;
    uint64_t handshakes_failed; /* bad key, bad signature, wrong chain, timeout */
    uint64_t conns_refused;     /* identity key not in genesis */
    uint64_t frames_in, frames_out;
    uint64_t bytes_in, bytes_out;
    uint64_t frames_dropped;    /* send queue full */
    uint64_t bad_frames;        /* oversized or failed to decrypt */
    uint64_t reconnects;
} seq_net_stats;

void seq_net_stats_get(const seq_net *n, seq_net_stats *out);

/* Stops listening and dialing, closes every link; done(ctx) runs on the loop
 * once every handle is closed and n is freed. */
void seq_net_close(seq_net *n, void (*done)(void *ctx), void *ctx);

#endif
