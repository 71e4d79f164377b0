/*
 * admin/admin.h: the admin web UI and its JSON API, served by libmicrohttpd
 * on the admin.listen address, over HTTPS when admin.tls_cert and tls_key
 * are set: the reports over the transaction store (dashboard, web sites,
 * URL categories, blocked, overview over time, by user location, a user's
 * page, transaction search; each table also as a CSV download with
 * ?format=csv&table=NAME), who is connected over the VPN and the session
 * history, the headend sessions, the store's health and a policy-trace
 * form.
 *
 * Logins: an account of admin.password_file (admin/auth.h) logs in through
 * the form at /login and gets a server-side session (admin/session.h) in
 * the cookie musproxy_session (HttpOnly, SameSite=Strict, Path=/, Secure
 * on HTTPS); POST /logout ends it. Every page needs a session (without
 * one: 303 to /login); the JSON API and /metrics also take HTTP Basic
 * credentials of the same accounts, for scripts and scrapers (without
 * either: 401). Every POST must come from the UI's own origin and, from a
 * session, carry the session's CSRF token (a hidden field of every form);
 * the login form has a token of its own. Every response carries the
 * security headers (CSP without scripts, no framing, no sniffing, no
 * caching, no referrer).
 *
 * Why a folder of its own rather than db/: the UI reads db/'s reports and
 * the proxy's status only through two small interfaces (db/report.h and
 * proxy/status.h's status_request), and it is the only part that links
 * libmicrohttpd; keeping it apart keeps db/ free of HTTP and of proxy/.
 *
 * Threads: one thread of its own drives libmicrohttpd in its external
 * (epoll) mode, so every callback runs on that thread, which is a
 * registered reader of the identity map (quiescent between requests, as
 * status_request requires) and owns the report connection and the session
 * table. It never touches a worker or blocks the proxy.
 */
#ifndef MUS_ADMIN_ADMIN_H
#define MUS_ADMIN_ADMIN_H

#include "../db/report.h"
#include "../policy/config.h"
#include "../proxy/status.h"

#define ADMIN_CONN_MAX       64          /* connections at once */
#define ADMIN_CONN_PER_IP    16
#define ADMIN_IDLE_S         30          /* a silent connection is closed after this */
#define ADMIN_CONN_MEMORY    (128u << 10) /* libmicrohttpd's per-connection memory (head + URI) */
#define ADMIN_POLL_MS        1000        /* longest wait of the thread's loop */
#define ADMIN_URI_MAX        20000       /* bytes of a request target */
#define ADMIN_REALM          "musproxy admin"

#define ADMIN_TLS_FILE_MAX   (1u << 20)  /* bytes of a PEM certificate (chain) or key */
#define ADMIN_LOGIN_FORM_S   3600        /* a login form's token lasts this long */
#define ADMIN_ERR_MAX        768

typedef struct admin admin_t;

/* The open step, before privileges drop: keeps cfg and, for HTTPS, reads
 * and checks the certificate and key (PEM, the key matching the
 * certificate; libmicrohttpd built with TLS), so a key only root may read
 * works. NULL with the reason in err. cfg->enabled must be true. */
admin_t *admin_new(const config_admin_t *cfg, char *err, size_t errlen);

/* The start step: loads the password file, listens, starts libmicrohttpd
 * (the key's copy is wiped once it has read it) and the thread. src is
 * copied (its pointers must outlive the UI); store is the transaction
 * store the reports read (copied; NULL or an empty path = none): its SQLite
 * file, or the PostgreSQL database of a group of proxies. Logs where it serves. 0, or -1 with
 * the reason in err (no password file or no account in it, the address
 * in use, a certificate libmicrohttpd refuses); a is then still freed by
 * admin_stop. */
int admin_start(admin_t *a, const status_sources_t *src, const report_store_t *store, char *err,
                size_t errlen);

/* Whether the certificate or key files now hold something else than what
 * a serves (renewed on disk): 1 yes, 0 no (or no HTTPS), -1 they cannot be
 * read now (err says why; a keeps serving what it has). */
int admin_tls_changed(const admin_t *a, const config_admin_t *cfg, char *err, size_t errlen);

/* Stops the thread, closes every connection, wipes what is secret and
 * frees; NULL allowed, and a that never started. */
void admin_stop(admin_t *a);

#endif
