/*
 * mus/headend.c: mus-headend, a MUS/1 headend (docs/mus-protocol.md) next to
 * ocserv (or fed by anything that can write a datagram). One thread, one
 * common/loop epoll loop, non-blocking OpenSSL TLS server.
 *
 * Usage:
 *   mus-headend --cert FILE --key FILE --password-file FILE [options]
 *     --listen ADDR:PORT      TLS listener (default 127.0.0.1:11999; IPv6 as [::1]:11999)
 *     --allow CIDR            proxy addresses allowed (repeatable; default 127.0.0.0/8, ::1)
 *     --server-id NAME        hello server_id (default "mus-headend")
 *     --socket PATH           local feed socket (Unix datagram; none by default)
 *     --socket-mode MODE      its mode, octal (default 0600)
 *     --sessions FILE         static sessions (JSON lines), loaded at start and on SIGHUP
 *     --occtl-interval SEC    poll `occtl -j show users` every SEC seconds (0 = off, default)
 *     --occtl PATH            the occtl binary (default "occtl", searched in PATH)
 *     --swanctl-interval SEC  poll `swanctl --list-sas` every SEC seconds (0 = off, default)
 *     --swanctl PATH          the swanctl binary (default "swanctl")
 *     --radius ADDR[:PORT]    RADIUS accounting listener, UDP (repeatable; port 1813 by
 *                             default; IPv6 as [::]:1813); needs --radius-clients
 *     --radius-clients FILE   "ADDRESS_OR_PREFIX SECRET" lines, mode 0600; reloaded on SIGHUP
 *     --radius-groups SRC     class (default), filter-id, avpair[:KEY] (Cisco-AVPair
 *                             KEY=group, KEY default "group") or none
 *     --radius-machine-user RE   a User-Name matching this PCRE2 pattern is a machine
 *     --radius-machine-avpair K=V a Cisco-AVPair equal to K=V makes it a machine
 *     --radius-interim SEC    interval assumed when a packet has no Acct-Interim-Interval
 *                             (default 0: such sessions never go stale)
 *     --stale-after N         no refresh for N intervals: stale (default 3)
 *     --stale-grace SEC       stale this long: removed (default 300)
 *     --status-file PATH      JSON counters, rewritten every second when they change
 *     --standby               answer 503 to every upgrade (active/standby pairs)
 *     --journal N             events kept for resume (default 10000)
 *     --kdf-iter N            PBKDF2 iterations announced in hello (default 100000)
 *     --log-level LEVEL       error|warn|info|debug (default info); logs go to stderr
 *
 * Local feed (fire and forget, one JSON object per datagram, optional '\n'):
 *   {"op":"connect","s":{session}}           session as in snap/add frames
 *   {"op":"disconnect","sid":"...","reason":"logout"}
 * The headend never answers. `musctl notify` is the ocserv connect/disconnect
 * script that writes them.
 *
 * Proxy session: TLS 1.2+ -> "GET /mus/v1" with "Upgrade: mus/1" -> 101 (403
 * source not allowed, 400 bad request, 503 standby) immediately followed by
 * the hello frame -> auth -> auth_ok (or auth_fail and close; held 2 s for an
 * address with repeated failures, mus/headend_authlimit.h) -> subscribe ->
 * snapshot or journal replay -> live add/upd/del. The password is read once at
 * start, turned into the PBKDF2 key (random salt per start) and wiped; the key
 * is wiped on exit. Signals: SIGHUP reloads --sessions and --radius-clients,
 * SIGINT/SIGTERM exit. The RADIUS listener is mus/headend_radius.c, the
 * occtl/swanctl polls mus/headend_poll.c.
 *
 * Feed datagrams may name their feed: "feed":"strongswan" (musctl notify run
 * by strongSwan's updown) puts the session in the strongSwan origin, which
 * the swanctl poll reconciles; anything else is ocserv's.
 *
 * This file: the options, set-up, signals, the main loop and teardown. The
 * proxy connections are mus/headend_conn.c (listener, accept, TLS I/O) and
 * mus/headend_session.c (MUS/1 with a proxy); the feed socket, the
 * --sessions file, RADIUS set-up, the stale sweep and the status file are
 * mus/headend_glue.c; mus/headend_int.h holds what they share.
 */
#include "headend_int.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "../common/log.h"

/* ---- signals ---- */

static void signal_cb(loop_t *loop, loop_io_t *io, uint32_t events)
{
    headend_t *he = io->arg;
    (void)loop;
    (void)events;
    struct signalfd_siginfo si;
    while (read(he->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGHUP) {
            if (he->sessions_path) {
                log_info("SIGHUP: reloading %s", he->sessions_path);
                he_sessions_load(he);
            } else {
                log_info("SIGHUP: no --sessions file to reload");
            }
            char err[256];
            if (he->radius && hr_reload_clients(he->radius, err, sizeof(err)) < 0)
                log_error("SIGHUP: --radius-clients not reloaded, the old list stays: %s", err);
            else if (he->radius)
                log_info("SIGHUP: reloaded %s", he->radius_opt.clients_path);
        } else {
            log_info("signal %u: exiting", si.ssi_signo);
            he->stop = true;
        }
    }
}

/* ---- options ---- */

static void usage(FILE *fp)
{
    fprintf(fp,
            "usage: mus-headend --cert FILE --key FILE --password-file FILE [options]\n"
            "  --listen ADDR:PORT     TLS listener (default " HE_DEFAULT_LISTEN ", IPv6 [::1]:PORT)\n"
            "  --allow CIDR           proxy addresses allowed, repeatable (default loopback)\n"
            "  --server-id NAME       server_id in hello (default mus-headend)\n"
            "  --socket PATH          local feed socket (Unix datagram)\n"
            "  --socket-mode MODE     its mode in octal (default 0600)\n"
            "  --sessions FILE        static sessions, JSON lines; reloaded on SIGHUP\n"
            "  --occtl-interval SEC   reconcile with `occtl -j show users` (0 = off)\n"
            "  --occtl PATH           occtl binary (default occtl)\n"
            "  --swanctl-interval SEC reconcile with `swanctl --list-sas` (0 = off)\n"
            "  --swanctl PATH         swanctl binary (default swanctl)\n"
            "  --radius ADDR[:PORT]   RADIUS accounting on UDP (repeatable, port " HE_RADIUS_PORT ")\n"
            "  --radius-clients FILE  ADDRESS_OR_PREFIX SECRET lines (mode 0600)\n"
            "  --radius-groups SRC    class|filter-id|avpair[:KEY]|none (default class)\n"
            "  --radius-machine-user RE    User-Name pattern (PCRE2) of machine tunnels\n"
            "  --radius-machine-avpair K=V Cisco-AVPair of machine tunnels\n"
            "  --radius-interim SEC   interval when a packet has none (default 0)\n"
            "  --stale-after N        stale after N intervals without refresh (default 3)\n"
            "  --stale-grace SEC      then removed after SEC (default 300)\n"
            "  --status-file PATH     JSON counters, rewritten when they change\n"
            "  --standby              answer 503 to upgrades\n"
            "  --journal N            events kept for resume (default 10000)\n"
            "  --kdf-iter N           PBKDF2 iterations (default 100000)\n"
            "  --log-level LEVEL      error|warn|info|debug (default info)\n"
            "feed datagrams: {\"op\":\"connect\",\"s\":{session}} | "
            "{\"op\":\"disconnect\",\"sid\":\"...\",\"reason\":\"logout\"}\n");
}

static bool parse_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *out,
                        int base)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, base);
    if (errno || end == s || *end || s[0] == '-' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static int parse_args(headend_t *he, int argc, char **argv)
{
    enum { O_LISTEN = 256, O_CERT, O_KEY, O_PW, O_ALLOW, O_SID, O_SOCK, O_SOCKMODE, O_SESS,
           O_OCI, O_OCCTL, O_STANDBY, O_JOURNAL, O_KDF, O_LOG, O_HELP, O_SWI, O_SWANCTL,
           O_RADIUS, O_RCLIENTS, O_RGROUPS, O_RMUSER, O_RMAVP, O_RINTERIM, O_STALE_AFTER,
           O_STALE_GRACE, O_STATUS };
    static const struct option opts[] = {
        {"listen", required_argument, NULL, O_LISTEN},
        {"cert", required_argument, NULL, O_CERT},
        {"key", required_argument, NULL, O_KEY},
        {"password-file", required_argument, NULL, O_PW},
        {"allow", required_argument, NULL, O_ALLOW},
        {"server-id", required_argument, NULL, O_SID},
        {"socket", required_argument, NULL, O_SOCK},
        {"socket-mode", required_argument, NULL, O_SOCKMODE},
        {"sessions", required_argument, NULL, O_SESS},
        {"occtl-interval", required_argument, NULL, O_OCI},
        {"occtl", required_argument, NULL, O_OCCTL},
        {"standby", no_argument, NULL, O_STANDBY},
        {"journal", required_argument, NULL, O_JOURNAL},
        {"kdf-iter", required_argument, NULL, O_KDF},
        {"log-level", required_argument, NULL, O_LOG},
        {"help", no_argument, NULL, O_HELP},
        {"swanctl-interval", required_argument, NULL, O_SWI},
        {"swanctl", required_argument, NULL, O_SWANCTL},
        {"radius", required_argument, NULL, O_RADIUS},
        {"radius-clients", required_argument, NULL, O_RCLIENTS},
        {"radius-groups", required_argument, NULL, O_RGROUPS},
        {"radius-machine-user", required_argument, NULL, O_RMUSER},
        {"radius-machine-avpair", required_argument, NULL, O_RMAVP},
        {"radius-interim", required_argument, NULL, O_RINTERIM},
        {"stale-after", required_argument, NULL, O_STALE_AFTER},
        {"stale-grace", required_argument, NULL, O_STALE_GRACE},
        {"status-file", required_argument, NULL, O_STATUS},
        {NULL, 0, NULL, 0},
    };
    he->listen = HE_DEFAULT_LISTEN;
    he->occtl_path = "occtl";
    he->swanctl_path = "swanctl";
    he->stale_after = 3;
    he->stale_grace_s = 300;
    snprintf(he->radius_opt.group_key, sizeof(he->radius_opt.group_key), "group");
    he->socket_mode = 0600;
    he->journal = 10000;
    he->kdf_iter = 100000;
    snprintf(he->server_id, sizeof(he->server_id), "mus-headend");
    int o;
    unsigned long v;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case O_LISTEN: he->listen = optarg; break;
        case O_CERT: he->cert = optarg; break;
        case O_KEY: he->key = optarg; break;
        case O_PW: he->pwfile = optarg; break;
        case O_SOCK: he->socket_path = optarg; break;
        case O_SESS: he->sessions_path = optarg; break;
        case O_OCCTL: he->occtl_path = optarg; break;
        case O_SWANCTL: he->swanctl_path = optarg; break;
        case O_RCLIENTS: he->radius_opt.clients_path = optarg; break;
        case O_RMUSER: he->radius_opt.machine_user_re = optarg; break;
        case O_RMAVP: he->radius_opt.machine_avpair = optarg; break;
        case O_STATUS: he->status_path = optarg; break;
        case O_RADIUS:
            if (he->n_radius >= HR_MAX_SOCKETS) {
                fprintf(stderr, "mus-headend: at most %d --radius\n", HR_MAX_SOCKETS);
                return -1;
            }
            he->radius_listen[he->n_radius++] = optarg;
            break;
        case O_RGROUPS:
            if (hr_group_source_parse(optarg, &he->radius_opt.groups, he->radius_opt.group_key,
                                      sizeof(he->radius_opt.group_key)) < 0) {
                fprintf(stderr, "mus-headend: --radius-groups: class, filter-id, avpair, "
                                "avpair:KEY or none, not %s\n", optarg);
                return -1;
            }
            break;
        case O_SWI:
        case O_RINTERIM:
        case O_STALE_GRACE:
            if (!parse_ulong(optarg, 0, 86400, &v, 10)) {
                fprintf(stderr, "mus-headend: bad --%s: %s\n", o == O_SWI ? "swanctl-interval"
                        : o == O_RINTERIM ? "radius-interim" : "stale-grace", optarg);
                return -1;
            }
            *(o == O_SWI ? &he->swanctl_interval : o == O_RINTERIM
              ? &he->radius_opt.default_interim_s : &he->stale_grace_s) = (unsigned)v;
            break;
        case O_STALE_AFTER:
            if (!parse_ulong(optarg, 1, 1000, &v, 10)) {
                fprintf(stderr, "mus-headend: --stale-after must be 1..1000\n");
                return -1;
            }
            he->stale_after = (unsigned)v;
            break;
        case O_STANDBY: he->standby = true; break;
        case O_ALLOW:
            if (he->n_allow >= HE_MAX_ALLOW || cidr_parse(optarg, &he->allow[he->n_allow]) < 0) {
                fprintf(stderr, "mus-headend: bad or too many --allow: %s\n", optarg);
                return -1;
            }
            he->n_allow++;
            break;
        case O_SID:
            if (!*optarg || strlen(optarg) >= sizeof(he->server_id)) {
                fprintf(stderr, "mus-headend: --server-id must be 1..%d bytes\n", MUS_ID_MAX - 1);
                return -1;
            }
            snprintf(he->server_id, sizeof(he->server_id), "%s", optarg);
            break;
        case O_SOCKMODE:
            if (!parse_ulong(optarg, 0, 0777, &v, 8)) {
                fprintf(stderr, "mus-headend: bad --socket-mode: %s\n", optarg);
                return -1;
            }
            he->socket_mode = (mode_t)v;
            break;
        case O_OCI:
            if (!parse_ulong(optarg, 0, 86400, &v, 10)) {
                fprintf(stderr, "mus-headend: bad --occtl-interval: %s\n", optarg);
                return -1;
            }
            he->occtl_interval = (unsigned)v;
            break;
        case O_JOURNAL:
            if (!parse_ulong(optarg, 1, 10000000, &v, 10)) {
                fprintf(stderr, "mus-headend: bad --journal: %s\n", optarg);
                return -1;
            }
            he->journal = v;
            break;
        case O_KDF:
            if (!parse_ulong(optarg, MUS_KDF_ITER_MIN, MUS_KDF_ITER_MAX, &v, 10)) {
                fprintf(stderr, "mus-headend: --kdf-iter must be %d..%d\n", MUS_KDF_ITER_MIN,
                        MUS_KDF_ITER_MAX);
                return -1;
            }
            he->kdf_iter = (uint32_t)v;
            break;
        case O_LOG: {
            enum log_level lv;
            if (log_level_parse(optarg, &lv) < 0) {
                fprintf(stderr, "mus-headend: bad --log-level: %s\n", optarg);
                return -1;
            }
            log_set_level(lv);
            break;
        }
        case 'h':
        case O_HELP:
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (he->n_radius > 0 && !he->radius_opt.clients_path) {
        fprintf(stderr, "mus-headend: --radius needs --radius-clients FILE\n");
        return -1;
    }
    if (optind != argc || !he->cert || !he->key || !he->pwfile) {
        usage(stderr);
        return -1;
    }
    if (he->n_allow == 0) {
        cidr_parse("127.0.0.0/8", &he->allow[he->n_allow++]);
        cidr_parse("::1", &he->allow[he->n_allow++]);
    }
    return 0;
}

/* ---- set-up, main loop, teardown ---- */

static int setup(headend_t *he)
{
    char err[256];
    char pw[1024];
    if (mus_read_password_file(he->pwfile, pw, sizeof(pw), err, sizeof(err)) < 0) {
        log_error("password file: %s", err);
        return -1;
    }
    uint8_t eb[16];
    int rc = mus_random(he->salt, sizeof(he->salt));
    if (rc == 0)
        rc = mus_random(eb, sizeof(eb));
    if (rc == 0)
        rc = mus_auth_derive(pw, strlen(pw), he->salt, sizeof(he->salt), he->kdf_iter, he->key_k);
    OPENSSL_cleanse(pw, sizeof(pw));
    if (rc < 0) {
        log_error("cannot derive the key (RAND_bytes or PBKDF2 failed)");
        return -1;
    }
    for (size_t i = 0; i < sizeof(eb); i++)
        snprintf(he->epoch + 2 * i, 3, "%02x", eb[i]);

    he->ctx = he_tls_server_ctx(he->cert, he->key);
    if (!he->ctx) {
        log_error("TLS: cannot use --cert %s / --key %s: %s", he->cert, he->key, he_ssl_err_str());
        return -1;
    }
    he->store = hs_store_new(he->journal);
    he->loop = loop_new();
    /* not armed until he_tick_start: teardown may cancel it whatever failed
     * in between (a zeroed timer reads as armed at heap index 0) */
    loop_timer_init(&he->tick, NULL, he);
    he->authlimit = he_authlimit_new();
    if (!he->store || !he->loop || !he->authlimit) {
        log_error("out of memory");
        return -1;
    }
    if (he_listener_start(he) < 0)
        return -1;

    if (he->socket_path && he_feed_start(he) < 0)
        return -1;

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    he->sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (he->sfd < 0)
        return -1;
    loop_io_init(&he->sio, signal_cb, he);
    if (loop_io_start(he->loop, &he->sio, he->sfd, LOOP_READ) < 0)
        return -1;

    if (he->sessions_path && he_sessions_load(he) < 0)
        return -1;
    if (he->n_radius > 0 && he_radius_setup(he) < 0)
        return -1;
    he->occtl = (he_poll_t){.name = "occtl", .argv = {he->occtl_path, "-j", "show", "users"},
                            .interval_s = he->occtl_interval, .apply = he_poll_apply_occtl,
                            .store = he->store, .changed = he_changed_cb, .arg = he};
    he->swanctl = (he_poll_t){.name = "swanctl", .argv = {he->swanctl_path, "--list-sas"},
                              .interval_s = he->swanctl_interval, .apply = he_poll_apply_swanctl,
                              .store = he->store, .changed = he_changed_cb, .arg = he};
    he_poll_start(&he->occtl, he->loop);
    he_poll_start(&he->swanctl, he->loop);
    he_tick_start(he);
    log_info("mus-headend %s listening on %s, epoch %s, %zu sessions%s%s%s", he->server_id,
             he->listen, he->epoch, hs_store_count(he->store), he->standby ? ", STANDBY" : "",
             he->socket_path ? ", feed " : "", he->socket_path ? he->socket_path : "");
    return 0;
}

static void teardown(headend_t *he)
{
    while (he->conns)
        he_conn_close(he->conns, "shutting down");
    if (he->loop)
        loop_run_once(he->loop, 0);   /* runs the deferred frees */
    he_poll_stop(&he->occtl);
    he_poll_stop(&he->swanctl);
    hr_free(he->radius);
    if (he->loop)
        loop_timer_cancel(he->loop, &he->tick);
    if (he->socket_path && he->ufd >= 0) {
        close(he->ufd);
        unlink(he->socket_path);
    }
    if (he->lfd >= 0)
        close(he->lfd);
    if (he->sfd >= 0)
        close(he->sfd);
    SSL_CTX_free(he->ctx);
    hs_store_free(he->store);
    he_authlimit_free(he->authlimit);
    loop_free(he->loop);
    OPENSSL_cleanse(he->key_k, sizeof(he->key_k));
}

int main(int argc, char **argv)
{
    static headend_t he;   /* large (scratch buffers): not on the stack */
    he.lfd = he.ufd = he.sfd = -1;
    if (parse_args(&he, argc, argv) < 0)
        return 2;
    int rc = 0;
    if (setup(&he) < 0) {
        rc = 1;
    } else {
        while (!he.stop) {
            int n = loop_run_once(he.loop, 1000);
            if (n < 0 && n != -EINTR) {
                log_error("epoll: %s", strerror(-n));
                rc = 1;
                break;
            }
        }
    }
    teardown(&he);
    return rc;
}
