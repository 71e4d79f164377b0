/*
 * mus/headend_poll.h: mus-headend's reconciliation polls. A poll runs a
 * command every interval seconds (never two at once, killed after
 * HE_POLL_TIMEOUT_MS or HE_POLL_OUT_MAX bytes of output), and hands its
 * complete output to an apply function when it exits 0. Two apply functions
 * reconcile the store with what a VPN server says is connected:
 * `occtl -j show users` (ocserv, origin HS_ORIGIN_OCSERV) and
 * `swanctl --list-sas` (strongSwan, HS_ORIGIN_STRONGSWAN): sessions listed
 * are added or refreshed (soft: details that differ from the connect script
 * do not cause events), sessions of that origin not listed and older than
 * HE_POLL_GRACE_MS before the poll started are removed ("lost").
 */
#ifndef MUS_MUS_HEADEND_POLL_H
#define MUS_MUS_HEADEND_POLL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../common/loop.h"
#include "headend_store.h"

typedef struct json_t json_t;

/* Logs a change of session s made by src (when events > 0). */
void he_log_change(const char *src, const mus_session_t *s, int events);
/* Parses a session object held in a jansson value with the one strict
 * parser of proto.c (it is serialised first). 0 or -1 with err. */
int he_session_from_json(json_t *obj, mus_session_t *s, mus_addr_t *ips, size_t *n, char *err,
                         size_t errlen);

#define HE_POLL_TIMEOUT_MS 10000
#define HE_POLL_OUT_MAX    (32u * 1024 * 1024)
#define HE_POLL_GRACE_MS   10000    /* feed sessions younger than this survive a poll */
#define HE_POLL_ARGS_MAX   4

/* Applies a poll's output to store; returns the number of events made. */
typedef int (*he_poll_apply_fn)(hs_store_t *store, const char *out, size_t len, uint64_t started);

int he_poll_apply_occtl(hs_store_t *store, const char *out, size_t len, uint64_t started);
int he_poll_apply_swanctl(hs_store_t *store, const char *out, size_t len, uint64_t started);

typedef struct he_poll {
    /* set by the caller */
    const char *name;                      /* "occtl", for logs */
    const char *argv[HE_POLL_ARGS_MAX + 2]; /* argv[0] is the binary (PATH searched) */
    unsigned interval_s;
    he_poll_apply_fn apply;
    hs_store_t *store;
    void (*changed)(void *arg);            /* after an apply that made events */
    void *arg;
    /* private */
    loop_t *loop;
    loop_timer_t timer;
    loop_io_t io;
    int fd;
    pid_t pid;
    char *buf;
    size_t len;
    uint64_t started;
} he_poll_t;

/* Starts the first run at once when interval_s > 0. */
void he_poll_start(he_poll_t *p, loop_t *loop);
/* Kills a running command and frees its output. */
void he_poll_stop(he_poll_t *p);

#endif
