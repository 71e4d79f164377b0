/*
 * tests/unit/policy/test_config.c: the configuration loader (policy/config.c)
 * on whole documents and the proxy and mus sections: the shipped
 * etc/musproxy.yaml, the defaults, every key, partial sections, access_log
 * off, and the duration and socket address parsers. The policy sections are
 * in test_config_policy.c, the other sections in test_config_sections.c, the
 * messages of broken files and the limits in test_config_errors.c.
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
