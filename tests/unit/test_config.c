/*  test_config.c -- unit tests of the settings layers (common/config.c) and
    of the pure id checks in common/session_store.c.

    Settings come from three layers (defaults, file, TOLK_* environment),
    so each test starts from a clean environment: every TOLK_* variable the
    test runner inherited is removed in the fixture, and config files are
    written to fresh temporary files that the fixture deletes. The session
    id and language code checks guard Redis key names, so their edges are
    tested here too, without a Redis.
*/
#include "config.h"
#include "session_store.h"

#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

/* Path of the temporary config file of the running test ("" if none). */
static char s_path[256];

/* Remove every TOLK_* variable, so the caller's environment (or a stack
   started by an earlier suite) cannot change what a test sees. */
static void s_clear_env(void)
{
    for (;;) {
        char name[256] = "";
        for (char **e = environ; *e; e++) {
            if (strncmp(*e, "TOLK_", 5) == 0) {
                const char *eq = strchr(*e, '=');
                size_t n = eq ? (size_t)(eq - *e) : strlen(*e);
                if (n < sizeof name) {
                    memcpy(name, *e, n);
                    name[n] = 0;
                    break;
                }
            }
        }
        if (!*name)
            return;
        unsetenv(name);
    }
}

/* Start every test with a clean environment and no config file. */
static void s_setup(void)
{
    s_clear_env();
    s_path[0] = 0;
}

/* Delete the config file the test wrote, and leave no TOLK_* behind. */
static void s_teardown(void)
{
    if (*s_path)
        unlink(s_path);
    s_path[0] = 0;
    s_clear_env();
}

/* Write text to a fresh temporary file and return its path; the fixture
   deletes it. */
static const char *s_write(const char *text)
{
    if (*s_path)
        unlink(s_path);
    const char *dir = getenv("TMPDIR");
    snprintf(s_path, sizeof s_path, "%s/tolk-test-config-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(s_path);
    ck_assert_int_ge(fd, 0);
    size_t len = strlen(text);
    ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
    close(fd);
    return s_path;
}

/* ---------------------------------------------------------------------
   Layers: defaults, file, environment
*/

START_TEST(test_defaults)
{
    tolk_config_t cfg;
    char err[256] = "";
    ck_assert_int_eq(tolk_config_load(&cfg, NULL, err, sizeof err), 0);
    ck_assert_int_eq(cfg.port, 8080);
    ck_assert_int_eq(cfg.redis_port, 6379);
    ck_assert_int_eq(cfg.max_listeners, 500);
    ck_assert_int_eq(cfg.jwt_leeway_s, 60);
    ck_assert_int_eq(cfg.grace_period_s, 60);
    ck_assert_str_eq(cfg.bind_address, "127.0.0.1");
    ck_assert_str_eq(cfg.redis_host, "127.0.0.1");
    ck_assert_str_eq(cfg.jwt_alg, "HS256");
    ck_assert_str_eq(cfg.jwt_secret, "");
    ck_assert_str_eq(cfg.log_level, "info");
    ck_assert_str_eq(cfg.origins, "");
    /* the public URL follows the bind address and port when not set */
    ck_assert_str_eq(cfg.public_url, "http://127.0.0.1:8080");
    ck_assert_str_eq(err, "");
}
END_TEST

/* vosk_url_for picks a language's server; every other language gets
   vosk_url, and a code is matched whole ("e" is not "es"). */
START_TEST(test_vosk_url_per_language)
{
    tolk_config_t cfg;
    char err[256] = "", url[256];
    ck_assert_int_eq(tolk_config_load(&cfg, NULL, err, sizeof err), 0);
    ck_assert_str_eq(cfg.vosk_url, "ws://127.0.0.1:2700");
    ck_assert_int_eq(tolk_config_vosk_url(&cfg, "en", url, sizeof url), 0);
    ck_assert_str_eq(url, "ws://127.0.0.1:2700");
    ck_assert_int_eq(tolk_config_set(&cfg, "vosk_url", "ws://a:2700/en"), 0);
    ck_assert_int_eq(
        tolk_config_set(&cfg, "vosk_url_for", "fr:ws://b:2700, de:ws://c:2701/x ,es:ws://d"), 0);
    tolk_config_vosk_url(&cfg, "fr", url, sizeof url);
    ck_assert_str_eq(url, "ws://b:2700");
    tolk_config_vosk_url(&cfg, "de", url, sizeof url);
    ck_assert_str_eq(url, "ws://c:2701/x");
    tolk_config_vosk_url(&cfg, "es", url, sizeof url);
    ck_assert_str_eq(url, "ws://d");
    tolk_config_vosk_url(&cfg, "en", url, sizeof url);
    ck_assert_str_eq(url, "ws://a:2700/en");
    tolk_config_vosk_url(&cfg, "e", url, sizeof url);
    ck_assert_str_eq(url, "ws://a:2700/en");
    ck_assert_int_eq(tolk_config_vosk_url(&cfg, "fr", url, 5), -1);
}
END_TEST

START_TEST(test_empty_path_means_none)
{
    tolk_config_t cfg;
    char err[256] = "";
    ck_assert_int_eq(tolk_config_load(&cfg, "", err, sizeof err), 0);
    ck_assert_int_eq(cfg.port, 8080);
}
END_TEST

START_TEST(test_file_overrides)
{
    const char *path = s_write("# tolk test config\n"
                               "\n"
                               "port = 9090\n"
                               "redis_port=7000\n"
                               "   max_listeners   =   20   \n"
                               "\t# indented comment\n"
                               "languages = en,de\n"
                               "jwt_secret = s3cret value\n"
                               "bind_address = 0.0.0.0\n");
    tolk_config_t cfg;
    char err[256] = "";
    ck_assert_msg(tolk_config_load(&cfg, path, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(cfg.port, 9090);
    ck_assert_int_eq(cfg.redis_port, 7000);
    ck_assert_int_eq(cfg.max_listeners, 20);
    ck_assert_str_eq(cfg.languages, "en,de");
    ck_assert_str_eq(cfg.jwt_secret, "s3cret value"); /* inner spaces kept */
    /* untouched keys keep their defaults */
    ck_assert_int_eq(cfg.jwt_leeway_s, 60);
    ck_assert_int_eq(cfg.grace_period_s, 60);
    /* a wildcard bind is printed as localhost */
    ck_assert_str_eq(cfg.public_url, "http://localhost:9090");
}
END_TEST

START_TEST(test_file_from_env)
{
    const char *path = s_write("port = 9191\n");
    setenv("TOLK_CONFIG", path, 1);
    tolk_config_t cfg;
    char err[256] = "";
    ck_assert_msg(tolk_config_load(&cfg, NULL, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(cfg.port, 9191);
}
END_TEST

START_TEST(test_env_overrides_file)
{
    const char *path = s_write("port = 9090\nlanguages = en\n");
    setenv("TOLK_PORT", "9999", 1);
    setenv("TOLK_LANGUAGES", "fr,de", 1);
    setenv("TOLK_JWT_LEEWAY_S", "5", 1);
    tolk_config_t cfg;
    char err[256] = "";
    ck_assert_msg(tolk_config_load(&cfg, path, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(cfg.port, 9999);
    ck_assert_str_eq(cfg.languages, "fr,de");
    ck_assert_int_eq(cfg.jwt_leeway_s, 5);
    ck_assert_str_eq(cfg.public_url, "http://127.0.0.1:9999");
}
END_TEST

START_TEST(test_env_bad_int)
{
    static const char *const bad[] = {"80x", "", " ", "0x50", "8080 ", "99999999999", "1e3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("TOLK_PORT", bad[i], 1);
        tolk_config_t cfg;
        char err[256] = "";
        ck_assert_msg(tolk_config_load(&cfg, NULL, err, sizeof err) == -1, "TOLK_PORT=\"%s\"",
                      bad[i]);
        ck_assert_msg(strstr(err, "TOLK_PORT") != NULL, "message: %s", err);
    }
}
END_TEST

START_TEST(test_env_string_too_long)
{
    char big[TOLK_CONFIG_STR + 1];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    setenv("TOLK_PUBLIC_URL", big, 1);
    tolk_config_t cfg;
    char err[256] = "";
    ck_assert_int_eq(tolk_config_load(&cfg, NULL, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "TOLK_PUBLIC_URL"));

    /* one byte shorter fits */
    big[sizeof big - 2] = 0;
    setenv("TOLK_PUBLIC_URL", big, 1);
    ck_assert_int_eq(tolk_config_load(&cfg, NULL, err, sizeof err), 0);
    ck_assert_str_eq(cfg.public_url, big);
}
END_TEST

START_TEST(test_file_unknown_key)
{
    const char *path = s_write("port = 9090\n# fine so far\nno_such_key = 1\nredis_port = 1\n");
    tolk_config_t cfg;
    char err[512] = "";
    ck_assert_int_eq(tolk_config_load(&cfg, path, err, sizeof err), -1);
    ck_assert_msg(strstr(err, ":3:") != NULL, "message: %s", err);
    ck_assert_msg(strstr(err, "no_such_key") != NULL, "message: %s", err);
    ck_assert_msg(strstr(err, path) != NULL, "message: %s", err);
}
END_TEST

START_TEST(test_file_bad_lines)
{
    static const struct {
        const char *text; /* the file */
        const char *line; /* what the message must contain */
    } bad[] = {
        {"port = 9090\njust words\n", ":2:"},     /* no '=' */
        {"port = 90x\n", ":1:"},                  /* not an int */
        {"\n\nport =\n", ":3:"},                  /* empty int */
        {"= 5\n", ":1:"},                         /* no key */
        {"PORT = 1\n", ":1:"},                    /* keys are lower case */
        {"jwt_alg = HS256HS256HS256HS\n", ":1:"}, /* longer than the field */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *path = s_write(bad[i].text);
        tolk_config_t cfg;
        char err[512] = "";
        ck_assert_msg(tolk_config_load(&cfg, path, err, sizeof err) == -1, "accepted: %s",
                      bad[i].text);
        ck_assert_msg(strstr(err, bad[i].line) != NULL, "%s -> %s", bad[i].text, err);
    }
}
END_TEST

START_TEST(test_file_missing)
{
    tolk_config_t cfg;
    char err[512] = "";
    ck_assert_int_eq(tolk_config_load(&cfg, "/nonexistent/tolk.conf", err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/tolk.conf"));
}
END_TEST

/* Regression (config.c, fixed, s_load_file): lines are read with fgets into 2048 bytes,
   so the tail of a longer line is read as a line of its own. A comment of
   2047 bytes followed by "port = 1" on the same line sets port to 1: text
   inside a comment changes the configuration. Either the whole comment is
   ignored or the line is refused as too long; neither sets the key. */
START_TEST(test_long_comment_never_sets_key)
{
    size_t pad = 2046; /* '#' + pad fills the fgets buffer exactly */
    char *text = malloc(1 + pad + 64);
    ck_assert_ptr_nonnull(text);
    text[0] = '#';
    memset(text + 1, 'x', pad);
    strcpy(text + 1 + pad, "port = 1\n");
    const char *path = s_write(text);
    free(text);
    tolk_config_t cfg;
    char err[512] = "";
    int rc = tolk_config_load(&cfg, path, err, sizeof err);
    /* a failed check skips the fixture's teardown: delete the file first */
    unlink(s_path);
    s_path[0] = 0;
    ck_assert_msg(rc != 0 || cfg.port == 8080, "a comment set port to %d", cfg.port);
}
END_TEST

START_TEST(test_set_direct)
{
    tolk_config_t cfg;
    char err[256];
    ck_assert_int_eq(tolk_config_load(&cfg, NULL, err, sizeof err), 0);
    ck_assert_int_eq(tolk_config_set(&cfg, "port", "1"), 0);
    ck_assert_int_eq(cfg.port, 1);
    ck_assert_int_eq(tolk_config_set(&cfg, "port", "2147483647"), 0);
    ck_assert_int_eq(cfg.port, 2147483647);
    ck_assert_int_eq(tolk_config_set(&cfg, "port", "2147483648"), -1);
    ck_assert_int_eq(cfg.port, 2147483647); /* a refused value changes nothing */
    ck_assert_int_eq(tolk_config_set(&cfg, "nope", "1"), -1);
    ck_assert_int_eq(tolk_config_set(&cfg, "", "1"), -1);
    ck_assert_int_eq(tolk_config_set(&cfg, "log_level", ""), 0);
    ck_assert_str_eq(cfg.log_level, "");
    /* a string field holds size - 1 bytes */
    ck_assert_int_eq(tolk_config_set(&cfg, "log_level", "123456789012345"), 0);
    ck_assert_int_eq(tolk_config_set(&cfg, "log_level", "1234567890123456"), -1);
    ck_assert_str_eq(cfg.log_level, "123456789012345");
}
END_TEST

START_TEST(test_print_masks_secret)
{
    tolk_config_t cfg;
    char err[256];
    ck_assert_int_eq(tolk_config_load(&cfg, NULL, err, sizeof err), 0);
    ck_assert_int_eq(tolk_config_set(&cfg, "jwt_secret", "hunter2-do-not-print"), 0);
    char *out = NULL;
    size_t outlen = 0;
    FILE *f = open_memstream(&out, &outlen);
    ck_assert_ptr_nonnull(f);
    tolk_config_print(&cfg, f);
    fclose(f);
    ck_assert_ptr_null(strstr(out, "hunter2"));
    ck_assert_ptr_nonnull(strstr(out, "(set)"));
    ck_assert_ptr_nonnull(strstr(out, "8080"));
    free(out);
}
END_TEST

/* ---------------------------------------------------------------------
   Supported languages
*/

START_TEST(test_language_supported)
{
    tolk_config_t cfg;
    char err[256];
    ck_assert_int_eq(tolk_config_load(&cfg, NULL, err, sizeof err), 0);
    ck_assert_int_eq(tolk_config_set(&cfg, "languages", "en,es,ro"), 0);
    ck_assert(tolk_config_language_supported(&cfg, "en")); /* first */
    ck_assert(tolk_config_language_supported(&cfg, "es")); /* middle */
    ck_assert(tolk_config_language_supported(&cfg, "ro")); /* last */
    ck_assert(!tolk_config_language_supported(&cfg, "e"));
    ck_assert(!tolk_config_language_supported(&cfg, "r"));
    ck_assert(!tolk_config_language_supported(&cfg, "o"));
    ck_assert(!tolk_config_language_supported(&cfg, "n,"));
    ck_assert(!tolk_config_language_supported(&cfg, "en,es"));
    ck_assert(!tolk_config_language_supported(&cfg, "en,"));
    ck_assert(!tolk_config_language_supported(&cfg, ",es"));
    ck_assert(!tolk_config_language_supported(&cfg, "en,es,ro"));
    ck_assert(!tolk_config_language_supported(&cfg, "esp"));
    ck_assert(!tolk_config_language_supported(&cfg, "EN"));
    ck_assert(!tolk_config_language_supported(&cfg, ""));
    ck_assert(!tolk_config_language_supported(&cfg, ","));
    ck_assert(!tolk_config_language_supported(&cfg, "fr"));

    /* the default list */
    ck_assert_int_eq(tolk_config_load(&cfg, NULL, err, sizeof err), 0);
    ck_assert(tolk_config_language_supported(&cfg, "en"));
    ck_assert(tolk_config_language_supported(&cfg, "es"));
    ck_assert(tolk_config_language_supported(&cfg, "ro"));
    ck_assert(!tolk_config_language_supported(&cfg, "de"));

    /* an empty list supports nothing, even the empty string */
    ck_assert_int_eq(tolk_config_set(&cfg, "languages", ""), 0);
    ck_assert(!tolk_config_language_supported(&cfg, "en"));
    ck_assert(!tolk_config_language_supported(&cfg, ""));

    /* a one-entry list, and empty entries */
    ck_assert_int_eq(tolk_config_set(&cfg, "languages", "es"), 0);
    ck_assert(tolk_config_language_supported(&cfg, "es"));
    ck_assert(!tolk_config_language_supported(&cfg, "e"));
    ck_assert_int_eq(tolk_config_set(&cfg, "languages", ",en,,es,"), 0);
    ck_assert(tolk_config_language_supported(&cfg, "en"));
    ck_assert(tolk_config_language_supported(&cfg, "es"));
    ck_assert(!tolk_config_language_supported(&cfg, ""));
}
END_TEST

/* ---------------------------------------------------------------------
   Session ids and language codes (session_store.c)
*/

START_TEST(test_session_id_valid)
{
    ck_assert(tolk_session_id_valid("golden-eagle-427-913"));
    ck_assert(tolk_session_id_valid("golden-eagle-427")); /* made before 0.2 */
    ck_assert(tolk_session_id_valid("a-b-000"));
    ck_assert(tolk_session_id_valid("quiet-river-999"));

    static const char *const bad[] = {
        "Golden-eagle-427",
        "golden-Eagle-427",
        "golden-eagle-42",
        "golden-eagle-4270",
        "golden--427",
        "-eagle-427",
        "",
        "golden-eagle-",
        "golden-eagle",
        "golden-eagle-42a",
        "golden_eagle-427",
        "golden-eagle-427 ",
        " golden-eagle-427",
        "golden-eagle-427-1",
        "golden-eagle-427-9130",
        "golden-eagle-427-",
        "golden-eagle-427-91a",
        "golden-eagle-427913",
        "golden-eagle427",
        "golden-eagle--427",
        "g0lden-eagle-427",
        "golden-eagle-+427",
        "a-b-12",
        "caf\xc3\xa9-eagle-427",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(!tolk_session_id_valid(bad[i]), "accepted \"%s\"", bad[i]);

    /* the longest accepted id is TOLK_ID_MAX bytes; one more is refused */
    char id[TOLK_ID_MAX + 2];
    size_t first = TOLK_ID_MAX - 8; /* "<first>-ab-123" */
    memset(id, 'a', first);
    strcpy(id + first, "-ab-123");
    ck_assert_uint_eq(strlen(id), TOLK_ID_MAX - 1);
    ck_assert(tolk_session_id_valid(id));
    memset(id, 'a', first + 1);
    strcpy(id + first + 1, "-ab-123");
    ck_assert_uint_eq(strlen(id), TOLK_ID_MAX);
    ck_assert(tolk_session_id_valid(id));
    memset(id, 'a', first + 2);
    strcpy(id + first + 2, "-ab-123");
    ck_assert_uint_eq(strlen(id), TOLK_ID_MAX + 1);
    ck_assert(!tolk_session_id_valid(id));

    char huge[300];
    memset(huge, 'a', 290);
    strcpy(huge + 290, "-b-123");
    ck_assert(!tolk_session_id_valid(huge));
}
END_TEST

START_TEST(test_language_code_valid)
{
    ck_assert(tolk_language_code_valid("en"));
    ck_assert(tolk_language_code_valid("es"));
    ck_assert(tolk_language_code_valid("zz"));
    ck_assert(tolk_language_code_valid("aa"));
    static const char *const bad[] = {"",   "e",  "EN",        "En",   "eN",    "esp", "e1",
                                      "1e", "e-", "e ",        " e",   "en-US", "`a",  "a{",
                                      "{a", "a`", "\xc3\xa9n", "es\n", "zh_CN"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(!tolk_language_code_valid(bad[i]), "accepted \"%s\"", bad[i]);
    ck_assert(!tolk_language_code_valid(NULL));
}
END_TEST

/* ---------------------------------------------------------------------
   Suite
*/

/* Every test case, grouped as above. */
static Suite *s_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("layers");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_vosk_url_per_language);
    tcase_add_test(tc, test_empty_path_means_none);
    tcase_add_test(tc, test_file_overrides);
    tcase_add_test(tc, test_file_from_env);
    tcase_add_test(tc, test_env_overrides_file);
    tcase_add_test(tc, test_env_bad_int);
    tcase_add_test(tc, test_env_string_too_long);
    tcase_add_test(tc, test_file_unknown_key);
    tcase_add_test(tc, test_file_bad_lines);
    tcase_add_test(tc, test_file_missing);
    tcase_add_test(tc, test_long_comment_never_sets_key);
    tcase_add_test(tc, test_set_direct);
    tcase_add_test(tc, test_print_masks_secret);
    suite_add_tcase(s, tc);

    tc = tcase_create("languages");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, test_language_supported);
    suite_add_tcase(s, tc);

    tc = tcase_create("ids");
    tcase_add_test(tc, test_session_id_valid);
    tcase_add_test(tc, test_language_code_valid);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(s_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
