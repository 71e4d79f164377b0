/*
 * mus/headend_glue.c: the session store of mus-headend (headend_store.h)
 * and its other ends (see headend_int.h): the local feed socket (Unix
 * datagrams, one JSON connect or disconnect each, never answered), the
 * --sessions file (JSON lines, reconciled on each load), the RADIUS
 * listener's set-up (headend_radius.h), the once-a-second stale sweep and
 * the --status-file (JSON counters, never a secret, rewritten when they
 * change); each change is pumped to the proxies. It does not talk to
 * proxies itself (headend_session.c) or parse RADIUS (headend_radius.c).
 */
#include "headend_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "../common/log.h"

/* ---- sessions: feed socket, file ---- */

static int feed_socket(const char *path, mode_t mode)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sun.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(sun.sun_path, path);
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            errno = EEXIST;
            return -1;
        }
        unlink(path);
    }
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    mode_t old = umask(0177);
    int rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
    umask(old);
    if (rc < 0 || chmod(path, mode) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    int rcv = 1 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
    return fd;
}

static void feed_message(headend_t *he, const char *buf, size_t len)
{
    json_error_t jerr;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        log_warn("feed: not JSON: %s", jerr.text);
        return;
    }
    const char *op = json_string_value(json_object_get(root, "op"));
    char err[160];
    if (op && strcmp(op, "connect") == 0) {
        mus_session_t s;
        mus_addr_t ips[MUS_MAX_IPS];
        size_t n;
        json_t *sobj = json_object_get(root, "s");
        const char *feed = json_string_value(json_object_get(root, "feed"));
        enum hs_origin origin = feed && strcmp(feed, "strongswan") == 0 ? HS_ORIGIN_STRONGSWAN
                                                                        : HS_ORIGIN_OCSERV;
        if (!sobj || he_session_from_json(sobj, &s, ips, &n, err, sizeof(err)) < 0) {
            log_warn("feed: bad connect: %s", sobj ? err : "missing \"s\"");
        } else {
            /* musctl notify stamps "started" with its own clock: a session
             * announced again (strongSwan's up-client-v6 after up-client,
             * a second later) keeps the start it already has, so that an
             * unchanged session stays unchanged */
            const hs_entry_t *old = hs_store_find(he->store, s.sid);
            if (old != NULL && old->s.type == s.type && strcmp(old->s.name, s.name) == 0)
                s.started = old->s.started;
            int ev = hs_store_connect(he->store, &s, ips, n, origin, loop_now(he->loop), false);
            if (ev < 0)
                log_error("feed: cannot store session %s", s.sid);
            else
                he_log_change(origin == HS_ORIGIN_STRONGSWAN ? "strongswan feed connect"
                                                             : "feed connect", &s, ev);
        }
    } else if (op && strcmp(op, "disconnect") == 0) {
        const char *sid = json_string_value(json_object_get(root, "sid"));
        const char *reason = json_string_value(json_object_get(root, "reason"));
        if (!reason || !*reason || strlen(reason) >= 32)
            reason = "logout";
        if (!sid || !*sid || strlen(sid) >= MUS_SID_MAX) {
            log_warn("feed: bad disconnect: missing or bad \"sid\"");
        } else {
            int r = hs_store_disconnect(he->store, sid, reason);
            if (r > 0)
                log_info("feed disconnect: session %s (%s)", sid, reason);
            else if (r == 0)
                log_info("feed disconnect: session %s unknown, ignored", sid);
            else
                log_error("feed: cannot record the end of session %s", sid);
        }
    } else {
        log_warn("feed: unknown or missing \"op\"");
    }
    json_decref(root);
    he_pump_all(he);
}

static void feed_cb(loop_t *loop, loop_io_t *io, uint32_t events)
{
    headend_t *he = io->arg;
    (void)loop;
    (void)events;
    static char buf[MUS_FRAME_MAX + 2];
    for (int i = 0; i < 256; i++) {
        ssize_t n = recv(he->ufd, buf, sizeof(buf), MSG_TRUNC);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                log_warn("feed: recv: %s", strerror(errno));
            return;
        }
        if ((size_t)n > sizeof(buf) - 1) {
            log_warn("feed: datagram of %zd bytes ignored", n);
            continue;
        }
        size_t len = (size_t)n;
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
            len--;
        feed_message(he, buf, len);
    }
}

/* Creates the --socket feed socket and starts reading it. 0, or -1
 * (logged, except a failed loop registration, as before the split). */
int he_feed_start(headend_t *he)
{
    he->ufd = feed_socket(he->socket_path, he->socket_mode);
    if (he->ufd < 0) {
        log_error("--socket %s: %s", he->socket_path, strerror(errno));
        return -1;
    }
    loop_io_init(&he->uio, feed_cb, he);
    if (loop_io_start(he->loop, &he->uio, he->ufd, LOOP_READ) < 0)
        return -1;
    return 0;
}

/* Loads --sessions. Returns -1 if the file cannot be read (nothing changes). */
int he_sessions_load(headend_t *he)
{
    FILE *fp = fopen(he->sessions_path, "re");
    if (!fp) {
        log_error("sessions %s: %s", he->sessions_path, strerror(errno));
        return -1;
    }
    hs_store_reconcile_begin(he->store, HS_ORIGIN_FILE);
    char *line = NULL;
    size_t cap = 0, lineno = 0, loaded = 0, bad = 0;
    ssize_t len;
    int events = 0;
    while ((len = getline(&line, &cap, fp)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        size_t sp = 0;
        while (sp < (size_t)len && (line[sp] == ' ' || line[sp] == '\t'))
            sp++;
        if (sp == (size_t)len || line[sp] == '#')
            continue;
        mus_session_t s;
        mus_addr_t ips[MUS_MAX_IPS];
        size_t n;
        char err[160];
        if (mus_session_parse(line + sp, (size_t)len - sp, &s, ips, &n, err, sizeof(err)) < 0) {
            log_warn("sessions %s:%zu: %s", he->sessions_path, lineno, err);
            bad++;
            continue;
        }
        int ev = hs_store_connect(he->store, &s, ips, n, HS_ORIGIN_FILE, loop_now(he->loop), false);
        if (ev < 0) {
            log_error("sessions %s:%zu: cannot store session %s", he->sessions_path, lineno, s.sid);
            bad++;
            continue;
        }
        events += ev;
        loaded++;
    }
    free(line);
    fclose(fp);
    size_t removed = hs_store_reconcile_sweep(he->store, HS_ORIGIN_FILE, UINT64_MAX);
    log_info("sessions %s: %zu loaded, %zu rejected, %zu removed, %d events, now seq %llu",
             he->sessions_path, loaded, bad, removed, events + (int)removed,
             (unsigned long long)hs_store_seq(he->store));
    he_pump_all(he);
    return 0;
}

/* ---- RADIUS, stale sessions, status file ---- */

void he_changed_cb(void *arg)
{
    he_pump_all(arg);
}

int he_radius_setup(headend_t *he)
{
    int fds[HR_MAX_SOCKETS];
    char err[256];
    for (size_t i = 0; i < he->n_radius; i++) {
        fds[i] = he_listen_on(he->radius_listen[i], SOCK_DGRAM, HE_RADIUS_PORT);
        if (fds[i] < 0) {
            log_error("--radius %s: %s", he->radius_listen[i],
                      fds[i] == -1 ? "not a numeric ADDR[:PORT]" : strerror(errno));
            while (i-- > 0)
                close(fds[i]);
            return -1;
        }
        int rcv = 4 << 20;
        setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
    }
    he->radius = hr_new(he->loop, he->store, &he->radius_opt, fds, he->n_radius, he_changed_cb, he,
                        err, sizeof(err));
    if (!he->radius) {
        log_error("RADIUS: %s", err);
        return -1;
    }
    hr_counters_t c;
    hr_get_counters(he->radius, &c);
    for (size_t i = 0; i < he->n_radius; i++)
        log_info("RADIUS accounting on %s (%llu clients in %s, groups from %s)",
                 he->radius_listen[i], (unsigned long long)c.clients, he->radius_opt.clients_path,
                 he->radius_opt.groups == HR_GROUPS_CLASS ? "Class"
                 : he->radius_opt.groups == HR_GROUPS_FILTER_ID ? "Filter-Id"
                 : he->radius_opt.groups == HR_GROUPS_AVPAIR ? "Cisco-AVPair" : "nowhere");
    return 0;
}

/* The status document: sessions, stale counts, RADIUS counters (never
 * a secret). */
static json_t *status_json(headend_t *he)
{
    json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:b}", "server_id",
                          he->server_id, "epoch", he->epoch, "seq",
                          (json_int_t)hs_store_seq(he->store), "sessions",
                          (json_int_t)hs_store_count(he->store), "stale_sessions",
                          (json_int_t)hs_store_stale_count(he->store), "stale_marked",
                          (json_int_t)he->stale_marked, "stale_removed",
                          (json_int_t)he->stale_removed, "proxies", (json_int_t)he->n_conns,
                          "standby", he->standby);
    if (o && he->radius) {
        hr_counters_t c;
        hr_get_counters(he->radius, &c);
        json_object_set_new(o, "radius", json_pack(
            "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
            "received", (json_int_t)c.received, "responses", (json_int_t)c.responses,
            "duplicates", (json_int_t)c.duplicates, "unknown_client", (json_int_t)c.unknown_client,
            "bad_authenticator", (json_int_t)c.bad_authenticator, "malformed",
            (json_int_t)c.malformed, "starts", (json_int_t)c.starts, "interims",
            (json_int_t)c.interims, "stops", (json_int_t)c.stops, "accounting_on",
            (json_int_t)c.acct_on, "accounting_off", (json_int_t)c.acct_off, "other_status",
            (json_int_t)c.other_status, "no_address", (json_int_t)c.no_address, "store_errors",
            (json_int_t)c.store_errors, "clients", (json_int_t)c.clients));
    }
    return o;
}

/* Rewrites --status-file (temporary file + rename) when it changed. */
static void status_write(headend_t *he)
{
    json_t *o = status_json(he);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text)
        return;
    if (strcmp(text, he->status_last) != 0) {
        char tmp[4096];
        snprintf(tmp, sizeof(tmp), "%s.tmp", he->status_path);
        FILE *fp = fopen(tmp, "we");
        if (fp && fprintf(fp, "%s\n", text) > 0 && fclose(fp) == 0 &&
            rename(tmp, he->status_path) == 0)
            snprintf(he->status_last, sizeof(he->status_last), "%s", text);
        else {
            if (fp)
                unlink(tmp);
            log_warn("--status-file %s: cannot write: %s", he->status_path, strerror(errno));
        }
    }
    free(text);
}

static void tick_cb(loop_t *loop, loop_timer_t *t)
{
    headend_t *he = t->arg;
    size_t marked = 0, removed = 0;
    uint64_t seq = hs_store_seq(he->store);
    hs_store_stale_sweep(he->store, loop_now(loop), he->stale_after,
                         (uint64_t)he->stale_grace_s * 1000u, &marked, &removed);
    if (marked || removed)
        log_info("stale sessions: %zu marked (no refresh for %u intervals), %zu removed after "
                 "%u s", marked, he->stale_after, removed, he->stale_grace_s);
    he->stale_marked += marked;
    he->stale_removed += removed;
    if (hs_store_seq(he->store) != seq)
        he_pump_all(he);
    if (he->status_path)
        status_write(he);
    loop_timer_set(loop, t, HE_TICK_MS);
}

/* Starts the once-a-second stale sweep and status file. */
void he_tick_start(headend_t *he)
{
    loop_timer_init(&he->tick, tick_cb, he);
    loop_timer_set(he->loop, &he->tick, HE_TICK_MS);
}
