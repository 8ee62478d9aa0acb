/*  test_client_addr.c -- trusted proxies and the client address they forward
    (gateway/client_addr.c): which address the failed-join budget and the
    logs see, for a direct client, a client behind nginx, and one that
    forges the headers.
*/
#include "client_addr.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static gw_proxies_t s_p;

static void s_trust(const char *list)
{
    char err[256] = "";
    ck_assert_msg(gw_proxies_parse(&s_p, list, err, sizeof err) == 0, "%s", err);
}

/* The client address for peer and headers under s_p. */
static const char *s_client(const char *peer, const char *xff, const char *fwd)
{
    static char out[GW_ADDR_MAX];
    gw_client_addr(&s_p, peer, xff, fwd, out);
    return out;
}

START_TEST(test_parse)
{
    s_trust("127.0.0.1, 10.0.0.0/8 ::1,fd00::/8");
    ck_assert_int_eq(s_p.n, 4);
    ck_assert(gw_proxies_trusts(&s_p, "127.0.0.1"));
    ck_assert(!gw_proxies_trusts(&s_p, "127.0.0.2"));
    ck_assert(gw_proxies_trusts(&s_p, "10.200.3.4"));
    ck_assert(gw_proxies_trusts(&s_p, "::ffff:10.1.1.1")); /* a dual-stack socket's view */
    ck_assert(gw_proxies_trusts(&s_p, "::1"));
    ck_assert(gw_proxies_trusts(&s_p, "fd12:3456::1"));
    ck_assert(!gw_proxies_trusts(&s_p, "fe80::1"));
    ck_assert(!gw_proxies_trusts(&s_p, "not-an-address"));
    ck_assert(!gw_proxies_trusts(&s_p, NULL));
    s_trust("10.1.2.3/8"); /* host bits are dropped */
    ck_assert(gw_proxies_trusts(&s_p, "10.9.9.9"));
    s_trust("");
    ck_assert_int_eq(s_p.n, 0);
    ck_assert(!gw_proxies_trusts(&s_p, "127.0.0.1"));
    s_trust("0.0.0.0/0");
    ck_assert(gw_proxies_trusts(&s_p, "203.0.113.9"));
    ck_assert(!gw_proxies_trusts(&s_p, "2001:db8::1"));
}
END_TEST

START_TEST(test_parse_refuses)
{
    const char *bad[] = {"10.0.0.0/33", "::/129",    "bogus",       "10.0.0.1/",
                         "10.0.0.1/8x", "1.2.3.4.5", "10.0.0.0/-1", "[::1]"};
    char err[256];
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = 0;
        ck_assert_msg(gw_proxies_parse(&s_p, bad[i], err, sizeof err) == -1, "took %s", bad[i]);
        ck_assert_msg(strstr(err, "trusted_proxies: ") == err, "said: %s", err);
        ck_assert_int_eq(s_p.n, 0);
    }
    char many[2048] = "";
    for (int i = 0; i <= GW_PROXIES_MAX; i++)
        sprintf(many + strlen(many), "10.0.%d.1 ", i);
    ck_assert_int_eq(gw_proxies_parse(&s_p, many, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "more than 32"));
}
END_TEST

START_TEST(test_untrusted_peer_is_the_client)
{
    s_trust("127.0.0.1");
    /* a forged header from a peer we do not trust changes nothing */
    ck_assert_str_eq(s_client("127.0.0.4", "127.0.0.3", NULL), "127.0.0.4");
    ck_assert_str_eq(s_client("203.0.113.7", NULL, "for=198.51.100.1"), "203.0.113.7");
    ck_assert_str_eq(s_client("::ffff:203.0.113.7", NULL, NULL), "203.0.113.7");
    ck_assert_str_eq(s_client("2001:db8::5", "1.2.3.4", NULL), "2001:db8::5");
}
END_TEST

START_TEST(test_behind_a_proxy)
{
    s_trust("127.0.0.1, 10.0.0.0/8");
    ck_assert_str_eq(s_client("127.0.0.1", "198.51.100.1", NULL), "198.51.100.1");
    ck_assert_str_eq(s_client("::ffff:127.0.0.1", "198.51.100.1", NULL), "198.51.100.1");
    /* the client wrote an address to the left of what nginx appended */
    ck_assert_str_eq(s_client("127.0.0.1", "6.6.6.6, 198.51.100.1", NULL), "198.51.100.1");
    /* two trusted hops */
    ck_assert_str_eq(s_client("127.0.0.1", "198.51.100.1, 10.0.0.5", NULL), "198.51.100.1");
    ck_assert_str_eq(s_client("127.0.0.1", " 198.51.100.1 ,10.0.0.5 ", NULL), "198.51.100.1");
    /* every hop trusted: the left-most */
    ck_assert_str_eq(s_client("127.0.0.1", "10.0.0.1, 10.0.0.2", NULL), "10.0.0.1");
    /* ports and brackets */
    ck_assert_str_eq(s_client("127.0.0.1", "198.51.100.1:5678", NULL), "198.51.100.1");
    ck_assert_str_eq(s_client("127.0.0.1", "[2001:db8::17]:4711", NULL), "2001:db8::17");
    ck_assert_str_eq(s_client("127.0.0.1", "2001:db8::17", NULL), "2001:db8::17");
    /* a dual-stack proxy writes IPv4 clients mapped */
    ck_assert_str_eq(s_client("127.0.0.1", "::ffff:203.0.113.7", NULL), "203.0.113.7");
    ck_assert_str_eq(s_client("127.0.0.1", "64:ff9b::203.0.113.7", NULL), "64:ff9b::cb00:7107");
    /* no header at all: the proxy itself */
    ck_assert_str_eq(s_client("127.0.0.1", NULL, NULL), "127.0.0.1");
    ck_assert_str_eq(s_client("127.0.0.1", "", NULL), "127.0.0.1");
}
END_TEST

START_TEST(test_forwarded_header)
{
    s_trust("127.0.0.1");
    ck_assert_str_eq(s_client("127.0.0.1", NULL, "for=192.0.2.60;proto=http;by=203.0.113.43"),
                     "192.0.2.60");
    ck_assert_str_eq(s_client("127.0.0.1", NULL, "for=\"[2001:db8:cafe::17]:4711\""),
                     "2001:db8:cafe::17");
    ck_assert_str_eq(s_client("127.0.0.1", NULL, "for=6.6.6.6, for=192.0.2.43;proto=https"),
                     "192.0.2.43");
    ck_assert_str_eq(s_client("127.0.0.1", NULL, "proto=https;For=192.0.2.44"), "192.0.2.44");
    /* X-Forwarded-For wins when both are there */
    ck_assert_str_eq(s_client("127.0.0.1", "198.51.100.9", "for=192.0.2.60"), "198.51.100.9");
    /* obfuscated or unknown: what we know is the proxy */
    ck_assert_str_eq(s_client("127.0.0.1", NULL, "for=unknown"), "127.0.0.1");
    ck_assert_str_eq(s_client("127.0.0.1", NULL, "for=_hidden"), "127.0.0.1");
    ck_assert_str_eq(s_client("127.0.0.1", NULL, "proto=https"), "127.0.0.1");
}
END_TEST

START_TEST(test_malformed_entries_stop_the_walk)
{
    s_trust("127.0.0.1, 10.0.0.0/8");
    ck_assert_str_eq(s_client("127.0.0.1", "garbage, 198.51.100.1", NULL), "198.51.100.1");
    ck_assert_str_eq(s_client("127.0.0.1", "198.51.100.1, garbage", NULL), "127.0.0.1");
    ck_assert_str_eq(s_client("127.0.0.1", "198.51.100.1, 10.0.0.2, ,", NULL), "127.0.0.1");
    ck_assert_str_eq(s_client("127.0.0.1", "198.51.100.1, [::1", NULL), "127.0.0.1");
    char long_entry[200];
    memset(long_entry, '1', sizeof long_entry - 1);
    long_entry[sizeof long_entry - 1] = 0;
    ck_assert_str_eq(s_client("127.0.0.1", long_entry, NULL), "127.0.0.1");
    /* a chain of trusted hops longer than GW_FORWARDED_HOPS_MAX stops at the cap */
    char chain[1024] = "198.51.100.1";
    for (int i = 0; i < GW_FORWARDED_HOPS_MAX + 4; i++)
        sprintf(chain + strlen(chain), ", 10.0.0.%d", i + 1);
    ck_assert_str_ne(s_client("127.0.0.1", chain, NULL), "198.51.100.1");
    ck_assert_str_eq(s_client("not an address", "1.2.3.4", NULL), "not an address");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("client_addr");
    TCase *tc = tcase_create("proxies");
    tcase_add_test(tc, test_parse);
    tcase_add_test(tc, test_parse_refuses);
    tcase_add_test(tc, test_untrusted_peer_is_the_client);
    tcase_add_test(tc, test_behind_a_proxy);
    tcase_add_test(tc, test_forwarded_header);
    tcase_add_test(tc, test_malformed_entries_stop_the_walk);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
