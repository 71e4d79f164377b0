/*
 * proxy/privdrop.c: switching to run.user and keeping only the needed
 * capabilities (see privdrop.h), with libcap and the plain set*id calls.
 * It does not read the configuration file, open sockets or start threads.
 */
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/log.h"
#include "privdrop.h"

#define PW_BUF_MAX      16384   /* getpwnam_r / getgrnam_r scratch */
#define STATUS_LINE_MAX 256
#define LOW_PORT        1024    /* below it, binding needs CAP_NET_BIND_SERVICE */

static const struct {
    unsigned bit;               /* CONFIG_CAP_* */
    cap_value_t cap;
} cap_map[] = {
    { CONFIG_CAP_NET_ADMIN, CAP_NET_ADMIN },
    { CONFIG_CAP_NET_RAW, CAP_NET_RAW },
    { CONFIG_CAP_NET_BIND_SERVICE, CAP_NET_BIND_SERVICE },
};
#define N_CAPS (sizeof(cap_map) / sizeof(cap_map[0]))

/* The kernel's bit mask (as in /proc/PID/status CapEff) of CONFIG_CAP_* bits. */
static uint64_t
kernel_mask(unsigned bits)
{
    uint64_t m = 0;

    for (size_t i = 0; i < N_CAPS; i++)
        if (bits & cap_map[i].bit)
            m |= UINT64_C(1) << cap_map[i].cap;
    return m;
}

static void
caps_text(unsigned bits, char *buf, size_t len)
{
    size_t off = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < N_CAPS && off < len; i++)
        if (bits & cap_map[i].bit) {
            int k = snprintf(buf + off, len - off, "%s%s", off ? "," : "",
                             config_cap_name(cap_map[i].bit));
            if (k < 0)
                break;
            off += (size_t)k;
        }
    if (buf[0] == '\0')
        snprintf(buf, len, "none");
}

static uint16_t
listen_port(const config_listen_t *l)
{
    const struct sockaddr *sa = (const struct sockaddr *)&l->addr;

    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
    if (sa->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
    return 0;
}

unsigned
privdrop_needed(const config_t *cfg)
{
    unsigned need = 0;

    if (!cfg->run.caps_auto)
        return cfg->run.keep_caps;
    for (size_t i = 0; i < cfg->n_listen; i++) {
        const config_listen_t *l = &cfg->listen[i];
        if (l->tproxy)
            need |= CONFIG_CAP_NET_ADMIN | CONFIG_CAP_NET_RAW;
        if (listen_port(l) != 0 && listen_port(l) < LOW_PORT)
            need |= CONFIG_CAP_NET_BIND_SERVICE;
    }
    /* a GRE decapsulator or a WCCP agent (raw sockets, TUN) adds
     * CONFIG_CAP_NET_ADMIN | CONFIG_CAP_NET_RAW here */
    return need;
}

static int
resolve(const config_run_t *run, uid_t *uid, gid_t *gid, char *err, size_t errlen)
{
    static char buf[PW_BUF_MAX];
    struct passwd pw, *pwp = NULL;
    struct group gr, *grp = NULL;
    int r;

    r = getpwnam_r(run->user, &pw, buf, sizeof(buf), &pwp);
    if (pwp == NULL) {
        snprintf(err, errlen, "run.user %s: %s", run->user, r ? strerror(r) : "no such user");
        return -1;
    }
    *uid = pw.pw_uid;
    *gid = pw.pw_gid;
    if (run->group[0] == '\0')
        return 0;
    r = getgrnam_r(run->group, &gr, buf, sizeof(buf), &grp);
    if (grp == NULL) {
        snprintf(err, errlen, "run.group %s: %s", run->group, r ? strerror(r) : "no such group");
        return -1;
    }
    *gid = gr.gr_gid;
    return 0;
}

/* Files root opened before the switch that the daemon writes again later
 * (a log reopened on SIGUSR1, the store's journal files at the next start
 * as that user): given to the user when root created them. Like nginx does
 * with its logs. */
static void
give_file(const char *path, const char *suffix, uid_t uid, gid_t gid)
{
    char p[4200];
    struct stat st;

    if (path[0] == '\0')
        return;
    snprintf(p, sizeof(p), "%s%s", path, suffix);
    if (lstat(p, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != 0)
        return;
    if (chown(p, uid, gid) < 0)
        log_warn("run.user: cannot give %s to uid %u: %s", p, (unsigned)uid, strerror(errno));
}

static void
give_files(const config_t *cfg, uid_t uid, gid_t gid)
{
    static const char *const store_suffixes[] = { "", "-wal", "-shm", "-journal" };

    give_file(cfg->access_log, "", uid, gid);
    give_file(cfg->pol.extended_log, "", uid, gid);
    for (size_t i = 0; i < sizeof(store_suffixes) / sizeof(store_suffixes[0]); i++)
        give_file(cfg->store.path, store_suffixes[i], uid, gid);
}

/* Permitted and effective = keep (CONFIG_CAP_* bits), inheritable and
 * ambient empty. */
static int
set_caps(unsigned keep, char *err, size_t errlen)
{
    cap_t c = cap_init();
    int r = 0;

    if (c == NULL) {
        snprintf(err, errlen, "cap_init: %s", strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < N_CAPS && r == 0; i++)
        if (keep & cap_map[i].bit)
            r = cap_set_flag(c, CAP_PERMITTED, 1, &cap_map[i].cap, CAP_SET) |
                cap_set_flag(c, CAP_EFFECTIVE, 1, &cap_map[i].cap, CAP_SET);
    if (r == 0)
        r = cap_set_proc(c);
    if (r != 0)
        snprintf(err, errlen, "cap_set_proc: %s", strerror(errno));
    cap_free(c);
    if (r == 0 && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) {
        snprintf(err, errlen, "clearing the ambient capabilities: %s", strerror(errno));
        r = -1;
    }
    return r;
}

/* The bounding set loses everything but keep (needs CAP_SETPCAP: root). */
static int
drop_bound(unsigned keep, char *err, size_t errlen)
{
    uint64_t km = kernel_mask(keep);
    int max = cap_max_bits();

    for (int v = 0; v < max && v < 64; v++) {
        if (km & (UINT64_C(1) << v))
            continue;
        if (cap_drop_bound((cap_value_t)v) < 0 && errno != EINVAL) {
            snprintf(err, errlen, "cap_drop_bound(%d): %s", v, strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* One "Name:\tvalues" line of a /proc status file. */
static bool
status_field(const char *line, const char *name, const char **rest)
{
    size_t n = strlen(name);

    if (strncmp(line, name, n) != 0 || line[n] != ':')
        return false;
    *rest = line + n + 1;
    return true;
}

/* Every thread of the process: all four uids (and gids when switched) are
 * the target's, no capability outside keep in any set. */
static int
verify_threads(uid_t uid, gid_t gid, bool check_gid, uint64_t km, char *err, size_t errlen)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int bad = 0, threads = 0;

    if (d == NULL) {
        snprintf(err, errlen, "cannot check the threads: /proc/self/task: %s", strerror(errno));
        return -1;
    }
    while (bad == 0 && (e = readdir(d)) != NULL) {
        char path[64], line[STATUS_LINE_MAX];
        FILE *f;

        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/proc/self/task/%.20s/status", e->d_name);
        f = fopen(path, "re");
        if (f == NULL)
            continue;   /* the thread ended meanwhile */
        threads++;
        while (bad == 0 && fgets(line, sizeof(line), f) != NULL) {
            const char *v;
            unsigned a[4];
            unsigned long long caps;

            if ((status_field(line, "Uid", &v) || (check_gid && status_field(line, "Gid", &v)))) {
                unsigned want = line[0] == 'U' ? (unsigned)uid : (unsigned)gid;
                if (sscanf(v, "%u %u %u %u", &a[0], &a[1], &a[2], &a[3]) != 4 || a[0] != want ||
                    a[1] != want || a[2] != want || a[3] != want)
                    bad = snprintf(err, errlen, "thread %s still has %.3s %u/%u/%u/%u (wanted %u)",
                                   e->d_name, line, a[0], a[1], a[2], a[3], want);
            } else if (status_field(line, "CapEff", &v) || status_field(line, "CapPrm", &v) ||
                       status_field(line, "CapAmb", &v) || status_field(line, "CapInh", &v)) {
                if (sscanf(v, "%llx", &caps) != 1 || (caps & ~km) != 0)
                    bad = snprintf(err, errlen, "thread %s still has %.6s %016llx (kept %016" PRIx64 ")",
                                   e->d_name, line, caps, km);
            }
        }
        fclose(f);
    }
    closedir(d);
    if (bad == 0 && threads == 0) {
        snprintf(err, errlen, "cannot check the threads: no /proc/self/task entries");
        return -1;
    }
    return bad ? -1 : 0;
}

/* This thread: real, effective and saved ids; root cannot be had back;
 * permitted and effective capabilities are keep (at most, when !exact). */
static int
verify(uid_t uid, gid_t gid, bool switched, unsigned keep, bool exact, char *err, size_t errlen)
{
    uid_t r, e, s;
    gid_t rg, eg, sg;
    cap_t c;
    uint64_t km = kernel_mask(keep);

    if (getresuid(&r, &e, &s) < 0 || r != uid || e != uid || s != uid) {
        snprintf(err, errlen, "the switch did not take: uids %u/%u/%u, wanted %u", (unsigned)r,
                 (unsigned)e, (unsigned)s, (unsigned)uid);
        return -1;
    }
    if (switched && (getresgid(&rg, &eg, &sg) < 0 || rg != gid || eg != gid || sg != gid)) {
        snprintf(err, errlen, "the switch did not take: gids %u/%u/%u, wanted %u", (unsigned)rg,
                 (unsigned)eg, (unsigned)sg, (unsigned)gid);
        return -1;
    }
    if (uid != 0 && setuid(0) == 0) {
        snprintf(err, errlen, "the switch did not take: setuid(0) succeeded");
        return -1;
    }
    c = cap_get_proc();
    if (c == NULL) {
        snprintf(err, errlen, "cap_get_proc: %s", strerror(errno));
        return -1;
    }
    for (int v = 0; v < cap_max_bits() && v < 64; v++) {
        cap_flag_value_t p = CAP_CLEAR, ef = CAP_CLEAR;
        bool want = (km & (UINT64_C(1) << v)) != 0;
        cap_get_flag(c, (cap_value_t)v, CAP_PERMITTED, &p);
        cap_get_flag(c, (cap_value_t)v, CAP_EFFECTIVE, &ef);
        if ((!want && (p == CAP_SET || ef == CAP_SET)) || (want && exact && ef != CAP_SET)) {
            char *name = cap_to_name((cap_value_t)v);
            snprintf(err, errlen, "capability %s is %s after the drop", name ? name : "?",
                     want ? "missing" : "still there");
            cap_free(name);
            cap_free(c);
            return -1;
        }
    }
    cap_free(c);
    return verify_threads(uid, gid, switched, km, err, errlen);
}

/* Capabilities (CONFIG_CAP_* bits) this thread has in its permitted set. */
static unsigned
have_caps(void)
{
    cap_t c = cap_get_proc();
    unsigned have = 0;

    if (c == NULL)
        return 0;
    for (size_t i = 0; i < N_CAPS; i++) {
        cap_flag_value_t p = CAP_CLEAR;
        cap_get_flag(c, cap_map[i].cap, CAP_PERMITTED, &p);
        if (p == CAP_SET)
            have |= cap_map[i].bit;
    }
    cap_free(c);
    return have;
}

/* Root: switch to the user, keep need. */
static int
switch_user(const config_t *cfg, unsigned need, char *err, size_t errlen)
{
    uid_t uid;
    gid_t gid;
    char text[64];

    if (resolve(&cfg->run, &uid, &gid, err, errlen) < 0)
        return -1;
    if (uid == 0) {
        snprintf(err, errlen, "run.user %s is root: leave run.user empty to stay root",
                 cfg->run.user);
        return -1;
    }
    give_files(cfg, uid, gid);
    if (drop_bound(need, err, errlen) < 0)
        return -1;
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) {
        snprintf(err, errlen, "PR_SET_KEEPCAPS: %s", strerror(errno));
        return -1;
    }
    /* glibc applies these to every thread of the process */
    if (setgroups(1, &gid) < 0 || setgid(gid) < 0 || setuid(uid) < 0) {
        snprintf(err, errlen, "cannot switch to %s (uid %u, gid %u): %s", cfg->run.user,
                 (unsigned)uid, (unsigned)gid, strerror(errno));
        return -1;
    }
    if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) {
        snprintf(err, errlen, "PR_SET_KEEPCAPS: %s", strerror(errno));
        return -1;
    }
    if (set_caps(need, err, errlen) < 0)
        return -1;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        snprintf(err, errlen, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
        return -1;
    }
    if (verify(uid, gid, true, need, true, err, errlen) < 0)
        return -1;
    caps_text(need, text, sizeof(text));
    log_info("running as %s (uid %u, gid %u), capabilities kept: %s", cfg->run.user,
             (unsigned)uid, (unsigned)gid, text);
    return 0;
}

/* Not root: already the right user (or no user asked); lower the
 * capabilities we were given (systemd AmbientCapabilities=) to need. */
static int
trim(const config_t *cfg, unsigned need, char *err, size_t errlen)
{
    uid_t uid = getuid();
    unsigned have = have_caps();
    char text[64];

    if (cfg->run.user[0] != '\0') {
        uid_t want;
        gid_t gid;
        if (resolve(&cfg->run, &want, &gid, err, errlen) < 0)
            return -1;
        if (want != uid) {
            snprintf(err, errlen, "run.user %s: started as uid %u, which cannot switch users "
                     "(start as root, or as %s)", cfg->run.user, (unsigned)uid, cfg->run.user);
            return -1;
        }
    }
    if (have == 0 && kernel_mask(need) == 0)
        return verify(uid, getgid(), false, 0, false, err, errlen);
    if (set_caps(need & have, err, errlen) < 0)
        return -1;
    if (verify(uid, getgid(), false, need & have, false, err, errlen) < 0)
        return -1;
    if (need & ~have) {
        caps_text(need & ~have, text, sizeof(text));
        log_warn("started without the capabilities %s the configuration needs "
                 "(tproxy listeners, ports below %d): give them with AmbientCapabilities=",
                 text, LOW_PORT);
    }
    caps_text(need & have, text, sizeof(text));
    log_info("running as uid %u, capabilities kept: %s", (unsigned)uid, text);
    return 0;
}

int
privdrop_apply(const config_t *cfg, char *err, size_t errlen)
{
    unsigned need = privdrop_needed(cfg);

    if (getuid() == 0 || geteuid() == 0) {
        if (cfg->run.user[0] == '\0')
            return 0;   /* stay root: the development setup */
        return switch_user(cfg, need, err, errlen);
    }
    return trim(cfg, need, err, errlen);
}
