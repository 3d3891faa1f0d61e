/* "host:port" (lib/config.h seq_hostport_parse) to a socket address for
 * libuv: IPv4, IPv6 in brackets, or "localhost" (127.0.0.1). No DNS: the
 * node never blocks its loop on a resolver. */
#ifndef SEQ_ADDR_H
#define SEQ_ADDR_H

#include <sys/socket.h>

#include "assert.h"

/* SEQ_EADDR for anything else. */
int seq_addr_resolve(const char *hostport, struct sockaddr_storage *out) SEQ_MUST_CHECK;

#endif
