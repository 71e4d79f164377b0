/*
 * proxy/control.c: the control socket (see control.h). Blocking I/O with
 * poll() timeouts in a thread of its own: one client at a time, which is
 * plenty for an administrator's tool. Responses are built with jansson.
 */
#include "control.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../common/cidr.h"
#include "../common/log.h"
#include "access.h"
#include "trace.h"

#define CONTROL_POLL_MS 250   /* how often the thread checks for stop */

struct control {
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int fd;
    pthread_t thread;
    atomic_bool stop;
    mus_map_t *map;
    mus_feed_t *feed;
    probes_t *probes;
    connlimit_t *connlimit;
    mus_map_reader_t *reader;
    control_cfg_fn get_cfg;
    void *cfg_arg;
};

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

static json_t *
do_map(control_t *c, const char *args)
{
    json_t *list = json_array();
    struct walk_ctx w = {list, NULL};
    char arg[CONTROL_REQUEST_MAX];

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

static json_t *
do_status(control_t *c)
{
    mus_headend_status_t st[MUS_MAP_MAX_HEADENDS];
    size_t n = c->feed ? mus_feed_status(c->feed, st, MUS_MAP_MAX_HEADENDS) : 0;
    json_t *hs = json_array(), *probes = json_array();
    mus_map_counters_t mc;
    connlimit_stats_t cs;
    probe_client_t *pc;
    uint64_t total = 0;
    size_t np;

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
    return json_pack("{s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}, s:{s:I, s:o}, "
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
}

/*
 * The policy trace: what would happen to this URL from this address, and
 * why, decided by access_decide() exactly as for a live request.
 */
static json_t *
do_trace(control_t *c, const char *args)
{
    cfgref_t *ref = c->get_cfg(c->cfg_arg);
    json_t *out = trace_run(ref->cfg, ref->policy, c->map, args);

    cfgref_put(ref);
    return out;
}

/* Waits until fd is ready for events, at most CONTROL_IO_TIMEOUT_MS. */
static int
wait_fd(int fd, short events)
{
    struct pollfd p = {.fd = fd, .events = events};
    int r = poll(&p, 1, CONTROL_IO_TIMEOUT_MS);

    return r > 0 ? 0 : -1;
}

static void
serve(control_t *c, int fd)
{
    char req[CONTROL_REQUEST_MAX];
    size_t len = 0;
    json_t *resp = NULL;
    char *text = NULL;
    size_t off = 0, tlen;

    for (;;) {
        ssize_t n;
        if (len == sizeof(req) - 1 || wait_fd(fd, POLLIN) < 0)
            goto done;
        n = read(fd, req + len, sizeof(req) - 1 - len);
        if (n <= 0)
            goto done;
        len += (size_t)n;
        if (memchr(req, '\n', len) != NULL)
            break;
    }
    req[len] = '\0';
    req[strcspn(req, "\r\n")] = '\0';
    if (strcmp(req, "status") == 0)
        resp = do_status(c);
    else if (strcmp(req, "map") == 0)
        resp = do_map(c, "");
    else if (strncmp(req, "map ", 4) == 0)
        resp = do_map(c, req + 4);
    else if (strncmp(req, "trace ", 6) == 0)
        resp = do_trace(c, req + 6);
    else
        resp = json_pack("{s:s}", "error", "unknown request (status, map [ip ADDR | user NAME])");
    mus_map_reader_quiescent(c->reader);
    if (resp == NULL)
        goto done;
    text = json_dumps(resp, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    if (text == NULL)
        goto done;
    tlen = strlen(text);
    while (off < tlen) {
        ssize_t n;
        if (wait_fd(fd, POLLOUT) < 0)
            goto done;
        n = write(fd, text + off, tlen - off);
        if (n <= 0)
            goto done;
        off += (size_t)n;
    }
    (void)!write(fd, "\n", 1);
done:
    free(text);
    json_decref(resp);
}

static void *
control_main(void *arg)
{
    control_t *c = arg;

    c->reader = mus_map_reader_register(c->map);
    if (c->reader == NULL) {
        log_error("control: cannot register as a map reader");
        return NULL;
    }
    while (!atomic_load(&c->stop)) {
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int fd;
        mus_map_reader_offline(c->reader);
        if (poll(&p, 1, CONTROL_POLL_MS) <= 0) {
            mus_map_reader_online(c->reader);
            continue;
        }
        mus_map_reader_online(c->reader);
        fd = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        serve(c, fd);
        close(fd);
        mus_map_reader_quiescent(c->reader);
    }
    mus_map_reader_unregister(c->reader);
    return NULL;
}

control_t *
control_start(const char *path, mus_map_t *map, mus_feed_t *feed, probes_t *probes,
              connlimit_t *connlimit, control_cfg_fn get_cfg, void *cfg_arg, char *err, size_t errlen)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    control_t *c;
    mode_t old;
    int r;

    if (strlen(path) >= sizeof(sun.sun_path)) {
        snprintf(err, errlen, "control socket path %s is too long", path);
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(c->path, sizeof(c->path), "%s", path);
    strcpy(sun.sun_path, path);
    c->map = map;
    c->feed = feed;
    c->probes = probes;
    c->connlimit = connlimit;
    c->get_cfg = get_cfg;
    c->cfg_arg = cfg_arg;
    atomic_init(&c->stop, false);
    {
        /* create the parent directory (0750) if missing */
        char dir[sizeof(sun.sun_path)];
        char *slash;
        snprintf(dir, sizeof(dir), "%s", path);
        slash = strrchr(dir, '/');
        if (slash != NULL && slash != dir) {
            *slash = '\0';
            if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
                snprintf(err, errlen, "control socket directory %s: %s", dir, strerror(errno));
                goto fail;
            }
        }
    }
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (c->fd < 0) {
        snprintf(err, errlen, "control socket: %s", strerror(errno));
        goto fail;
    }
    /* A socket file left by a previous run: remove it if nobody answers. */
    if (connect(c->fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
        snprintf(err, errlen, "control socket %s is in use by another musproxy", path);
        goto fail_fd;
    }
    close(c->fd);
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (c->fd < 0) {
        snprintf(err, errlen, "control socket: %s", strerror(errno));
        goto fail;
    }
    unlink(path);
    old = umask(0077);   /* mode 0600: the owner only */
    r = bind(c->fd, (struct sockaddr *)&sun, sizeof(sun));
    umask(old);
    if (r == 0)
        r = chmod(path, 0600);
    if (r < 0 || listen(c->fd, 16) < 0) {
        snprintf(err, errlen, "control socket %s: %s", path, strerror(errno));
        goto fail_fd;
    }
    if (pthread_create(&c->thread, NULL, control_main, c) != 0) {
        snprintf(err, errlen, "cannot start the control thread");
        unlink(path);
        goto fail_fd;
    }
    return c;
fail_fd:
    close(c->fd);
fail:
    free(c);
    return NULL;
}

void
control_stop(control_t *c)
{
    if (c == NULL)
        return;
    atomic_store(&c->stop, true);
    pthread_join(c->thread, NULL);
    close(c->fd);
    unlink(c->path);
    free(c);
}
