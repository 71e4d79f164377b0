/*
 * proxy/wccp_view.h: the cache engine's view of one WCCPv2 service group, as
 * pure functions of the messages received and the time: the state of each
 * configured router (seeking, connected, lost after three silent intervals),
 * what each reported (receive id, member change number, its caches, its
 * capabilities, our share), our Web-Cache View change number, the methods
 * every connected router accepts, who is designated (the lowest address
 * that every connected router reports), when the designated cache must
 * (re)send its Redirect_Assign (the view stable for one interval; again when
 * a router does not show our assignment key, at most once per interval), and
 * the contents of our Here_I_Am and Redirect_Assign.
 *
 * It does no I/O and keeps no clock: the caller (proxy/wccp.c) passes the
 * monotonic time in milliseconds, sends what it is given and does the
 * locking. Addresses are IPv4 in host order (wccp_pkt.h).
 */
#ifndef MUS_PROXY_WCCP_VIEW_H
#define MUS_PROXY_WCCP_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wccp_assign.h"
#include "wccp_pkt.h"

#define WCCP_VIEW_SILENT_INTERVALS 3   /* a router silent this long leaves the view */
#define WCCP_VIEW_METHODS          2   /* preference list length (gre, l2 / hash, mask) */

enum wccp_router_state {
    WCCP_RS_SEEKING = 0,   /* no I_See_You yet: a seed router */
    WCCP_RS_CONNECTED,     /* I_See_You within the last 3 intervals */
    WCCP_RS_LOST,          /* silent for 3 intervals: out of the view, seeking again */
};
const char *wccp_router_state_str(enum wccp_router_state s);

/* What the service does as a whole (for the status). */
enum wccp_service_state {
    WCCP_SS_SEEKING = 0,   /* no router has answered */
    WCCP_SS_NO_METHOD,     /* routers answered but no method is common to us and all */
    WCCP_SS_MEMBER,        /* in the group, another cache is designated */
    WCCP_SS_WAITING,       /* designated, waiting for the view to be stable */
    WCCP_SS_DESIGNATED,    /* designated, our assignment sent */
};
#define WCCP_SERVICE_STATES (WCCP_SS_DESIGNATED + 1)
const char *wccp_service_state_str(enum wccp_service_state s);

typedef struct wccp_vrouter {
    uint32_t addr;                 /* configured: where we send */
    uint32_t id;                   /* its Router ID (from I_See_You; addr until then) */
    enum wccp_router_state state;
    int64_t last_isy_ms;           /* monotonic; 0 = never */
    uint32_t receive_id;           /* of its last I_See_You to us */
    uint32_t member_change;
    wccp_assign_key_t key;         /* the assignment it reports */
    wccp_caps_t caps;              /* as received (defaults GRE/hash/GRE if none) */
    uint32_t n_caches;
    wccp_member_t caches[WCCP_CACHES_MAX];   /* its view, address order */
    uint32_t our_share;            /* buckets (or mask values) it shows for us */
    uint64_t isy_count;
} wccp_vrouter_t;

typedef struct wccp_view_config {
    uint32_t self;
    uint16_t weight;
    uint32_t interval_ms;          /* Here_I_Am interval (10 s; less in tests) */
    uint32_t service_flags;        /* WCCP_SF_*: the default mask follows them */
    const uint32_t *routers;       /* configured addresses */
    size_t n_routers;
    uint8_t forwarding[WCCP_VIEW_METHODS];   /* WCCP_FWD_*, preferred first */
    size_t n_forwarding;
    uint8_t ret[WCCP_VIEW_METHODS];          /* WCCP_RET_* */
    size_t n_ret;
    uint8_t assignment[WCCP_VIEW_METHODS];   /* WCCP_ASSIGN_* */
    size_t n_assignment;
} wccp_view_config_t;

typedef struct wccp_view {
    wccp_view_config_t c;          /* c.routers is not kept: see routers[] */
    size_t n_routers;
    wccp_vrouter_t routers[WCCP_ROUTERS_MAX];
    uint32_t change_number;        /* our Web-Cache View: bumped on each change */
    int64_t changed_ms;            /* when it last changed */
    uint32_t forward, ret, assign; /* negotiated (one bit each); 0 = none common */
    /* our assignments, when designated */
    uint32_t key_change;           /* change number of the last key we sent */
    bool assigned;                 /* sent for the view at assigned_view */
    uint32_t assigned_view;
    int64_t assigned_ms;
    uint32_t assigned_share;       /* what it gave us */
} wccp_view_t;

/* n_routers <= WCCP_ROUTERS_MAX (more are ignored). */
void wccp_view_init(wccp_view_t *v, const wccp_view_config_t *c);

/* Index of the router configured at addr, or -1. */
int wccp_view_router(const wccp_view_t *v, uint32_t addr);

/*
 * An I_See_You (already parsed and of this service) from router index r.
 * Returns 1 when our view changed, 0 when not, or -1 when the message is
 * not for us (sent_to is another cache) and was ignored.
 */
int wccp_view_isy(wccp_view_t *v, size_t r, const wccp_msg_t *m, int64_t now_ms);

/* Drops routers silent for WCCP_VIEW_SILENT_INTERVALS intervals. Returns how
 * many left the view now. */
int wccp_view_tick(wccp_view_t *v, int64_t now_ms);

/* Caches every connected router reports, address order; 0 with no router. */
size_t wccp_view_caches(const wccp_view_t *v, wccp_member_t *out);

/* The designated cache (lowest address of wccp_view_caches), 0 if none. */
uint32_t wccp_view_designated(const wccp_view_t *v);

size_t wccp_view_connected(const wccp_view_t *v);

enum wccp_service_state wccp_view_state(const wccp_view_t *v, int64_t now_ms);

/* Our share as the group has it: what we assigned when designated, else what
 * the first connected router shows for us. */
uint32_t wccp_view_share(const wccp_view_t *v);

/* Whether we must send a Redirect_Assign now. */
bool wccp_view_assign_due(const wccp_view_t *v, int64_t now_ms);

/* The next time after now_ms at which wccp_view_assign_due may become true
 * without a new message (the view turning stable, or the resend interval
 * passing), or INT64_MAX if none: the agent's poll wakes then. */
int64_t wccp_view_assign_next_ms(const wccp_view_t *v, int64_t now_ms);

/*
 * Our assignment for the caches in the view (without_self: without us, as we
 * leave): a new key (us, next change number), one element per connected
 * router, hash buckets by weight, or the default mask when mask is the
 * negotiated method (out->mv = mv). Records it as sent. Returns WCCP_OK, or
 * WCCP_E_INVALID when there is no cache to assign to.
 */
int wccp_view_assignment(wccp_view_t *v, bool without_self, int64_t now_ms,
                         wccp_assignment_t *out, wccp_mvlist_t *mv);

/* Our Here_I_Am to router r, all but password, service and shutdown. */
void wccp_view_hia(const wccp_view_t *v, size_t r, wccp_hia_t *out);

#endif
