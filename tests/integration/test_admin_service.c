/*
 * tests/integration/test_admin_service.c: the admin web UI next to the
 * service it runs in, end to end with the real binaries (the setup is in
 * admin_harness.h): the trace form against `musctl trace`, the headend page
 * against `musctl status` (escaping included), the VPN users of a real
 * mus-headend on the sessions page, the start-up refusals of a bad admin
 * section, and a reload that restarts the UI or leaves it failed while the
 * proxy serves on. Not the dashboard and reports (test_admin.c) nor logins
 * and HTTPS (test_admin_auth.c).
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <jansson.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "admin_harness.h"

/* & < > " ' as the pages write them. */
static void html_escape(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    for (; *s && o + 7 < cap; s++) {
        const char *e = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;"
                      : *s == '"' ? "&quot;" : *s == '\'' ? "&#39;" : NULL;
        if (e) {
            memcpy(out + o, e, strlen(e));
            o += strlen(e);
        } else {
            out[o++] = *s;
        }
    }
    out[o] = '\0';
}

/* What the trace form answers, next to `musctl trace` for the same request. */
static void expect_same_trace(const char *ip, const char *url_enc, const char *url)
{
    char origin[64], body[512], args[4096], u[256];
    req_t q = {.userpwd = "admin:correct horse", .origin = origin, .post = body};
    json_t *ui, *cli, *ans;
    json_error_t je;
    resp_t r;
    const char *key;
    json_t *v;

    snprintf(origin, sizeof origin, "http://127.0.0.1:%d", g_aport);
    snprintf(body, sizeof body, "ip=%s&url=%s", ip, url_enc);
    cr_assert_eq(fetch(admin_url(u, sizeof u, "/api/trace"), &q, &r), 200, "%s", r.body);
    ui = json_loads(r.body, 0, &je);
    cr_assert_not_null(ui, "%s", je.text);
    resp_free(&r);
    snprintf(args, sizeof args, "trace --socket '%s' --json --ip %s --url '%s'", g_sock, ip, url);
    cli = musctl_json(args);
    ans = json_object_get(ui, "answer");
    cr_assert(json_is_object(ans));
    cr_expect(json_equal(ans, cli), "the UI's trace differs from musctl trace for %s %s", ip, url);
    cr_expect_str_eq(json_string_value(json_object_get(ans, "action")),
                     json_string_value(json_object_get(cli, "action")));
    /* and the HTML form shows each field of it (a page: the session and its token) */
    if (g_login.cookie[0] == '\0')
        cr_assert_eq(login_as(NULL, "admin", "correct horse", &g_login, NULL), 303);
    snprintf(body, sizeof body, "ip=%s&url=%s&csrf=%s", ip, url_enc, g_login.csrf);
    q = (req_t){.cookie = g_login.cookie, .origin = origin, .post = body};
    cr_assert_eq(fetch(admin_url(u, sizeof u, "/trace"), &q, &r), 200, "%s", r.body);
    json_object_foreach(cli, key, v) {
        if (!json_is_string(v))
            continue;
        char cellv[600];
        snprintf(cellv, sizeof cellv, "<td id=\"trace-%s\">%s</td>", key, json_string_value(v));
        cr_expect(strstr(r.body, cellv) != NULL, "the trace page lacks %s", cellv);
    }
    resp_free(&r);
    json_decref(ui);
    json_decref(cli);
}

Test(admin, trace_form_answers_like_musctl)
{
    start();
    expect_same_trace("127.0.0.2", "http%3A%2F%2Fgames.test%2Fx", "http://games.test/x");
    expect_same_trace("127.0.0.4", "http%3A%2F%2Fgames.test%2Fx", "http://games.test/x");
    {
        char u[128], enc[256];
        snprintf(u, sizeof u, "http://127.0.0.1:%d/size/5", g_oport);
        snprintf(enc, sizeof enc, "http%%3A%%2F%%2F127.0.0.1%%3A%d%%2Fsize%%2F5", g_oport);
        expect_same_trace("127.0.0.3", enc, u);
    }
}

Test(admin, headend_page_shows_the_status)
{
    char args[MP_PATH_MAX + 64];
    json_t *st, *h, *d, *ph;
    resp_t r;

    start();
    snprintf(args, sizeof args, "status --json --socket '%s'", g_sock);
    /* the session to the (absent) headend has failed once and waits 60 s */
    for (int i = 0; i < 100; i++) {
        st = musctl_json(args);
        h = json_array_get(json_object_get(st, "headends"), 0);
        if (h && json_string_length(json_object_get(h, "last_error")) > 0 &&
            strcmp(json_string_value(json_object_get(h, "state")), "idle") == 0)
            break;
        json_decref(st);
        st = NULL;
        mp_sleep_ms(50);
    }
    cr_assert_not_null(st, "the headend session never failed");
    d = admin_json("/api/headends");
    ph = json_array_get(json_object_get(d, "headends"), 0);
    cr_assert_not_null(ph);
    static const char *const keys[] = {"name", "state", "address", "last_error"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        cr_expect_str_eq(json_string_value(json_object_get(ph, keys[i])),
                         json_string_value(json_object_get(h, keys[i])), "%s", keys[i]);
    cr_expect_eq(json_integer_value(json_object_get(ph, "reconnects")),
                 json_integer_value(json_object_get(h, "reconnects")));
    cr_expect_eq(json_integer_value(json_object_get(ph, "entries")), 0);
    cr_assert_eq(admin_get("/headends", &r), 200);
    {
        char row[1024], esc[1024];
        snprintf(row, sizeof row, "<tr><td>lab-asa</td><td>%s</td><td>%s</td>",
                 json_string_value(json_object_get(h, "state")),
                 json_string_value(json_object_get(h, "address")));
        cr_expect(strstr(r.body, row) != NULL, "no %s in\n%s", row, r.body);
        html_escape(json_string_value(json_object_get(h, "last_error")), esc, sizeof esc);
        cr_expect(strstr(r.body, esc) != NULL, "the page lacks the last error %s", esc);
    }
    resp_free(&r);
    json_decref(d);
    json_decref(st);
}

/* Remote users from a real mus-headend: who is connected now, on the page
 * and in the API, is what `musctl map` says. */
Test(admin, sessions_page_shows_the_vpn_users)
{
    static mp_proc_t headend;
    char cert[MP_PATH_MAX], key[MP_PATH_MAX], feed[MP_PATH_MAX], sessions[MP_PATH_MAX];
    char listen[64], args[MP_PATH_MAX + 64];
    json_t *d, *m, *row, *mrow;
    resp_t r;

    cr_assert_eq(mp_make_certs(g_ca, cert, key), 0);
    mp_path(g_secret, "mus.secret");
    cr_assert_eq(mp_write_file(g_secret, "correct horse battery staple\n"), 0);
    chmod(g_secret, 0600);
    mp_path(feed, "feed.sock");
    mp_path(sessions, "sessions.jsonl");
    cr_assert_eq(mp_write_file(sessions,
        "{\"sid\":\"s-alice\",\"ips\":[\"127.0.0.2\"],\"id\":{\"type\":\"user\",\"name\":\"alice\","
        "\"domain\":\"CORP\"},\"groups\":[\"eng\"],\"started\":1763800000,"
        "\"client_ip\":\"198.51.100.7\",\"tunnel\":\"ssl\"}\n"), 0);
    g_hport = mp_free_port();
    snprintf(listen, sizeof listen, "127.0.0.1:%d", g_hport);
    char *argv[] = {(char *)bin("HEADEND_BIN"), "--cert", cert, "--key", key, "--password-file",
                    g_secret, "--listen", listen, "--socket", feed, "--sessions", sessions,
                    "--kdf-iter", "10000", "--server-id", "lab-asa", NULL};
    cr_assert_eq(mp_proc_start(&headend, "mus-headend", argv, NULL), 0);
    cr_assert_eq(mp_wait_port(g_hport, 5000), 0, "mus-headend did not listen");
    start();
    snprintf(args, sizeof args, "map --json --socket '%s'", g_sock);
    m = NULL;
    for (int i = 0; i < 100; i++) {
        m = musctl_json(args);
        if (json_array_size(json_object_get(m, "entries")) == 1)
            break;
        json_decref(m);
        m = NULL;
        mp_sleep_ms(50);
    }
    cr_assert_not_null(m, "alice never reached the map");
    mrow = json_array_get(json_object_get(m, "entries"), 0);
    d = admin_json("/api/sessions");
    cr_expect_eq(json_integer_value(json_object_get(d, "connected_total")), 1);
    row = json_array_get(json_object_get(d, "connected"), 0);
    cr_assert_not_null(row);
    cr_expect(json_equal(row, mrow), "the page's entry differs from musctl map");
    cr_expect_str_eq(json_string_value(json_object_get(row, "name")), "alice");
    cr_expect_str_eq(json_string_value(json_object_get(row, "ip")), "127.0.0.2");
    cr_expect_str_eq(json_string_value(json_object_get(row, "client_ip")), "198.51.100.7");
    cr_expect_str_eq(json_string_value(json_object_get(row, "headend")), "lab-asa");
    json_decref(d);
    json_decref(m);
    cr_assert_eq(admin_get("/sessions", &r), 200);
    cr_expect(strstr(r.body, ">alice</a></td><td>CORP</td><td>user</td><td>127.0.0.2</td>"
                             "<td>198.51.100.7</td><td>lab-asa</td>") != NULL, "%s", r.body);
    resp_free(&r);
    /* and the headend page says the session is up */
    d = admin_json("/api/headends");
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(d, "headends"), 0),
                                                       "state")), "established");
    cr_expect_eq(json_integer_value(json_object_get(json_array_get(json_object_get(d, "headends"), 0),
                                                    "entries")), 1);
    json_decref(d);
}

/* musproxy with the given admin section: its exit status (or -2 while it
 * still runs after 2 s), its stderr in *err. */
static int run_with_admin(const char *admin_yaml, char **err)
{
    g_oport = g_oport ? g_oport : 1;
    g_hport = g_hport ? g_hport : mp_free_port();
    mp_path(g_sock, "musproxy.sock");
    mp_path(g_upw, "users.passwd");
    mp_path(g_apw, "admin.passwd");
    if (access(g_upw, R_OK) != 0)
        passwd(g_upw, "alice", "alice-pw");
    write_config(admin_yaml);
    char *argv[] = {(char *)mp_musproxy_bin(), "-c", g_cfg, NULL};
    cr_assert_eq(mp_proc_start(&g_proxy, "musproxy", argv, NULL), 0);
    if (mp_proc_wait(&g_proxy, 2000) == 0) {
        *err = mp_proc_stderr(&g_proxy);
        return WIFEXITED(g_proxy.status) ? WEXITSTATUS(g_proxy.status) : -1;
    }
    *err = mp_proc_stderr(&g_proxy);
    return -2;
}

Test(admin, startup_refusals)
{
    char yaml[2048], *err = NULL, url[128], args[MP_PATH_MAX + 64];
    const char *why;
    json_t *st;
    int port = mp_free_port();
    resp_t r;
    req_t q = {.userpwd = "admin:correct horse"};

    /* a non-loopback listen address without allow_remote: not started at all */
    snprintf(yaml, sizeof yaml, "admin:\n  listen: 0.0.0.0:%d\n  password_file: %s\n", port,
             mp_path(g_apw, "admin.passwd"));
    cr_expect_eq(run_with_admin(yaml, &err), 1, "%s", err);
    cr_expect(strstr(err, "admin listen address '0.0.0.0:") != NULL &&
              strstr(err, "is not a loopback address: the admin UI would be reachable from "
                          "other hosts (set allow_remote: true to allow it)") != NULL, "%s", err);
    cr_expect(strstr(err, "proxy.yaml:") != NULL, "no file:line in %s", err);
    free(err);

    /* no password file: the proxy serves, the UI does not start, and says why */
    snprintf(yaml, sizeof yaml, "admin:\n  listen: 127.0.0.1:%d\n  password_file: %s\n", port,
             mp_path(g_apw, "missing.passwd"));
    cr_expect_eq(run_with_admin(yaml, &err), -2, "musproxy exited: %s", err);
    free(err);
    mp_sleep_ms(300);
    err = mp_proc_stderr(&g_proxy);
    cr_expect(strstr(err, "admin: cannot start: not started: password file ") != NULL &&
              strstr(err, "missing.passwd: No such file or directory (create an account with: "
                          "musctl passwd admin --file ") != NULL, "%s", err);
    free(err);
    cr_expect_neq(mp_wait_port(port, 300), 0, "something listens on the admin port");
    /* and the status says so, beside the services that run */
    snprintf(args, sizeof args, "status --json --socket '%s'", g_sock);
    st = musctl_json(args);
    cr_expect_str_eq(service_state(st, "admin", &why), "failed");
    cr_expect(strstr(why, "not started") != NULL, "%s", why);
    cr_expect_str_eq(service_state(st, "workers", &why), "running");
    cr_expect_str_eq(service_state(st, "feed", &why), "running");
    cr_expect_str_eq(service_state(st, "control", &why), "running");
    cr_expect_str_eq(service_state(st, "wccp", &why), "off");
    cr_expect_str_eq(service_state(st, "gre", &why), "off");
    json_decref(st);
    mp_proc_stop(&g_proxy, SIGTERM, 5000);

    /* allow_remote: true serves on every address, with a warning */
    passwd(mp_path(g_apw, "admin.passwd"), "admin", "correct horse");
    snprintf(yaml, sizeof yaml,
             "admin:\n  listen: 0.0.0.0:%d\n  password_file: %s\n  allow_remote: true\n", port,
             g_apw);
    cr_expect_eq(run_with_admin(yaml, &err), -2, "musproxy exited: %s", err);
    free(err);
    cr_assert_eq(mp_wait_port(port, 3000), 0);
    err = mp_proc_stderr(&g_proxy);
    cr_expect(strstr(err, "not a loopback address (allow_remote: true)") != NULL, "%s", err);
    free(err);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/api/store", port);
    cr_expect_eq(fetch(url, &q, &r), 200, "%s", r.body);
    resp_free(&r);
    mp_proc_stop(&g_proxy, SIGTERM, 5000);
}

/* SIGHUP with a changed admin section restarts the UI on its new address;
 * a broken one leaves it failed (with the reason) while the proxy serves,
 * and a good one brings it back. */
Test(admin, reload_restarts_the_admin_ui)
{
    char yaml[2048], *err = NULL, url[128], args[MP_PATH_MAX + 64];
    int p1 = mp_free_port(), p2 = mp_free_port();
    const char *why;
    json_t *st;
    resp_t r;
    req_t q = {.userpwd = "admin:correct horse"};

    passwd(mp_path(g_apw, "admin.passwd"), "admin", "correct horse");
    snprintf(yaml, sizeof yaml, "admin:\n  listen: 127.0.0.1:%d\n  password_file: %s\n", p1, g_apw);
    cr_assert_eq(run_with_admin(yaml, &err), -2, "musproxy exited: %s", err);
    free(err);
    cr_assert_eq(mp_wait_port(p1, 3000), 0);

    /* a new port: served there, not on the old one */
    snprintf(yaml, sizeof yaml, "admin:\n  listen: 127.0.0.1:%d\n  password_file: %s\n", p2, g_apw);
    write_config(yaml);
    cr_assert_eq(mp_proc_signal(&g_proxy, SIGHUP), 0);
    cr_assert_eq(mp_wait_port(p2, 3000), 0, "the admin UI did not move to its new port");
    snprintf(url, sizeof url, "http://127.0.0.1:%d/api/store", p2);
    cr_expect_eq(fetch(url, &q, &r), 200, "%s", r.body);
    resp_free(&r);
    cr_expect_neq(mp_wait_port(p1, 300), 0, "the old admin port still listens");
    wait_service("admin", "running");

    /* a missing password file: failed, with the reason; the proxy serves on */
    snprintf(yaml, sizeof yaml, "admin:\n  listen: 127.0.0.1:%d\n  password_file: %s\n", p1,
             mp_path(args, "nobody.passwd"));
    write_config(yaml);
    cr_assert_eq(mp_proc_signal(&g_proxy, SIGHUP), 0);
    wait_service("admin", "failed");
    snprintf(args, sizeof args, "status --json --socket '%s'", g_sock);
    st = musctl_json(args);
    cr_expect(strstr(service_state(st, "admin", &why), "failed") != NULL);
    cr_expect(strstr(why, "not started") != NULL, "%s", why);
    cr_expect_str_eq(service_state(st, "workers", &why), "running");
    json_decref(st);
    cr_expect_neq(mp_wait_port(p2, 300), 0, "the admin UI still listens after a failed restart");

    /* fixed: back on p1 */
    snprintf(yaml, sizeof yaml, "admin:\n  listen: 127.0.0.1:%d\n  password_file: %s\n", p1, g_apw);
    write_config(yaml);
    cr_assert_eq(mp_proc_signal(&g_proxy, SIGHUP), 0);
    wait_service("admin", "running");
    snprintf(url, sizeof url, "http://127.0.0.1:%d/api/store", p1);
    cr_expect_eq(fetch(url, &q, &r), 200, "%s", r.body);
    resp_free(&r);

    /* turned off */
    write_config("admin:\n  enabled: false\n");
    cr_assert_eq(mp_proc_signal(&g_proxy, SIGHUP), 0);
    wait_service("admin", "off");
    cr_expect_neq(mp_wait_port(p1, 300), 0, "a disabled admin UI still listens");
    mp_proc_stop(&g_proxy, SIGTERM, 5000);
}
