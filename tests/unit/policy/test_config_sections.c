/*
 * tests/unit/policy/test_config_sections.c: the configuration sections
 * besides proxy, mus and the policies (policy/config_*.c): store, reports, admin, run,
 * proxy.transparent, gre, radius and wccp, each with its values, its
 * defaults and what it refuses.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../../common/log.h"
#include "../../../policy/config.h"
#include "configtest.h"

Test(config, store_section)
{
    char err[CONFIG_ERR_LEN];
    config_t *cfg = load_str("store:\n  path: /tmp/x.db\n  queue: 128\n  retain_days: 0\n"
                             "  retain_mb: 5\n  keep_query: true\n", err);

    cr_assert_not_null(cfg, "%s", err);
    cr_expect_str_eq(cfg->store.path, "/tmp/x.db");
    cr_expect_eq(cfg->store.queue, 128);
    cr_expect_eq(cfg->store.retain_days, 0);
    cr_expect_eq(cfg->store.retain_mb, 5);
    cr_expect(cfg->store.keep_query);
    config_free(cfg);
    cfg = load_str("store: { path: off }\n", err);
    cr_assert_not_null(cfg, "%s", err);
    cr_expect_str_eq(cfg->store.path, "");
    config_free(cfg);
    cfg = load_str("", err);
    cr_assert_not_null(cfg, "%s", err);
    cr_expect_str_eq(cfg->store.path, "var/musproxy.db");
    cr_expect_eq(cfg->store.queue, 65536);
    cr_expect_eq(cfg->store.retain_days, 30);
    cr_expect_eq(cfg->store.retain_mb, 1024);
    cr_expect(!cfg->store.keep_query);
    cr_expect_eq(cfg->store.backend, CONFIG_STORE_SQLITE);
    cr_expect_str_eq(cfg->store.node, "");
    config_free(cfg);
}

/* The PostgreSQL store of a group: a conninfo without a password (a
 * quoted value that merely contains the word is fine), its password file,
 * the node. */
Test(config, store_postgresql)
{
    char err[CONFIG_ERR_LEN];
    config_t *cfg = load_str("store:\n  backend: postgresql\n  node: proxy-a\n  postgresql:\n"
                             "    conninfo: \"host=db dbname=mp user=mp options='-c x=password'\"\n"
                             "    password_file: /etc/musproxy/pg.pass\n", err);

    cr_assert_not_null(cfg, "%s", err);
    cr_expect_eq(cfg->store.backend, CONFIG_STORE_POSTGRESQL);
    cr_expect_str_eq(cfg->store.node, "proxy-a");
    cr_expect_str_eq(cfg->store.conninfo, "host=db dbname=mp user=mp options='-c x=password'");
    cr_expect_str_eq(cfg->store.password_file, "/etc/musproxy/pg.pass");
    config_free(cfg);
    cfg = load_str("store:\n  backend: postgresql\n  postgresql:\n"
                   "    conninfo: postgresql://mp@db:5433/mp?sslmode=require\n", err);
    cr_assert_not_null(cfg, "%s", err);
    cr_expect_str_eq(cfg->store.conninfo, "postgresql://mp@db:5433/mp?sslmode=require");
    cr_expect_str_eq(cfg->store.password_file, "");
    config_free(cfg);
}

Test(config, reports_section)
{
    char err[CONFIG_ERR_LEN];
    config_t *cfg = load_str("", err);

    cr_assert_not_null(cfg, "%s", err);
    cr_expect_str_eq(cfg->reports.archive, "var/reports");
    cr_expect_eq(cfg->reports.schedule,
                 CONFIG_REPORTS_DAILY | CONFIG_REPORTS_WEEKLY | CONFIG_REPORTS_MONTHLY);
    config_free(cfg);
    cfg = load_str("store: { path: /srv/mp/store.db }\n", err);
    cr_assert_not_null(cfg, "%s", err);
    cr_expect_str_eq(cfg->reports.archive, "/srv/mp/reports");
    config_free(cfg);
    cfg = load_str("store: { path: mp.db }\nreports: { schedule: [monthly] }\n", err);
    cr_assert_not_null(cfg, "%s", err);
    cr_expect_str_eq(cfg->reports.archive, "reports");
    cr_expect_eq(cfg->reports.schedule, CONFIG_REPORTS_MONTHLY);
    config_free(cfg);
    cfg = load_str("store: { path: off }\n", err);
    cr_assert_not_null(cfg, "%s", err);
    cr_expect_str_eq(cfg->reports.archive, "");
    config_free(cfg);
    cfg = load_str("reports: { archive: /var/lib/x, schedule: [daily, weekly] }\n", err);
    cr_assert_not_null(cfg, "%s", err);
    cr_expect_str_eq(cfg->reports.archive, "/var/lib/x");
    cr_expect_eq(cfg->reports.schedule, CONFIG_REPORTS_DAILY | CONFIG_REPORTS_WEEKLY);
    config_free(cfg);
    cfg = load_str("reports: { archive: off }\n", err);
    cr_assert_not_null(cfg, "%s", err);
    cr_expect_str_eq(cfg->reports.archive, "");
    config_free(cfg);
    cfg = load_str("reports:\n  schedule: [hourly]\n", err);
    cr_assert_null(cfg);
    cr_expect(strstr(err, ":2:") != NULL && strstr(err, "daily, weekly or monthly") != NULL,
              "%s", err);
}

Test(config, admin_section)
{
    char err[CONFIG_ERR_LEN];
    config_t *cfg = load_str("", err);
    const struct sockaddr_in *sin;

    cr_assert_not_null(cfg, "%s", err);
    cr_expect(cfg->admin.enabled);
    cr_expect_str_eq(cfg->admin.listen, "127.0.0.1:8080");
    sin = (const struct sockaddr_in *)&cfg->admin.addr;
    cr_expect_eq(sin->sin_family, AF_INET);
    cr_expect_eq(ntohs(sin->sin_port), 8080);
    cr_expect_str_eq(cfg->admin.password_file, "etc/admin.passwd");
    cr_expect(!cfg->admin.allow_remote);
    config_free(cfg);

    cfg = load_str("admin:\n  listen: \"[::1]:9090\"\n  password_file: /etc/mus/admin.pw\n"
                   "  enabled: false\n", err);
    cr_assert_not_null(cfg, "%s", err);
    cr_expect(!cfg->admin.enabled);
    cr_expect_str_eq(cfg->admin.listen, "[::1]:9090");
    cr_expect_eq(cfg->admin.addr.ss_family, AF_INET6);
    cr_expect_str_eq(cfg->admin.password_file, "/etc/mus/admin.pw");
    config_free(cfg);

    /* 127.0.0.0/8 is loopback; others need allow_remote (or a UI that is off) */
    cfg = load_str("admin: { listen: 127.9.9.9:8443 }\n", err);
    cr_assert_not_null(cfg, "%s", err);
    config_free(cfg);
    cfg = load_str("admin: { listen: 0.0.0.0:8080, allow_remote: true }\n", err);
    cr_assert_not_null(cfg, "%s", err);
    cr_expect(cfg->admin.allow_remote);
    config_free(cfg);
    cfg = load_str("admin: { allow_remote: true, listen: 192.0.2.1:8080 }\n", err);
    cr_assert_not_null(cfg, "%s", err);
    config_free(cfg);
    cfg = load_str("admin: { listen: 192.0.2.1:8080, enabled: false }\n", err);
    cr_assert_not_null(cfg, "%s", err);
    config_free(cfg);
    cfg = load_str("admin: { password_file: off }\n", err);
    cr_assert_not_null(cfg, "%s", err);
    cr_expect_str_eq(cfg->admin.password_file, "");
    config_free(cfg);
    cfg = load_str("admin:\n", err);
    cr_assert_not_null(cfg, "%s", err);
    cr_expect_str_eq(cfg->admin.listen, "127.0.0.1:8080");
    /* plain HTTP, 30 min idle, 12 h at most by default */
    cr_expect_str_eq(cfg->admin.tls_cert, "");
    cr_expect_str_eq(cfg->admin.tls_key, "");
    cr_expect_eq(cfg->admin.session_idle, 30u * 60 * 1000);
    cr_expect_eq(cfg->admin.session_max, 12u * 3600 * 1000);
    config_free(cfg);

    /* HTTPS: both files exist (their contents are read when the UI opens) */
    cfg = load_str("admin:\n  tls_cert: /etc/hostname\n  tls_key: /etc/hostname\n"
                   "  session_idle: 90s\n  session_max: 2h\n", err);
    cr_assert_not_null(cfg, "%s", err);
    cr_expect_str_eq(cfg->admin.tls_cert, "/etc/hostname");
    cr_expect_str_eq(cfg->admin.tls_key, "/etc/hostname");
    cr_expect_eq(cfg->admin.session_idle, 90u * 1000);
    cr_expect_eq(cfg->admin.session_max, 2u * 3600 * 1000);
    config_free(cfg);
    /* a UI that is off is not held to its files */
    cfg = load_str("admin:\n  enabled: false\n  tls_cert: /nonexistent/c\n  tls_key: /nonexistent/k\n",
                   err);
    cr_assert_not_null(cfg, "%s", err);
    config_free(cfg);
}

/* run: the user to switch to and the capabilities kept. */
Test(config, run_section)
{
    char err[CONFIG_ERR_LEN];
    config_t *cfg = load_str("", err);

    cr_assert_not_null(cfg, "%s", err);
    cr_expect_str_eq(cfg->run.user, "");
    cr_expect_str_eq(cfg->run.group, "");
    cr_expect(cfg->run.caps_auto);
    config_free(cfg);
    cfg = load_str("run:\n  user: musproxy\n  group: proxy-1.x\n"
                   "  keep_capabilities: [net_raw, net_bind_service]\n", err);
    cr_assert_not_null(cfg, "%s", err);
    cr_expect_str_eq(cfg->run.user, "musproxy");
    cr_expect_str_eq(cfg->run.group, "proxy-1.x");
    cr_expect(!cfg->run.caps_auto);
    cr_expect_eq(cfg->run.keep_caps, CONFIG_CAP_NET_RAW | CONFIG_CAP_NET_BIND_SERVICE);
    config_free(cfg);
    cfg = load_str("run: { user: a, keep_capabilities: [] }\n", err);
    cr_assert_not_null(cfg, "%s", err);
    cr_expect(!cfg->run.caps_auto);
    cr_expect_eq(cfg->run.keep_caps, 0);
    config_free(cfg);
    cfg = load_str("run: { keep_capabilities: auto }\n", err);
    cr_assert_not_null(cfg, "%s", err);
    cr_expect(cfg->run.caps_auto);
    config_free(cfg);
    cr_expect_str_eq(config_cap_name(CONFIG_CAP_NET_ADMIN), "net_admin");

    cr_expect_null(load_str("run:\n  user: \"-rf\"\n", err));
    cr_expect_str_eq(err, "t.yaml:2:9: invalid user name '-rf' (letters, digits, '_', '-', '.')");
    cr_expect_null(load_str("run:\n  group: \"a b\"\n", err));
    cr_expect_str_eq(err, "t.yaml:2:10: invalid group name 'a b' (letters, digits, '_', '-', '.')");
    cr_expect_null(load_str("run:\n  user: abcdefghijklmnopqrstuvwxyz0123456789\n", err));
    cr_expect_str_eq(err, "t.yaml:2:9: 'user' is too long (at most 32 bytes)");
    cr_expect_null(load_str("run:\n  keep_capabilities: [sys_admin]\n", err));
    cr_expect_str_eq(err, "t.yaml:2:23: invalid keep_capabilities 'sys_admin' "
                          "(use net_admin, net_raw or net_bind_service)");
    cr_expect_null(load_str("run:\n  keep_capabilities: all\n", err));
    cr_expect_str_eq(err, "t.yaml:2:22: invalid keep_capabilities 'all' (use auto or a list of "
                          "net_admin, net_raw, net_bind_service)");
    cr_expect_null(load_str("run:\n  shell: /bin/sh\n", err));
    cr_expect(strstr(err, "t.yaml:2:3: ") == err, "%s", err);
}

/* proxy.transparent and the listener options of intercepted traffic. */
Test(config, transparent_section)
{
    char err[CONFIG_ERR_LEN];
    config_t *cfg = load_str("proxy:\n  listen:\n    - 127.0.0.1:3128\n"
                             "    - { address: 0.0.0.0:3129, mode: transparent }\n"
                             "    - { address: \"[::]:3130\", mode: transparent, tproxy: true,"
                             " spoof_client_address: true }\n"
                             "  transparent:\n    host_mismatch: refuse\n    no_sni: block\n"
                             "    peek_timeout: 250ms\n"
                             "    bypass: [Bank.Example, \"*.pay.example\", .corp.example., 10.9.0.0/16, \"2001:db8::/32\"]\n",
                             err);

    cr_assert_not_null(cfg, "%s", err);
    cr_expect_eq(cfg->n_listen, 3);
    cr_expect(!cfg->listen[0].tproxy);
    cr_expect_eq(cfg->listen[1].mode, CONFIG_MODE_TRANSPARENT);
    cr_expect(!cfg->listen[1].tproxy && !cfg->listen[1].spoof_client);
    cr_expect(cfg->listen[2].tproxy && cfg->listen[2].spoof_client);
    cr_expect_eq(cfg->transparent.host_mismatch, CONFIG_HOST_MISMATCH_REFUSE);
    cr_expect_eq(cfg->transparent.no_sni, CONFIG_NO_SNI_BLOCK);
    cr_expect_eq(cfg->transparent.peek_timeout, 250);
    cr_assert_eq(cfg->transparent.n_bypass_domains, 3);
    cr_expect_str_eq(cfg->transparent.bypass_domains[0], "bank.example");
    cr_expect_str_eq(cfg->transparent.bypass_domains[1], "pay.example");
    cr_expect_str_eq(cfg->transparent.bypass_domains[2], "corp.example");
    cr_assert_eq(cfg->transparent.n_bypass_cidrs, 2);
    cr_expect_eq(cfg->transparent.bypass_cidrs[0].prefix, 16);
    cr_expect_eq(cfg->transparent.bypass_cidrs[1].family, AF_INET6);
    config_free(cfg);

    cfg = load_str("", err);
    cr_assert_not_null(cfg, "%s", err);
    cr_expect_eq(cfg->transparent.host_mismatch, CONFIG_HOST_MISMATCH_LOG);
    cr_expect_eq(cfg->transparent.no_sni, CONFIG_NO_SNI_ALLOW);
    cr_expect_eq(cfg->transparent.peek_timeout, 5000);
    cr_expect_eq(cfg->transparent.n_bypass_domains + cfg->transparent.n_bypass_cidrs, 0);
    config_free(cfg);
}

/* gre: the userspace GRE decapsulation. */
Test(config, gre_section)
{
    char err[CONFIG_ERR_LEN];
    config_t *cfg = load_str("gre:\n  enabled: true\n  tun: wccp7\n  address: 10.255.0.1/30\n"
                             "  routers: [192.0.2.1, 198.51.100.7]\n  mtu: 1400\n", err);

    cr_assert_not_null(cfg, "%s", err);
    cr_expect(cfg->gre.enabled);
    cr_expect_str_eq(cfg->gre.tun, "wccp7");
    cr_expect_eq(ntohl(cfg->gre.address), 0x0aff0001u);
    cr_expect_eq(cfg->gre.prefix, 30);
    cr_assert_eq(cfg->gre.n_routers, 2);
    cr_expect_eq(ntohl(cfg->gre.routers[0]), 0xc0000201u);
    cr_expect_eq(ntohl(cfg->gre.routers[1]), 0xc6336407u);
    cr_expect_eq(cfg->gre.mtu, 1400);
    config_free(cfg);

    cfg = load_str("gre: { address: 10.9.9.9 }\n", err);
    cr_assert_not_null(cfg, "%s", err);
    cr_expect(!cfg->gre.enabled);
    cr_expect_str_eq(cfg->gre.tun, "wccp0");
    cr_expect_eq(cfg->gre.prefix, 32);
    cr_expect_eq(cfg->gre.mtu, 1472);
    config_free(cfg);

    static const struct { const char *text, *msg; } bad[] = {
        { "gre: { enabled: true }\n", "needs 'routers'" },
        { "gre: { enabled: true, routers: [] }\n", "needs 'routers'" },
        { "gre: { routers: [router.example] }\n", "not a numeric IPv4" },
        { "gre: { routers: [\"2001:db8::1\"] }\n", "not a numeric IPv4" },
        { "gre: { routers: [10.0.0.1, 10.0.0.1] }\n", "twice" },
        { "gre: { tun: \"../x\" }\n", "not an interface name" },
        { "gre: { tun: abcdefghijklmnop }\n", "1-15 characters" },
        { "gre: { address: 10.0.0.1/33 }\n", "not an IPv4 address" },
        { "gre: { address: 10.1 }\n", "not an IPv4 address" },
        { "gre: { mtu: 67 }\n", "invalid mtu" },
        { "gre: { mtu: 70000 }\n", "invalid mtu" },
        { "gre: { tunnel: wccp0 }\n", "unknown key 'tunnel' in gre" },
        { "gre: [1]\n", "must be a mapping" },
    };
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        cfg = load_str(bad[i].text, err);
        cr_expect_null(cfg, "%s loaded", bad[i].text);
        config_free(cfg);
        cr_expect(strstr(err, bad[i].msg) != NULL, "%s: '%s' lacks '%s'", bad[i].text, err,
                  bad[i].msg);
    }
}

/* radius: off by default; addresses with and without a port, both
 * families; mus-headend's options; the checks against mus.headends. */
Test(config, radius_section)
{
    char err[CONFIG_ERR_LEN];
    config_t *cfg = load_str("log_level: info\n", err);
    const struct sockaddr_in *sin;
    const struct sockaddr_in6 *sin6;

    cr_assert_not_null(cfg, "%s", err);
    cr_expect_eq(cfg->radius.n_listen, 0);
    cr_expect_str_eq(cfg->radius.name, "radius");
    cr_expect_str_eq(cfg->radius.groups, "class");
    cr_expect_eq(cfg->radius.stale_after, 3);
    cr_expect_eq(cfg->radius.stale_grace, 300000);
    cr_expect_eq(cfg->radius.interim, 0);
    config_free(cfg);

    cfg = load_str("radius:\n"
                   "  listen: [0.0.0.0, \"127.0.0.1:11813\", \"::\", \"[::1]\", \"[::1]:1814\"]\n"
                   "  clients_file: etc/radius.clients\n"
                   "  groups: \"avpair:memberOf\"\n"
                   "  machine_user: \"^host/\"\n"
                   "  machine_avpair: tunnel-type=machine\n"
                   "  interim: 10m\n  stale_after: 2\n  stale_grace: 0\n  name: asa-radius\n", err);
    cr_assert_not_null(cfg, "%s", err);
    cr_assert_eq(cfg->radius.n_listen, 5);
    sin = (const struct sockaddr_in *)&cfg->radius.listen[0];
    cr_expect_eq(sin->sin_family, AF_INET);
    cr_expect_eq(ntohs(sin->sin_port), 1813);
    sin = (const struct sockaddr_in *)&cfg->radius.listen[1];
    cr_expect_eq(ntohs(sin->sin_port), 11813);
    sin6 = (const struct sockaddr_in6 *)&cfg->radius.listen[2];
    cr_expect_eq(sin6->sin6_family, AF_INET6);
    cr_expect_eq(ntohs(sin6->sin6_port), 1813);
    sin6 = (const struct sockaddr_in6 *)&cfg->radius.listen[3];
    cr_expect_eq(ntohs(sin6->sin6_port), 1813);
    sin6 = (const struct sockaddr_in6 *)&cfg->radius.listen[4];
    cr_expect_eq(ntohs(sin6->sin6_port), 1814);
    cr_expect_str_eq(cfg->radius.listen_text[3], "[::1]");
    cr_expect_str_eq(cfg->radius.clients_file, "etc/radius.clients");
    cr_expect_str_eq(cfg->radius.groups, "avpair:memberOf");
    cr_expect_str_eq(cfg->radius.machine_user, "^host/");
    cr_expect_str_eq(cfg->radius.machine_avpair, "tunnel-type=machine");
    cr_expect_eq(cfg->radius.interim, 600000);
    cr_expect_eq(cfg->radius.stale_after, 2);
    cr_expect_eq(cfg->radius.stale_grace, 0);
    cr_expect_str_eq(cfg->radius.name, "asa-radius");
    config_free(cfg);

    static const struct { const char *text, *msg; } bad[] = {
        { "radius: { listen: [0.0.0.0] }\n", "t.yaml:1:9: radius: 'listen' needs 'clients_file'" },
        { "radius: { listen: [radius.example], clients_file: c }\n",
          "invalid RADIUS listen address 'radius.example'" },
        { "radius: { listen: [\"10.0.0.1:0\"], clients_file: c }\n", "invalid RADIUS listen" },
        { "radius: { listen: [0.0.0.0, \"0.0.0.0:1813\"], clients_file: c }\n", "twice" },
        { "radius: { groups: ldap }\n", "invalid groups 'ldap'" },
        { "radius: { groups: \"avpair:\" }\n", "invalid groups" },
        { "radius: { groups: \"avpair:a=b\" }\n", "invalid groups" },
        { "radius: { machine_user: \"(\" }\n", "'machine_user' is not a PCRE2 pattern" },
        { "radius: { machine_avpair: novalue }\n", "invalid machine_avpair" },
        { "radius: { machine_avpair: \"=x\" }\n", "invalid machine_avpair" },
        { "radius: { stale_after: 0 }\n", "invalid stale_after '0' (intervals, 1-1000)" },
        { "radius: { stale_after: 1001 }\n", "invalid stale_after" },
        { "radius: { interim: soon }\n", "invalid duration 'soon'" },
        { "radius: { name: \"a b\" }\n", "invalid name 'a b'" },
        { "radius: { secret: s3cret }\n", "unknown key 'secret' in radius" },
        { "radius: [1]\n", "'radius' must be a mapping" },
        { "mus:\n  headends:\n    - { name: radius, addresses: [\"192.0.2.1:11999\"], "
          "pin_sha256: " "0000000000000000000000000000000000000000000000000000000000000000, "
          "password_file: p }\nradius: { listen: [0.0.0.0], clients_file: c }\n",
          "t.yaml:4:9: radius: name 'radius' is also a headend's name in mus.headends" },
    };
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        cfg = load_str(bad[i].text, err);
        cr_expect_null(cfg, "%s loaded", bad[i].text);
        config_free(cfg);
        cr_expect(strstr(err, bad[i].msg) != NULL, "%s: '%s' lacks '%s'", bad[i].text, err,
                  bad[i].msg);
    }
    /* the name's own position when it is given; no listener, no check */
    cfg = load_str("radius: { listen: [0.0.0.0], clients_file: c, name: lab-1 }\n"
                   "mus: { headends: [ { name: lab-1, addresses: [\"192.0.2.1:11999\"], "
                   "pin_sha256: 0000000000000000000000000000000000000000000000000000000000000000,"
                   " password_file: p } ] }\n", err);
    cr_expect_null(cfg);
    config_free(cfg);
    cr_expect(strstr(err, "t.yaml:1:53: radius: name 'lab-1'") != NULL, "%s", err);
    cfg = load_str("radius: { name: lab-1 }\n"
                   "mus: { headends: [ { name: lab-1, addresses: [\"192.0.2.1:11999\"], "
                   "pin_sha256: 0000000000000000000000000000000000000000000000000000000000000000,"
                   " password_file: p } ] }\n", err);
    cr_expect_not_null(cfg, "%s", err);
    config_free(cfg);
}

/* The wccp section: values, defaults, and what is refused. */
Test(config, wccp_section)
{
    char err[CONFIG_ERR_LEN];
    config_t *cfg = load_str("wccp:\n  routers: [192.0.2.1, 192.0.2.2]\n  address: 192.0.2.10\n"
                             "  weight: 7\n  password_file: /etc/wccp.secret\n"
                             "  forwarding: [l2]\n  return: [gre]\n  assignment: [mask, hash]\n"
                             "  services:\n    - { id: 0 }\n"
                             "    - { id: 70, ports: [443, 8443], protocol: udp, priority: 240,"
                             " flags: [src_ip_hash, ports_source] }\n", err);
    const config_wccp_t *w;

    cr_assert_not_null(cfg, "%s", err);
    w = &cfg->wccp;
    cr_expect_eq(w->n_routers, 2);
    cr_expect_eq(w->routers[0], 0xc0000201u);
    cr_expect_eq(w->address, 0xc000020au);
    cr_expect_eq(w->weight, 7);
    cr_expect_str_eq(w->password_file, "/etc/wccp.secret");
    cr_expect_eq(w->n_forwarding, 1);
    cr_expect_eq(w->forwarding[0], CONFIG_WCCP_L2);
    cr_expect_eq(w->n_assignment, 2);
    cr_expect_eq(w->assignment[0], CONFIG_WCCP_MASK);
    cr_expect_eq(w->n_services, 2);
    cr_expect(!w->services[0].dynamic);
    cr_expect(w->services[1].dynamic);
    cr_expect_eq(w->services[1].id, 70);
    cr_expect_eq(w->services[1].protocol, 17);
    cr_expect_eq(w->services[1].priority, 240);
    cr_expect_eq(w->services[1].n_ports, 2);
    cr_expect_eq(w->services[1].ports[1], 8443);
    cr_expect_eq(w->services[1].flags, CONFIG_WCCP_F_SRC_IP_HASH | CONFIG_WCCP_F_PORTS_SOURCE |
                                       CONFIG_WCCP_F_PORTS_DEFINED);
    config_free(cfg);

    cfg = load_str("wccp: { routers: [10.0.0.1] }\n", err);
    cr_assert_not_null(cfg, "%s", err);
    cr_expect_eq(cfg->wccp.n_services, 1);                 /* web-cache by default */
    cr_expect(!cfg->wccp.services[0].dynamic);
    cr_expect_eq(cfg->wccp.weight, 100);
    cr_expect_eq(cfg->wccp.n_forwarding, 2);
    cr_expect_eq(cfg->wccp.forwarding[0], CONFIG_WCCP_GRE);
    cr_expect_str_eq(cfg->wccp.password_file, "");
    config_free(cfg);
    cfg = load_str("", err);
    cr_assert_not_null(cfg, "%s", err);
    cr_expect_eq(cfg->wccp.n_routers, 0);                  /* off */
    config_free(cfg);

    static const char *const bad[] = {
        "wccp: { routers: [router.example] }\n",
        "wccp: { routers: [10.0.0.1, 10.0.0.1] }\n",
        "wccp: { routers: [\"2001:db8::1\"] }\n",
        "wccp: { weight: 5 }\n",
        "wccp: { routers: [10.0.0.1], weight: 65536 }\n",
        "wccp: { routers: [10.0.0.1], forwarding: [] }\n",
        "wccp: { routers: [10.0.0.1], forwarding: [gre, gre] }\n",
        "wccp: { routers: [10.0.0.1], assignment: [gre] }\n",
        "wccp: { routers: [10.0.0.1], services: [{ id: 0, ports: [80] }] }\n",
        "wccp: { routers: [10.0.0.1], services: [{ id: 70, flags: [] }] }\n",
        "wccp: { routers: [10.0.0.1], services: [{ id: 70, flags: [ports_source] }] }\n",
        "wccp: { routers: [10.0.0.1], services: [{ id: 70 }, { id: 70 }] }\n",
        "wccp: { routers: [10.0.0.1], services: [{ id: 256 }] }\n",
        "wccp: { routers: [10.0.0.1], services: [{ ports: [80] }] }\n",
        "wccp: { routers: [10.0.0.1], services: [] }\n",
        "wccp: { routers: [10.0.0.1], password: secret }\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cfg = load_str(bad[i], err);
        cr_expect_null(cfg, "accepted: %s", bad[i]);
        config_free(cfg);
        cr_expect(strstr(err, ":1:") != NULL, "no position for %s: %s", bad[i], err);
    }
}
