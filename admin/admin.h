/*
 * admin/admin.h: the admin web UI and its JSON API, served by libmicrohttpd
 * on the admin.listen address: the reports over the transaction store
 * (dashboard, web sites, URL categories, blocked, overview over time, by
 * user location, a user's page, transaction search; each table also as a
 * CSV download with ?format=csv&table=NAME), who is connected over the
 * VPN and the session history, the headend sessions, the store's health and
 * a policy-trace form. Every request needs an account from
 * admin.password_file (admin/auth.h); every response carries the security
 * headers (CSP without scripts, no framing, no sniffing, no caching, no
 * referrer); the only POST (the trace) must come from the UI's own origin.
 *
 * Why a folder of its own rather than db/: the UI reads db/'s reports and
 * the proxy's status only through two small interfaces (db/report.h and
 * proxy/status.h's status_request), and it is the only part that links
 * libmicrohttpd; keeping it apart keeps db/ free of HTTP and of proxy/.
 *
 * Threads: one thread of its own drives libmicrohttpd in its external
 * (epoll) mode, so every callback runs on that thread, which is a
 * registered reader of the identity map (quiescent between requests, as
 * status_request requires) and owns the report connection. It never
 * touches a worker or blocks the proxy.
 */
#ifndef MUS_ADMIN_ADMIN_H
#define MUS_ADMIN_ADMIN_H

#include "../policy/config.h"
#include "../proxy/status.h"

#define ADMIN_CONN_MAX       64          /* connections at once */
#define ADMIN_CONN_PER_IP    16
#define ADMIN_IDLE_S         30          /* a silent connection is closed after this */
#define ADMIN_CONN_MEMORY    (128u << 10) /* libmicrohttpd's per-connection memory (head + URI) */
#define ADMIN_POLL_MS        1000        /* longest wait of the thread's loop */
#define ADMIN_URI_MAX        20000       /* bytes of a request target */
#define ADMIN_REALM          "musproxy admin"

typedef struct admin admin_t;

/* Starts the UI if cfg->enabled: loads the password file, listens, starts
 * the thread. src is copied (its pointers must outlive the UI); store_path
 * is the transaction store the reports read ("" = none). Logs what it did
 * and, if it does not start (disabled, no password file or no account in
 * it, the address in use), why; NULL then, and the proxy runs without it. */
admin_t *admin_start(const config_admin_t *cfg, const status_sources_t *src,
                     const char *store_path);

/* Stops the thread, closes every connection and frees; NULL allowed. */
void admin_stop(admin_t *a);

#endif
