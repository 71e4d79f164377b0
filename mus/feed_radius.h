/*
 * mus/feed_radius.h: a RADIUS accounting listener inside musproxy (single-box
 * sites: the VPN headend sends its accounting straight to the proxy). It is
 * a local headend of the MUS feed (client.h): it runs on the MUS thread, the
 * map's only writer, with mus-headend's own machinery, the listener of
 * headend_radius.h feeding a session store (headend_store.h); every change
 * of that store (its journal of add/upd/del events, the very events
 * mus-headend sends its proxies) is applied to the map under the headend
 * name of the configuration before the Accounting-Response goes out. So the
 * map's rules hold as for a remote headend: a delete only removes the
 * session id it names, the newest session wins an address, and when the
 * listener stops its entries are stale for the feed's grace, then dropped.
 * Sessions refreshed by no Interim-Update for stale_after intervals are
 * marked stale, then removed after stale_grace (the store's stale sweep,
 * once a second).
 *
 * The caller binds the UDP sockets (before any privilege drop: port 1813 is
 * below 1024) and hands them over. The clients file holds the shared
 * secrets (never logged, never in the status). It does not parse the
 * configuration file or bind sockets.
 */
#ifndef MUS_MUS_FEED_RADIUS_H
#define MUS_MUS_FEED_RADIUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client.h"
#include "headend_radius.h"

#define MUS_RADIUS_MAX_LISTEN   HR_MAX_SOCKETS
#define MUS_RADIUS_PATTERN_MAX  1024            /* machine_user, incl. NUL */
#define MUS_RADIUS_AVPAIR_MAX   256             /* machine_avpair, incl. NUL */
#define MUS_RADIUS_GROUPS_MAX   80              /* "avpair:KEY", incl. NUL */

typedef struct mus_radius_config {
    char name[MUS_HEADEND_NAME_MAX];            /* the headend name its map entries carry */
    size_t n_listen;                            /* sockets handed over (0 at a reconfigure: stop) */
    char listen[MUS_RADIUS_MAX_LISTEN][64];     /* their addresses, for logs and status */
    char clients_file[4096];                    /* ADDRESS_OR_PREFIX SECRET lines, mode 0600 */
    char groups[MUS_RADIUS_GROUPS_MAX];         /* class | filter-id | avpair[:KEY] | none */
    char machine_user[MUS_RADIUS_PATTERN_MAX];  /* PCRE2 on the User-Name; "" = none */
    char machine_avpair[MUS_RADIUS_AVPAIR_MAX]; /* Cisco-AVPair KEY=VALUE; "" = none */
    uint32_t default_interim_s;                 /* without Acct-Interim-Interval; 0 = never stale */
    unsigned stale_after;                       /* intervals without a refresh: stale (>= 1) */
    uint32_t stale_grace_ms;                    /* stale this long: removed */
} mus_radius_config_t;

typedef struct mus_radius_status {
    char name[MUS_HEADEND_NAME_MAX];
    bool listening;                  /* false: stopped (entries stale, then dropped) */
    size_t n_listen;
    char listen[MUS_RADIUS_MAX_LISTEN][64];
    hr_counters_t c;                 /* received, dropped by reason, ... (headend_radius.h) */
    uint64_t events_applied;         /* store changes applied to the map */
    uint64_t resyncs;                /* the map rebuilt from the store (journal overrun) */
    uint64_t sessions, stale_sessions;   /* in the store now */
    uint64_t stale_marked, stale_removed;
    uint64_t entries, stale_entries; /* addresses in the map under this headend */
    int64_t last_event;              /* unix s of the last change applied, 0 if none */
    char last_error[MUS_ERROR_MAX];  /* "" if none (e.g. the clients file was not reloaded) */
} mus_radius_status_t;

/* Before mus_feed_start (main thread): the listener on the n bound UDP
 * sockets fds, which it takes (closed on failure too). The map slot is the
 * first one no headend uses. 0, or -1 with a message in err (the clients
 * file, a pattern, no free slot, a name a headend already has). */
int mus_feed_radius_attach(mus_feed_t *f, const mus_radius_config_t *cfg, const int *fds,
                           size_t n, char *err, size_t errlen);

/* Thread-safe: a reload. The clients file is read again (on failure the
 * old list stays, and the status says why) and the stale settings change;
 * cfg->n_listen == 0 stops the listener. name, listen, groups and the
 * machine rules are those of the attach (they change only at restart). */
void mus_feed_radius_reconfigure(mus_feed_t *f, const mus_radius_config_t *cfg);

/* Thread-safe: asks the MUS thread to close the sockets, without waiting
 * (shutdown; mus_feed_stop does it too). */
void mus_feed_radius_stop(mus_feed_t *f);

/* Thread-safe: the listener's status, refreshed once a second and after
 * every batch of datagrams that changed the map. false if none was
 * attached. */
bool mus_feed_radius_status(mus_feed_t *f, mus_radius_status_t *out);

#endif
