/*
 * proxy/wccp.c: the WCCPv2 cache-engine agent (see wccp.h): its thread, its
 * socket, the timers, dispatch of received messages to the service views
 * (wccp_view.c), the messages it sends, and its status document and
 * counters.
 */
#include "wccp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../common/log.h"
#include "wccp_pkt.h"
#include "wccp_view.h"

#define WCCP_INTERVAL_MIN_MS   100
#define WCCP_INTERVAL_MAX_MS   60000
#define WCCP_TICK_MAX_MS       250      /* timers are checked at least this often */
#define WCCP_PASSWORD_READ_MAX 256      /* bytes read from the password file */
#define WCCP_RECV_BATCH        64       /* datagrams handled per wake-up */

_Static_assert(CONFIG_WCCP_MAX_ROUTERS <= WCCP_ROUTERS_MAX, "router limits");
_Static_assert(CONFIG_WCCP_PORTS == WCCP_PORTS_MAX, "port limits");
_Static_assert(CONFIG_WCCP_F_SRC_IP_HASH == WCCP_SF_SRC_IP_HASH &&
               CONFIG_WCCP_F_PORTS_DEFINED == WCCP_SF_PORTS_DEFINED &&
               CONFIG_WCCP_F_DST_PORT_ALT_HASH == WCCP_SF_DST_PORT_ALT_HASH &&
               CONFIG_WCCP_GRE == WCCP_FWD_GRE && CONFIG_WCCP_L2 == WCCP_FWD_L2 &&
               CONFIG_WCCP_HASH == WCCP_ASSIGN_HASH && CONFIG_WCCP_MASK == WCCP_ASSIGN_MASK,
               "the configuration uses the wire's bits");

enum wccp_agent_state { WCCP_AGENT_NEW = 0, WCCP_AGENT_RUNNING, WCCP_AGENT_STOPPED };

typedef struct wccp_svc {
    wccp_service_t def;
    wccp_view_t view;
    uint64_t in, out, dropped;
    char last_error[WCCP_ERR_MAX];
} wccp_svc_t;

struct wccp {
    enum wccp_agent_state state;
    uint32_t self;
    uint16_t weight;
    uint32_t routers[CONFIG_WCCP_MAX_ROUTERS];
    size_t n_routers;
    char password[WCCP_PASSWORD_LEN + 1];
    bool md5;
    uint32_t interval_ms;
    int fd;
    int wake[2];
    pthread_t thread;
    pthread_mutex_t lock;          /* everything below, and the views */
    size_t n_svcs;
    wccp_svc_t svcs[CONFIG_WCCP_MAX_SERVICES];
    uint64_t in, out, send_errors;
    uint64_t drop_not_router, drop_malformed, drop_security, drop_unknown_service;
    char last_error[WCCP_ERR_MAX];
    int64_t next_hia;
    /* the thread's scratch (too large for its stack) */
    uint8_t buf[WCCP_MSG_MAX];
    wccp_msg_t msg;
    wccp_ra_t ra;
    wccp_mvlist_t mv;
};

static int64_t
mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *
ip_str(uint32_t ip, char *buf)
{
    struct in_addr a = {htonl(ip)};

    return inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN) ? buf : "?";
}

static uint32_t
interval_from_env(void)
{
    const char *s = getenv(WCCP_INTERVAL_ENV);
    char *end;
    unsigned long v;

    if (s == NULL || *s == '\0')
        return WCCP_INTERVAL_MS;
    v = strtoul(s, &end, 10);
    if (*end != '\0' || v < WCCP_INTERVAL_MIN_MS || v > WCCP_INTERVAL_MAX_MS) {
        log_warn("wccp: %s=%s ignored (use %d-%d)", WCCP_INTERVAL_ENV, s, WCCP_INTERVAL_MIN_MS,
                 WCCP_INTERVAL_MAX_MS);
        return WCCP_INTERVAL_MS;
    }
    return (uint32_t)v;
}

/* The first line of the file, cut to WCCP_PASSWORD_LEN bytes. Never logged. */
static int
read_password(const char *path, char *out, char *err, size_t errlen)
{
    char buf[WCCP_PASSWORD_READ_MAX + 1];
    ssize_t n;
    size_t len;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        snprintf(err, errlen, "wccp: password_file %s: %s", path, strerror(errno));
        return -1;
    }
    n = read(fd, buf, WCCP_PASSWORD_READ_MAX);
    close(fd);
    if (n < 0) {
        snprintf(err, errlen, "wccp: password_file %s: %s", path, strerror(errno));
        return -1;
    }
    buf[n] = '\0';
    len = strcspn(buf, "\r\n");
    if (len == 0) {
        snprintf(err, errlen, "wccp: password_file %s: the first line is empty", path);
        return -1;
    }
    if (len > WCCP_PASSWORD_LEN)
        log_warn("wccp: the password in %s is longer than %d bytes: WCCP uses only the first %d",
                 path, WCCP_PASSWORD_LEN, WCCP_PASSWORD_LEN);
    memset(out, 0, WCCP_PASSWORD_LEN + 1);
    memcpy(out, buf, len > WCCP_PASSWORD_LEN ? WCCP_PASSWORD_LEN : len);
    memset(buf, 0, sizeof(buf));
    return 0;
}

/* The address the kernel would send from towards router (host order), or 0. */
static uint32_t
route_source(uint32_t router)
{
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(WCCP_PORT),
                             .sin_addr.s_addr = htonl(router)};
    struct sockaddr_in me;
    socklen_t len = sizeof(me);
    uint32_t ip = 0;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return 0;
    if (connect(fd, (struct sockaddr *)&to, sizeof(to)) == 0 &&
        getsockname(fd, (struct sockaddr *)&me, &len) == 0)
        ip = ntohl(me.sin_addr.s_addr);
    close(fd);
    return ip;
}

static void
service_def(const config_wccp_service_t *c, wccp_service_t *s)
{
    memset(s, 0, sizeof(*s));
    s->type = c->dynamic ? WCCP_SVC_DYNAMIC : WCCP_SVC_STANDARD;
    s->id = c->id;
    if (!c->dynamic)
        return;
    s->priority = c->priority;
    s->protocol = c->protocol;
    s->flags = c->flags;
    for (size_t i = 0; i < c->n_ports && i < WCCP_PORTS_MAX; i++)
        s->ports[i] = c->ports[i];
}

wccp_t *
wccp_new(const config_wccp_t *cfg, char *err, size_t errlen)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(WCCP_PORT)};
    int pmtu = IP_PMTUDISC_DONT;
    char a[INET_ADDRSTRLEN];
    wccp_t *w;

    if (cfg->n_routers == 0) {
        snprintf(err, errlen, "wccp: no routers configured");
        return NULL;
    }
    w = calloc(1, sizeof(*w));
    if (w == NULL) {
        snprintf(err, errlen, "wccp: out of memory");
        return NULL;
    }
    w->fd = -1;
    w->wake[0] = w->wake[1] = -1;
    pthread_mutex_init(&w->lock, NULL);
    w->interval_ms = interval_from_env();
    w->weight = cfg->weight;
    w->n_routers = cfg->n_routers;
    memcpy(w->routers, cfg->routers, cfg->n_routers * sizeof(cfg->routers[0]));
    if (cfg->password_file[0] != '\0') {
        if (read_password(cfg->password_file, w->password, err, errlen) < 0)
            goto fail;
        w->md5 = true;
    }
    w->self = cfg->address ? cfg->address : route_source(cfg->routers[0]);
    if (w->self == 0) {
        snprintf(err, errlen, "wccp: no route to router %s to take our address from (set wccp.address)",
                 ip_str(cfg->routers[0], a));
        goto fail;
    }
    w->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sin.sin_addr.s_addr = htonl(w->self);
    if (w->fd < 0 || bind(w->fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
        snprintf(err, errlen, "wccp: cannot bind %s:%d: %s", ip_str(w->self, a), WCCP_PORT,
                 strerror(errno));
        goto fail;
    }
    (void)setsockopt(w->fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof(pmtu));
    if (pipe2(w->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
        snprintf(err, errlen, "wccp: pipe: %s", strerror(errno));
        goto fail;
    }
    w->n_svcs = cfg->n_services;
    for (size_t i = 0; i < cfg->n_services; i++) {
        wccp_svc_t *s = &w->svcs[i];
        wccp_view_config_t vc = {
            .self = w->self, .weight = cfg->weight, .interval_ms = w->interval_ms,
            .routers = cfg->routers, .n_routers = cfg->n_routers,
            .n_forwarding = cfg->n_forwarding, .n_ret = cfg->n_ret,
            .n_assignment = cfg->n_assignment,
        };
        service_def(&cfg->services[i], &s->def);
        vc.service_flags = s->def.type == WCCP_SVC_STANDARD ? WCCP_SF_DST_IP_HASH : s->def.flags;
        memcpy(vc.forwarding, cfg->forwarding, sizeof(vc.forwarding));
        memcpy(vc.ret, cfg->ret, sizeof(vc.ret));
        memcpy(vc.assignment, cfg->assignment, sizeof(vc.assignment));
        wccp_view_init(&s->view, &vc);
    }
    return w;
fail:
    wccp_free(w);
    return NULL;
}

/* ---- sending (lock held) ---- */

static void
set_error(char *field, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void
set_error(char *field, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(field, WCCP_ERR_MAX, fmt, ap);
    va_end(ap);
}

static void
send_to(wccp_t *w, wccp_svc_t *s, uint32_t router, int len)
{
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(WCCP_PORT),
                             .sin_addr.s_addr = htonl(router)};
    char a[INET_ADDRSTRLEN];

    if (len <= 0) {
        set_error(s->last_error, "cannot build a message: %s", wccp_strerror(len));
        return;
    }
    if (sendto(w->fd, w->buf, (size_t)len, 0, (struct sockaddr *)&to, sizeof(to)) < 0) {
        w->send_errors++;
        set_error(w->last_error, "send to %s: %s", ip_str(router, a), strerror(errno));
        return;
    }
    w->out++;
    s->out++;
}

static void
send_hia(wccp_t *w, wccp_svc_t *s, size_t r, bool shutdown)
{
    wccp_hia_t h;

    wccp_view_hia(&s->view, r, &h);
    h.password = w->md5 ? w->password : NULL;
    h.service = s->def;
    h.shutdown = shutdown;
    send_to(w, s, s->view.routers[r].addr, wccp_build_here_i_am(w->buf, sizeof(w->buf), &h));
}

/* Our Redirect_Assign to every connected router; false if there was none to make. */
static bool
send_assign(wccp_t *w, wccp_svc_t *s, bool without_self, int64_t now)
{
    char a[INET_ADDRSTRLEN];
    int rc;

    memset(&w->ra, 0, sizeof(w->ra));
    rc = wccp_view_assignment(&s->view, without_self, now, &w->ra.assign, &w->mv);
    if (rc != WCCP_OK)
        return false;
    w->ra.password = w->md5 ? w->password : NULL;
    w->ra.service = s->def;
    rc = wccp_build_redirect_assign(w->buf, sizeof(w->buf), &w->ra);
    for (size_t r = 0; r < s->view.n_routers; r++)
        if (s->view.routers[r].state == WCCP_RS_CONNECTED)
            send_to(w, s, s->view.routers[r].addr, rc);
    log_info("wccp service %u: Redirect_Assign %u sent by %s (%s, %u %s for us%s)", s->def.id,
             s->view.key_change, ip_str(w->self, a),
             s->view.assign == WCCP_ASSIGN_MASK ? "mask" : "hash", s->view.assigned_share,
             s->view.assign == WCCP_ASSIGN_MASK ? "mask values" : "buckets",
             without_self ? ", leaving" : "");
    return true;
}

/* ---- receiving ---- */

static wccp_svc_t *
find_service(wccp_t *w, const wccp_service_t *def)
{
    for (size_t i = 0; i < w->n_svcs; i++)
        if (w->svcs[i].def.type == def->type && w->svcs[i].def.id == def->id)
            return &w->svcs[i];
    return NULL;
}

static void
log_view(wccp_t *w, wccp_svc_t *s)
{
    char a[INET_ADDRSTRLEN];
    wccp_member_t m[WCCP_CACHES_MAX];
    size_t n = wccp_view_caches(&s->view, m);
    uint32_t d = wccp_view_designated(&s->view);

    log_info("wccp service %u: view %u: %zu routers, %zu caches, designated %s%s", s->def.id,
             s->view.change_number, wccp_view_connected(&s->view), n,
             d ? ip_str(d, a) : "none", d == w->self ? " (us)" : "");
}

static void
handle(wccp_t *w, const uint8_t *p, size_t len, uint32_t src, int64_t now)
{
    char a[INET_ADDRSTRLEN];
    wccp_msg_t *m = &w->msg;
    wccp_svc_t *s;
    int r, rc;

    w->in++;
    bool known = false;
    for (size_t i = 0; i < w->n_routers; i++)
        known = known || w->routers[i] == src;
    if (!known) {
        w->drop_not_router++;
        set_error(w->last_error, "datagram from %s, which is not a configured router",
                  ip_str(src, a));
        return;
    }
    rc = wccp_parse(p, len, w->md5 ? w->password : NULL, m);
    if (rc != WCCP_OK) {
        if (rc == WCCP_E_SECURITY)
            w->drop_security++;
        else
            w->drop_malformed++;
        set_error(w->last_error, "from %s: %s", ip_str(src, a), wccp_strerror(rc));
        return;
    }
    s = find_service(w, &m->service);
    if (s == NULL) {
        w->drop_unknown_service++;
        set_error(w->last_error, "from %s: service %u is not configured", ip_str(src, a),
                  m->service.id);
        return;
    }
    s->in++;
    r = wccp_view_router(&s->view, src);
    if (m->type == WCCP_I_SEE_YOU) {
        if (memcmp(&m->service, &s->def, sizeof(s->def)) != 0) {
            s->dropped++;
            set_error(s->last_error, "router %s defines service %u differently", ip_str(src, a),
                      s->def.id);
            return;
        }
        enum wccp_router_state was = s->view.routers[r].state;
        rc = wccp_view_isy(&s->view, (size_t)r, m, now);
        if (rc < 0) {
            s->dropped++;
            set_error(s->last_error, "I_See_You from %s sent to another cache", ip_str(src, a));
            return;
        }
        if (was != WCCP_RS_CONNECTED)
            log_info("wccp service %u: router %s answers (router id %s)", s->def.id,
                     ip_str(src, a), ip_str(m->router.ip, (char[INET_ADDRSTRLEN]){0}));
        if (rc > 0)
            log_view(w, s);
    } else if (m->type == WCCP_REMOVAL_QUERY && m->query.target == w->self) {
        log_info("wccp service %u: Removal_Query from %s answered", s->def.id, ip_str(src, a));
        send_hia(w, s, (size_t)r, false);
    } else {
        s->dropped++;
        set_error(s->last_error, "unexpected %s from %s", wccp_msg_type_str(m->type),
                  ip_str(src, a));
    }
}

static void
receive(wccp_t *w)
{
    static _Thread_local uint8_t dgram[WCCP_MSG_MAX + 1];

    for (int i = 0; i < WCCP_RECV_BATCH; i++) {
        struct sockaddr_in from;
        socklen_t flen = sizeof(from);
        ssize_t n = recvfrom(w->fd, dgram, sizeof(dgram), 0, (struct sockaddr *)&from, &flen);
        if (n < 0)
            return;
        pthread_mutex_lock(&w->lock);
        if (flen < sizeof(from) || from.sin_family != AF_INET) {
            w->in++;
            w->drop_not_router++;
        } else {
            handle(w, dgram, (size_t)n, ntohl(from.sin_addr.s_addr), mono_ms());
        }
        pthread_mutex_unlock(&w->lock);
    }
}

/* ---- the thread ---- */

/* Assignments go before Here_I_Ams: a Redirect_Assign must carry the receive
 * id of the router's latest I_See_You, which our next Here_I_Am renews. */
static void
timers(wccp_t *w, int64_t now)
{
    for (size_t i = 0; i < w->n_svcs; i++) {
        wccp_svc_t *s = &w->svcs[i];
        char a[INET_ADDRSTRLEN];
        for (size_t r = 0; r < s->view.n_routers; r++) {
            if (s->view.routers[r].state == WCCP_RS_CONNECTED &&
                now - s->view.routers[r].last_isy_ms >=
                    (int64_t)w->interval_ms * WCCP_VIEW_SILENT_INTERVALS) {
                log_warn("wccp service %u: router %s silent for %d intervals: out of the view",
                         s->def.id, ip_str(s->view.routers[r].addr, a), WCCP_VIEW_SILENT_INTERVALS);
                set_error(s->last_error, "router %s went silent", ip_str(s->view.routers[r].addr, a));
            }
        }
        if (wccp_view_tick(&s->view, now) > 0)
            log_view(w, s);
        if (wccp_view_assign_due(&s->view, now))
            send_assign(w, s, false, now);
    }
    if (now >= w->next_hia) {
        for (size_t i = 0; i < w->n_svcs; i++)
            for (size_t r = 0; r < w->svcs[i].view.n_routers; r++)
                send_hia(w, &w->svcs[i], r, false);
        w->next_hia = now + w->interval_ms;
    }
}

/* A designated cache hands its buckets over first; then every service says goodbye. */
static void
leave(wccp_t *w)
{
    int64_t now = mono_ms();

    pthread_mutex_lock(&w->lock);
    for (size_t i = 0; i < w->n_svcs; i++) {
        wccp_svc_t *s = &w->svcs[i];
        if (wccp_view_designated(&s->view) == w->self && s->view.assign != 0)
            send_assign(w, s, true, now);
    }
    for (size_t i = 0; i < w->n_svcs; i++)
        for (size_t r = 0; r < w->svcs[i].view.n_routers; r++)
            send_hia(w, &w->svcs[i], r, true);
    pthread_mutex_unlock(&w->lock);
    log_info("wccp: left the service groups");
}

static void *
run(void *arg)
{
    wccp_t *w = arg;

    for (;;) {
        int64_t now = mono_ms(), wait;
        struct pollfd p[2] = {{.fd = w->fd, .events = POLLIN}, {.fd = w->wake[0], .events = POLLIN}};

        pthread_mutex_lock(&w->lock);
        timers(w, now);
        now = mono_ms();
        wait = w->next_hia - now;
        for (size_t i = 0; i < w->n_svcs; i++) {
            int64_t at = wccp_view_assign_next_ms(&w->svcs[i].view, now);
            if (at - now < wait)   /* a Redirect_Assign falls due before the next Here_I_Am */
                wait = at - now;
        }
        pthread_mutex_unlock(&w->lock);
        if (wait > WCCP_TICK_MAX_MS)
            wait = WCCP_TICK_MAX_MS;
        if (wait < 1)
            wait = 1;
        if (poll(p, 2, (int)wait) < 0 && errno != EINTR) {
            log_error("wccp: poll: %s", strerror(errno));
            break;
        }
        /* what the routers sent is read first, also when told to stop: the
         * hand-over must carry the receive id of the latest I_See_You */
        if (p[0].revents & POLLIN)
            receive(w);
        if (p[1].revents)
            break;
    }
    leave(w);
    return NULL;
}

int
wccp_start(wccp_t *w)
{
    char a[INET_ADDRSTRLEN];
    int rc;

    if (w->state != WCCP_AGENT_NEW)
        return -EINVAL;
    rc = pthread_create(&w->thread, NULL, run, w);
    if (rc != 0)
        return -rc;
    w->state = WCCP_AGENT_RUNNING;
    log_info("wccp: cache engine %s, %zu routers, %zu services, interval %u ms%s",
             ip_str(w->self, a), w->n_routers, w->n_svcs, w->interval_ms,
             w->md5 ? ", MD5" : "");
    return 0;
}

void
wccp_stop(wccp_t *w)
{
    if (w == NULL || w->state != WCCP_AGENT_RUNNING)
        return;
    if (write(w->wake[1], "x", 1) < 0)
        log_warn("wccp: cannot wake the thread: %s", strerror(errno));
    pthread_join(w->thread, NULL);
    w->state = WCCP_AGENT_STOPPED;
}

void
wccp_free(wccp_t *w)
{
    if (w == NULL)
        return;
    wccp_stop(w);
    if (w->fd >= 0)
        close(w->fd);
    if (w->wake[0] >= 0)
        close(w->wake[0]);
    if (w->wake[1] >= 0)
        close(w->wake[1]);
    pthread_mutex_destroy(&w->lock);
    memset(w->password, 0, sizeof(w->password));
    free(w);
}

/* ---- status ---- */

static const char *
method_str(uint32_t m, bool assign)
{
    if (m == 0)
        return "";
    if (assign)
        return m == WCCP_ASSIGN_MASK ? "mask" : "hash";
    return m == WCCP_FWD_L2 ? "l2" : "gre";
}

static json_t *
service_json(const wccp_t *w, const wccp_svc_t *s, int64_t now, time_t wall)
{
    const wccp_view_t *v = &s->view;
    wccp_member_t m[WCCP_CACHES_MAX];
    size_t n = wccp_view_caches(v, m);
    uint32_t d = wccp_view_designated(v);
    json_t *routers = json_array(), *caches = json_array(), *ports = json_array();
    char a[INET_ADDRSTRLEN];

    for (size_t i = 0; i < n; i++)
        json_array_append_new(caches, json_pack("{s:s, s:i}", "address", ip_str(m[i].ip, a),
                                                "weight", m[i].weight));
    for (size_t r = 0; r < v->n_routers; r++) {
        const wccp_vrouter_t *vr = &v->routers[r];
        json_t *rc = json_array();
        char id[INET_ADDRSTRLEN], key[INET_ADDRSTRLEN];
        for (uint32_t i = 0; i < vr->n_caches; i++)
            json_array_append_new(rc, json_string(ip_str(vr->caches[i].ip, a)));
        json_array_append_new(routers, json_pack(
            "{s:s, s:s, s:s, s:I, s:I, s:I, s:{s:s, s:I}, s:o, s:I}",
            "address", ip_str(vr->addr, a), "router_id", ip_str(vr->id, id),
            "state", wccp_router_state_str(vr->state),
            "last_i_see_you", (json_int_t)(vr->last_isy_ms ? wall - (now - vr->last_isy_ms) / 1000 : 0),
            "receive_id", (json_int_t)vr->receive_id, "member_change", (json_int_t)vr->member_change,
            "assignment_key", "cache", vr->key.ip ? ip_str(vr->key.ip, key) : "",
            "change", (json_int_t)vr->key.change_number, "caches", rc,
            "i_see_you_count", (json_int_t)vr->isy_count));
    }
    for (int i = 0; i < WCCP_PORTS_MAX; i++)
        if (s->def.ports[i])
            json_array_append_new(ports, json_integer(s->def.ports[i]));
    return json_pack("{s:i, s:s, s:i, s:i, s:i, s:o, s:s, s:s, s:b, s:I, s:s, s:s, s:s, s:I, "
                     "s:s, s:I, s:o, s:o, s:{s:I, s:I, s:I}, s:s}",
                     "id", s->def.id, "type", s->def.type == WCCP_SVC_DYNAMIC ? "dynamic" : "standard",
                     "priority", s->def.priority, "protocol", s->def.protocol,
                     "flags", (int)s->def.flags, "ports", ports,
                     "state", wccp_service_state_str(wccp_view_state(v, now)),
                     "designated", d ? ip_str(d, a) : "", "designated_self", d != 0 && d == w->self,
                     "change_number", (json_int_t)v->change_number,
                     "forwarding", method_str(v->forward, false), "return", method_str(v->ret, false),
                     "assignment", method_str(v->assign, true),
                     "buckets", (json_int_t)wccp_view_share(v),
                     "share_of", v->assign == WCCP_ASSIGN_MASK ? "mask values" : "256 buckets",
                     "assignment_key", (json_int_t)v->key_change,
                     "routers", routers, "caches", caches,
                     "packets", "in", (json_int_t)s->in, "out", (json_int_t)s->out,
                     "dropped", (json_int_t)s->dropped, "last_error", s->last_error);
}

json_t *
wccp_status_json(wccp_t *w)
{
    char a[INET_ADDRSTRLEN];
    int64_t now = mono_ms();
    time_t wall = time(NULL);
    json_t *svcs, *out;

    if (w == NULL)
        return json_null();
    svcs = json_array();
    pthread_mutex_lock(&w->lock);
    for (size_t i = 0; i < w->n_svcs; i++)
        json_array_append_new(svcs, service_json(w, &w->svcs[i], now, wall));
    out = json_pack("{s:s, s:i, s:i, s:b, s:s, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I}, s:s, s:o}",
                    "address", ip_str(w->self, a), "weight", w->weight,
                    "interval_ms", (int)w->interval_ms, "md5", w->md5,
                    "state", w->state == WCCP_AGENT_RUNNING ? "running" : "stopped",
                    "packets", "in", (json_int_t)w->in, "out", (json_int_t)w->out,
                    "send_errors", (json_int_t)w->send_errors,
                    "dropped_not_router", (json_int_t)w->drop_not_router,
                    "dropped_malformed", (json_int_t)w->drop_malformed,
                    "dropped_security", (json_int_t)w->drop_security,
                    "dropped_unknown_service", (json_int_t)w->drop_unknown_service,
                    "last_error", w->last_error, "services", svcs);
    pthread_mutex_unlock(&w->lock);
    return out;
}

void
wccp_stats(wccp_t *w, wccp_stats_t *out)
{
    int64_t now = mono_ms();

    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&w->lock);
    out->in = w->in;
    out->out = w->out;
    out->send_errors = w->send_errors;
    out->drop_not_router = w->drop_not_router;
    out->drop_malformed = w->drop_malformed;
    out->drop_security = w->drop_security;
    out->drop_unknown_service = w->drop_unknown_service;
    out->n_services = w->n_svcs;
    for (size_t i = 0; i < w->n_svcs; i++) {
        const wccp_svc_t *s = &w->svcs[i];
        wccp_service_stats_t *o = &out->services[i];
        uint32_t d = wccp_view_designated(&s->view);
        o->id = s->def.id;
        o->dynamic = s->def.type == WCCP_SVC_DYNAMIC;
        o->state = (unsigned)wccp_view_state(&s->view, now);
        o->designated_self = d != 0 && d == w->self;
        o->routers_connected = (unsigned)wccp_view_connected(&s->view);
        o->share = wccp_view_share(&s->view);
        o->dropped = s->dropped;
    }
    pthread_mutex_unlock(&w->lock);
}
