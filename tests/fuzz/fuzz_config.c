/*
 * tests/fuzz/fuzz_config.c: libFuzzer target for the configuration loader
 * (policy/config.c): any input must give a configuration or an error message,
 * never a crash, a leak or an unterminated message. Seeds are in
 * tests/fuzz/corpus/config/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../policy/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[CONFIG_ERR_LEN];
    config_t *cfg;

    memset(err, 'x', sizeof(err));
    cfg = config_load_buffer("fuzz.yaml", (const char *)data, size, err, sizeof(err));
    if (cfg == NULL) {
        /* a failure always explains itself, in a terminated string */
        if (memchr(err, '\0', sizeof(err)) == NULL || err[0] == '\0')
            abort();
    } else {
        if (cfg->n_listen == 0 || cfg->n_listen > CONFIG_MAX_LISTEN ||
            cfg->n_clients > CONFIG_MAX_CIDRS || cfg->n_deny_destinations > CONFIG_MAX_CIDRS ||
            cfg->n_connect_ports > CONFIG_MAX_PORTS || cfg->max_connections == 0 ||
            cfg->timeouts.header == 0 || cfg->timeouts.idle == 0 ||
            cfg->timeouts.connect == 0 || cfg->timeouts.response == 0 ||
            cfg->timeouts.tunnel_idle == 0 || cfg->timeouts.shutdown == 0 ||
            cfg->timeouts.dns == 0 || cfg->workers > CONFIG_MAX_WORKERS)
            abort();
        config_free(cfg);
    }
    return 0;
}
