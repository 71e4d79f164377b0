/*
 * proxy/sdnotify.c: see sdnotify.h. Compiled with HAVE_LIBSYSTEMD when
 * meson found libsystemd; it only formats the state lines.
 */
#include <stdio.h>
#include <time.h>

#include "../common/log.h"
#include "sdnotify.h"

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>

static void
send_state(const char *state)
{
    int r = sd_notify(0, state);

    if (r < 0)
        log_warn("sd_notify: %d", r);
}
#else
static void
send_state(const char *state)
{
    (void)state;
}
#endif

void
sdnotify_ready(const char *status)
{
    char buf[256];

    snprintf(buf, sizeof(buf), "READY=1\nSTATUS=%s", status ? status : "serving");
    send_state(buf);
}

void
sdnotify_reloading(void)
{
    struct timespec ts;
    char buf[96];

    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(buf, sizeof(buf), "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000);
    send_state(buf);
}

void
sdnotify_stopping(void)
{
    send_state("STOPPING=1");
}
