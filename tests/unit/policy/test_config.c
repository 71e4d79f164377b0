/*
 * tests/unit/policy/test_config.c: the configuration loader (policy/config.c): the
 * shipped etc/musproxy.yaml, defaults, every key, the exact message (with
 * line and column) of each kind of broken file, list and file size limits,
 * and the duration and socket address parsers.
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

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static config_t *
load_str(const char *text, char *err)
{
    return config_load_buffer("t.yaml", text, strlen(text), err, CONFIG_ERR_LEN);
}

static void
expect_cidr(const cidr_t *c, const char *text)
{
    char buf[CIDR_STRLEN];

    cidr_format(c, buf, sizeof(buf));
    cr_expect_str_eq(buf, text);
}

static void
expect_sockaddr(const config_listen_t *l, int family, const char *addr, unsigned port)
{
    char buf[CIDR_STRLEN];

    cr_assert_eq(l->addr.ss_family, family, "%s: family", l->text);
    cidr_addr_str((const struct sockaddr *)&l->addr, buf, sizeof(buf));
    cr_expect_str_eq(buf, addr);
    if (family == AF_INET) {
        cr_expect_eq(l->addr_len, sizeof(struct sockaddr_in));
        cr_expect_eq(ntohs(((const struct sockaddr_in *)&l->addr)->sin_port), port);
    } else {
        cr_expect_eq(l->addr_len, sizeof(struct sockaddr_in6));
        cr_expect_eq(ntohs(((const struct sockaddr_in6 *)&l->addr)->sin6_port), port);
    }
}

/* Every default of config.h, on a configuration loaded from anything that
 * sets nothing. */
static void
expect_defaults(const config_t *cfg)
{
    static const char *const clients[] = {
        "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "::1/128", "fc00::/7",
    };
    static const char *const deny[] = {
        "169.254.0.0/16", "fe80::/10", "0.0.0.0/8", "100.100.100.200/32", "fd00:ec2::254/128",
    };

    cr_assert_eq(cfg->n_listen, 1);
    cr_expect_str_eq(cfg->listen[0].text, "127.0.0.1:3128");
    expect_sockaddr(&cfg->listen[0], AF_INET, "127.0.0.1", 3128);
    cr_expect_eq(cfg->listen[0].mode, CONFIG_MODE_EXPLICIT);
    cr_expect_eq(cfg->workers, 0);
    cr_assert_eq(cfg->n_clients, N_ELEMS(clients));
    for (size_t i = 0; i < N_ELEMS(clients); i++)
        expect_cidr(&cfg->clients[i], clients[i]);
    cr_assert_eq(cfg->n_deny_destinations, N_ELEMS(deny));
    for (size_t i = 0; i < N_ELEMS(deny); i++)
        expect_cidr(&cfg->deny_destinations[i], deny[i]);
    cr_assert_eq(cfg->n_connect_ports, 1);
    cr_expect_eq(cfg->connect_ports[0], 443);
    cr_expect_eq(cfg->timeouts.header, 10000);
    cr_expect_eq(cfg->timeouts.idle, 60000);
    cr_expect_eq(cfg->timeouts.connect, 10000);
    cr_expect_eq(cfg->timeouts.response, 60000);
    cr_expect_eq(cfg->timeouts.tunnel_idle, 300000);
    cr_expect_eq(cfg->timeouts.shutdown, 10000);
    cr_expect_eq(cfg->timeouts.dns, 5000);
    cr_expect_eq(cfg->max_connections, 10000);
    cr_expect_eq(cfg->tunnel_relay, CONFIG_RELAY_AUTO);
    cr_expect_str_eq(cfg->access_log, "var/access.log");
    cr_expect_str_eq(cfg->visible_hostname, "musproxy");
    cr_expect_eq(cfg->log_level, LOG_LVL_INFO);
}

/* The policy part of the defaults: nothing defined, nothing enabled. */
static void
expect_policy_defaults(const config_t *cfg)
{
    cr_expect_eq(cfg->pol.n_profiles, 0);
    cr_expect_eq(cfg->pol.n_policies, 0);
    cr_expect_eq(cfg->pol.n_time_ranges, 0);
    cr_expect_eq(cfg->pol.n_custom, 0);
    cr_expect_eq(cfg->pol.n_friendly, 0);
    cr_expect_str_eq(cfg->pol.category_db, "");
    cr_expect_str_eq(cfg->pol.auth_realm, "musproxy");
    cr_expect_str_eq(cfg->pol.auth_password_file, "");
    cr_expect_eq(cfg->pol.auth_surrogate_ttl, 15 * 60 * 1000);
    cr_expect_str_eq(cfg->pol.extended_log, "");
}

static void
expect_names(const config_names_t *l, const char *const *want, size_t n, const char *what)
{
    cr_assert_eq(l->n, n, "%s: %zu names", what, l->n);
    if (n == 0) {
        cr_expect_null(l->names, "%s", what);
        return;
    }
    cr_assert_not_null(l->names, "%s", what);
    for (size_t i = 0; i < n; i++)
        cr_expect_str_eq(l->names[i], want[i], "%s[%zu]", what, i);
}
#define NAMES(l, ...) do {                                                   \
        static const char *const want_[] = { __VA_ARGS__ };                  \
        expect_names(&(l), want_, N_ELEMS(want_), #l);                       \
    } while (0)
#define NO_NAMES(l) expect_names(&(l), NULL, 0, #l)

Test(config, shipped_file_loads_the_example)
{
    const char *srcdir = getenv("MP_SRCDIR");
    char path[4096], err[CONFIG_ERR_LEN] = "";
    const config_policies_t *pol;
    config_t *cfg, *def;

    cr_assert_not_null(srcdir, "MP_SRCDIR must point at the source tree");
    snprintf(path, sizeof(path), "%s/etc/musproxy.yaml", srcdir);
    cfg = config_load(path, err, sizeof(err));
    cr_assert_not_null(cfg, "%s", err);
    cr_expect_str_eq(err, "");
    cr_expect_str_eq(cfg->path, path);
    expect_defaults(cfg);

    /* Outside the policy sections the shipped file documents the defaults:
     * byte for byte the same. */
    def = load_str("", err);
    cr_assert_not_null(def, "%s", err);
    cr_assert_null(def->pool);
    memcpy(def->path, cfg->path, sizeof(def->path));
    def->pool = cfg->pool;
    memcpy(&def->pol, &cfg->pol, sizeof(def->pol));
    cr_expect(memcmp(cfg, def, sizeof(*cfg)) == 0,
              "etc/musproxy.yaml differs from the defaults outside the policy sections");
    def->pool = NULL;      /* not def's to free */
    config_free(def);

    /* The classic setup. */
    pol = &cfg->pol;
    cr_assert_eq(pol->n_profiles, 3);
    cr_expect_str_eq(pol->profiles[0].name, "remote-users");
    cr_expect_eq(pol->profiles[0].location, CONFIG_LOC_REMOTE);
    cr_expect_eq(pol->profiles[0].types, CONFIG_TYPE_USER);
    cr_expect_eq(pol->profiles[0].n_subnets, 0);
    cr_expect_str_eq(pol->profiles[1].name, "machine-tunnels");
    cr_expect_eq(pol->profiles[1].location, CONFIG_LOC_REMOTE);
    cr_expect_eq(pol->profiles[1].types, CONFIG_TYPE_MACHINE | CONFIG_TYPE_DEVICE);
    cr_expect_str_eq(pol->profiles[2].name, "office");
    cr_expect_eq(pol->profiles[2].location, CONFIG_LOC_LOCAL);
    cr_expect_eq(pol->profiles[2].types, CONFIG_TYPE_ANY);
    cr_assert_eq(pol->profiles[2].n_subnets, 6);
    expect_cidr(&pol->profiles[2].subnets[0], "10.0.0.0/8");
    expect_cidr(&pol->profiles[2].subnets[1], "172.16.0.0/12");
    expect_cidr(&pol->profiles[2].subnets[2], "192.168.0.0/16");
    expect_cidr(&pol->profiles[2].subnets[3], "fc00::/7");
    expect_cidr(&pol->profiles[2].subnets[4], "127.0.0.0/8");
    expect_cidr(&pol->profiles[2].subnets[5], "::1/128");
    for (size_t i = 0; i < 3; i++) {
        cr_expect_eq(pol->profiles[i].auth, CONFIG_AUTH_NONE);
        cr_expect_eq(pol->profiles[i].mode, CONFIG_MATCH_ANY_MODE);
        cr_expect_eq(pol->profiles[i].n_ports, 0);
        cr_expect_str_eq(pol->profiles[i].user_agent, "");
        cr_expect_eq(pol->profiles[i].users.n, 0);
        cr_expect_eq(pol->profiles[i].groups.n, 0);
        cr_expect_not(pol->profiles[i].refuse_unidentified);
    }

    cr_assert_eq(pol->n_policies, 4);
    cr_expect_str_eq(pol->policies[0].name, "remote");
    NAMES(pol->policies[0].profiles, "remote-users");
    cr_assert_eq(pol->policies[0].n_rules, 2);
    cr_expect_str_eq(pol->policies[0].rules[0].category, "arts-entertainment");
    cr_expect_eq(pol->policies[0].rules[0].action, CONFIG_ACT_ALLOW);
    cr_expect_eq(pol->policies[0].rules[0].time_range, -1);
    cr_expect_str_eq(pol->policies[0].rules[1].category, "adult");
    cr_expect_eq(pol->policies[0].rules[1].action, CONFIG_ACT_BLOCK);
    cr_expect_eq(pol->policies[0].default_action, CONFIG_ACT_ALLOW);
    cr_expect_str_eq(pol->policies[1].name, "machines");
    NAMES(pol->policies[1].profiles, "machine-tunnels");
    cr_assert_eq(pol->policies[1].n_rules, 1);
    cr_expect_str_eq(pol->policies[1].rules[0].category, "machine-updates");
    cr_expect_eq(pol->policies[1].rules[0].action, CONFIG_ACT_ALLOW);
    cr_expect_eq(pol->policies[1].default_action, CONFIG_ACT_BLOCK);
    cr_expect_str_eq(pol->policies[2].name, "office");
    NAMES(pol->policies[2].profiles, "office");
    cr_assert_eq(pol->policies[2].n_rules, 2);
    cr_expect_str_eq(pol->policies[2].rules[0].category, "arts-entertainment");
    cr_expect_eq(pol->policies[2].rules[0].action, CONFIG_ACT_BLOCK);
    cr_expect_str_eq(pol->policies[2].rules[1].category, "adult");
    cr_expect_eq(pol->policies[2].rules[1].action, CONFIG_ACT_BLOCK);
    cr_expect_eq(pol->policies[2].default_action, CONFIG_ACT_ALLOW);
    cr_expect_str_eq(pol->policies[3].name, "default");
    NO_NAMES(pol->policies[3].profiles);
    cr_expect_eq(pol->policies[3].n_rules, 0);
    cr_expect_eq(pol->policies[3].default_action, CONFIG_ACT_ALLOW);
    for (size_t i = 0; i < 4; i++) {
        cr_expect_eq(pol->policies[i].n_connect_ports, 0);
        cr_expect_eq(pol->policies[i].methods.n, 0);
    }

    cr_assert_eq(pol->n_time_ranges, 1);
    cr_expect_str_eq(pol->time_ranges[0].name, "work-hours");
    cr_expect_eq(pol->time_ranges[0].days, 0x1f);
    cr_expect_eq(pol->time_ranges[0].from_min, 9 * 60);
    cr_expect_eq(pol->time_ranges[0].to_min, 17 * 60);

    cr_assert_eq(pol->n_custom, 1);
    cr_expect_str_eq(pol->custom[0].name, "machine-updates");
    NAMES(pol->custom[0].domains, "update.example.com");
    NO_NAMES(pol->custom[0].url_prefixes);
    NO_NAMES(pol->custom[0].regexes);

    cr_expect_str_eq(pol->category_db, "var/categories.db");
    cr_assert_eq(pol->n_friendly, 2);
    cr_expect_str_eq(pol->friendly[0].name, "arts-entertainment");
    NAMES(pol->friendly[0].lists, "arts");
    cr_expect_str_eq(pol->friendly[1].name, "adult");
    NAMES(pol->friendly[1].lists, "adult");

    cr_expect_str_eq(pol->auth_realm, "musproxy");
    cr_expect_str_eq(pol->auth_password_file, "");
    cr_expect_eq(pol->auth_surrogate_ttl, 15 * 60 * 1000);
    cr_expect_str_eq(pol->extended_log, "var/extended.log");
    config_free(cfg);
}

/* Empty file, comments only, a lone "---", explicit null: all defaults. */
Test(config, empty_inputs_give_defaults)
{
    static const char *const inputs[] = {
        "", "\n", "# nothing\n", "---\n", "--- ~\n", "---\n...\n", "proxy:\n", "proxy: ~\n",
        "proxy:\n  timeouts:\n", "proxy: {}\n", "{}\n",
        "identity_profiles: []\naccess_policies: []\ncustom_categories: []\ntime_ranges:\n"
        "categories:\nauthentication:\n",
        "time_ranges: {}\ncategories: { names: {}, database: \"\" }\nauthentication: {}\n"
        "extended_log: off\n",
    };
    char err[CONFIG_ERR_LEN];

    for (size_t i = 0; i < N_ELEMS(inputs); i++) {
        config_t *cfg = load_str(inputs[i], err);
        cr_assert_not_null(cfg, "input %zu: %s", i, err);
        cr_expect_str_eq(cfg->path, "t.yaml");
        expect_defaults(cfg);
        expect_policy_defaults(cfg);
        cr_expect_null(cfg->pool, "input %zu: nothing allocated", i);
        config_free(cfg);
    }
    /* A NULL buffer is an empty one. */
    config_t *cfg = config_load_buffer("null", NULL, 0, err, sizeof(err));
    cr_assert_not_null(cfg, "%s", err);
    expect_defaults(cfg);
    config_free(cfg);
}

Test(config, every_field_parsed)
{
    static const char text[] =
        "# every key, none at its default\n"
        "proxy:\n"
        "  listen:\n"
        "    - { address: \"0.0.0.0:8080\", mode: explicit }\n"
        "    - address: \"[::]:3129\"\n"
        "      mode: transparent\n"
        "    - \"[::1]:3128\"\n"
        "    - 192.0.2.7:65535\n"
        "    - { mode: transparent, address: \"[::ffff:192.0.2.8]:1\" }\n"
        "  workers: 8\n"
        "  clients: [192.0.2.0/24, \"2001:db8::/32\", 10.1.2.3/8]\n"
        "  deny_destinations:\n"
        "    - 203.0.113.1\n"
        "    - \"::/0\"\n"
        "  connect_ports: [443, 8443, 1, 65535]\n"
        "  max_connections: 1000000\n"
        "  tunnel_relay: splice\n"
        "  timeouts:\n"
        "    header: 250ms\n"
        "    idle: 2m\n"
        "    connect: 3\n"
        "    response: 1h\n"
        "    tunnel_idle: 45s\n"
        "    shutdown: \"30s\"\n"
        "    dns: 1500ms\n"
        "  access_log: /var/log/musproxy/access.log\n"
        "  visible_hostname: proxy-1.example.org\n"
        "log_level: debug\n";
    char err[CONFIG_ERR_LEN];
    config_t *cfg = load_str(text, err);

    cr_assert_not_null(cfg, "%s", err);
    cr_assert_eq(cfg->n_listen, 5);
    cr_expect_str_eq(cfg->listen[0].text, "0.0.0.0:8080");
    expect_sockaddr(&cfg->listen[0], AF_INET, "0.0.0.0", 8080);
    cr_expect_eq(cfg->listen[0].mode, CONFIG_MODE_EXPLICIT);
    cr_expect_str_eq(cfg->listen[1].text, "[::]:3129");
    expect_sockaddr(&cfg->listen[1], AF_INET6, "::", 3129);
    cr_expect_eq(cfg->listen[1].mode, CONFIG_MODE_TRANSPARENT);
    cr_expect_str_eq(cfg->listen[2].text, "[::1]:3128");
    expect_sockaddr(&cfg->listen[2], AF_INET6, "::1", 3128);
    cr_expect_eq(cfg->listen[2].mode, CONFIG_MODE_EXPLICIT);
    expect_sockaddr(&cfg->listen[3], AF_INET, "192.0.2.7", 65535);
    cr_expect_eq(cfg->listen[3].mode, CONFIG_MODE_EXPLICIT);
    cr_expect_str_eq(cfg->listen[4].text, "[::ffff:192.0.2.8]:1");
    expect_sockaddr(&cfg->listen[4], AF_INET6, "192.0.2.8", 1);
    cr_expect_eq(cfg->listen[4].mode, CONFIG_MODE_TRANSPARENT);
    cr_expect_eq(cfg->workers, 8);
    cr_assert_eq(cfg->n_clients, 3);
    expect_cidr(&cfg->clients[0], "192.0.2.0/24");
    expect_cidr(&cfg->clients[1], "2001:db8::/32");
    expect_cidr(&cfg->clients[2], "10.0.0.0/8");   /* host bits cleared */
    cr_assert_eq(cfg->n_deny_destinations, 2);
    expect_cidr(&cfg->deny_destinations[0], "203.0.113.1/32");
    expect_cidr(&cfg->deny_destinations[1], "::/0");
    cr_assert_eq(cfg->n_connect_ports, 4);
    cr_expect_eq(cfg->connect_ports[0], 443);
    cr_expect_eq(cfg->connect_ports[1], 8443);
    cr_expect_eq(cfg->connect_ports[2], 1);
    cr_expect_eq(cfg->connect_ports[3], 65535);
    cr_expect_eq(cfg->max_connections, 1000000);
    cr_expect_eq(cfg->tunnel_relay, CONFIG_RELAY_SPLICE);
    cr_expect_eq(cfg->timeouts.header, 250);
    cr_expect_eq(cfg->timeouts.idle, 120000);
    cr_expect_eq(cfg->timeouts.connect, 3000);
    cr_expect_eq(cfg->timeouts.response, 3600000);
    cr_expect_eq(cfg->timeouts.tunnel_idle, 45000);
    cr_expect_eq(cfg->timeouts.shutdown, 30000);
    cr_expect_eq(cfg->timeouts.dns, 1500);
    cr_expect_str_eq(cfg->access_log, "/var/log/musproxy/access.log");
    cr_expect_str_eq(cfg->visible_hostname, "proxy-1.example.org");
    cr_expect_eq(cfg->log_level, LOG_LVL_DEBUG);
    config_free(cfg);
}

/* Keys that are not given keep their default; lists given replace it. */
Test(config, partial_sections_keep_other_defaults)
{
    char err[CONFIG_ERR_LEN];
    config_t *cfg = load_str("proxy:\n  timeouts: { dns: 2s }\n  clients: []\n"
                             "  deny_destinations: []\n  connect_ports: []\n"
                             "  workers: \"auto\"\nlog_level: warn\n", err);

    cr_assert_not_null(cfg, "%s", err);
    cr_expect_eq(cfg->timeouts.dns, 2000);
    cr_expect_eq(cfg->timeouts.header, 10000);
    cr_expect_eq(cfg->timeouts.tunnel_idle, 300000);
    cr_expect_eq(cfg->n_clients, 0);
    cr_expect_eq(cfg->n_deny_destinations, 0);
    cr_expect_eq(cfg->n_connect_ports, 0);
    cr_expect_eq(cfg->workers, 0);
    cr_expect_eq(cfg->n_listen, 1);
    cr_expect_eq(cfg->max_connections, 10000);
    cr_expect_eq(cfg->log_level, LOG_LVL_WARN);
    config_free(cfg);
}

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
    config_free(cfg);
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

Test(config, access_log_off)
{
    static const char *const inputs[] = {
        "proxy: { access_log: off }\n", "proxy: { access_log: \"\" }\n", "proxy: { access_log: '' }\n",
    };
    char err[CONFIG_ERR_LEN];

    for (size_t i = 0; i < N_ELEMS(inputs); i++) {
        config_t *cfg = load_str(inputs[i], err);
        cr_assert_not_null(cfg, "%s: %s", inputs[i], err);
        cr_expect_str_eq(cfg->access_log, "", "%s", inputs[i]);
        config_free(cfg);
    }
}

struct bad_case {
    const char *yaml;
    const char *message;
};

#define TOP_KEYS "(expected one of: proxy, log_level, mus, identity_profiles, " \
    "access_policies, time_ranges, custom_categories, categories, authentication, extended_log, store, pac, wccp, gre, radius, admin, run)"
#define LISTEN_HINT "(use 1.2.3.4:port or [::1]:port, numeric)"
#define CIDR_HINT "is not an address prefix (e.g. 10.0.0.0/8, fc00::/7)"
#define PROXY_KEYS "(expected one of: listen, workers, clients, deny_destinations, " \
    "connect_ports, max_connections, tunnel_relay, timeouts, access_log, visible_hostname, " \
    "transparent)"

static const struct bad_case bad_cases[] = {
    /* unknown keys, at each level */
    { "muss:\n  probe_host: mus.cisco.com\n",
      "t.yaml:1:1: unknown key 'muss' at top level " TOP_KEYS },
    { "log_level: info\ndecryption_policies: []\n",
      "t.yaml:2:1: unknown key 'decryption_policies' at top level " TOP_KEYS },
    /* the mus section */
    { "mus:\n  probe: x\n",
      "t.yaml:2:3: unknown key 'probe' in mus (expected one of: remote_users, vpn_pools, "
      "probe_host, reconnect_interval, grace, client_id, control_socket, headends)" },
    { "mus:\n  remote_users: radius\n",
      "t.yaml:2:17: invalid remote_users 'radius' (use headend or ip_ranges)" },
    { "mus:\n  vpn_pools: [10.10.10.0/33]\n",
      "t.yaml:2:15: 'vpn_pools' entry '10.10.10.0/33' " CIDR_HINT },
    { "mus:\n  probe_host: \"mus cisco\"\n",
      "t.yaml:2:15: invalid probe_host 'mus cisco' (letters, digits, '-', '.' or '_')" },
    { "mus:\n  reconnect_interval: 0\n",
      "t.yaml:2:23: invalid duration '0' (use ms, s, m or h)" },
    { "mus:\n  grace: -1\n",
      "t.yaml:2:10: invalid duration '-1' (use ms, s, m or h)" },
    { "mus:\n  headends: [asa]\n",
      "t.yaml:2:14: 'headends' entries must be mappings, got a scalar" },
    { "mus:\n  headends:\n    - { addresses: [\"127.0.0.1:11999\"] }\n",
      "t.yaml:3:7: headend entry has no 'name'" },
    { "mus:\n  headends:\n    - { name: a, password_file: p, ca: c }\n",
      "t.yaml:3:7: headend 'a' has no 'addresses'" },
    { "mus:\n  headends:\n    - { name: a, addresses: [\"127.0.0.1:11999\"], ca: c }\n",
      "t.yaml:3:7: headend 'a' has no 'password_file'" },
    { "mus:\n  headends:\n    - { name: a, addresses: [\"127.0.0.1:11999\"], password_file: p }\n",
      "t.yaml:3:7: headend 'a' needs exactly one of 'ca' (a CA file) or 'pin_sha256'" },
    { "mus:\n  headends:\n    - { name: a, addresses: [\"host:11999\"], password_file: p, ca: c }\n",
      "t.yaml:3:30: invalid headend address 'host:11999' (use 192.0.2.1:11999 or [2001:db8::1]:11999)" },
    { "mus:\n  headends:\n    - { name: a, addresses: [\"127.0.0.1:1\"], password_file: p, pin_sha256: abc }\n",
      "t.yaml:3:76: invalid pin_sha256 'abc' (64 hex digits: SHA-256 of the certificate's public key)" },
    { "mus:\n  headends:\n    - { name: a, addresses: [\"127.0.0.1:1\"], password_file: p, ca: c }\n"
      "    - { name: a, addresses: [\"127.0.0.1:2\"], password_file: p, ca: c }\n",
      "t.yaml:4:7: duplicate headend name 'a'" },
    { "proxy:\n  tunnel_relay: zerocopy\n",
      "t.yaml:2:17: invalid tunnel_relay 'zerocopy' (use auto, splice or copy)" },
    { "proxy:\n  listn: [\"127.0.0.1:3128\"]\n",
      "t.yaml:2:3: unknown key 'listn' in proxy " PROXY_KEYS },
    { "proxy:\n  timeouts:\n    heder: 1s\n",
      "t.yaml:3:5: unknown key 'heder' in proxy.timeouts (expected one of: header, idle, "
      "connect, response, tunnel_idle, shutdown, dns)" },
    { "proxy:\n  listen:\n    - { address: \"127.0.0.1:3128\", mod: explicit }\n",
      "t.yaml:3:36: unknown key 'mod' in a proxy.listen entry (expected one of: address, mode, tproxy, spoof_client_address)" },
    { "Proxy: {}\n", "t.yaml:1:1: unknown key 'Proxy' at top level " TOP_KEYS },
    { "? [a, b]\n: 1\n", "t.yaml:1:3: keys at top level must be scalars, got a list" },
    /* wrong node types */
    { "proxy:\n  clients: 10.0.0.0/8\n", "t.yaml:2:12: 'clients' must be a list, got a scalar" },
    { "proxy:\n  clients:\n",
      "t.yaml:2:11: 'clients' must be a list, got an empty value (write [] for an empty list)" },
    { "proxy:\n  workers: [1]\n", "t.yaml:2:12: 'workers' must be a scalar, got a list" },
    { "proxy:\n  connect_ports: { a: 1 }\n",
      "t.yaml:2:18: 'connect_ports' must be a list, got a mapping" },
    { "proxy:\n  connect_ports: [[443]]\n",
      "t.yaml:2:19: 'connect_ports' entry must be a scalar, got a list" },
    { "proxy:\n  clients: [{ a: 1 }]\n",
      "t.yaml:2:13: 'clients' entry must be a scalar, got a mapping" },
    { "proxy: yes\n", "t.yaml:1:8: 'proxy' must be a mapping, got a scalar" },
    { "proxy:\n  timeouts: [1s]\n", "t.yaml:2:13: 'timeouts' must be a mapping, got a list" },
    { "- proxy\n", "t.yaml:1:1: the top level must be a mapping, got a list" },
    { "just a string\n", "t.yaml:1:1: the top level must be a mapping, got a scalar" },
    { "log_level: [info]\n", "t.yaml:1:12: 'log_level' must be a scalar, got a list" },
    { "proxy:\n  listen: [[\"127.0.0.1:3128\"]]\n",
      "t.yaml:2:12: 'listen' entries must be an address or a mapping, got a list" },
    { "proxy:\n  listen:\n    - address: [\"127.0.0.1:3128\"]\n",
      "t.yaml:3:16: listen 'address' must be a scalar, got a list" },
    /* durations */
    { "proxy:\n  timeouts: { header: 10x }\n",
      "t.yaml:2:23: invalid duration '10x' (use ms, s, m or h)" },
    { "proxy:\n  timeouts:\n    idle: 0s\n",
      "t.yaml:3:11: invalid duration '0s' (use ms, s, m or h)" },
    { "proxy:\n  timeouts:\n    connect: -5s\n",
      "t.yaml:3:14: invalid duration '-5s' (use ms, s, m or h)" },
    { "proxy:\n  timeouts:\n    dns: 25d\n",
      "t.yaml:3:10: invalid duration '25d' (use ms, s, m or h)" },
    { "proxy:\n  timeouts:\n    shutdown: 600h\n",
      "t.yaml:3:15: invalid duration '600h' (use ms, s, m or h)" },
    { "proxy:\n  timeouts:\n    response:\n",
      "t.yaml:3:14: invalid duration '' (use ms, s, m or h)" },
    /* ports */
    { "proxy:\n  connect_ports: [443, 70000]\n",
      "t.yaml:2:24: 'connect_ports' entry 70000 is not a port (1-65535)" },
    { "proxy:\n  connect_ports:\n    - 0\n",
      "t.yaml:3:7: 'connect_ports' entry 0 is not a port (1-65535)" },
    { "proxy:\n  connect_ports: [https]\n",
      "t.yaml:2:19: 'connect_ports' entry https is not a port (1-65535)" },
    { "proxy:\n  connect_ports: [-443]\n",
      "t.yaml:2:19: 'connect_ports' entry -443 is not a port (1-65535)" },
    /* prefixes */
    { "proxy:\n  clients:\n    - 10.0.0.0/33\n",
      "t.yaml:3:7: 'clients' entry '10.0.0.0/33' " CIDR_HINT },
    { "proxy:\n  deny_destinations: [metadata.google.internal]\n",
      "t.yaml:2:23: 'deny_destinations' entry 'metadata.google.internal' " CIDR_HINT },
    { "proxy:\n  clients: [\"fc00::/129\"]\n",
      "t.yaml:2:13: 'clients' entry 'fc00::/129' " CIDR_HINT },
    /* listen */
    { "proxy:\n  listen: [\"localhost:3128\"]\n",
      "t.yaml:2:12: invalid listen address 'localhost:3128' " LISTEN_HINT },
    { "proxy:\n  listen:\n    - address: 127.0.0.1\n",
      "t.yaml:3:16: invalid listen address '127.0.0.1' " LISTEN_HINT },
    { "proxy:\n  listen:\n    - \"::1:3128\"\n",
      "t.yaml:3:7: invalid listen address '::1:3128' " LISTEN_HINT },
    { "proxy:\n  listen:\n    - 127.0.0.1:0\n",
      "t.yaml:3:7: invalid listen address '127.0.0.1:0' " LISTEN_HINT },
    { "proxy:\n  listen:\n    - { address: \"127.0.0.1:3128\", mode: reverse }\n",
      "t.yaml:3:42: invalid listen mode 'reverse' (use explicit, transparent, pac or metrics)" },
    { "proxy:\n  listen:\n    - mode: transparent\n",
      "t.yaml:3:7: listen entry has no 'address'" },
    { "proxy:\n  listen: []\n", "t.yaml:2:11: 'listen' must have at least one address" },
    { "proxy:\n  listen:\n    - { address: 127.0.0.1:3129, tproxy: true }\n",
      "t.yaml:3:7: tproxy: true needs mode: transparent" },
    { "proxy:\n  listen:\n    - { address: 127.0.0.1:3129, mode: transparent, spoof_client_address: true }\n",
      "t.yaml:3:7: spoof_client_address: true needs tproxy: true" },
    { "proxy:\n  listen:\n    - { address: 127.0.0.1:3129, mode: transparent, tproxy: yes }\n",
      "t.yaml:3:61: invalid tproxy 'yes' (use true or false)" },
    /* pac */
    { "pac:\n  proxy: proxy.example\n", "t.yaml:2:10: invalid proxy 'proxy.example' (use host:port)" },
    { "pac:\n  remote_proxy: \"a b:1\"\n", "t.yaml:2:17: invalid remote_proxy 'a b:1' (use host:port)" },
    { "pac:\n  direct: [\"not a name\"]\n",
      "t.yaml:2:12: 'direct' entry 'not a name' is neither a domain name nor an address prefix" },
    { "proxy:\n  listen:\n    - { address: \"127.0.0.1:3128\", mode: wpad }\n",
      "t.yaml:3:42: invalid listen mode 'wpad' (use explicit, transparent, pac or metrics)" },
    { "proxy:\n  listen:\n    - { address: \"0.0.0.0:9129\", mode: metrics }\n",
      "t.yaml:3:7: mode: metrics listens on a loopback address only (remote scrapers use the "
      "admin UI's authenticated /metrics)" },
    /* store */
    { "store:\n  queue: 0\n", "t.yaml:2:10: invalid queue '0' (use 1-4194304)" },
    { "store:\n  retain_days: -1\n", "t.yaml:2:16: invalid retain_days '-1' (use 0-36500)" },
    { "store:\n  keep_query: 1\n", "t.yaml:2:15: invalid keep_query '1' (use true or false)" },
    { "store:\n  paths: x\n",
      "t.yaml:2:3: unknown key 'paths' in store (expected one of: path, queue, retain_days, retain_mb, keep_query)" },
    /* admin */
    { "admin:\n  listen: 0.0.0.0:8080\n",
      "t.yaml:2:11: admin listen address '0.0.0.0:8080' is not a loopback address: the admin UI "
      "would be reachable from other hosts (set allow_remote: true to allow it)" },
    { "admin: { allow_remote: false, listen: \"[2001:db8::1]:80\" }\n",
      "t.yaml:1:39: admin listen address '[2001:db8::1]:80' is not a loopback address: the admin UI "
      "would be reachable from other hosts (set allow_remote: true to allow it)" },
    { "admin:\n  listen: localhost:8080\n",
      "t.yaml:2:11: invalid listen address 'localhost:8080' (use 127.0.0.1:port or [::1]:port, numeric)" },
    { "admin:\n  listen: 127.0.0.1\n",
      "t.yaml:2:11: invalid listen address '127.0.0.1' (use 127.0.0.1:port or [::1]:port, numeric)" },
    { "admin:\n  enabled: yes\n", "t.yaml:2:12: invalid enabled 'yes' (use true or false)" },
    { "admin:\n  allow_remote: 1\n", "t.yaml:2:17: invalid allow_remote '1' (use true or false)" },
    { "admin:\n  password: hunter2\n",
      "t.yaml:2:3: unknown key 'password' in admin (expected one of: enabled, listen, password_file, "
      "allow_remote, tls_cert, tls_key, session_idle, session_max)" },
    { "admin:\n  tls_cert: /etc/hostname\n",
      "t.yaml:2:13: admin tls_cert is set without tls_key: HTTPS needs both (or neither)" },
    { "admin:\n  listen: 127.0.0.1:8443\n  tls_key: /etc/hostname\n",
      "t.yaml:3:12: admin tls_key is set without tls_cert: HTTPS needs both (or neither)" },
    { "admin:\n  tls_cert: /nonexistent/admin.pem\n  tls_key: /etc/hostname\n",
      "t.yaml:2:13: admin tls_cert '/nonexistent/admin.pem': No such file or directory" },
    { "admin:\n  tls_cert: /etc/hostname\n  tls_key: /tmp\n",
      "t.yaml:3:12: admin tls_key '/tmp' is not a regular file" },
    { "admin:\n  session_idle: 500ms\n", "t.yaml:2:17: 'session_idle' must be between 1s and 24h" },
    { "admin:\n  session_idle: 25h\n", "t.yaml:2:17: 'session_idle' must be between 1s and 24h" },
    { "admin:\n  session_max: 169h\n", "t.yaml:2:16: 'session_max' must be between 1s and 168h" },
    { "admin:\n  session_idle: soon\n", "t.yaml:2:17: invalid duration 'soon' (use ms, s, m or h)" },
    { "admin:\n  session_max: 1h\n  session_idle: 2h\n",
      "t.yaml:3:17: admin session_idle is longer than session_max: a login would end at "
      "session_max anyway" },
    { "admin: [127.0.0.1:8080]\n", "t.yaml:1:8: 'admin' must be a mapping, got a list" },
    { "admin:\n  password_file: \"a\\tb\"\n", "t.yaml:2:18: 'password_file' contains a control character" },
    /* proxy.transparent */
    { "proxy:\n  transparent: { host_mismatch: strict }\n",
      "t.yaml:2:33: invalid host_mismatch 'strict' (use log or refuse)" },
    { "proxy:\n  transparent: { no_sni: maybe }\n",
      "t.yaml:2:26: invalid no_sni 'maybe' (use allow or block)" },
    { "proxy:\n  transparent: { bypass: [\"exa mple.com\"] }\n",
      "t.yaml:2:27: 'bypass' entry 'exa mple.com' is neither a domain name nor an address prefix" },
    { "proxy:\n  transparent: { bypass: [10.0.0.0/33] }\n",
      "t.yaml:2:27: 'bypass' entry '10.0.0.0/33' is not an address prefix (e.g. 10.0.0.0/8)" },
    { "proxy:\n  transparent: { bypass: [a..b] }\n",
      "t.yaml:2:27: 'bypass' entry 'a..b' is neither a domain name nor an address prefix" },
    { "proxy:\n  transparent: { peek_timeout: soon }\n",
      "t.yaml:2:32: invalid duration 'soon' (use ms, s, m or h)" },
    { "proxy:\n  listen:\n    - 127.0.0.1:3128\n"
      "    - { address: 127.0.0.1:3128, mode: transparent }\n",
      "t.yaml:4:18: duplicate listen address '127.0.0.1:3128'" },
    { "proxy:\n  listen: [\"[::1]:80\", \"[0:0::1]:80\"]\n",
      "t.yaml:2:24: duplicate listen address '[0:0::1]:80'" },
    { "proxy:\n  listen:\n    - { address: 127.0.0.1:1, address: 127.0.0.1:2 }\n",
      "t.yaml:3:31: duplicate key 'address' in a proxy.listen entry" },
    /* other scalars */
    { "proxy:\n  workers: 0\n", "t.yaml:2:12: invalid workers '0' (use auto or 1-256)" },
    { "proxy:\n  workers: 257\n", "t.yaml:2:12: invalid workers '257' (use auto or 1-256)" },
    { "proxy:\n  workers: Auto\n", "t.yaml:2:12: invalid workers 'Auto' (use auto or 1-256)" },
    { "proxy:\n  max_connections: 1000001\n",
      "t.yaml:2:20: invalid max_connections '1000001' (use 1-1000000)" },
    { "proxy:\n  max_connections: 99999999999999999999999\n",
      "t.yaml:2:20: invalid max_connections '99999999999999999999999' (use 1-1000000)" },
    { "proxy:\n  max_connections: 1e4\n",
      "t.yaml:2:20: invalid max_connections '1e4' (use 1-1000000)" },
    { "log_level: verbose\n",
      "t.yaml:1:12: invalid log_level 'verbose' (use error, warn, info or debug)" },
    { "proxy:\n  visible_hostname: \"a\\r\\nX-Evil: 1\"\n",
      "t.yaml:2:21: invalid visible_hostname 'a??X-Evil: 1' (1-255 letters, digits, '-', '.' or '_')" },
    { "proxy:\n  visible_hostname: \"\"\n",
      "t.yaml:2:21: invalid visible_hostname '' (1-255 letters, digits, '-', '.' or '_')" },
    { "proxy:\n  access_log:\n", "t.yaml:2:14: 'access_log' needs a value (a path, or off)" },
    { "proxy:\n  access_log: \"var/a\\nb.log\"\n",
      "t.yaml:2:15: 'access_log' contains a control character" },
    { "log_level: \"in\\0fo\"\n", "t.yaml:1:12: 'log_level' contains a NUL character" },
    /* duplicate keys */
    { "proxy:\n  workers: 2\n  workers: 4\n", "t.yaml:3:3: duplicate key 'workers' in proxy" },
    { "log_level: info\nlog_level: debug\n", "t.yaml:2:1: duplicate key 'log_level' at top level" },
    { "proxy: {}\nproxy: {}\n", "t.yaml:2:1: duplicate key 'proxy' at top level" },
    { "proxy:\n  timeouts: { dns: 1s, dns: 2s }\n",
      "t.yaml:2:24: duplicate key 'dns' in proxy.timeouts" },
    /* anchors, aliases, tags, documents */
    { "log_level: *lvl\n", "t.yaml:1:12: aliases are not allowed ('*lvl')" },
    { "proxy: &p\n  workers: 2\n", "t.yaml:1:8: anchors are not allowed ('&p')" },
    { "proxy:\n  clients: &a [\"10.0.0.0/8\"]\n  deny_destinations: [*a, *a]\n",
      "t.yaml:2:12: anchors are not allowed ('&a')" },
    { "log_level: !!str info\n", "t.yaml:1:12: tags are not allowed ('tag:yaml.org,2002:str')" },
    { "log_level: !custom info\n", "t.yaml:1:12: tags are not allowed ('!custom')" },
    { "log_level: info\n---\nlog_level: warn\n", "t.yaml:2:1: only one YAML document is allowed" },
    /* YAML syntax: libyaml's problem, at libyaml's mark */
    { "proxy: {workers: 2\n",
      "t.yaml:2:1: did not find expected ',' or '}' (while parsing a flow mapping at line 1 column 8)" },
    { "proxy:\n\tworkers: 2\n",
      "t.yaml:2:1: found character that cannot start any token "
      "(while scanning for the next token at line 2 column 1)" },
    { "proxy:\n  clients: [10.0.0.0/8\n",
      "t.yaml:3:1: did not find expected ',' or ']' (while parsing a flow sequence at line 2 column 12)" },
    { "log_level: \"info\n",
      "t.yaml:2:1: found unexpected end of stream (while scanning a quoted scalar at line 1 column 12)" },
    { "proxy:\n  workers: 2\n bad\n",
      "t.yaml:3:2: did not find expected key (while parsing a block mapping at line 1 column 1)" },
    { "log_level: info\n\xff\n", "t.yaml:2:1: invalid leading UTF-8 octet (#FF)" },
    { "log_level: x\x01y\n", "t.yaml:1:13: control characters are not allowed (#1)" },
    /* a long value is cut in the message */
    { "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk: 1\n",
      "t.yaml:1:1: unknown key 'kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk...' "
      "at top level " TOP_KEYS },
    /* policies */
    { "identity_profiles: {}\n",
      "t.yaml:1:20: 'identity_profiles' must be a list, got a mapping" },
    { "identity_profiles:\n",
      "t.yaml:1:19: 'identity_profiles' must be a list, got an empty value (write [] for an empty list)" },
    { "identity_profiles: [remote]\n",
      "t.yaml:1:21: 'identity_profiles' entries must be mappings, got a scalar" },
    { "identity_profiles:\n  - location: remote\n",
      "t.yaml:2:5: identity profile entry has no 'name'" },
    { "identity_profiles:\n  - { name: a }\n  - { name: b }\n  - { name: a }\n",
      "t.yaml:4:13: duplicate identity profile name 'a'" },
    { "identity_profiles:\n  - name: \"a b\"\n",
      "t.yaml:2:11: invalid name 'a b' (letters, digits, '-', '.' or '_')" },
    { "identity_profiles:\n  - { name: a, location: vpn }\n",
      "t.yaml:2:26: invalid location 'vpn' (use remote, local or any)" },
    { "identity_profiles:\n  - { name: a, types: [user, robot] }\n",
      "t.yaml:2:30: invalid type 'robot' (use user, machine or device)" },
    { "identity_profiles:\n  - { name: a, types: [user, user] }\n",
      "t.yaml:2:30: duplicate 'types' entry 'user'" },
    { "identity_profiles:\n  - { name: a, types: user }\n",
      "t.yaml:2:23: 'types' must be a list, got a scalar" },
    { "identity_profiles:\n  - { name: a, subnets: [10.0.0.0/33] }\n",
      "t.yaml:2:26: 'subnets' entry '10.0.0.0/33' is not an address prefix (e.g. 10.0.0.0/8, fc00::/7)" },
    { "identity_profiles:\n  - { name: a, ports: [0] }\n",
      "t.yaml:2:24: 'ports' entry 0 is not a port (1-65535)" },
    { "identity_profiles:\n  - { name: a, mode: reverse }\n",
      "t.yaml:2:22: invalid mode 'reverse' (use explicit, transparent or any)" },
    { "identity_profiles:\n  - { name: a, user_agent: [x] }\n",
      "t.yaml:2:28: 'user_agent' must be a scalar, got a list" },
    { "identity_profiles:\n  - { name: a, users: [\"a,b\"] }\n",
      "t.yaml:2:24: 'users' entry 'a,b' is not a valid user or group name (1-255 bytes, no ',', control characters or surrounding spaces)" },
    { "identity_profiles:\n  - { name: a, groups: [\" eng\"] }\n",
      "t.yaml:2:25: 'groups' entry ' eng' is not a valid user or group name (1-255 bytes, no ',', control characters or surrounding spaces)" },
    { "identity_profiles:\n  - { name: a, users: [alice, alice] }\n",
      "t.yaml:2:31: duplicate 'users' entry 'alice'" },
    { "identity_profiles:\n  - { name: a, auth: ntlm }\n",
      "t.yaml:2:22: invalid auth 'ntlm' (use none or basic)" },
    { "identity_profiles:\n  - { name: a, refuse_unidentified: yes }\n",
      "t.yaml:2:37: invalid refuse_unidentified 'yes' (use true or false)" },
    { "identity_profiles:\n  - { name: a, colour: red }\n",
      "t.yaml:2:16: unknown key 'colour' in an identity_profiles entry (expected one of: name, location, types, subnets, ports, mode, user_agent, users, groups, auth, refuse_unidentified)" },
    { "identity_profiles:\n  - name: a\n    auth: basic\n",
      "t.yaml:3:5: auth: basic needs authentication.password_file" },
    { "identity_profiles:\n  - { name: a, auth: basic, mode: transparent }\nauthentication: { password_file: p }\n",
      "t.yaml:2:16: auth: basic cannot go with mode: transparent (such clients cannot be asked for credentials)" },
    { "identity_profiles:\n  - { name: a, name: b }\n",
      "t.yaml:2:16: duplicate key 'name' in an identity_profiles entry" },
    { "access_policies:\n  - { profiles: [a] }\n",
      "t.yaml:2:5: access policy entry has no 'name'" },
    { "access_policies:\n  - { name: p, profiles: [nobody] }\n",
      "t.yaml:2:27: unknown identity profile 'nobody'" },
    { "identity_profiles: [{ name: a }]\naccess_policies:\n  - { name: p, profiles: [a] }\n  - { name: q, profiles: [a] }\n",
      "t.yaml:4:27: identity profile 'a' is already in policy 'p' (the first match wins)" },
    { "identity_profiles: [{ name: a }]\naccess_policies:\n  - { name: p, profiles: [a, a] }\n",
      "t.yaml:3:30: duplicate 'profiles' entry 'a'" },
    { "access_policies:\n  - { name: default }\n  - { name: late, profiles: [a] }\n",
      "t.yaml:3:13: policy 'late' comes after the default policy 'default'" },
    { "access_policies:\n  - { name: d1 }\n  - { name: d2, profiles: [] }\n",
      "t.yaml:3:13: policy 'd2' comes after the default policy 'd1'" },
    { "access_policies:\n  - { name: p }\n  - { name: p }\n",
      "t.yaml:3:13: duplicate access policy name 'p'" },
    { "access_policies:\n  - name: p\n    categories: { adult: deny }\n",
      "t.yaml:3:26: invalid action 'deny' (use allow, block or monitor)" },
    { "access_policies:\n  - name: p\n    categories: { adult: { action: block, time: night } }\n",
      "t.yaml:3:49: unknown time range 'night'" },
    { "access_policies:\n  - name: p\n    categories: { adult: { time: night } }\n",
      "t.yaml:3:26: category 'adult' needs an 'action'" },
    { "access_policies:\n  - name: p\n    categories: { adult: [block] }\n",
      "t.yaml:3:26: category 'adult' needs an action (use allow, block or monitor) or a mapping { action, time }, got a list" },
    { "access_policies:\n  - name: p\n    categories: { adult: }\n",
      "t.yaml:3:26: category 'adult' needs an action (use allow, block or monitor) or a mapping { action, time }, got an empty value" },
    { "access_policies:\n  - name: p\n    categories: { \"ad ult\": block }\n",
      "t.yaml:3:19: invalid category name 'ad ult' (1-63 letters, digits, '-', '.' or '_')" },
    { "access_policies:\n  - name: p\n    categories: { adult: block, adult: allow }\n",
      "t.yaml:3:33: duplicate category 'adult' in 'categories'" },
    { "access_policies:\n  - name: p\n    categories: [adult]\n",
      "t.yaml:3:17: 'categories' must be a mapping of category: action, got a list" },
    { "access_policies:\n  - name: p\n    categories: { adult: { action: block, when: x } }\n",
      "t.yaml:3:43: unknown key 'when' in a category rule (expected one of: action, time)" },
    { "access_policies:\n  - { name: p, default: deny }\n",
      "t.yaml:2:25: invalid default 'deny' (use allow, block or monitor)" },
    { "access_policies:\n  - { name: p, connect_ports: [] }\n",
      "t.yaml:2:31: 'connect_ports' must not be empty (omit it to use proxy.connect_ports)" },
    { "access_policies:\n  - { name: p, connect_ports: [443, 65536] }\n",
      "t.yaml:2:37: 'connect_ports' entry 65536 is not a port (1-65535)" },
    { "access_policies:\n  - { name: p, methods: [get] }\n",
      "t.yaml:2:26: 'methods' entry 'get' is not a method (1-32 uppercase letters, e.g. GET)" },
    { "access_policies:\n  - { name: p, methods: [] }\n",
      "t.yaml:2:25: 'methods' must not be empty (omit it to allow any method)" },
    { "access_policies:\n  - { name: p, methods: [GET, GET] }\n",
      "t.yaml:2:31: duplicate 'methods' entry 'GET'" },
    { "access_policies:\n  - { name: p, method: [GET] }\n",
      "t.yaml:2:16: unknown key 'method' in an access_policies entry (expected one of: name, profiles, categories, default, connect_ports, methods)" },
    { "time_ranges:\n  work: { days: [mon], hours: \"17:00-09:00\" }\n",
      "t.yaml:2:31: hours '17:00-09:00' must start before they end (a range cannot cross midnight)" },
    { "time_ranges:\n  work: { days: [mon], hours: \"9:00-17:00\" }\n",
      "t.yaml:2:31: invalid hours '9:00-17:00' (use HH:MM-HH:MM, e.g. 09:00-17:00; 24:00 ends the day)" },
    { "time_ranges:\n  work: { days: [mon], hours: \"09:00-24:01\" }\n",
      "t.yaml:2:31: invalid hours '09:00-24:01' (use HH:MM-HH:MM, e.g. 09:00-17:00; 24:00 ends the day)" },
    { "time_ranges:\n  work: { days: [monday], hours: \"09:00-17:00\" }\n",
      "t.yaml:2:18: invalid day 'monday' (use mon, tue, wed, thu, fri, sat or sun)" },
    { "time_ranges:\n  work: { days: [], hours: \"09:00-17:00\" }\n",
      "t.yaml:2:17: 'days' must not be empty" },
    { "time_ranges:\n  work: { days: [mon, mon], hours: \"09:00-17:00\" }\n",
      "t.yaml:2:23: duplicate 'days' entry 'mon'" },
    { "time_ranges:\n  work: { hours: \"09:00-17:00\" }\n",
      "t.yaml:2:9: time range 'work' has no 'days'" },
    { "time_ranges:\n  work: { days: [mon] }\n",
      "t.yaml:2:9: time range 'work' has no 'hours'" },
    { "time_ranges:\n  work: { days: [mon], hours: \"09:00-10:00\" }\n  work: { days: [tue], hours: \"09:00-10:00\" }\n",
      "t.yaml:3:3: duplicate time range 'work'" },
    { "time_ranges:\n  work: \"09:00-17:00\"\n",
      "t.yaml:2:9: time range 'work' must be a mapping { days, hours }, got a scalar" },
    { "time_ranges: [work]\n",
      "t.yaml:1:14: 'time_ranges' must be a mapping of name: { days, hours }, got a list" },
    { "time_ranges:\n  \"w h\": { days: [mon], hours: \"09:00-10:00\" }\n",
      "t.yaml:2:3: invalid time range name 'w h' (1-63 letters, digits, '-', '.' or '_')" },
    { "custom_categories:\n  - { name: c }\n",
      "t.yaml:2:5: custom category 'c' has no domains, url_prefixes or regexes" },
    { "custom_categories:\n  - { domains: [a.example] }\n",
      "t.yaml:2:5: custom category entry has no 'name'" },
    { "custom_categories:\n  - { name: c, domains: [a.example] }\n  - { name: c, regexes: [x] }\n",
      "t.yaml:3:13: duplicate custom category name 'c'" },
    { "custom_categories:\n  - { name: c, domains: [\"a..example\"] }\n",
      "t.yaml:2:26: 'domains' entry 'a..example' is not a domain name (e.g. example.com; it matches its subdomains too)" },
    { "custom_categories:\n  - { name: c, domains: [\"*.example\"] }\n",
      "t.yaml:2:26: 'domains' entry '*.example' is not a domain name (e.g. example.com; it matches its subdomains too)" },
    { "custom_categories:\n  - { name: c, url_prefixes: [\"ftp://x/\"] }\n",
      "t.yaml:2:31: 'url_prefixes' entry 'ftp://x/' is not a URL prefix (http://host/path or https://host/path, no spaces, at most 2048 bytes)" },
    { "custom_categories:\n  - { name: c, url_prefixes: [\"http://\"] }\n",
      "t.yaml:2:31: 'url_prefixes' entry 'http://' is not a URL prefix (http://host/path or https://host/path, no spaces, at most 2048 bytes)" },
    { "custom_categories:\n  - { name: c, regexes: [\"\"] }\n",
      "t.yaml:2:26: 'regexes' entry '' is not a valid regex (1-1023 bytes, no control characters)" },
    { "custom_categories:\n  - { name: c, domains: [], url_prefixes: [], regexes: [] }\n",
      "t.yaml:2:5: custom category 'c' has no domains, url_prefixes or regexes" },
    { "custom_categories:\n  - { name: adult, domains: [a.example] }\ncategories:\n  names: { adult: [adult] }\n",
      "t.yaml:4:12: 'adult' is both a custom category and a category name in categories.names" },
    { "categories:\n  names: { adult: [adult] }\ncustom_categories:\n  - { name: adult, domains: [a.example] }\n",
      "t.yaml:4:13: 'adult' is both a custom category and a category name in categories.names" },
    { "categories:\n  names: { adult: [] }\n",
      "t.yaml:2:19: category 'adult' must name at least one list category" },
    { "categories:\n  names: { adult: [adult], adult: [porn] }\n",
      "t.yaml:2:28: duplicate category name 'adult' in 'names'" },
    { "categories:\n  names: { adult: [adult, \"x y\"] }\n",
      "t.yaml:2:27: 'adult' entry 'x y' is not a valid name (1-63 letters, digits, '-', '.' or '_')" },
    { "categories:\n  names: [adult]\n",
      "t.yaml:2:10: 'names' must be a mapping of name: [list categories], got a list" },
    { "categories:\n  database:\n",
      "t.yaml:2:12: 'database' needs a value" },
    { "categories:\n  db: x\n",
      "t.yaml:2:3: unknown key 'db' in categories (expected one of: database, names)" },
    { "authentication:\n  realm: 'a\"b'\n",
      "t.yaml:2:10: invalid realm 'a\"b' (1-127 printable ASCII characters, no '\"' or '\\')" },
    { "authentication:\n  realm: \"\"\n",
      "t.yaml:2:10: invalid realm '' (1-127 printable ASCII characters, no '\"' or '\\')" },
    { "authentication:\n  surrogate_ttl: 0\n",
      "t.yaml:2:18: invalid duration '0' (use ms, s, m or h)" },
    { "authentication:\n  password_file:\n",
      "t.yaml:2:17: 'password_file' needs a value" },
    { "authentication:\n  user: x\n",
      "t.yaml:2:3: unknown key 'user' in authentication (expected one of: realm, password_file, surrogate_ttl)" },
    { "extended_log:\n",
      "t.yaml:1:14: 'extended_log' needs a value" },
    { "extended_log: [x]\n",
      "t.yaml:1:15: 'extended_log' must be a scalar, got a list" },
};

Test(config, mus_section)
{
    char err[CONFIG_ERR_LEN];
    config_t *cfg = load_str(
        "mus:\n"
        "  remote_users: ip_ranges\n"
        "  vpn_pools: [10.10.10.0/24, \"fd00:10::/64\"]\n"
        "  probe_host: probe.example\n"
        "  reconnect_interval: 2s\n"
        "  grace: 0\n"
        "  client_id: proxy-a\n"
        "  control_socket: off\n"
        "  headends:\n"
        "    - name: asa-1\n"
        "      addresses: [\"127.0.0.1:11999\", \"[::1]:11998\"]\n"
        "      ca: /etc/ca.pem\n"
        "      password_file: /etc/secret\n"
        "    - name: asa-2\n"
        "      addresses: [\"192.0.2.7:11999\"]\n"
        "      pin_sha256: 0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef\n"
        "      cert_name: headend.example\n"
        "      password_file: s2\n", err);

    cr_assert_not_null(cfg, "%s", err);
    cr_expect_eq(cfg->mus.remote_users, CONFIG_REMOTE_IP_RANGES);
    cr_expect_eq(cfg->mus.n_vpn_pools, 2);
    cr_expect_str_eq(cfg->mus.probe_host, "probe.example");
    cr_expect_eq(cfg->mus.reconnect_interval, 2000);
    cr_expect_eq(cfg->mus.grace, 0);
    cr_expect_str_eq(cfg->mus.client_id, "proxy-a");
    cr_expect_str_eq(cfg->mus.control_socket, "");
    cr_assert_eq(cfg->mus.n_headends, 2);
    cr_expect_str_eq(cfg->mus.headends[0].name, "asa-1");
    cr_expect_eq(cfg->mus.headends[0].n_addrs, 2);
    cr_expect_str_eq(cfg->mus.headends[0].addr_text[1], "[::1]:11998");
    cr_expect_str_eq(cfg->mus.headends[0].cert_name, "127.0.0.1", "default: first address's host");
    cr_expect_str_eq(cfg->mus.headends[0].ca, "/etc/ca.pem");
    cr_expect_str_eq(cfg->mus.headends[0].password_file, "/etc/secret");
    cr_expect_str_eq(cfg->mus.headends[1].pin_sha256,
                     "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    cr_expect_str_eq(cfg->mus.headends[1].cert_name, "headend.example");
    config_free(cfg);

    cfg = load_str("log_level: info\n", err);
    cr_assert_not_null(cfg, "%s", err);
    cr_expect_eq(cfg->mus.remote_users, CONFIG_REMOTE_HEADEND);
    cr_expect_str_eq(cfg->mus.probe_host, "mus.cisco.com");
    cr_expect_eq(cfg->mus.reconnect_interval, 60000);
    cr_expect_eq(cfg->mus.grace, 300000);
    cr_expect_eq(cfg->mus.n_headends, 0);
    cr_expect_str_eq(cfg->mus.control_socket, "var/musproxy.sock");
    config_free(cfg);
}

Test(config, policies_every_field)
{
    static const char text[] =
        "identity_profiles:\n"
        "  - name: remote-users\n"
        "    location: remote\n"
        "    types: [user]\n"
        "    subnets: [10.10.0.0/16, \"fd00:10::/64\"]\n"
        "    ports: [3128, 8080]\n"
        "    mode: explicit\n"
        "    user_agent: \"^Mozilla/5\\\\.0\"\n"
        "    users: [alice, \"bob@example.com\", \"CORP\\\\carol\"]\n"
        "    groups: [eng, \"Domain Users\"]\n"
        "    auth: none\n"
        "    refuse_unidentified: true\n"
        "  - name: machine-tunnels\n"
        "    location: remote\n"
        "    types: [device, machine]\n"
        "  - name: office\n"
        "    location: local\n"
        "    subnets: [192.168.1.7/16]\n"
        "    mode: any\n"
        "    auth: basic\n"
        "  - { name: kiosk, location: any, mode: transparent, types: [], users: [], ports: [] }\n"
        "access_policies:\n"
        "  - name: remote\n"
        "    profiles: [remote-users]\n"
        "    categories:\n"
        "      arts-entertainment: allow\n"
        "      adult: block\n"
        "      games: { action: block, time: work-hours }\n"
        "      news: { time: weekend, action: monitor }\n"
        "      partner-sites: { action: allow }\n"
        "    default: monitor\n"
        "    connect_ports: [443, 8443]\n"
        "    methods: [GET, HEAD, POST, CONNECT]\n"
        "  - name: machines\n"
        "    profiles: [machine-tunnels, kiosk]\n"
        "    categories: { machine-updates: allow }\n"
        "    default: block\n"
        "  - { name: office, profiles: [office], categories: {} }\n"
        "  - name: default\n"
        "    profiles: []\n"
        "    categories:\n"
        "    default: allow\n"
        "time_ranges:\n"
        "  work-hours: { days: [mon, tue, wed, thu, fri], hours: \"09:00-17:00\" }\n"
        "  weekend:\n"
        "    hours: \"00:00-24:00\"\n"
        "    days: [sun, sat]\n"
        "custom_categories:\n"
        "  - name: partner-sites\n"
        "    domains: [Partner.Example, sub.partner2.example]\n"
        "    url_prefixes: [\"http://intranet.example/wiki/\", \"https://x.example/a?b\"]\n"
        "    regexes: [\"^http://[^/]*\\\\.games\\\\.\"]\n"
        "  - name: machine-updates\n"
        "    domains: [update.example.com]\n"
        "    url_prefixes: []\n"
        "categories:\n"
        "  database: /var/lib/musproxy/categories.db\n"
        "  names:\n"
        "    arts-entertainment: [arts, radio, celebrity]\n"
        "    adult: [adult]\n"
        "authentication:\n"
        "  realm: \"Example Corp proxy\"\n"
        "  password_file: /etc/musproxy/users.passwd\n"
        "  surrogate_ttl: 30m\n"
        "extended_log: /var/log/musproxy/extended.log\n";
    char err[CONFIG_ERR_LEN];
    const config_policies_t *pol;
    const config_profile_t *p;
    const config_policy_t *po;
    config_t *cfg = load_str(text, err);

    cr_assert_not_null(cfg, "%s", err);
    cr_expect_str_eq(err, "");
    pol = &cfg->pol;

    cr_assert_eq(pol->n_profiles, 4);
    p = &pol->profiles[0];
    cr_expect_str_eq(p->name, "remote-users");
    cr_expect_eq(p->location, CONFIG_LOC_REMOTE);
    cr_expect_eq(p->types, CONFIG_TYPE_USER);
    cr_assert_eq(p->n_subnets, 2);
    expect_cidr(&p->subnets[0], "10.10.0.0/16");
    expect_cidr(&p->subnets[1], "fd00:10::/64");
    cr_assert_eq(p->n_ports, 2);
    cr_expect_eq(p->ports[0], 3128);
    cr_expect_eq(p->ports[1], 8080);
    cr_expect_eq(p->mode, CONFIG_MATCH_EXPLICIT);
    cr_expect_str_eq(p->user_agent, "^Mozilla/5\\.0");
    NAMES(p->users, "alice", "bob@example.com", "CORP\\carol");
    NAMES(p->groups, "eng", "Domain Users");
    cr_expect_eq(p->auth, CONFIG_AUTH_NONE);
    cr_expect(p->refuse_unidentified);
    p = &pol->profiles[1];
    cr_expect_str_eq(p->name, "machine-tunnels");
    cr_expect_eq(p->types, CONFIG_TYPE_MACHINE | CONFIG_TYPE_DEVICE);
    cr_expect_null(p->subnets);
    cr_expect_eq(p->n_subnets, 0);
    cr_expect_eq(p->mode, CONFIG_MATCH_ANY_MODE);
    cr_expect_not(p->refuse_unidentified);
    NO_NAMES(p->users);
    NO_NAMES(p->groups);
    p = &pol->profiles[2];
    cr_expect_str_eq(p->name, "office");
    cr_expect_eq(p->location, CONFIG_LOC_LOCAL);
    cr_expect_eq(p->types, CONFIG_TYPE_ANY);
    cr_assert_eq(p->n_subnets, 1);
    expect_cidr(&p->subnets[0], "192.168.0.0/16");
    cr_expect_eq(p->mode, CONFIG_MATCH_ANY_MODE);
    cr_expect_eq(p->auth, CONFIG_AUTH_BASIC);
    p = &pol->profiles[3];
    cr_expect_str_eq(p->name, "kiosk");
    cr_expect_eq(p->location, CONFIG_LOC_ANY);
    cr_expect_eq(p->mode, CONFIG_MATCH_TRANSPARENT);
    cr_expect_eq(p->types, CONFIG_TYPE_ANY);
    cr_expect_eq(p->n_ports, 0);
    NO_NAMES(p->users);
    cr_expect_eq(p->auth, CONFIG_AUTH_NONE);

    cr_assert_eq(pol->n_time_ranges, 2);
    cr_expect_str_eq(pol->time_ranges[0].name, "work-hours");
    cr_expect_eq(pol->time_ranges[0].days, 0x1f);
    cr_expect_eq(pol->time_ranges[0].from_min, 540);
    cr_expect_eq(pol->time_ranges[0].to_min, 1020);
    cr_expect_str_eq(pol->time_ranges[1].name, "weekend");
    cr_expect_eq(pol->time_ranges[1].days, 0x60);
    cr_expect_eq(pol->time_ranges[1].from_min, 0);
    cr_expect_eq(pol->time_ranges[1].to_min, 1440);

    cr_assert_eq(pol->n_policies, 4);
    po = &pol->policies[0];
    cr_expect_str_eq(po->name, "remote");
    NAMES(po->profiles, "remote-users");
    cr_assert_eq(po->n_rules, 5);
    cr_expect_str_eq(po->rules[0].category, "arts-entertainment");
    cr_expect_eq(po->rules[0].action, CONFIG_ACT_ALLOW);
    cr_expect_eq(po->rules[0].time_range, -1);
    cr_expect_str_eq(po->rules[1].category, "adult");
    cr_expect_eq(po->rules[1].action, CONFIG_ACT_BLOCK);
    cr_expect_eq(po->rules[1].time_range, -1);
    cr_expect_str_eq(po->rules[2].category, "games");
    cr_expect_eq(po->rules[2].action, CONFIG_ACT_BLOCK);
    cr_expect_eq(po->rules[2].time_range, 0);    /* work-hours */
    cr_expect_str_eq(po->rules[3].category, "news");
    cr_expect_eq(po->rules[3].action, CONFIG_ACT_MONITOR);
    cr_expect_eq(po->rules[3].time_range, 1);    /* weekend */
    cr_expect_str_eq(po->rules[4].category, "partner-sites");
    cr_expect_eq(po->rules[4].action, CONFIG_ACT_ALLOW);
    cr_expect_eq(po->rules[4].time_range, -1);
    cr_expect_eq(po->default_action, CONFIG_ACT_MONITOR);
    cr_assert_eq(po->n_connect_ports, 2);
    cr_expect_eq(po->connect_ports[0], 443);
    cr_expect_eq(po->connect_ports[1], 8443);
    NAMES(po->methods, "GET", "HEAD", "POST", "CONNECT");
    po = &pol->policies[1];
    cr_expect_str_eq(po->name, "machines");
    NAMES(po->profiles, "machine-tunnels", "kiosk");
    cr_assert_eq(po->n_rules, 1);
    cr_expect_str_eq(po->rules[0].category, "machine-updates");
    cr_expect_eq(po->default_action, CONFIG_ACT_BLOCK);
    cr_expect_eq(po->n_connect_ports, 0);
    NO_NAMES(po->methods);
    po = &pol->policies[2];
    cr_expect_str_eq(po->name, "office");
    NAMES(po->profiles, "office");
    cr_expect_eq(po->n_rules, 0);
    cr_expect_eq(po->default_action, CONFIG_ACT_ALLOW);
    po = &pol->policies[3];
    cr_expect_str_eq(po->name, "default");
    NO_NAMES(po->profiles);
    cr_expect_eq(po->n_rules, 0);
    cr_expect_eq(po->default_action, CONFIG_ACT_ALLOW);

    cr_assert_eq(pol->n_custom, 2);
    cr_expect_str_eq(pol->custom[0].name, "partner-sites");
    NAMES(pol->custom[0].domains, "partner.example", "sub.partner2.example");  /* lowercased */
    NAMES(pol->custom[0].url_prefixes, "http://intranet.example/wiki/", "https://x.example/a?b");
    NAMES(pol->custom[0].regexes, "^http://[^/]*\\.games\\.");
    cr_expect_str_eq(pol->custom[1].name, "machine-updates");
    NAMES(pol->custom[1].domains, "update.example.com");
    NO_NAMES(pol->custom[1].url_prefixes);
    NO_NAMES(pol->custom[1].regexes);

    cr_expect_str_eq(pol->category_db, "/var/lib/musproxy/categories.db");
    cr_assert_eq(pol->n_friendly, 2);
    cr_expect_str_eq(pol->friendly[0].name, "arts-entertainment");
    NAMES(pol->friendly[0].lists, "arts", "radio", "celebrity");
    cr_expect_str_eq(pol->friendly[1].name, "adult");
    NAMES(pol->friendly[1].lists, "adult");

    cr_expect_str_eq(pol->auth_realm, "Example Corp proxy");
    cr_expect_str_eq(pol->auth_password_file, "/etc/musproxy/users.passwd");
    cr_expect_eq(pol->auth_surrogate_ttl, 30 * 60 * 1000);
    cr_expect_str_eq(pol->extended_log, "/var/log/musproxy/extended.log");

    /* the proxy sections keep their defaults */
    expect_defaults(cfg);
    config_free(cfg);
}

/* Sections may come in any order: references are resolved at the end. */
Test(config, policies_references_in_any_order)
{
    char err[CONFIG_ERR_LEN];
    config_t *cfg = load_str(
        "access_policies:\n"
        "  - { name: p, profiles: [b, a], categories: { x: { action: block, time: t2 } } }\n"
        "  - { name: d }\n"
        "authentication: { password_file: users }\n"
        "time_ranges:\n"
        "  t1: { days: [mon], hours: \"00:00-00:01\" }\n"
        "  t2: { days: [sun], hours: \"23:59-24:00\" }\n"
        "identity_profiles: [{ name: a, auth: basic }, { name: b }]\n"
        "categories: { names: { x: [y] }, database: off }\n", err);

    cr_assert_not_null(cfg, "%s", err);
    cr_expect_eq(cfg->pol.policies[0].rules[0].time_range, 1);
    cr_expect_eq(cfg->pol.time_ranges[1].from_min, 23 * 60 + 59);
    cr_expect_eq(cfg->pol.time_ranges[1].to_min, 1440);
    cr_expect_eq(cfg->pol.time_ranges[1].days, 0x40);
    cr_expect_str_eq(cfg->pol.auth_password_file, "users");
    cr_expect_str_eq(cfg->pol.category_db, "");
    cr_expect_eq(cfg->pol.profiles[0].auth, CONFIG_AUTH_BASIC);
    config_free(cfg);
}

/* Every string and array of the policy sections lives in the config's pool:
 * valid until config_free, then gone (ASan checks both), including on the
 * error paths, and across several pool chunks. */
Test(config, string_pool_lifetime)
{
    size_t n = CONFIG_MAX_CUSTOM_ENTRIES, cap = 256 + n * 80, off;
    char err[CONFIG_ERR_LEN], *text = malloc(cap);
    config_t *cfg;

    cr_assert_not_null(text);
    off = (size_t)snprintf(text, cap, "custom_categories:\n  - name: big\n    domains:\n");
    for (size_t i = 0; i < n; i++)
        off += (size_t)snprintf(text + off, cap - off,
                                "      - Host-%04zu.a-rather-long-domain-name.example\n", i);
    cfg = load_str(text, err);
    cr_assert_not_null(cfg, "%s", err);
    cr_assert_eq(cfg->pol.custom[0].domains.n, n);
    for (size_t i = 0; i < n; i++) {
        char want[80];
        snprintf(want, sizeof(want), "host-%04zu.a-rather-long-domain-name.example", i);
        cr_assert_str_eq(cfg->pol.custom[0].domains.names[i], want);
    }
    config_free(cfg);

    /* one more: refused, and everything allocated so far is released */
    snprintf(text + off, cap - off, "      - one.too.many\n");
    cfg = load_str(text, err);
    cr_expect_null(cfg);
    cr_expect_str_eq(err, "t.yaml:4100:9: too many entries in 'domains' (at most 4096)");

    /* an error after the pool and the reference table have grown */
    snprintf(text + off, cap - off,
             "    regexes: [\"x\"]\naccess_policies:\n  - { name: p, profiles: [ghost] }\n");
    cfg = load_str(text, err);
    cr_expect_null(cfg);
    cr_expect_str_eq(err, "t.yaml:4102:27: unknown identity profile 'ghost'");
    free(text);

    /* two loads of the same text own separate pools */
    config_t *a = load_str("identity_profiles: [{ name: a, users: [u] }]\n", err);
    config_t *b = load_str("identity_profiles: [{ name: a, users: [u] }]\n", err);
    cr_assert_not_null(a);
    cr_assert_not_null(b);
    cr_expect_neq(a->pool, b->pool);
    cr_expect_neq(a->pol.profiles[0].users.names[0], b->pol.profiles[0].users.names[0]);
    config_free(a);
    cr_expect_str_eq(b->pol.profiles[0].users.names[0], "u");
    config_free(b);
}

/* Builds n entries of a policy list with fmt(i) (each a line). */
static char *
repeat(const char *head, const char *fmt, size_t n, const char *tail)
{
    size_t cap = strlen(head) + strlen(tail) + 1 + n * 160, off;
    char *s = malloc(cap);

    cr_assert_not_null(s);
    off = (size_t)snprintf(s, cap, "%s", head);
    for (size_t i = 0; i < n; i++)
        off += (size_t)snprintf(s + off, cap - off, fmt, i, i);
    snprintf(s + off, cap - off, "%s", tail);
    return s;
}

Test(config, policy_limits)
{
    static const struct {
        const char *head, *fmt, *tail;
        size_t max;
        const char *message;
    } cases[] = {
        { "identity_profiles:\n", "  - { name: p%zu }\n", "", CONFIG_MAX_PROFILES,
          "t.yaml:66:5: too many entries in 'identity_profiles' (at most 64)" },
        { "access_policies:\n", "  - { name: p%zu, profiles: [x%zu] }\n",
          "identity_profiles:\n  - { name: x0 }\n", CONFIG_MAX_POLICIES,
          "t.yaml:66:5: too many entries in 'access_policies' (at most 64)" },
        { "time_ranges:\n", "  t%zu: { days: [mon], hours: \"09:00-10:00\" }\n", "",
          CONFIG_MAX_TIME_RANGES, "t.yaml:34:3: too many entries in 'time_ranges' (at most 32)" },
        { "custom_categories:\n", "  - { name: c%zu, domains: [d.example] }\n", "",
          CONFIG_MAX_CUSTOM_CATS,
          "t.yaml:66:5: too many entries in 'custom_categories' (at most 64)" },
        { "categories:\n  names:\n", "    f%zu: [l]\n", "", CONFIG_MAX_FRIENDLY,
          "t.yaml:131:5: too many entries in 'names' (at most 128)" },
        { "access_policies:\n  - name: p\n    categories:\n", "      c%zu: block\n", "",
          CONFIG_MAX_CATEGORY_RULES,
          "t.yaml:132:7: too many entries in 'categories' (at most 128)" },
        { "identity_profiles:\n  - name: p\n    users:\n", "      - u%zu\n", "",
          CONFIG_MAX_NAMES, "t.yaml:68:9: too many entries in 'users' (at most 64)" },
        { "categories:\n  names:\n    f:\n", "      - l%zu\n", "", CONFIG_MAX_NAMES,
          "t.yaml:68:9: too many entries in 'f' (at most 64)" },
    };
    char err[CONFIG_ERR_LEN];

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        char *text = repeat(cases[i].head, cases[i].fmt, cases[i].max, "");
        config_t *cfg;

        /* policies at their limit need the profiles they name */
        if (strstr(cases[i].fmt, "profiles") != NULL) {
            free(text);
            char *profiles = repeat("identity_profiles:\n", "  - { name: x%zu }\n",
                                    cases[i].max, "");
            char *policies = repeat(cases[i].head, cases[i].fmt, cases[i].max, "");
            text = malloc(strlen(profiles) + strlen(policies) + 1);
            cr_assert_not_null(text);
            strcpy(text, policies);
            strcat(text, profiles);
            free(profiles);
            free(policies);
        }
        cfg = load_str(text, err);
        cr_expect_not_null(cfg, "case %zu at its limit: %s", i, err);
        config_free(cfg);
        free(text);

        text = repeat(cases[i].head, cases[i].fmt, cases[i].max + 1, cases[i].tail);
        cfg = load_str(text, err);
        cr_expect_null(cfg, "case %zu", i);
        cr_expect_str_eq(err, cases[i].message, "case %zu", i);
        config_free(cfg);
        free(text);
    }
}

Test(config, broken_files_exact_messages)
{
    for (size_t i = 0; i < N_ELEMS(bad_cases); i++) {
        char err[CONFIG_ERR_LEN] = "";
        config_t *cfg = load_str(bad_cases[i].yaml, err);
        cr_expect_null(cfg, "case %zu loaded: %s", i, bad_cases[i].yaml);
        cr_expect_str_eq(err, bad_cases[i].message, "case %zu:\n%s", i, bad_cases[i].yaml);
        config_free(cfg);
    }
}

/* Builds "proxy:\n  KEY:\n" and n block entries printed with fmt(i). */
static char *
long_list(const char *key, size_t n, const char *fmt)
{
    size_t cap = 64 + n * 64, off;
    char *s = malloc(cap);

    cr_assert_not_null(s);
    off = (size_t)snprintf(s, cap, "proxy:\n  %s:\n", key);
    for (size_t i = 0; i < n; i++) {
        off += (size_t)snprintf(s + off, cap - off, "    - ");
        off += (size_t)snprintf(s + off, cap - off, fmt, (unsigned)(i / 250),
                                (unsigned)(i % 250 + 1));
        off += (size_t)snprintf(s + off, cap - off, "\n");
    }
    return s;
}

Test(config, list_limits)
{
    static const struct {
        const char *key, *fmt;
        size_t max;
        const char *message;
    } cases[] = {
        { "clients", "10.%u.%u.0/24", CONFIG_MAX_CIDRS,
          "t.yaml:259:7: too many entries in 'clients' (at most 256)" },
        { "deny_destinations", "10.%u.%u.0/24", CONFIG_MAX_CIDRS,
          "t.yaml:259:7: too many entries in 'deny_destinations' (at most 256)" },
        { "connect_ports", "1%u%03u", CONFIG_MAX_PORTS,
          "t.yaml:67:7: too many entries in 'connect_ports' (at most 64)" },
        { "listen", "\"127.0.%u.%u:3128\"", CONFIG_MAX_LISTEN,
          "t.yaml:35:7: too many entries in 'listen' (at most 32)" },
    };
    char err[CONFIG_ERR_LEN];

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        char *text = long_list(cases[i].key, cases[i].max, cases[i].fmt);
        config_t *cfg = load_str(text, err);
        cr_assert_not_null(cfg, "%s at its limit: %s", cases[i].key, err);
        config_free(cfg);
        free(text);

        text = long_list(cases[i].key, cases[i].max + 1, cases[i].fmt);
        cfg = load_str(text, err);
        cr_expect_null(cfg);
        cr_expect_str_eq(err, cases[i].message);
        config_free(cfg);
        free(text);
    }
}

Test(config, file_size_limit)
{
    char err[CONFIG_ERR_LEN];
    size_t len = CONFIG_MAX_FILE_BYTES + 1;
    char *big = malloc(len);
    config_t *cfg;

    cr_assert_not_null(big);
    memset(big, '#', len);           /* one huge comment: valid YAML */
    big[len - 1] = '\n';
    cfg = config_load_buffer("big.yaml", big, len, err, sizeof(err));
    cr_expect_null(cfg);
    cr_expect_str_eq(err, "big.yaml: file is larger than 4194304 bytes");

    cfg = config_load_buffer("big.yaml", big + 1, len - 1, err, sizeof(err));
    cr_expect_not_null(cfg, "%s", err);   /* exactly at the limit */
    config_free(cfg);

    char path[] = "/tmp/test-config-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, big, len), (ssize_t)len);
    close(fd);
    cfg = config_load(path, err, sizeof(err));
    cr_expect_null(cfg);
    char expected[CONFIG_ERR_LEN];
    snprintf(expected, sizeof(expected), "%s: file is larger than 4194304 bytes", path);
    cr_expect_str_eq(err, expected);
    unlink(path);
    free(big);
}

Test(config, load_errors_name_the_file)
{
    char err[CONFIG_ERR_LEN], expected[CONFIG_ERR_LEN];
    char path[] = "/tmp/test-config-XXXXXX";
    static const char text[] = "log_level: info\nproxy:\n  workers: many\n";
    config_t *cfg;
    int fd;

    cfg = config_load("/nonexistent/musproxy.yaml", err, sizeof(err));
    cr_expect_null(cfg);
    cr_expect_str_eq(err, "/nonexistent/musproxy.yaml: cannot open: No such file or directory");

    cfg = config_load("/tmp", err, sizeof(err));
    cr_expect_null(cfg);
    cr_expect_str_eq(err, "/tmp: cannot read: Is a directory");

    fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
    close(fd);
    cfg = config_load(path, err, sizeof(err));
    cr_expect_null(cfg);
    snprintf(expected, sizeof(expected), "%s:3:12: invalid workers 'many' (use auto or 1-256)", path);
    cr_expect_str_eq(err, expected);
    unlink(path);
}

/* A small or absent error buffer is never overrun. */
Test(config, error_buffer_truncation)
{
    char err[16];
    config_t *cfg;

    memset(err, 'x', sizeof(err));
    cfg = config_load_buffer("t.yaml", "proxy: 1\n", 9, err, 12);
    cr_expect_null(cfg);
    cr_expect_str_eq(err, "t.yaml:1:8:");
    cr_expect_eq(err[12], 'x');
    cfg = config_load_buffer("t.yaml", "proxy: 1\n", 9, NULL, 0);
    cr_expect_null(cfg);
    config_free(NULL);
}

Test(config, parse_duration)
{
    static const struct {
        const char *text;
        int ret;
        uint32_t ms;
    } cases[] = {
        { "250ms", 0, 250 },
        { "1ms", 0, 1 },
        { "10s", 0, 10000 },
        { "5m", 0, 300000 },
        { "1h", 0, 3600000 },
        { "10", 0, 10000 },              /* bare number: seconds */
        { "007s", 0, 7000 },
        { "2147483647ms", 0, 2147483647u },
        { "2147483s", 0, 2147483000u },
        { "35791m", 0, 2147460000u },
        { "596h", 0, 2145600000u },
        { "0", -1, 0 },
        { "0ms", -1, 0 },
        { "0h", -1, 0 },
        { "-1s", -1, 0 },
        { "+1s", -1, 0 },
        { "", -1, 0 },
        { "s", -1, 0 },
        { "ms", -1, 0 },
        { "10x", -1, 0 },
        { "10 s", -1, 0 },
        { " 10s", -1, 0 },
        { "10s ", -1, 0 },
        { "1.5s", -1, 0 },
        { "10S", -1, 0 },
        { "10sec", -1, 0 },
        { "1d", -1, 0 },
        { "1h30m", -1, 0 },
        { "0x10", -1, 0 },
        { "2147483648ms", -1, 0 },       /* beyond INT32_MAX ms (~24.8 days) */
        { "2147484s", -1, 0 },
        { "35792m", -1, 0 },
        { "597h", -1, 0 },
        { "4294967296ms", -1, 0 },
        { "99999999999999999999999999s", -1, 0 },
    };

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        uint32_t ms = 12345;
        int ret = config_parse_duration(cases[i].text, &ms);
        cr_expect_eq(ret, cases[i].ret, "'%s': returned %d", cases[i].text, ret);
        if (cases[i].ret == 0)
            cr_expect_eq(ms, cases[i].ms, "'%s': %u ms", cases[i].text, ms);
        else
            cr_expect_eq(ms, 12345, "'%s': output written on failure", cases[i].text);
    }
    cr_expect_eq(config_parse_duration(NULL, &(uint32_t){0}), -1);
}

Test(config, parse_sockaddr)
{
    static const struct {
        const char *text;
        int family;          /* 0: must fail */
        const char *addr;
        unsigned port;
    } cases[] = {
        { "1.2.3.4:80", AF_INET, "1.2.3.4", 80 },
        { "127.0.0.1:3128", AF_INET, "127.0.0.1", 3128 },
        { "0.0.0.0:1", AF_INET, "0.0.0.0", 1 },
        { "255.255.255.255:65535", AF_INET, "255.255.255.255", 65535 },
        { "[::1]:3128", AF_INET6, "::1", 3128 },
        { "[::]:80", AF_INET6, "::", 80 },
        { "[2001:db8::1]:8080", AF_INET6, "2001:db8::1", 8080 },
        { "[::ffff:10.0.0.1]:80", AF_INET6, "10.0.0.1", 80 },
        { "1.2.3.4:0080", AF_INET, "1.2.3.4", 80 },
        { "1.2.3.4:0", 0, NULL, 0 },
        { "1.2.3.4:65536", 0, NULL, 0 },
        { "1.2.3.4:99999999999", 0, NULL, 0 },
        { "1.2.3.4:", 0, NULL, 0 },
        { "1.2.3.4", 0, NULL, 0 },
        { "1.2.3.4:80x", 0, NULL, 0 },
        { "1.2.3.4:-80", 0, NULL, 0 },
        { "1.2.3.4:+80", 0, NULL, 0 },
        { "1.2.3.4: 80", 0, NULL, 0 },
        { " 1.2.3.4:80", 0, NULL, 0 },
        { "1.2.3:80", 0, NULL, 0 },
        { "1.2.3.256:80", 0, NULL, 0 },
        { "01.2.3.4:80", 0, NULL, 0 },
        { "localhost:80", 0, NULL, 0 },
        { ":80", 0, NULL, 0 },
        { "::1:80", 0, NULL, 0 },
        { "[::1]", 0, NULL, 0 },
        { "[::1]80", 0, NULL, 0 },
        { "[::1]:", 0, NULL, 0 },
        { "[]:80", 0, NULL, 0 },
        { "[1.2.3.4]:80", 0, NULL, 0 },
        { "[fe80::1%eth0]:80", 0, NULL, 0 },
        { "[::1:80", 0, NULL, 0 },
        { "[[::1]]:80", 0, NULL, 0 },
        { "[0000:0000:0000:0000:0000:0000:0000:0000:0000]:80", 0, NULL, 0 },
        { "", 0, NULL, 0 },
    };

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        struct sockaddr_storage ss;
        socklen_t len = 0;
        char buf[CIDR_STRLEN];
        int ret = config_parse_sockaddr(cases[i].text, &ss, &len);

        if (cases[i].family == 0) {
            cr_expect_eq(ret, -1, "'%s' accepted", cases[i].text);
            continue;
        }
        cr_assert_eq(ret, 0, "'%s' refused", cases[i].text);
        cr_expect_eq(ss.ss_family, cases[i].family, "'%s'", cases[i].text);
        cidr_addr_str((struct sockaddr *)&ss, buf, sizeof(buf));
        cr_expect_str_eq(buf, cases[i].addr, "'%s'", cases[i].text);
        if (cases[i].family == AF_INET) {
            cr_expect_eq(len, sizeof(struct sockaddr_in));
            cr_expect_eq(ntohs(((struct sockaddr_in *)&ss)->sin_port), cases[i].port);
        } else {
            cr_expect_eq(len, sizeof(struct sockaddr_in6));
            cr_expect_eq(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), cases[i].port);
        }
    }
    cr_expect_eq(config_parse_sockaddr(NULL, &(struct sockaddr_storage){0}, &(socklen_t){0}), -1);
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
