/*  harness.c -- start and stop one whole tolk system for an integration test.

    The system is exactly what `make run` starts: tools/tolk-stack writes the
    configs, supervisord runs them. Everything a child needs (ports, counts,
    overrides) is put into the child's environment between fork and exec,
    so the test process's environment never changes and a forked Check test
    can use the harness its parent started.

    supervisord runs in its own process group with PR_SET_PDEATHSIG, so if
    the test process dies (a Check timeout kills it with SIGKILL) supervisord
    still gets SIGTERM and stops the system instead of leaking it.
*/
#include "harness.h"
#include "wsclient.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define S_READY_TIMEOUT_MS 20000 /* how long harness_start waits for /readyz */
#define S_STOP_TIMEOUT_MS  20000 /* how long harness_stop waits for supervisord */
#define S_MAX_ENV          40    /* environment entries for the children */
#define S_LOG_TAIL_LINES   40    /* lines of each log printed when start fails */
#define S_REPORT_CONTEXT   30    /* lines printed after a sanitizer report line */
#define S_OUTPUT_MAX       8192  /* captured stdout of a helper program */

/* One running system. */
struct _harness_t {
    char top[1024];       /* repository root: tools/tolk-stack lives there */
    char bin[PATH_MAX];   /* directory of the tolk binaries in use */
    char dir[1280];       /* private directory: configs, logs/, redis/ */
    char conf[PATH_MAX];  /* DIR/supervisord.conf */
    int gateways;         /* gateways started */
    int base_port;        /* gateway i listens on base_port + i */
    int redis_port;       /* the system's Redis */
    int apy_port;         /* the system's Apertium APy (127.0.0.1) */
    char *env[S_MAX_ENV]; /* "K=V" to set, or "K" to unset, in every child */
    int nenv;             /* entries used in env */
    pid_t supervisord;    /* supervisord's pid, also its process group; 0 once gone */
    pid_t owner;          /* process that forked supervisord: only it may reap it */
    redisContext *redis;  /* connection handed out by harness_redis */
    pid_t redis_owner;    /* process that opened it: a forked test needs its own */
    int want_workers[3];  /* control, status, audio workers every gateway must see live */
    bool tls;             /* TOLK_TLS_CERT_FILE set: the gateways speak HTTPS */
};

/* libcurl's write callback: into a bounded buffer. */
static size_t s_collect_body(char *data, size_t size, size_t n, void *userp)
{
    char *body = userp;
    size_t have = strlen(body), add = size * n;
    if (have + add > 511)
        add = 511 - have;
    memcpy(body + have, data, add);
    body[have + add] = 0;
    return size * n;
}

/* GET path of gateway port over HTTPS (any certificate: the tests make
   their own); the status, 0 when there was no answer. */
static int s_https_get(int port, const char *path, char body[512], int timeout_ms)
{
    char url[256];
    snprintf(url, sizeof url, "https://127.0.0.1:%d%s", port, path);
    CURL *e = curl_easy_init();
    if (!e)
        return 0;
    body[0] = 0;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, s_collect_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, body);
    long status = 0;
    if (curl_easy_perform(e) == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(e);
    return (int)status;
}

/* Does every worker kind have at least the started count live, by the
   gateway's /readyz body? A gateway sees a worker only once that worker
   has linked to it, so this is also "every worker reaches every gateway":
   without it a test could start while one worker still knows only some of
   the gateways, and its notifications would miss the others. */
static bool s_workers_seen(const harness_t *h, const char *body)
{
    static const char *kinds[3] = {"\"control\":", "\"status\":", "\"audio\":"};
    for (int k = 0; k < 3; k++) {
        const char *p = strstr(body, kinds[k]);
        if (h->want_workers[k] > 0 && (!p || atoi(p + strlen(kinds[k])) < h->want_workers[k]))
            return false;
    }
    return true;
}

/* Log patterns that mean a program hit a bug; a match fails harness_stop. */
static const char *s_bad_patterns[] = {
    "ERROR: AddressSanitizer", "runtime error:",        "LeakSanitizer",
    "terminated by SIGSEGV",   "terminated by SIGABRT", "terminated by SIGBUS",
    "terminated by SIGFPE",    "terminated by SIGILL",
};

/* Monotonic clock in ms, for deadlines. */
static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleep for ms milliseconds (restarting after signals). */
static void s_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* True when path names an existing file (any kind). */
static bool s_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Find the repository root: $TOLK_TOP, else the nearest ancestor of the
   executable (then of the working directory) holding tools/tolk-stack. */
static int s_find_top(char *top, size_t toplen)
{
    char path[PATH_MAX], probe[PATH_MAX + 32];
    const char *env = getenv("TOLK_TOP");
    if (env && *env) {
        if (!realpath(env, path)) {
            fprintf(stderr, "harness: TOLK_TOP=%s: %s\n", env, strerror(errno));
            return -1;
        }
        if (strlen(path) >= toplen) {
            fprintf(stderr, "harness: TOLK_TOP=%s is too long\n", env);
            return -1;
        }
        snprintf(top, toplen, "%s", path);
        return 0;
    }
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0) {
            ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
            if (n <= 0)
                continue;
            path[n] = 0;
        } else if (!getcwd(path, sizeof path - 16))
            continue;
        else
            strcat(path, "/.");
        char *slash;
        while ((slash = strrchr(path, '/')) != NULL) {
            *slash = 0;
            snprintf(probe, sizeof probe, "%s/tools/tolk-stack", *path ? path : "");
            if (access(probe, X_OK) == 0 && strlen(path) < toplen) {
                snprintf(top, toplen, "%s", *path ? path : "/");
                return 0;
            }
        }
    }
    fprintf(stderr, "harness: cannot find the repository root; set TOLK_TOP\n");
    return -1;
}

/* A random 32-bit number, so parallel test binaries pick different ports. */
static uint32_t s_random32(void)
{
    uint32_t v;
    if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v)
        v = (uint32_t)getpid() * 2654435761u ^ (uint32_t)s_now_ms();
    return v;
}

/* True when a server could bind 127.0.0.1:port now (SO_REUSEADDR, as the
   servers use it, so a port in TIME_WAIT still counts as free). */
static bool s_port_free(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

int harness_free_ports(int count)
{
    if (count < 1 || count > 1000)
        return -1;
    int eph_lo = 32768, eph_hi = 60999;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        if (fscanf(f, "%d %d", &eph_lo, &eph_hi) != 2) {
            eph_lo = 32768;
            eph_hi = 60999;
        }
        fclose(f);
    }
    /* Candidate ranges: from 10000 up to the ephemeral range, and above it. */
    int lo[2] = {10000, eph_hi + 1}, hi[2] = {eph_lo - 1, 65535};
    int span[2], total = 0;
    for (int r = 0; r < 2; r++) {
        span[r] = hi[r] - lo[r] + 1 - (count - 1);
        if (span[r] < 0)
            span[r] = 0;
        total += span[r];
    }
    if (total == 0)
        return -1;
    for (int attempt = 0; attempt < 500; attempt++) {
        int pick = (int)(s_random32() % (uint32_t)total);
        int base = pick < span[0] ? lo[0] + pick : lo[1] + pick - span[0];
        int i = 0;
        while (i < count && s_port_free(base + i))
            i++;
        if (i == count)
            return base;
    }
    return -1;
}

/* Add one child environment entry ("K=V" sets, "K" unsets). Returns 0 or -1. */
static int s_env_add(harness_t *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int s_env_add(harness_t *h, const char *fmt, ...)
{
    if (h->nenv >= S_MAX_ENV)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&h->env[h->nenv], fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    h->nenv++;
    return 0;
}

/* Set a worker count for tolk-stack: 0 leaves its default, HARNESS_NONE none. */
static int s_env_count(harness_t *h, const char *key, int n)
{
    if (n == 0)
        return s_env_add(h, "%s", key);
    return s_env_add(h, "%s=%d", key, n < 0 ? 0 : n);
}

/* In a freshly forked child: apply the system's environment (plus extra,
   may be NULL), clean signal state, and move to the repository root. */
static void s_child_setup(harness_t *h, const char *extra)
{
    for (int i = 0; i < h->nenv; i++) {
        char *eq = strchr(h->env[i], '=');
        if (!eq)
            unsetenv(h->env[i]);
        else {
            *eq = 0;
            setenv(h->env[i], eq + 1, 1);
            *eq = '=';
        }
    }
    if (extra) {
        char *copy = strdup(extra);
        char *eq = copy ? strchr(copy, '=') : NULL;
        if (eq) {
            *eq = 0;
            setenv(copy, eq + 1, 1);
        }
        free(copy);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    int sigs[] = {SIGPIPE, SIGTERM, SIGINT, SIGCHLD, SIGALRM, SIGHUP};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
        signal(sigs[i], SIG_DFL);
    if (chdir(h->top) != 0)
        _exit(127);
}

/* Run argv as a child with the system's environment (plus extra), stdout to
   out_fd (-1: inherit) or captured into cap (when not NULL). Waits for it.
   Returns its exit status, or -1 when it could not run or was killed. */
static int s_run(harness_t *h, char *const argv[], const char *extra, int out_fd, char *cap,
                 size_t caplen)
{
    int pfd[2] = {-1, -1};
    if (cap && pipe2(pfd, O_CLOEXEC) != 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        if (cap) {
            close(pfd[0]);
            close(pfd[1]);
        }
        return -1;
    }
    if (pid == 0) {
        s_child_setup(h, extra);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, STDIN_FILENO);
        if (cap)
            dup2(pfd[1], STDOUT_FILENO);
        else if (out_fd >= 0)
            dup2(out_fd, STDOUT_FILENO);
        execvp(argv[0], argv);
        fprintf(stderr, "harness: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    if (cap) {
        close(pfd[1]);
        size_t used = 0;
        for (;;) {
            char tmp[1024];
            ssize_t n = read(pfd[0], tmp, sizeof tmp);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            size_t take = (size_t)n < caplen - 1 - used ? (size_t)n : caplen - 1 - used;
            memcpy(cap + used, tmp, take);
            used += take;
        }
        cap[used] = 0;
        close(pfd[0]);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* True once supervisord has exited. The process that forked it reaps it;
   any other (a forked Check test) looks at /proc, where an unreaped
   supervisord shows as a zombie. */
static bool s_exited(harness_t *h)
{
    if (h->supervisord <= 0)
        return true;
    if (h->owner == getpid()) {
        int st;
        pid_t r = waitpid(h->supervisord, &st, WNOHANG);
        if (r == h->supervisord)
            return true;
        if (r == 0)
            return false;
        if (errno != ECHILD)
            return false;
    }
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)h->supervisord);
    FILE *f = fopen(path, "r");
    if (!f)
        return true;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *rp = strrchr(buf, ')');
    return !rp || rp[1] == 0 || rp[2] == 'Z' || rp[2] == 'X';
}

/* SIGKILL every child of supervisord and its process group: supervisord
   gives each program a group of its own, so killing supervisord's group
   alone would leave them running. */
static void s_kill_children(pid_t parent)
{
    DIR *d = opendir("/proc");
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0)
            continue;
        char path[64], buf[512];
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        char *rp = strrchr(buf, ')');
        int ppid = 0;
        if (rp && sscanf(rp + 1, " %*c %d", &ppid) == 1 && ppid == parent) {
            kill(-(pid_t)pid, SIGKILL);
            kill((pid_t)pid, SIGKILL);
        }
    }
    closedir(d);
}

/* Stop supervisord (SIGTERM, then SIGKILL after the limit). Returns 0 when
   it stopped by itself, 1 when it had to be killed. */
static int s_stop_supervisord(harness_t *h)
{
    if (h->supervisord <= 0)
        return 0;
    int killed = 0;
    kill(h->supervisord, SIGTERM);
    int64_t deadline = s_now_ms() + S_STOP_TIMEOUT_MS;
    while (!s_exited(h) && s_now_ms() < deadline)
        s_sleep_ms(50);
    if (!s_exited(h)) {
        fprintf(stderr, "harness: supervisord did not stop within %d s, killing the system\n",
                S_STOP_TIMEOUT_MS / 1000);
        s_kill_children(h->supervisord);
        kill(-h->supervisord, SIGKILL);
        kill(h->supervisord, SIGKILL);
        deadline = s_now_ms() + 2000;
        while (!s_exited(h) && s_now_ms() < deadline)
            s_sleep_ms(20);
        killed = 1;
    }
    h->supervisord = 0;
    return killed;
}

/* Print the last lines of every log, so a failed start explains itself. */
static void s_print_logs(harness_t *h)
{
    char pattern[PATH_MAX + 16];
    snprintf(pattern, sizeof pattern, "%s/logs/*.log", h->dir);
    glob_t g;
    if (glob(pattern, 0, NULL, &g) != 0)
        return;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        FILE *f = fopen(g.gl_pathv[i], "r");
        if (!f)
            continue;
        /* Read the last 16 KB at most, then print its last lines. */
        char buf[16384 + 1];
        fseek(f, 0, SEEK_END);
        long size = ftell(f);
        long from = size > 16384 ? size - 16384 : 0;
        fseek(f, from, SEEK_SET);
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        const char *start = buf + n;
        int lines = 0;
        while (start > buf && lines <= S_LOG_TAIL_LINES)
            if (*--start == '\n' && start + 1 < buf + n)
                lines++;
        if (lines > S_LOG_TAIL_LINES)
            start++;
        fprintf(stderr, "---- %s ----\n%s%s", g.gl_pathv[i], start,
                n && buf[n - 1] != '\n' ? "\n" : "");
    }
    globfree(&g);
}

/* Scan every .log file in DIR/logs for sanitizer reports and crashes; print each with some
   context. Returns the number of matching lines. */
static int s_scan_logs(harness_t *h)
{
    char pattern[PATH_MAX + 16];
    snprintf(pattern, sizeof pattern, "%s/logs/*.log", h->dir);
    glob_t g;
    if (glob(pattern, 0, NULL, &g) != 0)
        return 0;
    int found = 0;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        FILE *f = fopen(g.gl_pathv[i], "r");
        if (!f)
            continue;
        char *line = NULL;
        size_t cap = 0;
        int context = 0;
        while (getline(&line, &cap, f) > 0) {
            bool bad = false;
            for (size_t p = 0; p < sizeof s_bad_patterns / sizeof *s_bad_patterns; p++)
                bad = bad || strstr(line, s_bad_patterns[p]) != NULL;
            if (bad) {
                if (found == 0)
                    fprintf(stderr, "harness: sanitizer reports or crashes in %s/logs:\n", h->dir);
                found++;
                fprintf(stderr, "%s: %s", strrchr(g.gl_pathv[i], '/') + 1, line);
                context = S_REPORT_CONTEXT;
            } else if (context > 0) {
                fprintf(stderr, "    %s", line);
                context--;
            }
        }
        free(line);
        fclose(f);
    }
    globfree(&g);
    return found;
}

/* nftw callback removing each entry, deepest first. */
static int s_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* Free the harness and everything it holds (the system must be stopped). */
static void s_free(harness_t *h)
{
    if (h->redis)
        redisFree(h->redis);
    for (int i = 0; i < h->nenv; i++)
        free(h->env[i]);
    free(h);
}

/* Make DIR: tests/tmp/<program>-<pid>, with a suffix if a previous system
   of this process left one behind. Returns 0 or -1. */
static int s_make_dir(harness_t *h)
{
    char name[64];
    snprintf(name, sizeof name, "%s", program_invocation_short_name);
    for (char *p = name; *p; p++)
        if (!(*p == '-' || *p == '_' || *p == '.' || (*p >= '0' && *p <= '9') ||
              (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
            *p = '_';
    char tmp[sizeof h->top + 16];
    snprintf(tmp, sizeof tmp, "%s/tests", h->top);
    mkdir(tmp, 0755);
    snprintf(tmp, sizeof tmp, "%s/tests/tmp", h->top);
    mkdir(tmp, 0755);
    for (int n = 1; n < 100; n++) {
        int len;
        if (n == 1)
            len = snprintf(h->dir, sizeof h->dir, "%s/%s-%d", tmp, name, (int)getpid());
        else
            len = snprintf(h->dir, sizeof h->dir, "%s/%s-%d.%d", tmp, name, (int)getpid(), n);
        /* supervisord's control socket lives in DIR: keep it under sun_path */
        if ((size_t)len + sizeof "/supervisor.sock" > sizeof((struct sockaddr_un *)0)->sun_path) {
            fprintf(stderr, "harness: %s is too long for a unix socket path\n", h->dir);
            return -1;
        }
        if (mkdir(h->dir, 0755) == 0)
            return 0;
        if (errno != EEXIST) {
            fprintf(stderr, "harness: mkdir %s: %s\n", h->dir, strerror(errno));
            return -1;
        }
    }
    return -1;
}

/* Fork supervisord -n -c DIR/supervisord.conf in its own process group,
   output to logs/supervisord-stdout.log. Returns 0 or -1. */
static int s_spawn_supervisord(harness_t *h)
{
    char out[PATH_MAX + 32];
    snprintf(out, sizeof out, "%s/logs/supervisord-stdout.log", h->dir);
    int fd = open(out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "harness: %s: %s\n", out, strerror(errno));
        return -1;
    }
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fd);
        return -1;
    }
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
        s_child_setup(h, NULL);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, STDIN_FILENO);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        execlp("supervisord", "supervisord", "-n", "-c", h->conf, (char *)NULL);
        fprintf(stderr, "harness: exec supervisord: %s\n", strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid);
    close(fd);
    h->supervisord = pid;
    h->owner = parent;
    return 0;
}

int harness_wait_ready(harness_t *h, int timeout_ms)
{
    if (!h)
        return -1;
    int64_t deadline = s_now_ms() + timeout_ms;
    bool ready[h->gateways];
    memset(ready, 0, sizeof ready);
    for (;;) {
        int left = 0;
        for (int i = 0; i < h->gateways; i++) {
            char body[512] = "";
            if (!ready[i])
                ready[i] = (h->tls ? s_https_get(h->base_port + i, "/readyz", body, 1000)
                                   : http_get_ex("127.0.0.1", h->base_port + i, "/readyz", body,
                                                 sizeof body, 1000)) == 200 &&
                           s_workers_seen(h, body);
            left += !ready[i];
        }
        if (left == 0)
            return 0;
        if (s_now_ms() >= deadline) {
            for (int i = 0; i < h->gateways; i++)
                if (!ready[i])
                    fprintf(stderr, "harness: gateway-%d (port %d) not ready after %d ms\n", i,
                            h->base_port + i, timeout_ms);
            return -1;
        }
        if (s_exited(h)) {
            fprintf(stderr, "harness: supervisord exited during start\n");
            h->supervisord = 0;
            return -1;
        }
        s_sleep_ms(100);
    }
}

/* True when tolk-stack gave the system an APy (it does when apertium-apy
   is installed). */
static bool s_has_apy(harness_t *h)
{
    FILE *f = fopen(h->conf, "r");
    if (!f)
        return false;
    char line[512];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strncmp(line, "[program:apy]", 13) == 0;
    fclose(f);
    return found;
}

/* Wait until APy answers GET /listPairs, so the audio workers' translations
   do not race its start (about 0.2 s). Returns 0, or -1 after timeout_ms. */
static int s_wait_apy(harness_t *h, int timeout_ms)
{
    int64_t deadline = s_now_ms() + timeout_ms;
    while (http_get_ex("127.0.0.1", h->apy_port, "/listPairs", NULL, 0, 1000) != 200) {
        if (s_now_ms() >= deadline) {
            fprintf(stderr, "harness: APy (port %d) not answering after %d ms\n", h->apy_port,
                    timeout_ms);
            return -1;
        }
        if (s_exited(h)) {
            fprintf(stderr, "harness: supervisord exited during start\n");
            h->supervisord = 0;
            return -1;
        }
        s_sleep_ms(50);
    }
    return 0;
}

/* Wait until an audio worker has asked APy what English reaches and
   published it (tolk:targets:en, audio_worker.c): APy starts slower than
   the workers, so a worker's first discovery usually fails and it tries
   again 2 s later; until then its finals would all be untranslated. With
   two audio workers this shows one of them. Returns 0, or -1 after
   timeout_ms. */
static int s_wait_discovery(harness_t *h, int timeout_ms)
{
    int64_t deadline = s_now_ms() + timeout_ms;
    for (;;) {
        redisContext *r = harness_redis(h);
        redisReply *rep = r ? redisCommand(r, "EXISTS tolk:targets:en") : NULL;
        bool found = rep && rep->type == REDIS_REPLY_INTEGER && rep->integer == 1;
        if (rep)
            freeReplyObject(rep);
        if (found)
            return 0;
        if (s_now_ms() >= deadline) {
            fprintf(stderr, "harness: no audio worker published tolk:targets:en after %d ms\n",
                    timeout_ms);
            return -1;
        }
        s_sleep_ms(50);
    }
}

harness_t *harness_start(const harness_opts_t *opts)
{
    harness_opts_t none = {0};
    if (!opts)
        opts = &none;
    harness_t *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->gateways = opts->gateways > 0 ? opts->gateways : 1;
    if (s_find_top(h->top, sizeof h->top) != 0)
        goto fail;
    const char *build = getenv("BUILD");
    if (!build || !*build)
        build = "build";
    if (build[0] == '/')
        snprintf(h->bin, sizeof h->bin, "%s/bin", build);
    else
        snprintf(h->bin, sizeof h->bin, "%s/%s/bin", h->top, build);
    if (!s_exists(h->bin)) {
        fprintf(stderr, "harness: no binaries in %s (build first)\n", h->bin);
        goto fail;
    }
    h->base_port = harness_free_ports(h->gateways);
    h->redis_port = -1;
    for (int i = 0; i < 100 && h->base_port >= 0 && h->redis_port < 0; i++) {
        h->redis_port = harness_free_ports(1);
        if (h->redis_port >= h->base_port && h->redis_port < h->base_port + h->gateways)
            h->redis_port = -1;
    }
    h->apy_port = -1;
    for (int i = 0; i < 100 && h->redis_port >= 0 && h->apy_port < 0; i++) {
        h->apy_port = harness_free_ports(1);
        if ((h->apy_port >= h->base_port && h->apy_port < h->base_port + h->gateways) ||
            h->apy_port == h->redis_port)
            h->apy_port = -1;
    }
    if (h->base_port < 0 || h->redis_port < 0 || h->apy_port < 0) {
        fprintf(stderr, "harness: no free ports\n");
        goto fail;
    }
    if (s_make_dir(h) != 0)
        goto fail;
    snprintf(h->conf, sizeof h->conf, "%s/supervisord.conf", h->dir);

    int rc = s_env_add(h, "TOLK_BIN=%s", h->bin);
    rc |= s_env_add(h, "TOLK_PORT=%d", h->base_port);
    rc |= s_env_add(h, "TOLK_REDIS_PORT=%d", h->redis_port);
    rc |= s_env_add(h, "TOLK_APY_PORT=%d", h->apy_port);
    rc |= s_env_add(h, "TOLK_GATEWAYS=%d", h->gateways);
    /* tolk-stack's defaults for a count of 0: 2 control, 1 status, 1 audio */
    const int counts[3] = {opts->control_workers, opts->status_workers, opts->audio_workers};
    const int defaults[3] = {2, 1, 1};
    const char *bins[3] = {"tolk-control-worker", "tolk-status-worker", "tolk-audio-worker"};
    for (int k = 0; k < 3; k++) {
        char path[PATH_MAX + 64];
        snprintf(path, sizeof path, "%s/%s", h->bin, bins[k]);
        h->want_workers[k] = access(path, X_OK) != 0 ? 0
                             : counts[k] == 0        ? defaults[k]
                             : counts[k] < 0         ? 0
                                                     : counts[k];
    }
    rc |= s_env_count(h, "TOLK_CONTROL_WORKERS", opts->control_workers);
    rc |= s_env_count(h, "TOLK_STATUS_WORKERS", opts->status_workers);
    rc |= s_env_count(h, "TOLK_AUDIO_WORKERS", opts->audio_workers);
    for (size_t i = 0; i < sizeof opts->extra_env / sizeof *opts->extra_env && opts->extra_env[i];
         i++) {
        if (!strchr(opts->extra_env[i], '=')) {
            fprintf(stderr, "harness: extra_env '%s' is not KEY=value\n", opts->extra_env[i]);
            goto fail_keep;
        }
        rc |= s_env_add(h, "%s", opts->extra_env[i]);
        if (strncmp(opts->extra_env[i], "TOLK_TLS_CERT_FILE=", 19) == 0)
            h->tls = opts->extra_env[i][19] != 0;
    }
    if (rc != 0) {
        fprintf(stderr, "harness: too many environment entries\n");
        goto fail_keep;
    }

    char stack[PATH_MAX + 32];
    snprintf(stack, sizeof stack, "%s/tools/tolk-stack", h->top);
    char *stack_argv[] = {stack, h->dir, NULL};
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    rc = s_run(h, stack_argv, NULL, devnull, NULL, 0);
    if (devnull >= 0)
        close(devnull);
    if (rc != 0) {
        fprintf(stderr, "harness: tools/tolk-stack %s failed (%d)\n", h->dir, rc);
        goto fail_keep;
    }
    if (s_spawn_supervisord(h) != 0) {
        fprintf(stderr, "harness: cannot start supervisord\n");
        goto fail_keep;
    }
    if (harness_wait_ready(h, S_READY_TIMEOUT_MS) != 0)
        goto fail_keep;
    if (s_has_apy(h) && s_wait_apy(h, S_READY_TIMEOUT_MS) != 0)
        goto fail_keep;
    if (s_has_apy(h) && h->want_workers[2] > 0 && s_wait_discovery(h, S_READY_TIMEOUT_MS) != 0)
        goto fail_keep;
    return h;

fail_keep:
    s_stop_supervisord(h);
    s_scan_logs(h);
    s_print_logs(h);
    fprintf(stderr, "harness: start failed; directory kept: %s\n", h->dir);
fail:
    s_free(h);
    return NULL;
}

int harness_stop(harness_t **h_p)
{
    if (!h_p || !*h_p)
        return 0;
    harness_t *h = *h_p;
    *h_p = NULL;
    if (h->redis) {
        redisFree(h->redis);
        h->redis = NULL;
    }
    int problems = s_stop_supervisord(h);
    problems += s_scan_logs(h);
    const char *keep = getenv("TOLK_KEEP");
    if (problems == 0 && !(keep && strcmp(keep, "1") == 0))
        nftw(h->dir, s_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    else
        fprintf(stderr, "harness: directory kept: %s\n", h->dir);
    s_free(h);
    return problems;
}

int harness_gateway_port(harness_t *h, int i)
{
    return h && i >= 0 && i < h->gateways ? h->base_port + i : -1;
}

int harness_gateways(harness_t *h)
{
    return h ? h->gateways : 0;
}

int harness_redis_port(harness_t *h)
{
    return h ? h->redis_port : -1;
}

int harness_apy_port(harness_t *h)
{
    return h ? h->apy_port : -1;
}

const char *harness_dir(harness_t *h)
{
    return h ? h->dir : NULL;
}

const char *harness_bin(harness_t *h)
{
    return h ? h->bin : NULL;
}

redisContext *harness_redis(harness_t *h)
{
    if (!h)
        return NULL;
    if (h->redis && h->redis_owner == getpid() && !h->redis->err)
        return h->redis;
    if (h->redis)
        redisFree(h->redis);
    struct timeval tv = {.tv_sec = 2, .tv_usec = 0};
    h->redis = redisConnectWithTimeout("127.0.0.1", h->redis_port, tv);
    h->redis_owner = getpid();
    if (!h->redis || h->redis->err) {
        fprintf(stderr, "harness: redis on port %d: %s\n", h->redis_port,
                h->redis ? h->redis->errstr : "out of memory");
        if (h->redis)
            redisFree(h->redis);
        h->redis = NULL;
        return NULL;
    }
    struct timeval cmd = {.tv_sec = 5, .tv_usec = 0};
    redisSetTimeout(h->redis, cmd);
    return h->redis;
}

pid_t harness_pid(harness_t *h, const char *program)
{
    if (!h || !program)
        return -1;
    char out[S_OUTPUT_MAX];
    char *argv[] = {"supervisorctl", "-c", h->conf, "pid", (char *)program, NULL};
    s_run(h, argv, NULL, -1, out, sizeof out);
    char *end;
    long pid = strtol(out, &end, 10);
    if (end == out || (*end && *end != '\n'))
        return -1;
    return (pid_t)pid;
}

int harness_ctl(harness_t *h, const char *args)
{
    if (!h || !args)
        return -1;
    char outpath[PATH_MAX + 32];
    snprintf(outpath, sizeof outpath, "%s/supervisorctl.out", h->dir);
    int fd = open(outpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    char *cmd = NULL;
    if (asprintf(&cmd, "exec supervisorctl -c \"$HARNESS_CONF\" %s", args) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    char extra[PATH_MAX + 16];
    snprintf(extra, sizeof extra, "HARNESS_CONF=%s", h->conf);
    char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    int rc = s_run(h, argv, extra, fd, NULL, 0);
    free(cmd);
    if (fd >= 0)
        close(fd);
    return rc;
}

char *harness_token(harness_t *h, const char *sub, long ttl)
{
    if (!h || !sub)
        return NULL;
    char tool[PATH_MAX + 16], ttlstr[32], extra[PATH_MAX + 32];
    snprintf(tool, sizeof tool, "%s/tolk-token", h->bin);
    snprintf(ttlstr, sizeof ttlstr, "%ld", ttl);
    snprintf(extra, sizeof extra, "TOLK_CONFIG=%s/tolk.conf", h->dir);
    char *argv[] = {tool, "--sub", (char *)sub, "--ttl", ttlstr, NULL};
    char out[S_OUTPUT_MAX];
    int rc = s_run(h, argv, extra, -1, out, sizeof out);
    if (rc != 0) {
        fprintf(stderr, "harness: tolk-token --sub %s --ttl %ld failed (%d)\n", sub, ttl, rc);
        return NULL;
    }
    /* The token is the last non-empty line. */
    size_t n = strlen(out);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' '))
        out[--n] = 0;
    char *line = strrchr(out, '\n');
    line = line ? line + 1 : out;
    return *line ? strdup(line) : NULL;
}
