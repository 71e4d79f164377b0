/*
 * tests/unit/policy/configtest.c: the helpers of configtest.h, shared by the
 * configuration loader tests (test_config*.c). Test code only: no Test()
 * cases here.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "../../../common/log.h"
#include "configtest.h"

config_t *
load_str(const char *text, char *err)
{
    return config_load_buffer("t.yaml", text, strlen(text), err, CONFIG_ERR_LEN);
}

void
expect_cidr(const cidr_t *c, const char *text)
{
    char buf[CIDR_STRLEN];

    cidr_format(c, buf, sizeof(buf));
    cr_expect_str_eq(buf, text);
}

void
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
void
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
void
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

void
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
