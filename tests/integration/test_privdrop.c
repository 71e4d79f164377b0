/*
 * tests/integration/test_privdrop.c: who the real musproxy runs as
 * (proxy/privdrop.c) and what it tells systemd (proxy/sdnotify.c). Started
 * as root with run.user nobody it must end with nobody's uid and gid in
 * every thread and only the capabilities its listeners need (none for an
 * explicit proxy, net_admin + net_raw for a tproxy listener), still proxy a
 * request, and create its control socket as nobody; an unknown run.user
 * is a startup error naming it. Started as nobody with ambient capabilities
 * (what systemd's User= + AmbientCapabilities= do, here through setpriv) it
 * lowers them to the same set in every thread. With NOTIFY_SOCKET set it
 * sends READY=1, RELOADING=1 then READY=1 on SIGHUP, STOPPING=1 on SIGTERM.
 * Needs root (skipped otherwise) and, for the ambient case, setpriv.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "harness.h"

#define CAPS_NET_ADMIN_RAW 0x3000ull   /* CAP_NET_ADMIN (12) | CAP_NET_RAW (13) */
#define SETPRIV            "/usr/bin/setpriv"

static uid_t g_uid;
static gid_t g_gid;

static void suite_init(void)
{
    struct passwd *pw;

    signal(SIGPIPE, SIG_IGN);
    if (getuid() != 0)
        return;
    pw = getpwnam("nobody");
    cr_assert_not_null(pw, "no user nobody");
    g_uid = pw->pw_uid;
    g_gid = pw->pw_gid;
    /* nobody writes the control socket (and, started as nobody, everything) here */
    cr_assert_eq(chmod(mp_tmpdir(), 01777), 0);
}

static void suite_fini(void)
{
    mp_cleanup();
}

TestSuite(privdrop, .init = suite_init, .fini = suite_fini, .timeout = 120);

static void need_root(void)
{
    if (getuid() != 0)
        cr_skip_test("needs root");
}

/* The config file for the tests: an explicit listener, optionally a tproxy
 * one, the given run section and control socket. */
static int write_config(const char *name, const char *run, bool tproxy, char *cfg, char *sock)
{
    mp_config_t c;
    char extra[2 * MP_PATH_MAX], tp[128];

    mp_config_defaults(&c);
    c.workers = "2";
    if (tproxy) {
        snprintf(tp, sizeof tp, ", { address: \"127.0.0.1:%d\", mode: transparent, tproxy: true }",
                 mp_free_port());
        c.extra_listen = tp;
    }
    snprintf(sock, MP_PATH_MAX, "%s/%s.sock", mp_tmpdir(), name);
    if (mp_config_write(&c, name, cfg) < 0)
        return -1;
    snprintf(extra, sizeof extra, "mus: { control_socket: %s }\n%s", sock, run);
    if (mp_append_file(cfg, extra) < 0)
        return -1;
    chmod(cfg, 0644);
    return c.listen_port;
}

/* Until the process logged that it is serving (after the privilege drop:
 * its ports accept connections before). */
static void wait_ready(mp_proc_t *p)
{
    for (int i = 0; i < 250; i++) {
        char *err = mp_proc_stderr(p);
        bool ready = strstr(err, " ready: ") != NULL;
        free(err);
        if (ready)
            return;
        cr_assert(mp_proc_alive(p), "musproxy exited");
        mp_sleep_ms(20);
    }
    cr_assert_fail("musproxy never said ready");
}

/* Every thread of pid: the four uids and gids; CapEff and CapPrm == caps in
 * the main thread (and the workers it started), no more than caps in any
 * (the store writer, started before the drop, holds none). */
static void expect_threads(pid_t pid, uid_t uid, gid_t gid, unsigned long long caps)
{
    char dir[64], path[320], line[256];
    DIR *d;
    struct dirent *e;
    int threads = 0;

    snprintf(dir, sizeof dir, "/proc/%d/task", (int)pid);
    d = opendir(dir);
    cr_assert_not_null(d);
    while ((e = readdir(d)) != NULL) {
        FILE *f;
        bool saw_uid = false, saw_eff = false, main_thread = atoi(e->d_name) == (int)pid;

        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%.32s/status", dir, e->d_name);
        f = fopen(path, "r");
        if (f == NULL)
            continue;
        threads++;
        while (fgets(line, sizeof line, f) != NULL) {
            unsigned a[4];
            unsigned long long v;
            if (sscanf(line, "Uid: %u %u %u %u", &a[0], &a[1], &a[2], &a[3]) == 4) {
                saw_uid = true;
                for (int i = 0; i < 4; i++)
                    cr_expect_eq(a[i], uid, "thread %s Uid %u", e->d_name, a[i]);
            } else if (sscanf(line, "Gid: %u %u %u %u", &a[0], &a[1], &a[2], &a[3]) == 4) {
                for (int i = 0; i < 4; i++)
                    cr_expect_eq(a[i], gid, "thread %s Gid %u", e->d_name, a[i]);
            } else if (sscanf(line, "CapEff: %llx", &v) == 1) {
                saw_eff = true;
                cr_expect(main_thread ? v == caps : (v & ~caps) == 0,
                          "thread %s CapEff %llx, wanted %llx", e->d_name, v, caps);
            } else if (sscanf(line, "CapPrm: %llx", &v) == 1) {
                cr_expect(main_thread ? v == caps : (v & ~caps) == 0,
                          "thread %s CapPrm %llx, wanted %llx", e->d_name, v, caps);
            }
        }
        fclose(f);
        cr_expect(saw_uid && saw_eff, "thread %s: no Uid/CapEff line", e->d_name);
    }
    closedir(d);
    /* main, the store writer, the MUS thread, 2 workers, the control thread */
    cr_expect_geq(threads, 5, "%d threads", threads);
}

/* One request through the proxy to mp-origin: 200. */
static void expect_proxied(int pport, int oport)
{
    mp_reader_t *r = malloc(sizeof(*r));
    mp_response_t resp;
    char req[256];
    int fd = mp_connect(pport);

    cr_assert_geq(fd, 0);
    snprintf(req, sizeof req, "GET http://127.0.0.1:%d/size/100 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
             "Connection: close\r\n\r\n", oport, oport);
    cr_assert_eq(mp_send_str(fd, req), 0);
    mp_reader_init(r, fd);
    cr_assert_eq(mp_read_response(r, &resp, false, 5000), 0);
    cr_expect_eq(resp.status, 200);
    cr_expect_eq(resp.body_len, 100);
    mp_response_free(&resp);
    close(fd);
    free(r);
}

static void expect_socket_owner(const char *sock, uid_t uid)
{
    struct stat st;

    for (int i = 0; i < 100 && stat(sock, &st) < 0; i++)
        mp_sleep_ms(20);
    cr_assert_eq(stat(sock, &st), 0, "no control socket %s", sock);
    cr_expect_eq(st.st_uid, uid, "control socket owned by %u", (unsigned)st.st_uid);
}

Test(privdrop, root_start_switches_to_run_user)
{
    mp_proc_t origin, proxy;
    char cfg[MP_PATH_MAX], sock[MP_PATH_MAX];
    int oport, pport;

    need_root();
    oport = mp_origin_start(&origin, "origin", NULL, NULL);
    cr_assert_gt(oport, 0);
    pport = write_config("explicit.yaml", "run: { user: nobody }\n", false, cfg, sock);
    cr_assert_gt(pport, 0);
    cr_assert_eq(mp_proxy_start(&proxy, cfg, pport), 0);
    wait_ready(&proxy);
    expect_socket_owner(sock, g_uid);
    expect_threads(proxy.pid, g_uid, g_gid, 0);
    expect_proxied(pport, oport);
    char *err = mp_proc_stderr(&proxy);
    cr_expect(strstr(err, "running as nobody") != NULL, "%s", err);
    free(err);
    cr_expect_eq(mp_proc_stop(&proxy, SIGTERM, 5000), 0);
    mp_proc_stop(&origin, SIGTERM, 2000);
}

Test(privdrop, tproxy_listener_keeps_net_admin_and_net_raw)
{
    mp_proc_t proxy;
    char cfg[MP_PATH_MAX], sock[MP_PATH_MAX];
    int pport;

    need_root();
    pport = write_config("tproxy.yaml", "run: { user: nobody }\n", true, cfg, sock);
    cr_assert_gt(pport, 0);
    cr_assert_eq(mp_proxy_start(&proxy, cfg, pport), 0);
    wait_ready(&proxy);
    expect_socket_owner(sock, g_uid);
    expect_threads(proxy.pid, g_uid, g_gid, CAPS_NET_ADMIN_RAW);
    cr_expect_eq(mp_proc_stop(&proxy, SIGTERM, 5000), 0);
}

Test(privdrop, explicit_keep_capabilities_list)
{
    mp_proc_t proxy;
    char cfg[MP_PATH_MAX], sock[MP_PATH_MAX];
    int pport;

    need_root();
    /* a tproxy listener, but the list says none: the drop takes what it is told */
    pport = write_config("keepnone.yaml", "run: { user: nobody, keep_capabilities: [] }\n", true,
                         cfg, sock);
    cr_assert_gt(pport, 0);
    cr_assert_eq(mp_proxy_start(&proxy, cfg, pport), 0);
    wait_ready(&proxy);
    expect_threads(proxy.pid, g_uid, g_gid, 0);
    cr_expect_eq(mp_proc_stop(&proxy, SIGTERM, 5000), 0);
}

Test(privdrop, unknown_user_is_a_startup_error)
{
    char cfg[MP_PATH_MAX], sock[MP_PATH_MAX];
    char *err = NULL;
    int rc;

    need_root();
    cr_assert_gt(write_config("nouser.yaml", "run: { user: no-such-user-mp }\n", false, cfg, sock), 0);
    char *argv[] = { (char *)mp_musproxy_bin(), "-c", cfg, NULL };
    rc = mp_run(argv, 10000, &err);
    cr_expect_eq(rc, 1, "exit %d", rc);
    cr_expect(strstr(err, "musproxy: run.user no-such-user-mp: no such user") != NULL, "%s", err);
    free(err);
    cr_assert_gt(write_config("nogroup.yaml", "run: { user: nobody, group: no-such-group-mp }\n",
                              false, cfg, sock), 0);
    rc = mp_run(argv, 10000, &err);
    cr_expect_eq(rc, 1, "exit %d", rc);
    cr_expect(strstr(err, "run.group no-such-group-mp: no such group") != NULL, "%s", err);
    free(err);
}

/* systemd's User=nobody with AmbientCapabilities= for all three, through
 * setpriv: musproxy keeps only what its listeners need, in every thread. */
static void ambient_start(const char *name, bool tproxy, unsigned long long want)
{
    mp_proc_t proxy;
    char cfg[MP_PATH_MAX], sock[MP_PATH_MAX], uid[32], gid[32];
    int pport;

    need_root();
    if (access(SETPRIV, X_OK) != 0)
        cr_skip_test("no %s", SETPRIV);
    pport = write_config(name, "run: { user: nobody }\n", tproxy, cfg, sock);
    cr_assert_gt(pport, 0);
    snprintf(uid, sizeof uid, "--reuid=%u", (unsigned)g_uid);
    snprintf(gid, sizeof gid, "--regid=%u", (unsigned)g_gid);
    char *argv[] = { SETPRIV, uid, gid, "--clear-groups",
                     "--inh-caps=+net_admin,+net_raw,+net_bind_service",
                     "--ambient-caps=+net_admin,+net_raw,+net_bind_service",
                     (char *)mp_musproxy_bin(), "-c", cfg, NULL };
    cr_assert_eq(mp_proc_start(&proxy, name, argv, NULL), 0);
    cr_assert_eq(mp_wait_port(pport, 5000), 0);
    wait_ready(&proxy);
    expect_socket_owner(sock, g_uid);
    expect_threads(proxy.pid, g_uid, g_gid, want);
    char *err = mp_proc_stderr(&proxy);
    cr_expect(strstr(err, "capabilities kept") != NULL, "%s", err);
    free(err);
    cr_expect_eq(mp_proc_stop(&proxy, SIGTERM, 5000), 0);
}

Test(privdrop, ambient_start_lowers_to_nothing)
{
    ambient_start("ambient.yaml", false, 0);
}

Test(privdrop, ambient_start_keeps_what_tproxy_needs)
{
    ambient_start("ambient-tp.yaml", true, CAPS_NET_ADMIN_RAW);
}

/* The next datagram on fd, NUL-terminated, within timeout_ms ("" if none). */
static void next_notify(int fd, char *buf, size_t cap, int timeout_ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    ssize_t n = 0;

    buf[0] = '\0';
    if (poll(&p, 1, timeout_ms) == 1)
        n = recv(fd, buf, cap - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
}

Test(privdrop, sd_notify_ready_reloading_stopping)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    mp_proc_t proxy;
    char cfg[MP_PATH_MAX], sock[MP_PATH_MAX], msg[512];
    int fd, pport;

    need_root();
    pport = write_config("notify.yaml", "run: { user: nobody }\n", false, cfg, sock);
    cr_assert_gt(pport, 0);
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s/notify", mp_tmpdir());
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sun, sizeof sun), 0);
    chmod(sun.sun_path, 0777);   /* nobody sends the later ones */
    setenv("NOTIFY_SOCKET", sun.sun_path, 1);
    cr_assert_eq(mp_proxy_start(&proxy, cfg, pport), 0);
    wait_ready(&proxy);
    unsetenv("NOTIFY_SOCKET");
    next_notify(fd, msg, sizeof msg, 5000);
    cr_expect(strncmp(msg, "READY=1\n", 8) == 0, "first: '%s'", msg);
    mp_proc_signal(&proxy, SIGHUP);
    next_notify(fd, msg, sizeof msg, 5000);
    cr_expect(strncmp(msg, "RELOADING=1\nMONOTONIC_USEC=", 27) == 0, "on SIGHUP: '%s'", msg);
    next_notify(fd, msg, sizeof msg, 5000);
    cr_expect(strncmp(msg, "READY=1\n", 8) == 0, "after the reload: '%s'", msg);
    mp_proc_signal(&proxy, SIGTERM);
    next_notify(fd, msg, sizeof msg, 5000);
    cr_expect_str_eq(msg, "STOPPING=1");
    cr_expect_eq(mp_proc_wait(&proxy, 5000), 0);
    char *err = mp_proc_stderr(&proxy);
    cr_expect(strstr(err, "configuration reloaded") != NULL, "reload as nobody: %s", err);
    free(err);
    close(fd);
}
