/*
 * mus/headend_poll.c: the reconciliation polls of mus-headend (see
 * headend_poll.h): the command runner (fork/exec, non-blocking pipe, timeout,
 * output limit) and the occtl and swanctl apply functions.
 */
#include "headend_poll.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "../common/log.h"
#include "headend_swanctl.h"
#include "proto.h"

/* ---- shared with headend_glue.c ---- */

static const char *id_type_name(enum mus_id_type t)
{
    return t == MUS_ID_USER ? "user" : t == MUS_ID_MACHINE ? "machine" : "device";
}

void he_log_change(const char *src, const mus_session_t *s, int events)
{
    if (events > 0)
        log_info("%s: session %s %s %s (%d event%s)", src, s->sid, id_type_name(s->type), s->name,
                 events, events == 1 ? "" : "s");
}

int he_session_from_json(json_t *obj, mus_session_t *s, mus_addr_t *ips, size_t *n, char *err,
                         size_t errlen)
{
    static char line[MUS_FRAME_MAX + 2];
    size_t len = json_dumpb(obj, line, sizeof(line), JSON_COMPACT);
    if (len == 0 || len >= sizeof(line)) {
        snprintf(err, errlen, "session too large");
        return -1;
    }
    return mus_session_parse(line, len, s, ips, n, err, errlen);
}

/* A session reported by a connect script shortly before the poll ran may
 * not be listed yet: only sessions older than the grace period go. */
static uint64_t grace_before(uint64_t started)
{
    return started > HE_POLL_GRACE_MS ? started - HE_POLL_GRACE_MS : 0;
}

/* ---- occtl ---- */

/* A string member of an occtl user object, or NULL; "%N" zone stripped
 * into buf when asked. */
static const char *occtl_str(json_t *o, const char *key, char *buf, size_t cap)
{
    const char *v = json_string_value(json_object_get(o, key));
    if (!v || !*v)
        return NULL;
    if (!buf)
        return v;
    snprintf(buf, cap, "%s", v);
    char *pct = strchr(buf, '%');
    if (pct)
        *pct = '\0';
    return buf[0] ? buf : NULL;
}

int he_poll_apply_occtl(hs_store_t *store, const char *out, size_t len, uint64_t started)
{
    json_error_t jerr;
    json_t *root = json_loadb(out, len, 0, &jerr);
    if (!root || !json_is_array(root)) {
        log_warn("occtl: output is not a JSON array (%s); no reconciliation",
                 root ? "other JSON" : jerr.text);
        json_decref(root);
        return 0;
    }
    hs_store_reconcile_begin(store, HS_ORIGIN_OCSERV);
    size_t i, seen = 0, skipped = 0;
    int events = 0;
    json_t *u;
    json_array_foreach(root, i, u) {
        if (!json_is_object(u)) {
            skipped++;
            continue;
        }
        char sid[32], v4[64], v6[64], rip[64];
        json_t *id = json_object_get(u, "ID");
        if (json_is_integer(id))
            snprintf(sid, sizeof(sid), "%lld", (long long)json_integer_value(id));
        else if (json_is_string(id) && json_string_length(id) > 0 &&
                 json_string_length(id) < sizeof(sid))
            snprintf(sid, sizeof(sid), "%s", json_string_value(id));
        else {
            skipped++;
            continue;
        }
        const char *state = occtl_str(u, "State", NULL, 0);
        const char *user = occtl_str(u, "Username", NULL, 0);
        if ((state && strcmp(state, "connected") != 0) || !user || strcmp(user, "(none)") == 0) {
            skipped++;
            continue;
        }
        json_t *s = json_object(), *ips = json_array(), *ident = json_object(),
               *groups = json_array();
        const char *a4 = occtl_str(u, "IPv4", v4, sizeof(v4));
        const char *a6 = occtl_str(u, "IPv6", v6, sizeof(v6));
        if (a4)
            json_array_append_new(ips, json_string(a4));
        if (a6)
            json_array_append_new(ips, json_string(a6));
        const char *group = occtl_str(u, "Groupname", NULL, 0);
        if (group && strcmp(group, "(none)") != 0 && !strchr(group, ','))
            json_array_append_new(groups, json_string(group));
        json_object_set_new(ident, "type", json_string("user"));
        json_object_set_new(ident, "name", json_string(user));
        json_object_set_new(s, "sid", json_string(sid));
        json_object_set_new(s, "ips", ips);
        json_object_set_new(s, "id", ident);
        json_object_set_new(s, "groups", groups);
        json_t *at = json_object_get(u, "raw_connected_at");
        if (json_is_integer(at) && json_integer_value(at) >= 0)
            json_object_set_new(s, "started", json_integer(json_integer_value(at)));
        const char *remote = occtl_str(u, "Remote IP", rip, sizeof(rip));
        if (remote)
            json_object_set_new(s, "client_ip", json_string(remote));
        json_object_set_new(s, "tunnel", json_string("ssl"));

        mus_session_t sess;
        mus_addr_t addrs[MUS_MAX_IPS];
        size_t n;
        char err[160];
        int rc = he_session_from_json(s, &sess, addrs, &n, err, sizeof(err));
        if (rc < 0 && remote) {
            /* a client address we cannot parse is not worth losing the session */
            json_object_del(s, "client_ip");
            rc = he_session_from_json(s, &sess, addrs, &n, err, sizeof(err));
        }
        json_decref(s);
        if (rc < 0) {
            log_debug("occtl: user %s (ID %s) skipped: %s", user, sid, err);
            skipped++;
            continue;
        }
        int ev = hs_store_connect(store, &sess, addrs, n, HS_ORIGIN_OCSERV, started, true);
        if (ev > 0) {
            events += ev;
            he_log_change("occtl", &sess, ev);
        }
        seen++;
    }
    json_decref(root);
    /* a session reported by the connect-script shortly before occtl ran may
     * not be listed as connected yet: only sessions older than the grace
     * period are removed */
    size_t removed = hs_store_reconcile_sweep(store, HS_ORIGIN_OCSERV, grace_before(started));
    if (removed || events)
        log_info("occtl: %zu users, %zu skipped, %zu sessions removed, %d events", seen, skipped,
                 removed, events);
    else
        log_debug("occtl: %zu users, %zu skipped, in sync", seen, skipped);
    return events + (int)removed;
}


/* ---- swanctl ---- */

typedef struct swan_ctx {
    hs_store_t *store;
    uint64_t started;
    size_t seen, skipped;
    int events;
} swan_ctx_t;

static int swan_one(void *arg, const swanctl_sa_t *sa)
{
    swan_ctx_t *x = arg;
    mus_session_t s;
    mus_addr_t ips[SWANCTL_VIPS_MAX];
    size_t n = 0;
    memset(&s, 0, sizeof(s));
    if (strcmp(sa->state, "ESTABLISHED") != 0 || !sa->uniqueid[0]) {
        x->skipped++;
        return 0;
    }
    for (size_t i = 0; i < sa->n_vips; i++)
        if (mus_addr_parse(sa->vips[i], &ips[n]) == 0)
            n++;
    swanctl_sa_name(sa, s.name, sizeof(s.name));
    if (n == 0 || !s.name[0]) {
        log_debug("swanctl: IKE_SA #%s skipped: no virtual IP or no identity", sa->uniqueid);
        x->skipped++;
        return 0;
    }
    snprintf(s.sid, sizeof(s.sid), "%s", sa->uniqueid);
    s.type = MUS_ID_USER;
    mus_addr_t tmp;
    if (mus_addr_parse(sa->remote_host, &tmp) == 0)
        snprintf(s.client_ip, sizeof(s.client_ip), "%.*s", (int)sizeof(s.client_ip) - 1,
                 sa->remote_host);
    snprintf(s.tunnel, sizeof(s.tunnel), "ipsec");
    int ev = hs_store_connect(x->store, &s, ips, n, HS_ORIGIN_STRONGSWAN, x->started, true);
    if (ev > 0) {
        x->events += ev;
        he_log_change("swanctl", &s, ev);
    }
    x->seen++;
    return 0;
}

int he_poll_apply_swanctl(hs_store_t *store, const char *out, size_t len, uint64_t started)
{
    swan_ctx_t x = {store, started, 0, 0, 0};
    hs_store_reconcile_begin(store, HS_ORIGIN_STRONGSWAN);
    swanctl_parse(out, len, swan_one, &x);
    size_t removed = hs_store_reconcile_sweep(store, HS_ORIGIN_STRONGSWAN, grace_before(started));
    if (removed || x.events)
        log_info("swanctl: %zu IKE_SAs, %zu skipped, %zu sessions removed, %d events", x.seen,
                 x.skipped, removed, x.events);
    else
        log_debug("swanctl: %zu IKE_SAs, %zu skipped, in sync", x.seen, x.skipped);
    return x.events + (int)removed;
}

/* ---- the runner ---- */

static void poll_finish(he_poll_t *p, bool complete)
{
    loop_io_stop(p->loop, &p->io);
    close(p->fd);
    p->fd = -1;
    int status = 0;
    if (!complete)
        kill(p->pid, SIGKILL);
    if (waitpid(p->pid, &status, 0) < 0)
        status = -1;
    p->pid = 0;
    if (complete && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        if (p->apply(p->store, p->buf ? p->buf : "", p->len, p->started) > 0 && p->changed)
            p->changed(p->arg);
    } else if (complete) {
        log_warn("%s: %s exited with status %d; no reconciliation", p->name, p->argv[0],
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
    free(p->buf);
    p->buf = NULL;
    p->len = 0;
}

static void poll_read_cb(loop_t *loop, loop_io_t *io, uint32_t events)
{
    he_poll_t *p = io->arg;
    (void)loop;
    (void)events;
    for (;;) {
        char buf[65536];
        ssize_t n = read(p->fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            poll_finish(p, n == 0);
            return;
        }
        if (p->len + (size_t)n > HE_POLL_OUT_MAX) {
            log_warn("%s: output larger than %u bytes; killed", p->name, HE_POLL_OUT_MAX);
            poll_finish(p, false);
            return;
        }
        char *nb = realloc(p->buf, p->len + (size_t)n);
        if (!nb) {
            poll_finish(p, false);
            return;
        }
        memcpy(nb + p->len, buf, (size_t)n);
        p->buf = nb;
        p->len += (size_t)n;
    }
}

static void poll_timer_cb(loop_t *loop, loop_timer_t *t)
{
    he_poll_t *p = t->arg;
    loop_timer_set(loop, t, p->interval_s * 1000u);
    if (p->pid > 0) {
        if (loop_now(loop) - p->started >= HE_POLL_TIMEOUT_MS) {
            log_warn("%s: no answer after %d ms; killed", p->name, HE_POLL_TIMEOUT_MS);
            poll_finish(p, false);
        }
        return;
    }
    int fds[2];
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) {
        log_warn("%s: pipe: %s", p->name, strerror(errno));
        return;
    }
    pid_t pid = fork();
    if (pid < 0) {
        log_warn("%s: fork: %s", p->name, strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return;
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, STDIN_FILENO);
        dup2(fds[1], STDOUT_FILENO);
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        execvp(p->argv[0], (char *const *)p->argv);
        _exit(127);
    }
    close(fds[1]);
    p->fd = fds[0];
    p->pid = pid;
    p->started = loop_now(loop);
    p->len = 0;
    loop_io_init(&p->io, poll_read_cb, p);
    if (loop_io_start(loop, &p->io, fds[0], LOOP_READ) < 0)
        poll_finish(p, false);
}

void he_poll_start(he_poll_t *p, loop_t *loop)
{
    p->loop = loop;
    p->fd = -1;
    loop_timer_init(&p->timer, poll_timer_cb, p);
    if (p->interval_s > 0)
        loop_timer_set(loop, &p->timer, 0);
}

void he_poll_stop(he_poll_t *p)
{
    if (!p->loop)
        return;
    loop_timer_cancel(p->loop, &p->timer);
    if (p->pid > 0)
        poll_finish(p, false);
}
