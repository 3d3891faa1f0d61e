/* Error codes for the whole project: one table, negative ints, 0 is success. */
#ifndef SEQ_ERRORS_H
#define SEQ_ERRORS_H

#include <stddef.h>

/* X(name, message). Append only: the numeric values are part of the API. */
#define SEQ_ERRNO_MAP(X)                                                     \
    X(NOMEM, "out of memory")                                                \
    X(INVAL, "invalid argument")                                             \
    X(TOOBIG, "too large")                                                   \
    X(DECODE, "malformed encoding")                                          \
    X(BADSIG, "bad signature")                                               \
    X(UNKNOWN_SIGNER, "signer is not in the validator set")                  \
    X(DUP_SIGNER, "duplicate signer")                                        \
    X(QUORUM, "below quorum")                                                \
    X(CHAIN_ID, "wrong chain id")                                            \
    X(MISMATCH, "view, kind or hash does not match")                         \
    X(IO, "i/o error")                                                       \
    X(PERM, "key file is readable by group or others (chmod 600 it)")        \
    X(NOTFOUND, "not found")                                                 \
    X(EXISTS, "already exists")                                              \
    X(MAP_FULL, "store map is full (raise the store map size)")              \
    X(CORRUPT, "store is corrupt")                                           \
    X(FOREIGN, "directory holds a database that is not a seq store")         \
    X(VERSION, "store was written by an incompatible version")               \
    X(STORE, "store error")                                                  \
    X(FULL, "mempool is full")                                               \
    X(DUPLICATE, "duplicate transaction")                                    \
    X(NS_FULL, "too many namespaces pending")                                \
    X(ORDER, "out of order")                                                 \
    X(READONLY, "store is open read-only")                                   \
    X(CONFIG, "bad configuration")                                           \
    X(GENESIS, "bad genesis file")                                           \
    X(NOTCONN, "not connected")                                              \
    X(HANDSHAKE, "peer handshake failed")                                    \
    X(TIMEOUT, "timed out")                                                  \
    X(CLOSED, "connection closed")                                           \
    X(PROTOCOL, "protocol violation")                                        \
    X(ADDR, "bad address (want HOST:PORT)")                                  \
    X(PROOF, "namespace proof does not match the payload root")              \
    X(GAP, "batch does not follow the previous one")                         \
    X(SLOW, "subscriber too slow for too long")                             \
    X(LOCKED, "store is in use by another process")

typedef enum {
    SEQ_OK = 0,
    SEQ_ERR_FIRST_ = -1000,
#define SEQ_ERR_ENUM_(name, msg) SEQ_E##name,
    SEQ_ERRNO_MAP(SEQ_ERR_ENUM_)
#undef SEQ_ERR_ENUM_
    SEQ_ERR_LAST_
} seq_err;

/* Static string for any code from the table (or "unknown error"). */
const char *seq_strerror(int err);
/* Writes a message into a caller's error buffer (err may be NULL or
 * err_len 0: nothing is written). For functions that explain a refusal. */
void seq_err_set(char *err, size_t err_len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* "ENOMEM"-style name of the code, for logs. */
const char *seq_errname(int err);

#endif
