/* A node home directory: the identity key, the config file and the data
 * directory, as `seqd init` and `seqctl testnet` create them:
 *   DIR/key        identity key (0600, lib/crypto.h key file format)
 *   DIR/seqd.conf  every setting, commented (lib/config.h)
 *   DIR/data/      LMDB store (created empty)
 * The genesis file is not part of a home: the network's coordinator hands it
 * out, and config genesis_file names it. */
#ifndef SEQ_HOME_H
#define SEQ_HOME_H

#include <stddef.h>

#include "config.h"
#include "types.h"

/* Creates dir (0700, parents too) when missing and writes a fresh key, the
 * config file c (seq_config_write) and the data directory. Refuses with
 * SEQ_EEXISTS, touching nothing, when dir already holds a key or a config.
 * *pk_out (optional) gets the new public key. Message in err. */
int seq_home_init(const char *dir, const seq_config *c, seq_pubkey *pk_out, char *err, size_t err_len) SEQ_MUST_CHECK;

#endif
