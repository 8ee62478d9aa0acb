/*  client_addr.h -- who a connection really comes from, behind a proxy.

    Behind nginx or Caddy every connection's TCP peer is the proxy, so the
    failed-join budget and the hashed addresses in the logs would lump the
    whole audience together. From a peer listed in trusted_proxies (and only
    from one: any client can write these headers) the client's address is
    taken from X-Forwarded-For, or from Forwarded (RFC 7239) when there is
    no X-Forwarded-For: the right-most address that is not itself a trusted
    proxy, so a client cannot choose its own address by writing one to the
    left of what the proxy appended. Every parser here is bounded and a fuzz
    target (tests/fuzz/fuzz_forwarded.c).
*/
#ifndef TOLK_CLIENT_ADDR_H
#define TOLK_CLIENT_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Networks trusted_proxies may list at most. */
#define GW_PROXIES_MAX 32
/* Addresses of one forwarding header considered at most (right to left). */
#define GW_FORWARDED_HOPS_MAX 16
/* Room for an address as text (IPv6 at its longest, and a NUL). */
#define GW_ADDR_MAX 46

/* One network: an IPv4 address is kept as IPv4-mapped IPv6, so one
   comparison serves both families. */
typedef struct {
    uint8_t addr[16]; /* network address, host bits zero */
    int prefix;       /* bits that must match, 0..128 */
} gw_cidr_t;

/* The trusted proxies of a gateway. */
typedef struct {
    gw_cidr_t nets[GW_PROXIES_MAX];
    int n;
} gw_proxies_t;

/* Parse a comma- or space-separated list of addresses and CIDRs
   ("127.0.0.1, 10.0.0.0/8, ::1, fd00::/8"); "" trusts nobody. Returns 0,
   or -1 with a sentence in err naming the bad entry. */
int gw_proxies_parse(gw_proxies_t *self, const char *list, char *err, size_t errlen);

/* Is the textual address addr (IPv4, IPv6, or IPv4-mapped IPv6) in one of
   the networks? false for anything that is not an address. */
bool gw_proxies_trusts(const gw_proxies_t *self, const char *addr);

/* The client's address for a connection from peer with the given header
   values (NULL: header absent), written to out (GW_ADDR_MAX bytes): peer
   itself unless it is trusted; else the right-most address of
   X-Forwarded-For (else Forwarded's for=) that is not trusted, or the
   left-most one when all are. A malformed entry stops the walk: the
   address to its right (a trusted proxy's) is the answer. IPv4-mapped
   addresses are written as IPv4. */
void gw_client_addr(const gw_proxies_t *self, const char *peer, const char *xff,
                    const char *forwarded, char *out);

#endif
