/*  statreport.c -- parse and check one status report; see statreport.h. */
#include "statreport.h"

#include <jansson.h>
#include <math.h>
#include <string.h>

/* Gauges by exact name; every other name is a counter unless its suffix
   is below. A new gauge in a process belongs here. */
static const char *s_gauges[] = {"connections",     "sessions",
                                 "streams",         "gateways",
                                 "stopping",        "redis_up",
                                 "apy_down",        "leader",
                                 "translator_down", "asr_rtf_milli",
                                 "workers_control", "workers_status",
                                 "workers_audio",   NULL};
/* Name endings of gauges: percentiles, maxima and means over a window. */
static const char *s_gauge_suffixes[] = {"_p50", "_p95", "_p99", "_max", "_mean", NULL};

bool tolk_statreport_is_gauge(const char *name)
{
    if (!name)
        return false;
    for (size_t i = 0; s_gauges[i]; i++)
        if (strcmp(name, s_gauges[i]) == 0)
            return true;
    size_t n = strlen(name);
    for (size_t i = 0; s_gauge_suffixes[i]; i++) {
        size_t m = strlen(s_gauge_suffixes[i]);
        if (n > m && strcmp(name + n - m, s_gauge_suffixes[i]) == 0)
            return true;
    }
    return strncmp(name, "workers_", 8) == 0 && strcmp(name, "workers_left") != 0;
}

bool tolk_statreport_valid_word(const char *s, size_t max)
{
    if (!s || !*s)
        return false;
    for (size_t n = 0; s[n]; n++)
        if (n >= max || s[n] <= 0x20 || s[n] >= 0x7f)
            return false;
    return true;
}

bool tolk_statreport_valid_endpoint(const char *endpoint)
{
    if (!endpoint || (strncmp(endpoint, "tcp://", 6) != 0 && strncmp(endpoint, "ipc://", 6) != 0))
        return false;
    return tolk_statreport_valid_word(endpoint, TOLK_STATREPORT_ENDPOINT_MAX);
}

bool tolk_statreport_valid_name(const char *name)
{
    if (!name)
        return false;
    size_t n = 0;
    for (; name[n]; n++) {
        char c = name[n];
        if (n >= TOLK_STATFEED_NAME_MAX)
            return false;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return n > 0;
}

/* A JSON integer into *out; false when it is not one. */
static bool s_int(json_t *v, int64_t *out)
{
    if (!json_is_integer(v))
        return false;
    *out = (int64_t)json_integer_value(v);
    return true;
}

/* One histogram object into h; false when it breaks a rule. */
static bool s_hist(json_t *o, tolk_prom_hist_t *h)
{
    json_t *le = json_object_get(o, "le");
    json_t *sum = json_object_get(o, "sum");
    int64_t count;
    if (!json_is_object(o) || json_object_size(o) != 3 || !json_is_array(le) ||
        json_array_size(le) != TOLK_PROM_HIST_BUCKETS || !json_is_number(sum) ||
        !s_int(json_object_get(o, "count"), &count) || count < 0)
        return false;
    h->sum = json_number_value(sum);
    if (!isfinite(h->sum) || h->sum < 0)
        return false;
    h->count = (uint64_t)count;
    uint64_t prev = 0;
    for (size_t i = 0; i < TOLK_PROM_HIST_BUCKETS; i++) {
        int64_t c;
        if (!s_int(json_array_get(le, i), &c) || c < 0 || (uint64_t)c < prev ||
            (uint64_t)c > h->count)
            return false;
        h->le[i] = prev = (uint64_t)c;
    }
    return true;
}

/* The fields of a parsed root into out; false when one breaks a rule. */
static bool s_fill(tolk_statreport_t *out, json_t *root)
{
    const char *kind = json_string_value(json_object_get(root, "kind"));
    const char *id = json_string_value(json_object_get(root, "id"));
    json_t *counters = json_object_get(root, "counters");
    json_t *hists = json_object_get(root, "histograms");
    if (!json_is_object(root) || !tolk_statreport_valid_word(kind, TOLK_STATFEED_KIND_MAX) ||
        !tolk_statreport_valid_word(id, TOLK_STATFEED_ID_MAX) ||
        !s_int(json_object_get(root, "pid"), &out->pid) ||
        !s_int(json_object_get(root, "timestamp"), &out->timestamp) ||
        !s_int(json_object_get(root, "uptime_s"), &out->uptime_s) || !json_is_object(counters) ||
        json_object_size(counters) > TOLK_STATREPORT_MAX_COUNTERS ||
        (hists && (!json_is_object(hists) || json_object_size(hists) > TOLK_STATFEED_MAX_HISTS)))
        return false;
    strcpy(out->kind, kind);
    strcpy(out->id, id);
    const char *name;
    json_t *value;
    json_object_foreach(counters, name, value)
    {
        tolk_statreport_counter_t *c = &out->counters[out->ncounters];
        if (!tolk_statreport_valid_name(name) || !s_int(value, &c->value))
            return false;
        strcpy(c->name, name);
        out->ncounters++;
    }
    json_object_foreach(hists, name, value)
    {
        tolk_statreport_hist_t *h = &out->hists[out->nhists];
        if (!tolk_statreport_valid_name(name) || !s_hist(value, &h->hist))
            return false;
        strcpy(h->name, name);
        out->nhists++;
    }
    return true;
}

int tolk_statreport_parse(tolk_statreport_t *out, const void *body, size_t len)
{
    if (!out || !body || len == 0 || len > TOLK_STATREPORT_MAX_BYTES)
        return -1;
    memset(out, 0, sizeof *out);
    /* jansson rejects duplicate keys with this flag, so a name counts once */
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    bool ok = root && s_fill(out, root);
    json_decref(root);
    return ok ? 0 : -1;
}

int64_t tolk_statreport_counter(const tolk_statreport_t *r, const char *name)
{
    for (size_t i = 0; r && name && i < r->ncounters; i++)
        if (strcmp(r->counters[i].name, name) == 0)
            return r->counters[i].value;
    return 0;
}
