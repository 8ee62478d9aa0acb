/*  fuzz_forwarded.c -- libFuzzer target for the forwarding headers a
    gateway reads from a trusted proxy (gateway/client_addr.c), and for the
    trusted_proxies list itself.

    The headers come from the proxy, but the proxy copies what any client
    wrote into them. The input is split at its first NUL byte: the part
    before it is X-Forwarded-For, the part after it is Forwarded. The two
    parts are parsed behind a proxy that trusts 127.0.0.1 and 10.0.0.0/8.
    The whole input is also parsed as a trusted_proxies list. The answer is
    always an address, and it is never empty.
*/
/* fuzz-options: -max_len=4096 */
#include "client_addr.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 2);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = text[size + 1] = 0;
    const char *xff = text, *fwd = text + strlen(text) + 1;
    if (fwd > text + size)
        fwd = text + size;
    gw_proxies_t p;
    char err[256];
    if (gw_proxies_parse(&p, "127.0.0.1 10.0.0.0/8", err, sizeof err) != 0)
        abort();
    char out[GW_ADDR_MAX];
    gw_client_addr(&p, "127.0.0.1", xff, *fwd ? fwd : NULL, out);
    unsigned char bin[16];
    if (!out[0] || (inet_pton(AF_INET, out, bin) != 1 && inet_pton(AF_INET6, out, bin) != 1))
        abort();
    gw_client_addr(&p, "127.0.0.1", NULL, xff, out);
    if (!out[0])
        abort();
    gw_proxies_t q;
    if (gw_proxies_parse(&q, xff, err, sizeof err) == 0 && (q.n < 0 || q.n > GW_PROXIES_MAX))
        abort();
    free(text);
    return 0;
}
