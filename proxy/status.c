/*
 * proxy/status.c: the status, map and trace documents (see status.h).
 */
#include "metrics.h"
#include "service.h"
#include "status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../mus/feed_radius.h"
#include "../mus/hetest.h"
#include "trace.h"

static json_t *
identity_json(const mus_addr_t *addr, const mus_identity_t *id)
{
    char ip[64];

    mus_addr_format(addr, ip, sizeof(ip));
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:b}",
                     "ip", ip, "name", id->s.name, "type", mus_id_type_str(id->s.type),
                     "domain", id->s.domain, "groups", id->s.groups, "headend", id->headend,
                     "sid", id->s.sid, "started", (json_int_t)id->s.started,
                     "client_ip", id->s.client_ip, "tunnel", id->s.tunnel, "stale", id->stale);
}

struct walk_ctx {
    json_t *list;
    const char *user;    /* filter, or NULL */
};

static int
walk_cb(void *arg, const mus_addr_t *addr, const mus_identity_t *id)
{
    struct walk_ctx *w = arg;
    json_t *j;

    if (w->user != NULL && strcmp(w->user, id->s.name) != 0)
        return 0;
    j = identity_json(addr, id);
    if (j != NULL)
        json_array_append_new(w->list, j);
    return 0;
}

json_t *
status_map_json(const status_sources_t *c, const char *args)
{
    json_t *list = json_array();
    struct walk_ctx w = {list, NULL};
    char arg[STATUS_REQUEST_MAX];

    if (strncmp(args, "ip ", 3) == 0) {
        mus_addr_t a;
        mus_identity_t id;
        if (mus_addr_parse(args + 3, &a) < 0) {
            json_decref(list);
            return json_pack("{s:s}", "error", "not an IP address");
        }
        if (mus_map_lookup(c->map, &a, &id))
            json_array_append_new(list, identity_json(&a, &id));
    } else if (strncmp(args, "user ", 5) == 0) {
        snprintf(arg, sizeof(arg), "%s", args + 5);
        w.user = arg;
        mus_map_walk(c->map, walk_cb, &w);
    } else if (args[0] == '\0') {
        mus_map_walk(c->map, walk_cb, &w);
    } else {
        json_decref(list);
        return json_pack("{s:s}", "error", "usage: map [ip ADDR | user NAME]");
    }
    return json_pack("{s:o}", "entries", list);
}

/* The store's counters; null when there is none. */
static json_t *
store_json(txnstore_t *st)
{
    txnstore_stats_t ss;

    if (st == NULL)
        return json_null();
    txnstore_stats(st, &ss);
    return json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s}",
                     "open", ss.db_open, "queued", (json_int_t)ss.queued,
                     "submitted", (json_int_t)ss.submitted, "written", (json_int_t)ss.written,
                     "dropped", (json_int_t)ss.dropped, "lost", (json_int_t)ss.lost,
                     "errors", (json_int_t)ss.errors, "sessions_written",
                     (json_int_t)ss.sessions_written, "retention_deleted",
                     (json_int_t)ss.retention_deleted, "db_bytes", (json_int_t)ss.db_bytes,
                     "last_error_ms", (json_int_t)ss.last_error_ms, "last_error", ss.last_error);
}

/* The RADIUS listener's counters (never a secret); null when there is none. */
static json_t *
radius_json(mus_feed_t *feed)
{
    mus_radius_status_t st;
    const hr_counters_t *k = &st.c;
    json_t *o, *listen;

    if (feed == NULL || !mus_feed_radius_status(feed, &st))
        return json_null();
    listen = json_array();
    for (size_t i = 0; i < st.n_listen; i++)
        json_array_append_new(listen, json_string(st.listen[i]));
    o = json_pack("{s:s, s:b, s:o, s:I, s:I, s:I, s:I, s:I, s:I}", "name", st.name, "listening",
                  st.listening, "listen", listen, "clients", (json_int_t)k->clients, "received",
                  (json_int_t)k->received, "responses", (json_int_t)k->responses, "applied",
                  (json_int_t)st.events_applied, "duplicates", (json_int_t)k->duplicates,
                  "no_address", (json_int_t)k->no_address);
    if (o == NULL)
        return json_null();
    json_object_set_new(o, "dropped", json_pack("{s:I, s:I, s:I, s:I}",
                        "unknown_client", (json_int_t)k->unknown_client,
                        "wrong_secret", (json_int_t)k->bad_authenticator,
                        "malformed", (json_int_t)k->malformed,
                        "not_applied", (json_int_t)k->store_errors));
    json_object_set_new(o, "status_types", json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}",
                        "start", (json_int_t)k->starts, "interim", (json_int_t)k->interims,
                        "stop", (json_int_t)k->stops, "accounting_on", (json_int_t)k->acct_on,
                        "accounting_off", (json_int_t)k->acct_off,
                        "other", (json_int_t)k->other_status));
    json_object_set_new(o, "sessions", json_pack("{s:I, s:I, s:I, s:I}",
                        "now", (json_int_t)st.sessions, "stale", (json_int_t)st.stale_sessions,
                        "marked_stale", (json_int_t)st.stale_marked,
                        "removed_stale", (json_int_t)st.stale_removed));
    json_object_set_new(o, "entries", json_integer((json_int_t)st.entries));
    json_object_set_new(o, "stale_entries", json_integer((json_int_t)st.stale_entries));
    json_object_set_new(o, "resyncs", json_integer((json_int_t)st.resyncs));
    json_object_set_new(o, "last_event", json_integer((json_int_t)st.last_event));
    json_object_set_new(o, "last_error", json_string(st.last_error));
    return o;
}

json_t *
status_json(const status_sources_t *c)
{
    mus_headend_status_t st[MUS_MAP_MAX_HEADENDS];
    size_t n = c->feed ? mus_feed_status(c->feed, st, MUS_MAP_MAX_HEADENDS) : 0;
    json_t *hs = json_array(), *probes = json_array();
    mus_map_counters_t mc;
    connlimit_stats_t cs;
    probe_client_t *pc;
    uint64_t total = 0;
    size_t np;
    json_t *out;

    for (size_t i = 0; i < n; i++) {
        json_array_append_new(hs, json_pack(
            "{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:I, s:s, s:I, s:I}",
            "name", st[i].name, "state", mus_session_state_str(st[i].state),
            "address", st[i].address, "connected_since", (json_int_t)st[i].connected_since,
            "last_event", (json_int_t)st[i].last_event,
            "last_attempt", (json_int_t)st[i].last_attempt,
            "next_attempt", (json_int_t)st[i].next_attempt,
            "events_applied", (json_int_t)st[i].events_applied,
            "reconnects", (json_int_t)st[i].reconnects,
            "snapshots", (json_int_t)st[i].snapshots, "resumes", (json_int_t)st[i].resumes,
            "epoch", st[i].epoch, "seq", (json_int_t)st[i].seq, "last_error", st[i].last_error,
            "entries", (json_int_t)st[i].entries, "stale_entries", (json_int_t)st[i].stale_entries));
    }
    mus_map_counters(c->map, -1, &mc);
    pc = calloc(PROBES_MAX_CLIENTS, sizeof(*pc));
    np = pc ? probes_list(c->probes, pc, PROBES_MAX_CLIENTS, &total) : 0;
    for (size_t i = 0; i < np; i++)
        json_array_append_new(probes, json_pack("{s:s, s:I, s:I, s:b}", "client", pc[i].addr,
                                                "count", (json_int_t)pc[i].count,
                                                "last", (json_int_t)pc[i].last,
                                                "remote", pc[i].remote));
    free(pc);
    connlimit_stats(c->connlimit, &cs);
    out = json_pack("{s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}, s:{s:I, s:o}, "
                     "s:{s:I, s:I, s:I, s:I}}",
                     "headends", hs,
                     "map", "entries", (json_int_t)mc.entries, "stale_entries",
                     (json_int_t)mc.stale_entries, "adds", (json_int_t)mc.adds, "dels",
                     (json_int_t)mc.dels, "ignored_dels", (json_int_t)mc.ignored_dels,
                     "conflicts", (json_int_t)mc.conflicts, "snapshots",
                     (json_int_t)mc.snapshots, "expired", (json_int_t)mc.expired,
                     "probes", "total", (json_int_t)total, "clients", probes,
                     "connections", "open", (json_int_t)cs.open, "max", (json_int_t)cs.max,
                     "waiting_workers", (json_int_t)cs.waiting, "times_full",
                     (json_int_t)cs.full);
    if (out != NULL) {
        json_object_set_new(out, "radius", radius_json(c->feed));
        json_object_set_new(out, "store", store_json(c->store));
        json_object_set_new(out, "wccp", wccp_status_json(c->wccp));
        json_object_set_new(out, "gre", gre_status_json(c->gre));
        json_object_set_new(out, "services", service_table_status_json(c->services));
    }
    return out;
}

/*
 * The policy trace: what would happen to this URL from this address, and
 * why, decided by access_decide() exactly as for a live request.
 */
json_t *
status_trace_json(const status_sources_t *c, const char *args)
{
    cfgref_t *ref = c->get_cfg(c->cfg_arg);
    json_t *out = trace_run(ref->cfg, ref->policy, c->map, args);

    cfgref_put(ref);
    return out;
}

void
status_headend_config(const config_t *cfg, size_t i, mus_headend_config_t *h)
{
    const config_headend_t *c = &cfg->mus.headends[i];

    memset(h, 0, sizeof(*h));
    snprintf(h->name, sizeof(h->name), "%s", c->name);
    h->n_addrs = c->n_addrs < MUS_FEED_MAX_ADDRS ? c->n_addrs : MUS_FEED_MAX_ADDRS;
    for (size_t k = 0; k < h->n_addrs; k++) {
        h->addrs[k] = c->addrs[k];
        h->addr_lens[k] = c->addr_lens[k];
        snprintf(h->addr_text[k], sizeof(h->addr_text[k]), "%s", c->addr_text[k]);
    }
    snprintf(h->ca_file, sizeof(h->ca_file), "%s", c->ca);
    snprintf(h->pin_sha256, sizeof(h->pin_sha256), "%s", c->pin_sha256);
    snprintf(h->cert_name, sizeof(h->cert_name), "%s", c->cert_name);
    snprintf(h->password_file, sizeof(h->password_file), "%s", c->password_file);
    snprintf(h->client_id, sizeof(h->client_id), "%s", cfg->mus.client_id);
}

/*
 * The connection test: the headend's configuration in force, copied, then
 * a connection of the test's own (mus/hetest.h). The caller stays a map
 * reader while it waits; the writer never waits for readers (it only frees
 * later), so the map and the live sessions go on.
 */
json_t *
status_test_json(const status_sources_t *c, const char *name)
{
    cfgref_t *ref = c->get_cfg(c->cfg_arg);
    mus_headend_config_t *h = calloc(1, sizeof(*h));
    mus_hetest_result_t *r = calloc(1, sizeof(*r));
    json_t *out = NULL;
    size_t i = 0;

    while (i < ref->cfg->mus.n_headends && strcmp(ref->cfg->mus.headends[i].name, name) != 0)
        i++;
    if (h == NULL || r == NULL) {
        out = json_pack("{s:s}", "error", "out of memory");
    } else if (i == ref->cfg->mus.n_headends) {
        out = json_pack("{s:s, s:s}", "headend", name, "error", "no headend of that name");
    } else {
        status_headend_config(ref->cfg, i, h);
        cfgref_put(ref);
        ref = NULL;
        mus_hetest_run(h, 0, r);
        out = json_pack("{s:s, s:b, s:s, s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:s}", "headend",
                        name, "ok", r->outcome == MUS_HETEST_OK, "outcome",
                        mus_hetest_outcome_str(r->outcome), "message", r->message, "address",
                        r->address, "rtt_ms", (json_int_t)r->rtt_ms, "connect_ms",
                        (json_int_t)r->connect_ms, "server_id", r->server_id, "subject",
                        r->subject, "issuer", r->issuer, "tls", r->tls_version);
    }
    if (ref != NULL)
        cfgref_put(ref);
    free(h);
    free(r);
    return out;
}

json_t *
status_request(const status_sources_t *s, const char *req)
{
    if (strcmp(req, "status") == 0)
        return status_json(s);
    if (strcmp(req, "map") == 0)
        return status_map_json(s, "");
    if (strncmp(req, "map ", 4) == 0)
        return status_map_json(s, req + 4);
    if (strncmp(req, "trace ", 6) == 0)
        return status_trace_json(s, req + 6);
    if (strncmp(req, "test ", 5) == 0)
        return status_test_json(s, req + 5);
    return json_pack("{s:s}", "error",
                     "unknown request (status, map [ip ADDR | user NAME], trace {...}, test NAME)");
}

char *
status_metrics_text(const status_sources_t *s, size_t *len)
{
    return s->metrics != NULL ? metrics_render(s->metrics, s, len) : NULL;
}
