/*  test_arpabet.c -- espeak-ng's IPA mapped to the en-us model's phones
    (audio_worker/arpabet.c), and the whole path a vocabulary word the
    dictionary lacks takes: tolk_speech_ipa (real espeak-ng) then the map.
    Names of the LibriVox recordings get what cmudict has for them
    ("Dashwood" D AE SH W UH D), "ZeroMQ" a sensible spelling-out, and
    every phone produced is one the model knows. Forks (CK_FORK): espeak-ng
    starts once per process.
*/
#include "../../audio_worker/arpabet.h" /* the Makefile has no -Iaudio_worker */
#include "../../audio_worker/speech.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The phones of cmudict-en-us (the en-us model's phone set). */
static const char *s_phones[] = {"AA", "AE", "AH", "AO", "AW", "AY", "B",  "CH", "D",  "DH",
                                 "EH", "ER", "EY", "F",  "G",  "HH", "IH", "IY", "JH", "K",
                                 "L",  "M",  "N",  "NG", "OW", "OY", "P",  "R",  "S",  "SH",
                                 "T",  "TH", "UH", "UW", "V",  "W",  "Y",  "Z",  "ZH"};

/* Is every space-separated phone of text one of the model's? */
static bool s_all_known(const char *text)
{
    char copy[512];
    snprintf(copy, sizeof copy, "%s", text);
    for (char *save = NULL, *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        bool found = false;
        for (size_t i = 0; i < sizeof s_phones / sizeof *s_phones && !found; i++)
            found = strcmp(t, s_phones[i]) == 0;
        if (!found)
            return false;
    }
    return true;
}

/* ipa mapped, compared with want. */
static void s_map(const char *ipa, const char *want)
{
    char out[256];
    int n = tolk_arpabet_from_ipa(ipa, out, sizeof out);
    ck_assert_msg(n > 0, "%s not mapped", ipa);
    ck_assert_str_eq(out, want);
}

START_TEST(test_table)
{
    /* espeak-ng 1.51's en-us IPA of words whose cmudict entry we know */
    s_map("dˈæʃwʊd", "D AE SH W UH D");
    s_map("nˈoːɹlənd", "N AO R L AH N D");
    s_map("tʃˈɜːtʃ", "CH ER CH");
    s_map("dʒˈʌdʒ", "JH AH JH");
    s_map("θˈɔːt", "TH AO T");
    s_map("mˈɛʒɚ", "M EH ZH ER");
    s_map("sˈɪŋ", "S IH NG");
    s_map("wˈɔːɾɚ", "W AO T ER");
    s_map("bˈʌʔn̩", "B AH T AH N");
    s_map("ˈɔɪl", "OY L");
    s_map("ˈaʊt", "AW T");
    s_map("sˈeɪ", "S EY");
    s_map("ɡˈoʊ", "G OW");
    s_map("aɪdˈiə", "AY D IY AH");
    s_map("ɐbˈaʊt", "AH B AW T");
    s_map("ᵻlˈɪnɚ", "IH L IH N ER");
    s_map("zˈiəɹoʊ ˌɛmkjˈuː", "Z IH R OW EH M K Y UW");
    /* what cannot be mapped gives no word rather than a wrong one */
    char out[64];
    ck_assert_int_eq(tolk_arpabet_from_ipa("", out, sizeof out), -1);
    ck_assert_int_eq(tolk_arpabet_from_ipa("ˈˌ", out, sizeof out), -1);
    ck_assert_int_eq(tolk_arpabet_from_ipa("d\xc7\x80x", out, sizeof out), -1); /* a click */
    ck_assert_int_eq(tolk_arpabet_from_ipa("dˈæʃwʊd", out, 8), -1);             /* no room */
    ck_assert_int_eq(tolk_arpabet_from_ipa(NULL, out, sizeof out), -1);
}
END_TEST

START_TEST(test_espeak_words)
{
    tolk_speech_t *sp = tolk_speech_new(NULL);
    ck_assert_ptr_nonnull(sp);
    static const char *cases[][2] = {
        {"Dashwood", "D AE SH W UH D"}, /* cmudict: D AE SH W UH D */
        {"Norland", "N AO R L AH N D"}, /* cmudict: N AO R L AH N D */
        {"Jennings", "JH EH N IH NG Z"},
        {"ZeroMQ", "Z IH R OW EH M K Y UW"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char ipa[256], phones[256];
        ck_assert_int_eq(tolk_speech_ipa(sp, cases[i][0], ipa, sizeof ipa), 0);
        ck_assert_int_gt(tolk_arpabet_from_ipa(ipa, phones, sizeof phones), 0);
        ck_assert_msg(strcmp(phones, cases[i][1]) == 0, "%s: %s (%s), want %s", cases[i][0], phones,
                      ipa, cases[i][1]);
    }
    /* names and terms of all kinds come out in the model's phones */
    static const char *words[] = {"Willoughby", "Marianne",   "Ferrars",       "Elinor",
                                  "Brandon",    "Kubernetes", "libwebsockets", "Dvořák",
                                  "C++",        "Nguyen",     "Tchaikovsky",   "Ljubljana"};
    for (size_t i = 0; i < sizeof words / sizeof *words; i++) {
        char ipa[256], phones[256];
        ck_assert_int_eq(tolk_speech_ipa(sp, words[i], ipa, sizeof ipa), 0);
        int n = tolk_arpabet_from_ipa(ipa, phones, sizeof phones);
        ck_assert_msg(n > 0, "%s: IPA %s not mapped", words[i], ipa);
        ck_assert_msg(s_all_known(phones), "%s: %s", words[i], phones);
        printf("%-14s %-26s %s\n", words[i], ipa, phones);
    }
    char ipa[16];
    ck_assert_int_eq(tolk_speech_ipa(sp, "", ipa, sizeof ipa), -1);
    ck_assert_int_eq(tolk_speech_ipa(sp, "Dashwood Dashwood Dashwood", ipa, sizeof ipa), -1);
    tolk_speech_destroy(&sp);
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("arpabet");
    TCase *tc = tcase_create("arpabet");
    tcase_add_test(tc, test_table);
    tcase_add_test(tc, test_espeak_words);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(s_suite());
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
