/*
 * tests/fuzz/fuzz_headend_swanctl.c: libFuzzer target for swanctl_parse()
 * and swanctl_sa_name(), the reader of `swanctl --list-sas` output that
 * mus-headend polls. Any text is read without a crash or over-read, and
 * every record it reports holds terminated strings within their limits.
 * Seed corpus: tests/fuzz/corpus/headend_swanctl/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../mus/headend_swanctl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int check(void *arg, const swanctl_sa_t *sa)
{
    (void)arg;
    char name[SWANCTL_STR_MAX];
    if (sa->n_vips > SWANCTL_VIPS_MAX || strnlen(sa->remote_id, SWANCTL_STR_MAX) >= SWANCTL_STR_MAX ||
        strnlen(sa->uniqueid, sizeof(sa->uniqueid)) >= sizeof(sa->uniqueid))
        abort();
    for (size_t i = 0; i < sa->n_vips; i++)
        if (strnlen(sa->vips[i], sizeof(sa->vips[i])) >= sizeof(sa->vips[i]))
            abort();
    swanctl_sa_name(sa, name, sizeof(name));
    if (strnlen(name, sizeof(name)) >= sizeof(name))
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    swanctl_parse((const char *)data, size, check, NULL);
    return 0;
}
