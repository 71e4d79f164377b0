/*
 * proxy/pages.h: the bodies of the responses musproxy writes itself: error
 * pages, the block page, the 407 page, the probe's answer. Each is built
 * from plain values into a caller's buffer (cut to fit, NUL-terminated), with
 * everything that came from a client HTML-escaped. Bodies only: the status
 * line, headers and sending stay with the connection (proxy/conn.c).
 */
#ifndef MUS_PROXY_PAGES_H
#define MUS_PROXY_PAGES_H

#include <stdbool.h>
#include <stddef.h>

#define PAGES_ERROR_MAX 2048   /* body of an error page */
#define PAGES_BLOCK_MAX 6144   /* body of the block page */
#define PAGES_AUTH_MAX  1024   /* body of the 407 page */
#define PAGES_PROBE_MAX 2048   /* body of the probe's answer */

/* The reason phrase of the statuses we generate ("Error" for others). */
const char *pages_reason(int status);

/* Escapes s[0..n) for HTML into out (cap bytes, NUL-terminated, cut to fit). */
void pages_html_escape(char *out, size_t cap, const char *s, size_t n);

/* An error page: status, what went wrong (our own text), the URL if any. */
size_t pages_error(char *out, size_t cap, int status, const char *what, const char *url,
                   size_t url_len, const char *server);

typedef struct pages_block {
    const char *url;
    size_t url_len;
    const char *user;        /* "" or NULL: not identified */
    const char *category, *policy, *profile, *rule, *reason, *decision;
    bool remote;
    const char *server;      /* our name, in the signature */
} pages_block_t;

size_t pages_block(char *out, size_t cap, const pages_block_t *b);

/* The 407 page (bad: credentials were sent and refused). */
size_t pages_auth(char *out, size_t cap, bool bad, const char *server);

typedef struct pages_probe {
    const char *client;
    bool remote;
    const char *source;      /* where the location came from */
    bool identified;         /* the fields below are set */
    const char *user, *type, *domain, *groups, *headend;
    bool stale;
} pages_probe_t;

/* The probe's plain-text answer. */
size_t pages_probe(char *out, size_t cap, const pages_probe_t *p);

#endif
