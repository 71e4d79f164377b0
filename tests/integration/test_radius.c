/*
 * tests/integration/test_radius.c: RADIUS accounting into the real
 * mus-headend, sent by freeradius-utils' radclient (real attribute
 * encodings, Cisco-AVPair included) and, where the exact same bytes must go
 * twice, by a UDP socket in the test; what the headend makes of it is read
 * over MUS/1 by the test's own client (headend_cli.h) and from its
 * --status-file. Start/Interim/Stop, a wrong secret, an unknown client, a
 * retransmission, a late Stop of an old session, Accounting-On, the machine
 * rule, groups from Class, Filter-Id and Cisco-AVPair, IPv6, stale sessions.
 * Skipped when radclient is not installed (tools/setup.sh installs it).
 * Environment: HEADEND_BIN, MUSCTL_BIN (tests/meson.build).
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "../../mus/radius.h"
#include "headend_cli.h"

#define SECRET "s3cret-radius"

static int rport;

static void need_radclient(void)
{
    if (system("command -v radclient >/dev/null 2>&1") != 0)
        cr_skip_test("radclient not installed (apt-get install freeradius-utils)");
}

/* A port the kernel just gave out (and took back) on 127.0.0.1. */
static int free_port(int type)
{
    int fd = socket(AF_INET, type, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sin);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
    close(fd);
    return ntohs(sin.sin_port);
}

/* Starts the headend with RADIUS on 127.0.0.1:port+1 and the given options. */
static void start(const char *const *opts)
{
    need_radclient();
    const char *args[32];
    size_t n = 0;
    static char listen[64], clients[256], status[256];
    headend_prepare();
    port = free_port(SOCK_STREAM);
    rport = free_port(SOCK_DGRAM);
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", rport);
    pathf(clients, sizeof(clients), "radius-clients");
    pathf(status, sizeof(status), "status.json");
    write_file("radius-clients", "# test clients\n10.255.255.0/24 other-secret\n"
               "127.0.0.1 " SECRET "\n", 0600);
    args[n++] = "--radius";
    args[n++] = listen;
    args[n++] = "--radius-clients";
    args[n++] = clients;
    args[n++] = "--status-file";
    args[n++] = status;
    for (size_t i = 0; opts && opts[i]; i++)
        args[n++] = opts[i];
    args[n] = NULL;
    headend_spawn(false, args);
}

/* Sends attrs ("A = v" lines) with radclient; true if a response came. */
static bool radclient(const char *secret, const char *attrs)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "radclient -r 1 -t 1 127.0.0.1:%d acct '%s' >/dev/null 2>&1",
             rport, secret);
    FILE *fp = popen(cmd, "w");
    cr_assert_not_null(fp);
    fputs(attrs, fp);
    int st = pclose(fp);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* A subscribed client past the snapshot (the two sessions of the file). */
static void subscribed(cli_t *c)
{
    cr_assert_eq(cli_open(c), 101);
    cr_assert_eq(cli_auth(c, "right-password"), MUS_F_AUTH_OK);
    cli_subscribe(c, NULL, false, 0);
    size_t count;
    char epoch[MUS_EPOCH_MAX];
    read_snapshot(c, &count, epoch, sizeof(epoch));
    cr_assert_eq(count, 2);
}

static void next(cli_t *c, mus_frame_t *f, enum mus_frame_type want)
{
    do
        cr_assert(cli_frame(c, f), "connection closed");
    while (f->type == MUS_F_PING);
    cr_assert_eq(f->type, want, "got %s (sid %s), wanted %s", mus_frame_type_str(f->type),
                 f->session.sid, mus_frame_type_str(want));
}

/* A Start nobody else uses: the next frame must be its add. */
static void marker(cli_t *c, const char *sid)
{
    char a[256];
    snprintf(a, sizeof(a), "Acct-Status-Type = Start\nUser-Name = \"marker\"\n"
             "Framed-IP-Address = 10.99.0.1\nAcct-Session-Id = \"%s\"\nNAS-IP-Address = 192.0.2.99\n",
             sid);
    cr_assert(radclient(SECRET, a));
    mus_frame_t f;
    next(c, &f, MUS_F_ADD);
    char want[128];
    snprintf(want, sizeof(want), "192.0.2.99/%s", sid);
    cr_expect_str_eq(f.session.sid, want);
}

/* A counter of the status file once it reaches want (3 s at most); the last value. */
static long long status_wait(const char *section, const char *key, long long want)
{
    char p[256];
    pathf(p, sizeof(p), "status.json");
    long long v = -1;
    for (int i = 0; i < 60; i++) {
        json_t *o = json_load_file(p, 0, NULL);
        json_t *s = section ? json_object_get(o, section) : o;
        v = json_integer_value(json_object_get(s, key));
        json_decref(o);
        if (v == want)
            return v;
        sleep_ms(50);
    }
    return v;
}

TestSuite(radius, .timeout = 90);

Test(radius, start_interim_stop_reach_the_proxy, .fini = headend_stop)
{
    const char *opts[] = {"--radius-groups", "avpair", NULL};
    start(opts);
    cli_t c;
    subscribed(&c);
    const char *start_attrs =
        "Acct-Status-Type = Start\nUser-Name = \"CORP\\\\alice\"\nFramed-IP-Address = 10.20.0.5\n"
        "Framed-IPv6-Address = fd00::5\nAcct-Session-Id = \"sess-1\"\nNAS-IP-Address = 192.0.2.1\n"
        "Calling-Station-Id = \"198.51.100.7\"\nCisco-AVPair = \"group=sales\"\n"
        "Cisco-AVPair = \"ip:addr-pool=p1\"\nCisco-AVPair = \"group=eng\"\n"
        "Acct-Interim-Interval = 600\n";
    cr_assert(radclient(SECRET, start_attrs), "no Accounting-Response");
    mus_frame_t f;
    next(&c, &f, MUS_F_ADD);
    cr_expect_str_eq(f.session.sid, "192.0.2.1/sess-1");
    cr_expect_str_eq(f.session.name, "alice");
    cr_expect_str_eq(f.session.domain, "CORP");
    cr_expect_eq(f.session.type, MUS_ID_USER);
    cr_expect_str_eq(f.session.groups, "sales,eng");
    cr_expect_str_eq(f.session.client_ip, "198.51.100.7");
    cr_expect_eq(f.n_ips, 2);
    cr_expect(!f.session.stale);

    /* the same session refreshed: answered, no event */
    cr_assert(radclient(SECRET, "Acct-Status-Type = Interim-Update\nUser-Name = \"CORP\\\\alice\"\n"
                        "Framed-IP-Address = 10.20.0.5\nFramed-IPv6-Address = fd00::5\n"
                        "Acct-Session-Id = \"sess-1\"\nNAS-IP-Address = 192.0.2.1\n"
                        "Calling-Station-Id = \"198.51.100.7\"\nCisco-AVPair = \"group=sales\"\n"
                        "Cisco-AVPair = \"group=eng\"\n"));
    cr_expect_eq(status_wait("radius", "interims", 1), 1);
    cr_assert(radclient(SECRET, "Acct-Status-Type = Stop\nUser-Name = \"CORP\\\\alice\"\n"
                        "Acct-Session-Id = \"sess-1\"\nNAS-IP-Address = 192.0.2.1\n"
                        "Acct-Session-Time = 30\n"));
    next(&c, &f, MUS_F_DEL);
    cr_expect_str_eq(f.session.sid, "192.0.2.1/sess-1");
    cr_expect_eq(f.n_ips, 2);
    cr_expect_eq(status_wait("radius", "stops", 1), 1);
    cr_expect_eq(status_wait(NULL, "sessions", 2), 2);
    cli_close(&c);
}

Test(radius, wrong_secret_and_unknown_client_are_dropped, .fini = headend_stop)
{
    start(NULL);
    cli_t c;
    subscribed(&c);
    cr_expect(!radclient("not-the-secret", "Acct-Status-Type = Start\nUser-Name = \"mallory\"\n"
                         "Framed-IP-Address = 10.20.0.66\nAcct-Session-Id = \"evil\"\n"),
              "a wrong secret must get no response");
    cr_expect_eq(status_wait("radius", "bad_authenticator", 1), 1, "radclient -r 1: one try");
    /* from 127.0.0.2: not in the clients file */
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in src = {.sin_family = AF_INET}, dst = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.2", &src.sin_addr);
    inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    dst.sin_port = htons((uint16_t)rport);
    cr_assert_eq(bind(fd, (struct sockaddr *)&src, sizeof(src)), 0, "%s", strerror(errno));
    radius_builder_t b;
    radius_build_begin(&b, RADIUS_CODE_ACCT_REQUEST, 1);
    radius_build_u32(&b, RADIUS_A_ACCT_STATUS_TYPE, RADIUS_ST_START);
    radius_build_str(&b, RADIUS_A_USER_NAME, "stranger");
    radius_build_attr(&b, RADIUS_A_FRAMED_IP_ADDRESS, "\x0a\x14\x00\x43", 4);
    radius_build_str(&b, RADIUS_A_ACCT_SESSION_ID, "x");
    int n = radius_build_finish(&b, (const uint8_t *)SECRET, strlen(SECRET));
    cr_assert_gt(sendto(fd, b.buf, (size_t)n, 0, (struct sockaddr *)&dst, sizeof(dst)), 0);
    close(fd);
    cr_expect_eq(status_wait("radius", "unknown_client", 1), 1);
    marker(&c, "m1");   /* neither was applied: the next event is the marker */
    cr_expect_eq(status_wait(NULL, "sessions", 3), 3);
    cr_expect_eq(status_wait("radius", "responses", 1), 1);
    cli_close(&c);
}

/* Sends the exact bytes of a packet and waits for the response (true). */
static bool send_raw(const uint8_t *pkt, size_t n)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)rport)};
    inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    struct timeval tv = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    cr_assert_eq(sendto(fd, pkt, n, 0, (struct sockaddr *)&dst, sizeof(dst)), (ssize_t)n);
    uint8_t r[64];
    ssize_t got = recv(fd, r, sizeof(r), 0);
    close(fd);
    return got == 20 && radius_verify_response(r, 20, pkt + 4, (const uint8_t *)SECRET,
                                               strlen(SECRET)) && r[1] == pkt[1];
}

Test(radius, retransmission_is_answered_but_applied_once, .fini = headend_stop)
{
    start(NULL);
    cli_t c;
    subscribed(&c);
    radius_builder_t start_pkt, stop_pkt;
    radius_build_begin(&start_pkt, RADIUS_CODE_ACCT_REQUEST, 77);
    radius_build_u32(&start_pkt, RADIUS_A_ACCT_STATUS_TYPE, RADIUS_ST_START);
    radius_build_str(&start_pkt, RADIUS_A_USER_NAME, "dave@corp.example");
    radius_build_attr(&start_pkt, RADIUS_A_FRAMED_IP_ADDRESS, "\x0a\x14\x00\x07", 4);
    radius_build_str(&start_pkt, RADIUS_A_ACCT_SESSION_ID, "dup-1");
    radius_build_str(&start_pkt, RADIUS_A_NAS_IDENTIFIER, "asa-1");
    int n1 = radius_build_finish(&start_pkt, (const uint8_t *)SECRET, strlen(SECRET));
    radius_build_begin(&stop_pkt, RADIUS_CODE_ACCT_REQUEST, 78);
    radius_build_u32(&stop_pkt, RADIUS_A_ACCT_STATUS_TYPE, RADIUS_ST_STOP);
    radius_build_str(&stop_pkt, RADIUS_A_ACCT_SESSION_ID, "dup-1");
    radius_build_str(&stop_pkt, RADIUS_A_NAS_IDENTIFIER, "asa-1");
    int n2 = radius_build_finish(&stop_pkt, (const uint8_t *)SECRET, strlen(SECRET));
    cr_assert(send_raw(start_pkt.buf, (size_t)n1));
    mus_frame_t f;
    next(&c, &f, MUS_F_ADD);
    cr_expect_str_eq(f.session.sid, "asa-1/dup-1");
    cr_expect_str_eq(f.session.name, "dave");
    cr_expect_str_eq(f.session.domain, "corp.example");
    cr_assert(send_raw(stop_pkt.buf, (size_t)n2));
    next(&c, &f, MUS_F_DEL);
    /* the Start again, byte for byte: answered, not applied (it would re-add) */
    cr_assert(send_raw(start_pkt.buf, (size_t)n1), "a retransmission is answered");
    cr_expect_eq(status_wait("radius", "duplicates", 1), 1);
    marker(&c, "m2");
    cr_expect_eq(status_wait("radius", "starts", 2), 2, "dave's Start counted once");
    cli_close(&c);
}

Test(radius, late_stop_of_an_old_session_keeps_the_new_one, .fini = headend_stop)
{
    start(NULL);
    cli_t c;
    subscribed(&c);
    cr_assert(radclient(SECRET, "Acct-Status-Type = Start\nUser-Name = \"erin\"\n"
                        "Framed-IP-Address = 10.20.0.9\nAcct-Session-Id = \"old\"\n"
                        "NAS-IP-Address = 192.0.2.1\n"));
    mus_frame_t f;
    next(&c, &f, MUS_F_ADD);
    /* a reconnect: a new session id gets the same address before the old Stop */
    cr_assert(radclient(SECRET, "Acct-Status-Type = Start\nUser-Name = \"erin\"\n"
                        "Framed-IP-Address = 10.20.0.9\nAcct-Session-Id = \"new\"\n"
                        "NAS-IP-Address = 192.0.2.1\n"));
    next(&c, &f, MUS_F_DEL);
    cr_expect_str_eq(f.session.sid, "192.0.2.1/old");
    cr_expect_str_eq(f.reason, "lost");
    next(&c, &f, MUS_F_ADD);
    cr_expect_str_eq(f.session.sid, "192.0.2.1/new");
    cr_assert(radclient(SECRET, "Acct-Status-Type = Stop\nUser-Name = \"erin\"\n"
                        "Framed-IP-Address = 10.20.0.9\nAcct-Session-Id = \"old\"\n"
                        "NAS-IP-Address = 192.0.2.1\n"), "a late Stop is still answered");
    marker(&c, "m3");   /* no del of the new session came before it */
    cli_close(&c);
    /* a fresh snapshot still maps 10.20.0.9 to the new session */
    cr_assert_eq(cli_open(&c), 101);
    cr_assert_eq(cli_auth(&c, "right-password"), MUS_F_AUTH_OK);
    cli_subscribe(&c, NULL, false, 0);
    bool found = false;
    for (;;) {
        cr_assert(cli_frame(&c, &f));
        if (f.type == MUS_F_SNAP_END)
            break;
        if (f.type == MUS_F_SNAP && strcmp(f.session.sid, "192.0.2.1/new") == 0)
            found = true;
        cr_expect_str_neq(f.session.sid, "192.0.2.1/old");
    }
    cr_expect(found, "the new session must survive the old one's Stop");
    cli_close(&c);
}

Test(radius, accounting_on_clears_only_that_nas, .fini = headend_stop)
{
    start(NULL);
    cli_t c;
    subscribed(&c);
    mus_frame_t f;
    cr_assert(radclient(SECRET, "Acct-Status-Type = Start\nUser-Name = \"a1\"\n"
                        "Framed-IP-Address = 10.21.0.1\nAcct-Session-Id = \"1\"\n"
                        "NAS-IP-Address = 192.0.2.1\n"));
    next(&c, &f, MUS_F_ADD);
    cr_assert(radclient(SECRET, "Acct-Status-Type = Start\nUser-Name = \"b1\"\n"
                        "Framed-IP-Address = 10.22.0.1\nAcct-Session-Id = \"1\"\n"
                        "NAS-IP-Address = 192.0.2.2\n"));
    next(&c, &f, MUS_F_ADD);
    cr_expect_str_eq(f.session.sid, "192.0.2.2/1", "same Acct-Session-Id, another NAS");
    cr_assert(radclient(SECRET, "Acct-Status-Type = Accounting-On\nNAS-IP-Address = 192.0.2.1\n"));
    next(&c, &f, MUS_F_DEL);
    cr_expect_str_eq(f.session.sid, "192.0.2.1/1");
    cr_expect_str_eq(f.reason, "admin");
    marker(&c, "m4");   /* 192.0.2.2's session was not removed */
    cr_expect_eq(status_wait(NULL, "sessions", 4), 4);
    cr_expect_eq(status_wait("radius", "accounting_on", 1), 1);
    cli_close(&c);
}

Test(radius, machine_rule_and_class_groups, .fini = headend_stop)
{
    const char *opts[] = {"--radius-groups", "class", "--radius-machine-user", "^host/",
                          "--radius-machine-avpair", "tunnel-kind=machine", NULL};
    start(opts);
    cli_t c;
    subscribed(&c);
    mus_frame_t f;
    cr_assert(radclient(SECRET, "Acct-Status-Type = Start\nUser-Name = \"host/pc1.corp.example\"\n"
                        "Framed-IP-Address = 10.23.0.1\nAcct-Session-Id = \"m\"\n"));
    next(&c, &f, MUS_F_ADD);
    cr_expect_eq(f.session.type, MUS_ID_MACHINE);
    cr_expect_str_eq(f.session.name, "host/pc1.corp.example");
    cr_assert(radclient(SECRET, "Acct-Status-Type = Start\nUser-Name = \"PC2$\"\n"
                        "Framed-IP-Address = 10.23.0.2\nAcct-Session-Id = \"m2\"\n"
                        "Cisco-AVPair = \"tunnel-kind=machine\"\n"));
    next(&c, &f, MUS_F_ADD);
    cr_expect_eq(f.session.type, MUS_ID_MACHINE);
    cr_assert(radclient(SECRET, "Acct-Status-Type = Start\nUser-Name = \"frank\"\n"
                        "Framed-IP-Address = 10.23.0.3\nAcct-Session-Id = \"u\"\n"
                        "Class = \"OU=eng;\"\nClass = \"ops\"\nFilter-Id = \"not-a-group\"\n"
                        "Cisco-AVPair = \"group=not-either\"\n"));
    next(&c, &f, MUS_F_ADD);
    cr_expect_eq(f.session.type, MUS_ID_USER);
    cr_expect_str_eq(f.session.groups, "eng,ops");
    cli_close(&c);
}

Test(radius, filter_id_groups, .fini = headend_stop)
{
    const char *opts[] = {"--radius-groups", "filter-id", NULL};
    start(opts);
    cli_t c;
    subscribed(&c);
    mus_frame_t f;
    cr_assert(radclient(SECRET, "Acct-Status-Type = Start\nUser-Name = \"gina\"\n"
                        "Framed-IP-Address = 10.24.0.1\nAcct-Session-Id = \"g\"\n"
                        "Class = \"OU=eng;\"\nFilter-Id = \"vpn-staff\"\n"));
    next(&c, &f, MUS_F_ADD);
    cr_expect_str_eq(f.session.groups, "vpn-staff");
    cli_close(&c);
}

Test(radius, stale_session_is_marked_then_removed, .fini = headend_stop)
{
    const char *opts[] = {"--stale-after", "2", "--stale-grace", "2", NULL};
    start(opts);
    cli_t c;
    subscribed(&c);
    mus_frame_t f;
    const char *st = "Acct-Status-Type = Start\nUser-Name = \"hank\"\n"
                     "Framed-IP-Address = 10.25.0.1\nAcct-Session-Id = \"idle\"\n"
                     "Acct-Interim-Interval = 1\n";
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_assert(radclient(SECRET, st));
    next(&c, &f, MUS_F_ADD);
    cr_expect(!f.session.stale);
    /* no Interim-Update for 2 x 1 s: stale (an upd with "stale":true) */
    next(&c, &f, MUS_F_UPD);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double dt = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    cr_expect(f.session.stale);
    cr_expect_geq(dt, 1.9, "marked after %.2f s", dt);
    cr_expect_leq(dt, 4.5, "marked after %.2f s", dt);
    cr_expect_eq(status_wait(NULL, "stale_sessions", 1), 1);
    /* an Interim-Update revives it */
    cr_assert(radclient(SECRET, "Acct-Status-Type = Interim-Update\nUser-Name = \"hank\"\n"
                        "Framed-IP-Address = 10.25.0.1\nAcct-Session-Id = \"idle\"\n"));
    next(&c, &f, MUS_F_UPD);
    cr_expect(!f.session.stale);
    /* then silence: stale again, and removed after the 2 s grace */
    next(&c, &f, MUS_F_UPD);
    cr_expect(f.session.stale);
    next(&c, &f, MUS_F_DEL);
    cr_expect_str_eq(f.reason, "idle");
    cr_expect_str_eq(f.session.sid, "127.0.0.1/idle", "no NAS attribute: the source address");
    cr_expect_eq(status_wait(NULL, "stale_marked", 2), 2);
    cr_expect_eq(status_wait(NULL, "stale_removed", 1), 1);
    cr_expect_eq(status_wait(NULL, "stale_sessions", 0), 0);
    cli_close(&c);
}
