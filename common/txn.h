/*
 * common/txn.h: the transaction record. When a transaction ends the proxy
 * builds one self-contained txn_record_t (it owns every byte: no pointer into
 * a connection, a policy or a map), and every consumer writes from it: the
 * Squid access line and the JSON extended line (proxy/txnlog.h), later the
 * transaction store (db/). Being a plain value it can be copied into a queue
 * and read on another thread. It formats nothing and knows no consumer; the
 * enums say what happened, their _str() give the names the logs use.
 */
#ifndef MUS_COMMON_TXN_H
#define MUS_COMMON_TXN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TXN_ADDR_MAX    46     /* numeric IPv6 address incl. NUL */
#define TXN_METHOD_MAX  24
#define TXN_URL_MAX     4096   /* URL bytes kept (the log shortens, the policy never sees this) */
#define TXN_NAME_MAX    256    /* user name incl. NUL */
#define TXN_LABEL_MAX   64     /* profile, policy, rule, category, headend, mime, decision tag */

/* Squid's result codes (the part before the slash in "TCP_MISS/200"). */
enum txn_result {
    TXN_NONE_NONE = 0,       /* refused before any cache or origin work (malformed, errors) */
    TXN_TCP_MISS,            /* forwarded to the origin */
    TXN_TCP_TUNNEL,          /* CONNECT (or a 101 upgrade) relayed */
    TXN_TCP_DENIED,          /* refused by an ACL or the policy */
    TXN_TCP_MISS_ABORTED,    /* forwarded, then cut (the request's body broke its framing) */
};
const char *txn_result_str(enum txn_result r);

/* Squid's hierarchy codes: how the origin was reached. */
enum txn_hier {
    TXN_HIER_NONE = 0,       /* no origin contacted */
    TXN_HIER_DIRECT,         /* straight to the origin server */
};
const char *txn_hier_str(enum txn_hier h);

/* What the access policy said, when it was asked. */
enum txn_decision {
    TXN_DECISION_NONE = 0,   /* not asked (refused earlier, probe) */
    TXN_DECISION_ALLOW,
    TXN_DECISION_MONITOR,
    TXN_DECISION_BLOCK,
    TXN_DECISION_AUTH,       /* credentials asked for (407) */
    TXN_DECISION_REFUSE_UNIDENTIFIED,
};
const char *txn_decision_str(enum txn_decision d);

enum txn_mode {
    TXN_MODE_EXPLICIT = 0,
    TXN_MODE_TRANSPARENT,
};
const char *txn_mode_str(enum txn_mode m);

typedef struct txn_record {
    int64_t end_ms;                    /* wall clock (Unix ms) when it ended */
    uint64_t elapsed_ms;
    char client[TXN_ADDR_MAX];         /* numeric client address */
    enum txn_mode mode;
    enum txn_result result;
    int status;                        /* sent to the client, 0 if none */
    uint64_t bytes_out;                /* sent to the client, head + body */
    char method[TXN_METHOD_MAX];       /* "" if the request had none we could read */
    char url[TXN_URL_MAX];             /* absolute URL, or host:port for CONNECT; "" if none */
    size_t url_len;
    bool url_cut;                      /* longer than TXN_URL_MAX - 1 */
    char user[TXN_NAME_MAX];           /* "" if not identified */
    enum txn_hier hier;
    char server[TXN_ADDR_MAX];         /* origin's numeric address, "" if none */
    char mime[TXN_LABEL_MAX];          /* response Content-Type, "" if none */

    /* intercepted traffic (mode transparent) */
    bool bypass;                       /* in the bypass list: relayed without parsing or policy */
    bool host_mismatch;                /* Host did not name the original destination */
    bool ech;                          /* Encrypted Client Hello: the host is the outer SNI */

    /* the policy's view; meaningful when decided */
    bool decided;
    enum txn_decision decision;
    bool remote;                       /* location: remote (VPN) or local */
    char user_source[TXN_LABEL_MAX];   /* "headend", "vpn_pools", "basic", ... */
    char identity_type[TXN_LABEL_MAX]; /* "user", "machine", "" if no identity */
    char headend[TXN_LABEL_MAX];
    char identity_profile[TXN_LABEL_MAX];
    char access_policy[TXN_LABEL_MAX];
    char rule[TXN_LABEL_MAX];
    char category[TXN_LABEL_MAX];
    char decision_tag[TXN_LABEL_MAX];  /* e.g. BLOCK_CATEGORY, ALLOW_DEFAULT */
} txn_record_t;

/* Copies src (n bytes, NULL = "") into a record field of cap bytes, cut to
 * fit and NUL-terminated; returns the length kept. */
size_t txn_copy(char *dst, size_t cap, const char *src, size_t n);
/* The same for a NUL-terminated src (NULL = ""). */
size_t txn_copy_str(char *dst, size_t cap, const char *src);

#endif
