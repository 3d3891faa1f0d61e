#include "addr.h"

#include <string.h>
#include <uv.h>

#include "config.h"
#include "errors.h"

int seq_addr_resolve(const char *hostport, struct sockaddr_storage *out)
{
    char host[SEQ_ADDR_BYTES];
    uint16_t port;
    if (!hostport || seq_hostport_parse(hostport, host, sizeof host, &port) != 0)
        return SEQ_EADDR;
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    memset(out, 0, sizeof *out);
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)out) == 0)
        return 0;
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)out) == 0)
        return 0;
    return SEQ_EADDR;
}
