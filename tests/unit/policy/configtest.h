/*
 * tests/unit/policy/configtest.h: helpers shared by the configuration loader
 * tests (test_config*.c): loading a YAML text, and the checks of an address
 * prefix, a listen address, the defaults and a list of names. Test code
 * only; it does not load files or know any section's keys.
 */
#ifndef MUS_TESTS_CONFIGTEST_H
#define MUS_TESTS_CONFIGTEST_H

#include <stddef.h>

#include "../../../policy/config.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* config_load_buffer of text as "t.yaml"; err holds CONFIG_ERR_LEN bytes. */
config_t *load_str(const char *text, char *err);

/* c formats as text (e.g. "10.0.0.0/8"). */
void expect_cidr(const cidr_t *c, const char *text);
/* l is family, addr and port, with the matching addr_len. */
void expect_sockaddr(const config_listen_t *l, int family, const char *addr, unsigned port);

/* Every default of config.h, on a configuration loaded from anything that
 * sets nothing. */
void expect_defaults(const config_t *cfg);
/* The policy part of the defaults: nothing defined, nothing enabled. */
void expect_policy_defaults(const config_t *cfg);

/* l holds exactly the n names of want, in order; what names l in messages. */
void expect_names(const config_names_t *l, const char *const *want, size_t n, const char *what);
#define NAMES(l, ...) do {                                                   \
        static const char *const want_[] = { __VA_ARGS__ };                  \
        expect_names(&(l), want_, N_ELEMS(want_), #l);                       \
    } while (0)
#define NO_NAMES(l) expect_names(&(l), NULL, 0, #l)

#endif
