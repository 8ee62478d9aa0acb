/*  client_addr.c -- trusted proxies and forwarding headers; see client_addr.h. */
#include "client_addr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest single entry looked at (an address with brackets, port, quotes). */
#define S_ENTRY_MAX 64

/* addr as 16 bytes (IPv4 mapped into IPv6). false when it is not one. */
static bool s_parse_addr(const char *text, uint8_t out[16])
{
    struct in_addr v4;
    if (inet_pton(AF_INET, text, &v4) == 1) {
        memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &v4, 4);
        return true;
    }
    struct in6_addr v6;
    if (inet_pton(AF_INET6, text, &v6) == 1) {
        memcpy(out, &v6, 16);
        return true;
    }
    return false;
}

static bool s_is_v4(const uint8_t a[16])
{
    static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return memcmp(a, prefix, 12) == 0;
}

/* The address back as text, IPv4-mapped ones as IPv4. */
static void s_format(const uint8_t a[16], char *out)
{
    if (s_is_v4(a))
        inet_ntop(AF_INET, a + 12, out, GW_ADDR_MAX);
    else
        inet_ntop(AF_INET6, a, out, GW_ADDR_MAX);
}

static bool s_in(const gw_cidr_t *net, const uint8_t a[16])
{
    int full = net->prefix / 8, rest = net->prefix % 8;
    if (memcmp(net->addr, a, (size_t)full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (net->addr[full] & mask) == (a[full] & mask);
}

static bool s_trusted(const gw_proxies_t *self, const uint8_t a[16])
{
    for (int i = 0; i < self->n; i++)
        if (s_in(&self->nets[i], a))
            return true;
    return false;
}

int gw_proxies_parse(gw_proxies_t *self, const char *list, char *err, size_t errlen)
{
    memset(self, 0, sizeof *self);
    const char *p = list ? list : "";
    while (*p) {
        p += strspn(p, ", \t");
        size_t len = strcspn(p, ", \t");
        if (len == 0)
            break;
        char entry[S_ENTRY_MAX];
        if (len >= sizeof entry) {
            snprintf(err, errlen, "trusted_proxies: \"%.*s...\" is too long for an address",
                     (int)(sizeof entry / 2), p);
            return -1;
        }
        memcpy(entry, p, len);
        entry[len] = 0;
        p += len;
        if (self->n == GW_PROXIES_MAX) {
            snprintf(err, errlen, "trusted_proxies: more than %d entries", GW_PROXIES_MAX);
            return -1;
        }
        gw_cidr_t *net = &self->nets[self->n];
        char *slash = strchr(entry, '/');
        long bits = -1;
        if (slash) {
            *slash = 0;
            char *end;
            bits = strtol(slash + 1, &end, 10);
            if (end == slash + 1 || *end || bits < 0)
                bits = -2;
        }
        bool v4 = strchr(entry, ':') == NULL;
        if (!s_parse_addr(entry, net->addr) || bits < -1 || bits > (v4 ? 32 : 128)) {
            if (slash)
                *slash = '/';
            snprintf(err, errlen, "trusted_proxies: \"%s\" is not an address or CIDR", entry);
            return -1;
        }
        net->prefix = bits < 0 ? 128 : (int)bits + (v4 ? 96 : 0);
        /* host bits zero, so that 10.1.2.3/8 means 10.0.0.0/8 */
        for (int b = net->prefix; b < 128; b++)
            net->addr[b / 8] &= (uint8_t) ~(0x80 >> (b % 8));
        self->n++;
    }
    return 0;
}

bool gw_proxies_trusts(const gw_proxies_t *self, const char *addr)
{
    uint8_t a[16];
    return addr && s_parse_addr(addr, a) && s_trusted(self, a);
}

/* One forwarding entry (" 1.2.3.4", "\"[2001:db8::1]:4711\"", "1.2.3.4:80")
   to an address. false for "unknown", obfuscated identifiers, garbage. */
static bool s_entry_addr(const char *s, size_t len, uint8_t out[16])
{
    while (len && (*s == ' ' || *s == '\t'))
        s++, len--;
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    if (len >= 2 && s[0] == '"' && s[len - 1] == '"')
        s++, len -= 2;
    if (len == 0 || len >= S_ENTRY_MAX)
        return false;
    char buf[S_ENTRY_MAX];
    memcpy(buf, s, len);
    buf[len] = 0;
    char *a = buf;
    if (s_parse_addr(a, out)) /* v4, v6, ::ffff:v4 as they are */
        return true;
    if (a[0] == '[') { /* [v6] or [v6]:port */
        char *close = strchr(a, ']');
        if (!close || (close[1] && close[1] != ':'))
            return false;
        *close = 0;
        a++;
    } else if (strchr(a, ':') && strchr(a, ':') == strrchr(a, ':')) { /* v4:port */
        *strchr(a, ':') = 0;
    }
    return s_parse_addr(a, out);
}

/* The for= value inside one Forwarded element ("for=1.2.3.4;proto=https"),
   or NULL: *len gets its length. */
static const char *s_forwarded_for(const char *el, size_t ellen, size_t *len)
{
    const char *p = el, *end = el + ellen;
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *pair_end = semi ? semi : end;
        while (p < pair_end && (*p == ' ' || *p == '\t'))
            p++;
        if (pair_end - p > 4 && strncasecmp(p, "for=", 4) == 0) {
            *len = (size_t)(pair_end - p - 4);
            return p + 4;
        }
        p = semi ? semi + 1 : end;
    }
    return NULL;
}

void gw_client_addr(const gw_proxies_t *self, const char *peer, const char *xff,
                    const char *forwarded, char *out)
{
    uint8_t client[16];
    if (!peer || !s_parse_addr(peer, client)) {
        snprintf(out, GW_ADDR_MAX, "%s", peer ? peer : "");
        return;
    }
    const char *header = xff && *xff ? xff : forwarded && *forwarded ? forwarded : NULL;
    bool is_forwarded = header && header == forwarded;
    /* walk the list from its right end while the hop we stand on is trusted */
    size_t end = header ? strlen(header) : 0;
    for (int hops = 0; header && hops < GW_FORWARDED_HOPS_MAX && s_trusted(self, client); hops++) {
        if (end == 0)
            break;
        size_t start = end;
        while (start > 0 && header[start - 1] != ',')
            start--;
        const char *el = header + start;
        size_t len = end - start;
        if (is_forwarded)
            el = s_forwarded_for(el, len, &len);
        uint8_t a[16];
        if (!el || !s_entry_addr(el, len, a))
            break; /* malformed: the trusted hop to its right is what we know */
        memcpy(client, a, 16);
        end = start > 0 ? start - 1 : 0;
        if (start == 0)
            break;
    }
    s_format(client, out);
}
