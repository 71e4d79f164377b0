/*
 * mus/headend_radius.c: the RADIUS accounting listener of mus-headend (see
 * headend_radius.h): the clients file, the datagram path (client lookup,
 * parse, authenticator, duplicate cache, apply, answer) and the mapping of
 * an Accounting-Request to a MUS/1 session. One thread (the headend's loop).
 *
 * Datagrams come in batches (recvmmsg, up to HR_RECV_BATCH per call): each
 * is applied to the store in order, then the changed callback runs once for
 * the batch (the proxies, or musproxy's map, get every change of it), and
 * only then do the batch's answers go out (sendmmsg). So an answer still
 * never precedes its change, and a burst costs two system calls per batch
 * rather than two per packet, plus one MUS/1 write per batch.
 */
#include "headend_radius.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <openssl/crypto.h>

#include "../common/cidr.h"
#include "../common/hash.h"
#include "../common/log.h"
#include "radius.h"

#define HR_DUP_SLOTS        4096u     /* direct-mapped; a collision only costs a re-apply */
#define HR_RECV_BATCH       64        /* datagrams per recvmmsg, answers per sendmmsg */
#define HR_RECV_ROUNDS      4         /* recvmmsg calls per readiness callback */
#define HR_WARN_EVERY_MS    10000     /* at most one warning per kind in this time */
#define HR_LINE_MAX         1024

typedef struct hr_client {
    cidr_t net;
    uint8_t secret[RADIUS_SECRET_MAX];
    size_t secret_len;
} hr_client_t;

typedef struct hr_dup {
    uint8_t addr[16];
    uint8_t auth[RADIUS_AUTH_LEN];
    uint8_t identifier;
    bool used;
    uint64_t at;
} hr_dup_t;

enum hr_warn { HW_UNKNOWN, HW_AUTH, HW_MALFORMED, HW_N };

/* One recvmmsg batch: the datagrams, then the answers built for them
 * (sent together once the batch is applied). */
typedef struct hr_batch {
    uint8_t buf[HR_RECV_BATCH][RADIUS_PKT_MAX + 1];
    struct sockaddr_storage from[HR_RECV_BATCH];
    struct iovec in_iov[HR_RECV_BATCH];
    struct mmsghdr in[HR_RECV_BATCH];
    uint8_t resp[HR_RECV_BATCH][RADIUS_HDR_LEN];
    struct iovec out_iov[HR_RECV_BATCH];
    struct mmsghdr out[HR_RECV_BATCH];
    unsigned n_out;
} hr_batch_t;

typedef struct hr_sock {
    struct hr *r;
    int fd;
    loop_io_t io;
} hr_sock_t;

struct hr {
    loop_t *loop;
    hs_store_t *store;
    hr_options_t opt;
    char clients_path[4096];
    hr_client_t *clients;
    size_t n_clients;
    hr_sock_t socks[HR_MAX_SOCKETS];
    size_t n_socks;
    pcre2_code *machine_re;
    pcre2_match_data *md;
    char machine_key[HR_KEY_MAX], machine_value[RADIUS_STR_MAX];
    hr_dup_t dups[HR_DUP_SLOTS];
    hr_counters_t c;
    uint64_t warned[HW_N];
    void (*changed)(void *);
    void *changed_arg;
    radius_acct_t pkt;               /* scratch */
    hr_batch_t *batch;               /* the current batch's buffers and answers */
};

int hr_group_source_parse(const char *text, enum hr_group_source *src, char *key, size_t key_cap)
{
    if (key_cap < 6)
        return -1;
    snprintf(key, key_cap, "group");
    if (strcmp(text, "class") == 0)
        *src = HR_GROUPS_CLASS;
    else if (strcmp(text, "filter-id") == 0)
        *src = HR_GROUPS_FILTER_ID;
    else if (strcmp(text, "none") == 0)
        *src = HR_GROUPS_NONE;
    else if (strcmp(text, "avpair") == 0)
        *src = HR_GROUPS_AVPAIR;
    else if (strncmp(text, "avpair:", 7) == 0 && text[7] && strlen(text + 7) < key_cap &&
             !strpbrk(text + 7, " \t=*")) {
        *src = HR_GROUPS_AVPAIR;
        snprintf(key, key_cap, "%s", text + 7);
    } else
        return -1;
    return 0;
}

/* ---- clients file ---- */

static void clients_wipe(hr_client_t *c, size_t n)
{
    if (c)
        OPENSSL_cleanse(c, n * sizeof(*c));
    free(c);
}

/* Parses the file into a new list; errors name the line, never the secret. */
static int clients_load(const char *path, hr_client_t **out, size_t *n_out, char *err,
                        size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode) || (st.st_mode & (S_IRWXG | S_IRWXO))) {
        snprintf(err, errlen, "%s: %s", path, S_ISREG(st.st_mode)
                 ? "permissions too open (it holds secrets; use chmod 600)" : "not a regular file");
        close(fd);
        return -1;
    }
    FILE *fp = fdopen(fd, "r");
    if (!fp) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    hr_client_t *list = calloc(HR_MAX_CLIENTS, sizeof(*list));
    char line[HR_LINE_MAX];
    size_t n = 0, lineno = 0;
    int rc = list ? 0 : -1;
    if (!list)
        snprintf(err, errlen, "out of memory");
    while (rc == 0 && fgets(line, sizeof(line), fp)) {
        lineno++;
        size_t len = strlen(line);
        if (len == sizeof(line) - 1 && line[len - 1] != '\n') {
            snprintf(err, errlen, "%s:%zu: line too long", path, lineno);
            rc = -1;
            break;
        }
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' ||
                           line[len - 1] == ' ' || line[len - 1] == '\t'))
            line[--len] = '\0';
        char *p = line + strspn(line, " \t");
        if (*p == '\0' || *p == '#')
            continue;
        char *sp = p + strcspn(p, " \t");
        if (*sp == '\0') {
            snprintf(err, errlen, "%s:%zu: expected ADDRESS_OR_PREFIX SECRET", path, lineno);
            rc = -1;
            break;
        }
        *sp++ = '\0';
        char *secret = sp + strspn(sp, " \t");
        size_t sl = strlen(secret);
        if (n >= HR_MAX_CLIENTS || cidr_parse(p, &list[n].net) < 0 || sl == 0 ||
            sl > RADIUS_SECRET_MAX) {
            snprintf(err, errlen, "%s:%zu: %s", path, lineno,
                     n >= HR_MAX_CLIENTS ? "too many clients"
                     : sl == 0 || sl > RADIUS_SECRET_MAX ? "secret empty or too long"
                                                         : "not an address or prefix");
            rc = -1;
            break;
        }
        memcpy(list[n].secret, secret, sl);
        list[n].secret_len = sl;
        n++;
    }
    OPENSSL_cleanse(line, sizeof(line));
    fclose(fp);
    if (rc < 0) {
        clients_wipe(list, HR_MAX_CLIENTS);
        return -1;
    }
    *out = list;
    *n_out = n;
    return 0;
}

/* The most specific prefix holding the address. */
static const hr_client_t *client_find(const hr_t *r, const struct sockaddr *sa)
{
    const hr_client_t *best = NULL;
    for (size_t i = 0; i < r->n_clients; i++)
        if (cidr_match(&r->clients[i].net, sa) &&
            (!best || r->clients[i].net.prefix > best->net.prefix))
            best = &r->clients[i];
    return best;
}

int hr_reload_clients(hr_t *r, char *err, size_t errlen)
{
    hr_client_t *list;
    size_t n;
    if (clients_load(r->clients_path, &list, &n, err, errlen) < 0)
        return -1;
    clients_wipe(r->clients, HR_MAX_CLIENTS);
    r->clients = list;
    r->n_clients = n;
    r->c.clients = n;
    return 0;
}

/* ---- mapping a request to a session ---- */

static void addr16(const struct sockaddr_storage *ss, uint8_t out[16])
{
    mus_addr_t a;
    mus_addr_from_sockaddr((const struct sockaddr *)ss, &a);
    memcpy(out, a.b, 16);
}

/* The NAS a request speaks for (Accounting-On/Off clear its sessions). */
static void nas_key(const radius_acct_t *p, const struct sockaddr_storage *from, char *buf,
                    size_t cap)
{
    char a[INET6_ADDRSTRLEN];
    if (p->has_nas_ip && inet_ntop(AF_INET, p->nas_ip, a, sizeof(a)))
        snprintf(buf, cap, "%s", a);
    else if (p->has_nas_ipv6 && inet_ntop(AF_INET6, p->nas_ipv6, a, sizeof(a)))
        snprintf(buf, cap, "%s", a);
    else if (p->nas_identifier[0])
        snprintf(buf, cap, "%.*s", (int)(cap - 1), p->nas_identifier);
    else
        cidr_addr_str((const struct sockaddr *)from, buf, cap);
}

/* Class "OU=eng;" (Windows NPS, for ASA group policies) -> "eng". */
static void class_group(const char *v, char *out, size_t cap)
{
    if (strncasecmp(v, "OU=", 3) == 0)
        v += 3;
    size_t n = strcspn(v, ";");
    snprintf(out, cap, "%.*s", (int)n, v);
}

static void add_group(char *groups, size_t cap, const char *g)
{
    size_t used = strlen(groups), gl = strlen(g);
    if (gl == 0 || strchr(g, ',') || used + (used ? 1 : 0) + gl >= cap)
        return;
    for (const char *p = g; *p; p++)
        if ((unsigned char)*p < 0x20)
            return;
    if (used)
        groups[used++] = ',';
    memcpy(groups + used, g, gl + 1);
}

static void session_groups(const hr_t *r, const radius_acct_t *p, char *groups, size_t cap)
{
    char g[RADIUS_STR_MAX], k[RADIUS_STR_MAX];
    groups[0] = '\0';
    switch (r->opt.groups) {
    case HR_GROUPS_CLASS:
        for (size_t i = 0; i < p->n_classes; i++) {
            class_group(p->classes[i], g, sizeof(g));
            add_group(groups, cap, g);
        }
        break;
    case HR_GROUPS_FILTER_ID:
        for (size_t i = 0; i < p->n_filter_ids; i++)
            add_group(groups, cap, p->filter_ids[i]);
        break;
    case HR_GROUPS_AVPAIR:
        for (size_t i = 0; i < p->n_avpairs; i++)
            if (radius_avpair_split(p->avpairs[i], k, sizeof(k), g, sizeof(g)) == 0 &&
                strcmp(k, r->opt.group_key) == 0)
                add_group(groups, cap, g);
        break;
    case HR_GROUPS_NONE:
        break;
    }
}

static bool is_machine(hr_t *r, const radius_acct_t *p)
{
    if (r->machine_re &&
        pcre2_match(r->machine_re, (PCRE2_SPTR)p->user_name, strlen(p->user_name), 0, 0, r->md,
                    NULL) >= 0)
        return true;
    if (r->machine_key[0]) {
        char k[RADIUS_STR_MAX], v[RADIUS_STR_MAX];
        for (size_t i = 0; i < p->n_avpairs; i++)
            if (radius_avpair_split(p->avpairs[i], k, sizeof(k), v, sizeof(v)) == 0 &&
                strcmp(k, r->machine_key) == 0 && strcmp(v, r->machine_value) == 0)
                return true;
    }
    return false;
}

/* "NAS/Acct-Session-Id", or a hash of it when that does not fit. */
static void session_sid(const char *nas, const char *acct_sid, char *out, size_t cap)
{
    if ((size_t)snprintf(out, cap, "%s/%s", nas, acct_sid) < cap)
        return;
    uint64_t h = hash_fnv1a64(HASH_FNV1A64_INIT, nas, strlen(nas));
    h = hash_fnv1a64(h, "/", 1);
    h = hash_fnv1a64(h, acct_sid, strlen(acct_sid));
    snprintf(out, cap, "radius-%016llx", (unsigned long long)h);
}

/* Addresses of the session: Framed-IP-Address (not the "NAS/user selects"
 * values), Framed-IPv6-Address, a /128 Framed-IPv6-Prefix. */
static size_t session_ips(const radius_acct_t *p, mus_addr_t *ips)
{
    size_t n = 0;
    static const uint8_t sel1[4] = {255, 255, 255, 254}, sel2[4] = {255, 255, 255, 255},
                         none[4] = {0, 0, 0, 0};
    if (p->has_framed_ip && memcmp(p->framed_ip, sel1, 4) != 0 &&
        memcmp(p->framed_ip, sel2, 4) != 0 && memcmp(p->framed_ip, none, 4) != 0) {
        memset(ips[n].b, 0, 10);
        ips[n].b[10] = ips[n].b[11] = 0xff;
        memcpy(ips[n].b + 12, p->framed_ip, 4);
        n++;
    }
    if (p->has_framed_ipv6)
        memcpy(ips[n++].b, p->framed_ipv6, 16);
    if (p->has_framed_prefix && p->framed_prefix_len == 128)
        memcpy(ips[n++].b, p->framed_prefix, 16);
    return n;
}

/* Start / Interim-Update. 0 (applied or nothing to apply) or -1 (store). */
static int apply_session(hr_t *r, const radius_acct_t *p, const char *nas)
{
    mus_session_t s;
    mus_addr_t ips[3];
    memset(&s, 0, sizeof(s));
    size_t n = session_ips(p, ips);
    if (n == 0 || !p->user_name[0] || !p->session_id[0]) {
        r->c.no_address++;
        log_debug("radius %s: %s of session %s (%s) has no usable address, user or session id; "
                  "not mapped", nas, radius_status_str(p->status), p->session_id, p->user_name);
        return 0;
    }
    session_sid(nas, p->session_id, s.sid, sizeof(s.sid));
    if (radius_user_split(p->user_name, s.name, sizeof(s.name), s.domain, sizeof(s.domain)) < 0) {
        snprintf(s.name, sizeof(s.name), "%s", p->user_name);
        s.domain[0] = '\0';
    }
    s.type = is_machine(r, p) ? MUS_ID_MACHINE : MUS_ID_USER;
    session_groups(r, p, s.groups, sizeof(s.groups));
    mus_addr_t tmp;
    if (mus_addr_parse(p->calling_station, &tmp) == 0)
        snprintf(s.client_ip, sizeof(s.client_ip), "%.*s", (int)sizeof(s.client_ip) - 1,
                 p->calling_station);
    const hs_entry_t *old = hs_store_find(r->store, s.sid);
    s.started = old ? old->s.started : (int64_t)time(NULL);
    uint32_t interim = p->has_interim ? p->interim_interval
                       : old && old->interim_s ? old->interim_s : r->opt.default_interim_s;
    int ev = hs_store_connect(r->store, &s, ips, n, HS_ORIGIN_RADIUS, loop_now(r->loop), false);
    if (ev < 0)
        return -1;
    hs_store_set_feed(r->store, s.sid, nas, interim);
    if (ev > 0)   /* per session: debug (thousands a second at a large site) */
        log_debug("radius %s: %s session %s %s %s%s%s groups [%s] (%d event%s)", nas,
                 radius_status_str(p->status), s.sid, s.type == MUS_ID_MACHINE ? "machine" : "user",
                 s.domain, s.domain[0] ? "\\" : "", s.name, s.groups, ev, ev == 1 ? "" : "s");
    return 0;
}

static int apply(hr_t *r, const radius_acct_t *p, const struct sockaddr_storage *from)
{
    char nas[HS_TAG_MAX], sid[MUS_SID_MAX];
    nas_key(p, from, nas, sizeof(nas));
    switch (p->status) {
    case RADIUS_ST_START:
    case RADIUS_ST_INTERIM:
        (*(p->status == RADIUS_ST_START ? &r->c.starts : &r->c.interims))++;
        return apply_session(r, p, nas);
    case RADIUS_ST_STOP: {
        r->c.stops++;
        if (!p->session_id[0])
            return 0;
        session_sid(nas, p->session_id, sid, sizeof(sid));
        int rc = hs_store_disconnect(r->store, sid, "logout");
        if (rc > 0)
            log_debug("radius %s: stop session %s", nas, sid);
        else if (rc == 0)
            log_debug("radius %s: stop of unknown session %s ignored", nas, sid);
        return rc < 0 ? -1 : 0;
    }
    case RADIUS_ST_ACCT_ON:
    case RADIUS_ST_ACCT_OFF: {
        (*(p->status == RADIUS_ST_ACCT_ON ? &r->c.acct_on : &r->c.acct_off))++;
        size_t n = hs_store_disconnect_tag(r->store, HS_ORIGIN_RADIUS, nas, "admin");
        log_info("radius %s: %s, %zu sessions of this NAS removed", nas,
                 radius_status_str(p->status), n);
        return 0;
    }
    default:
        r->c.other_status++;
        return 0;
    }
}

/* ---- datagrams ---- */

static void warn_limited(hr_t *r, enum hr_warn kind, const char *what, const char *from,
                         uint64_t count)
{
    uint64_t now = loop_now(r->loop);
    if (r->warned[kind] && now - r->warned[kind] < HR_WARN_EVERY_MS)
        return;
    r->warned[kind] = now ? now : 1;
    log_warn("radius: dropped a packet from %s: %s (%llu so far)", from, what,
             (unsigned long long)count);
}

static hr_dup_t *dup_slot(hr_t *r, const uint8_t addr[16], const radius_acct_t *p)
{
    uint32_t h = hash_fnv1a32(HASH_FNV1A32_INIT, addr, 16);
    h = hash_fnv1a32(h, &p->identifier, 1);
    h = hash_fnv1a32(h, p->authenticator, RADIUS_AUTH_LEN);
    return &r->dups[h & (HR_DUP_SLOTS - 1)];
}

/* Queues the Accounting-Response; sent with the batch (batch_flush). */
static void answer(hr_t *r, const hr_client_t *cl, const radius_acct_t *p,
                   const struct sockaddr_storage *from, socklen_t fromlen)
{
    hr_batch_t *b = r->batch;
    unsigned i = b->n_out;
    if (i >= HR_RECV_BATCH ||
        radius_build_response(p->identifier, p->authenticator, cl->secret, cl->secret_len,
                              b->resp[i], sizeof(b->resp[i])) < 0)
        return;
    b->out_iov[i] = (struct iovec){.iov_base = b->resp[i], .iov_len = RADIUS_HDR_LEN};
    b->out[i].msg_hdr = (struct msghdr){.msg_name = (void *)from, .msg_namelen = fromlen,
                                        .msg_iov = &b->out_iov[i], .msg_iovlen = 1};
    b->n_out++;
}

/* 1 if the packet changed the store, else 0. */
static int datagram(hr_t *r, const uint8_t *buf, size_t len,
                    const struct sockaddr_storage *from, socklen_t fromlen)
{
    char fs[CIDR_STRLEN];
    r->c.received++;
    const hr_client_t *cl = client_find(r, (const struct sockaddr *)from);
    if (!cl) {
        r->c.unknown_client++;
        cidr_addr_str((const struct sockaddr *)from, fs, sizeof(fs));
        warn_limited(r, HW_UNKNOWN, "not in the RADIUS clients file", fs, r->c.unknown_client);
        return 0;
    }
    radius_acct_t *p = &r->pkt;
    enum radius_err e = radius_parse(buf, len, p);
    if (e != RADIUS_OK) {
        r->c.malformed++;
        cidr_addr_str((const struct sockaddr *)from, fs, sizeof(fs));
        warn_limited(r, HW_MALFORMED, radius_err_str(e), fs, r->c.malformed);
        return 0;
    }
    if (!radius_verify_request(buf, len, cl->secret, cl->secret_len)) {
        r->c.bad_authenticator++;
        cidr_addr_str((const struct sockaddr *)from, fs, sizeof(fs));
        warn_limited(r, HW_AUTH, "wrong Request Authenticator (shared secret?)", fs,
                     r->c.bad_authenticator);
        return 0;
    }
    uint8_t a16[16];
    addr16(from, a16);
    hr_dup_t *d = dup_slot(r, a16, p);
    uint64_t now = loop_now(r->loop);
    if (d->used && now - d->at < HR_DUP_WINDOW_MS && d->identifier == p->identifier &&
        memcmp(d->addr, a16, 16) == 0 && memcmp(d->auth, p->authenticator, RADIUS_AUTH_LEN) == 0) {
        r->c.duplicates++;
        answer(r, cl, p, from, fromlen);
        return 0;
    }
    uint64_t seq = hs_store_seq(r->store);
    if (apply(r, p, from) < 0) {
        r->c.store_errors++;
        log_error("radius: cannot apply a %s (out of memory); not answered",
                  radius_status_str(p->status));
        return 0;
    }
    d->used = true;
    d->at = now;
    d->identifier = p->identifier;
    memcpy(d->addr, a16, 16);
    memcpy(d->auth, p->authenticator, RADIUS_AUTH_LEN);
    answer(r, cl, p, from, fromlen);
    return hs_store_seq(r->store) != seq;
}

/* The batch's answers, once its changes have gone to the changed callback
 * (the proxies get them before the NAS hears back). */
static void batch_flush(hr_t *r, int fd)
{
    hr_batch_t *b = r->batch;
    unsigned done = 0;
    while (done < b->n_out) {
        int n = sendmmsg(fd, b->out + done, b->n_out - done, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                log_warn("radius: sendmmsg: %s", strerror(errno));
            break;   /* the NAS retransmits; the duplicate cache answers it */
        }
        for (int i = 0; i < n; i++)
            if (b->out[done + (unsigned)i].msg_len == RADIUS_HDR_LEN)
                r->c.responses++;
        done += (unsigned)n;
    }
    b->n_out = 0;
}

static void sock_cb(loop_t *loop, loop_io_t *io, uint32_t events)
{
    hr_sock_t *s = io->arg;
    hr_t *r = s->r;
    hr_batch_t *b = r->batch;
    (void)loop;
    (void)events;
    for (int round = 0; round < HR_RECV_ROUNDS; round++) {
        for (unsigned i = 0; i < HR_RECV_BATCH; i++) {
            b->in_iov[i] = (struct iovec){.iov_base = b->buf[i], .iov_len = sizeof(b->buf[i])};
            b->in[i].msg_hdr = (struct msghdr){.msg_name = &b->from[i],
                                               .msg_namelen = sizeof(b->from[i]),
                                               .msg_iov = &b->in_iov[i], .msg_iovlen = 1};
        }
        int n = recvmmsg(s->fd, b->in, HR_RECV_BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0) {
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                log_warn("radius: recvmmsg: %s", strerror(errno));
            return;
        }
        int changed = 0;
        for (int i = 0; i < n; i++) {
            /* longer than 4096: the Length field decides, the rest is padding */
            size_t len = b->in[i].msg_len > RADIUS_PKT_MAX ? RADIUS_PKT_MAX : b->in[i].msg_len;
            changed |= datagram(r, b->buf[i], len, &b->from[i], b->in[i].msg_hdr.msg_namelen);
        }
        if (changed && r->changed)
            r->changed(r->changed_arg);
        batch_flush(r, s->fd);
        if (n < (int)HR_RECV_BATCH)
            return;
    }
}

/* ---- lifecycle ---- */

hr_t *hr_new(loop_t *loop, hs_store_t *store, const hr_options_t *opt, const int *fds, size_t n,
             void (*changed)(void *arg), void *arg, char *err, size_t errlen)
{
    hr_t *r = NULL;
    if (n == 0 || n > HR_MAX_SOCKETS || !opt->clients_path) {
        snprintf(err, errlen, "%s", !opt->clients_path ? "--radius needs --radius-clients FILE"
                                                       : "bad number of --radius sockets");
        goto fail_fds;
    }
    r = calloc(1, sizeof(*r));
    if (r)
        r->batch = calloc(1, sizeof(*r->batch));
    if (!r || !r->batch) {
        free(r);
        r = NULL;
        snprintf(err, errlen, "out of memory");
        goto fail_fds;
    }
    /* the sockets are ours from here: hr_free closes them */
    for (size_t i = 0; i < n; i++) {
        hr_sock_t *s = &r->socks[i];
        s->r = r;
        s->fd = fds[i];
        loop_io_init(&s->io, sock_cb, s);
    }
    r->n_socks = n;
    r->loop = loop;
    r->store = store;
    r->opt = *opt;
    r->changed = changed;
    r->changed_arg = arg;
    snprintf(r->clients_path, sizeof(r->clients_path), "%s", opt->clients_path);
    r->opt.clients_path = r->clients_path;
    if (hr_reload_clients(r, err, errlen) < 0)
        goto fail;
    if (opt->machine_user_re) {
        int ec;
        PCRE2_SIZE eo;
        r->machine_re = pcre2_compile((PCRE2_SPTR)opt->machine_user_re, PCRE2_ZERO_TERMINATED, 0,
                                      &ec, &eo, NULL);
        if (!r->machine_re) {
            PCRE2_UCHAR m[128];
            pcre2_get_error_message(ec, m, sizeof(m));
            snprintf(err, errlen, "--radius-machine-user: %s at offset %zu", (char *)m,
                     (size_t)eo);
            goto fail;
        }
        r->md = pcre2_match_data_create_from_pattern(r->machine_re, NULL);
        if (!r->md) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    }
    if (opt->machine_avpair &&
        radius_avpair_split(opt->machine_avpair, r->machine_key, sizeof(r->machine_key),
                            r->machine_value, sizeof(r->machine_value)) < 0) {
        snprintf(err, errlen, "--radius-machine-avpair must be KEY=VALUE");
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        hr_sock_t *s = &r->socks[i];
        if (loop_io_start(loop, &s->io, s->fd, LOOP_READ) < 0) {
            snprintf(err, errlen, "epoll: %s", strerror(errno));
            goto fail;
        }
    }
    return r;
fail:
    hr_free(r);
    return NULL;
fail_fds:
    for (size_t i = 0; i < n && i < HR_MAX_SOCKETS; i++)
        close(fds[i]);
    return NULL;
}

void hr_free(hr_t *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_socks; i++) {
        loop_io_stop(r->loop, &r->socks[i].io);
        close(r->socks[i].fd);
    }
    clients_wipe(r->clients, HR_MAX_CLIENTS);
    free(r->batch);
    pcre2_match_data_free(r->md);
    pcre2_code_free(r->machine_re);
    free(r);
}

void hr_get_counters(const hr_t *r, hr_counters_t *out)
{
    *out = r->c;
}
