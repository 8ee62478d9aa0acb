/*  itest_cli.c -- the command-line speaker and listener, used as a new user
    would: tolk-speak streams a recording in the form phones and editors
    write (44.1 kHz stereo FLAC), tolk-listen prints the captions, both
    against a whole system (Redis, a gateway, a control worker, the audio
    worker, APy).

    The system closes connections idle for 4 s (idle_timeout_s) so that the
    listener's heartbeat is tested in seconds, not minutes: a listener that
    keeps receiving captions must still send heartbeats by the clock, or the
    gateway closes it with connectionTimeout and 4408 while the talk goes
    on. Before tolk-listen sent one every --heartbeat seconds it sent one
    only after 30 s without a message, so every CLI listener of a busy talk
    was gone after idle_timeout_s.
*/
#include "harness.h"
#include "itest_client.h"
#include "wer.h"

#include <check.h>
#include <jansson.h>
#include <samplerate.h>
#include <signal.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SECRET   "cli-test-secret-0123456789abcdef"
#define NFILES   3
#define RATE     44100
#define PAUSE_MS 1000 /* quiet after each file: the endpointer ends the utterance */

static const char *s_files[NFILES] = {"sense_and_sensibility_01_austen_64kb-0870",
                                      "sense_and_sensibility_01_austen_64kb-0880",
                                      "sense_and_sensibility_01_austen_64kb-0890"};
static harness_t *s_h;

static void s_setup(void)
{
    harness_opts_t opts = {.gateways = 1,
                           .control_workers = 1,
                           .status_workers = HARNESS_NONE,
                           .extra_env = {"TOLK_JWT_SECRET=" SECRET, "TOLK_JWT_ISSUER=",
                                         "TOLK_JWT_AUDIENCE=", "TOLK_IDLE_TIMEOUT_S=4", NULL}};
    s_h = harness_start(&opts);
    ck_assert_msg(s_h != NULL, "the system did not start");
}

static void s_teardown(void)
{
    ck_assert_int_eq(harness_stop(&s_h), 0);
}

/* The recordings with a pause after each, as a 44.1 kHz stereo FLAC at
   path (both channels the same speech); returns its length in seconds. */
static double s_write_flac(const char *path)
{
    size_t total = 0;
    float *mono = NULL;
    for (int f = 0; f < NFILES; f++) {
        size_t len;
        uint8_t *pcm = ic_librivox(s_files[f], &len);
        size_t n = len / 2, pause = (size_t)PAUSE_MS * 16;
        mono = realloc(mono, (total + n + pause) * sizeof *mono);
        ck_assert_ptr_nonnull(mono);
        for (size_t i = 0; i < n; i++)
            mono[total + i] = (float)((int16_t)(pcm[2 * i] | pcm[2 * i + 1] << 8)) / 32768.0f;
        for (size_t i = 0; i < pause; i++) /* room tone: the file's first 100 ms again */
            mono[total + n + i] = mono[total + i % 1600];
        total += n + pause;
        free(pcm);
    }
    double ratio = (double)RATE / 16000;
    size_t out_n = (size_t)((double)total * ratio) + 16;
    float *up = malloc(out_n * sizeof *up), *stereo = malloc(out_n * 2 * sizeof *stereo);
    ck_assert(up && stereo);
    SRC_DATA d = {.data_in = mono,
                  .data_out = up,
                  .input_frames = (long)total,
                  .output_frames = (long)out_n,
                  .src_ratio = ratio};
    ck_assert_int_eq(src_simple(&d, SRC_SINC_FASTEST, 1), 0);
    for (long i = 0; i < d.output_frames_gen; i++)
        stereo[2 * i] = stereo[2 * i + 1] = up[i];
    SF_INFO info = {.samplerate = RATE, .channels = 2, .format = SF_FORMAT_FLAC | SF_FORMAT_PCM_16};
    SNDFILE *f = sf_open(path, SFM_WRITE, &info);
    ck_assert_msg(f != NULL, "cannot write %s: %s", path, sf_strerror(NULL));
    ck_assert_int_eq(sf_writef_float(f, stereo, d.output_frames_gen), d.output_frames_gen);
    sf_close(f);
    free(mono);
    free(up);
    free(stereo);
    return (double)total / 16000;
}

/* Every line of p, parsed, until it ends; returns its exit status. */
static int s_read_all(FILE *p, json_t *lines)
{
    char buf[65536];
    while (fgets(buf, sizeof buf, p)) {
        json_t *j = json_loads(buf, 0, NULL);
        ck_assert_msg(j != NULL, "not a JSON line: %s", buf);
        json_array_append_new(lines, j);
    }
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

START_TEST(test_speak_a_flac_and_listen_past_the_idle_timeout)
{
    char flac[1024];
    snprintf(flac, sizeof flac, "%s/talk.flac", harness_dir(s_h));
    double seconds = s_write_flac(flac);
    ck_assert_double_gt(seconds, 3 * 4.0); /* longer than three idle timeouts */
    char *token = harness_token(s_h, "cli-speaker", 3600);
    ck_assert_ptr_nonnull(token);
    char args[4096];
    snprintf(args, sizeof args, "tolk-speak %s --json --linger 2 --token %s", flac, token);
    free(token);
    FILE *spk = ic_tool(s_h, NULL, args);
    char first[4096];
    ck_assert_ptr_nonnull(fgets(first, sizeof first, spk));
    json_t *created = ic_json(strdup(first));
    ck_assert_str_eq(ic_get(created, "type"), "sessionCreated");
    snprintf(args, sizeof args, "tolk-listen --session %s --lang en --json --heartbeat 1",
             ic_get(created, "sessionId"));
    json_decref(created);
    FILE *lst = ic_tool(s_h, NULL, args);
    json_t *spoken = json_array(), *heard = json_array();
    ck_assert_int_eq(s_read_all(spk, spoken), 0);
    /* the speaker's clean close ends the session: the listener stops by itself */
    ck_assert_int_eq(s_read_all(lst, heard), 0);
    size_t i;
    json_t *m;
    char hyp[8192] = "";
    int finals = 0, partials = 0;
    json_array_foreach(heard, i, m)
    {
        const char *type = ic_get(m, "type");
        ck_assert_msg(strcmp(type, "connectionTimeout") != 0 && strcmp(type, "error") != 0,
                      "the listener got %s", type);
        if (strcmp(type, "caption") != 0)
            continue;
        if (json_is_true(json_object_get(m, "isPartial"))) {
            partials++;
            continue;
        }
        finals++;
        printf("itest_cli: final #%lld %s\n", ic_int(m, "seq"), ic_get(m, "text"));
        strncat(hyp, ic_get(m, "text"), sizeof hyp - strlen(hyp) - 2);
        strcat(hyp, " ");
    }
    ck_assert_str_eq(ic_get(json_array_get(heard, json_array_size(heard) - 1), "type"),
                     "sessionEnded");
    char ref[8192] = "";
    for (int f = 0; f < NFILES; f++) {
        char *r = wer_reference(WER_LIBRIVOX_DIR, s_files[f]);
        ck_assert_ptr_nonnull(r);
        strcat(ref, r);
        strcat(ref, " ");
        free(r);
    }
    size_t words, errors = wer_errors(ref, hyp, &words);
    printf("itest_cli: %.1f s of 44.1 kHz stereo FLAC; the listener got %d finals, %d partials, "
           "WER %.1f %% (%zu/%zu)\n",
           seconds, finals, partials, 100.0 * errors / words, errors, words);
    fflush(stdout);
    /* pocketsphinx's error rate on these files is about a third; a rate
       conversion gone wrong (pitch, speed, one channel) makes it nonsense */
    /* finals came on after the idle timeout: three recordings, two
       utterances at least (the endpointer may join two across a pause) */
    ck_assert_int_ge(finals, NFILES - 1);
    ck_assert_msg(errors * 100 <= words * 50, "WER %.1f %%", 100.0 * errors / words);
    json_decref(spoken);
    json_decref(heard);
}
END_TEST

START_TEST(test_speak_refuses_what_is_not_audio)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/notes.txt", harness_dir(s_h));
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("these are my speaker notes, not a recording\n", f);
    fclose(f);
    char args[2048];
    snprintf(args, sizeof args, "tolk-speak %s --json 2>&1", path);
    FILE *p = ic_tool(s_h, NULL, args);
    char out[4096] = "";
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    int st = pclose(p);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    ck_assert_msg(strstr(out, "not an audio file libsndfile reads") != NULL, "said: %s", out);
    /* no session was made */
    ck_assert_int_eq(ic_redis_int(s_h, "ZCARD tolk:sessions"), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("tools");
    tcase_set_timeout(tc, 180);
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, test_speak_a_flac_and_listen_past_the_idle_timeout);
    tcase_add_test(tc, test_speak_refuses_what_is_not_audio);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
