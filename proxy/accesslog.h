/*
 * proxy/accesslog.h: the access log in Squid's native format, byte for byte
 * (the format string of Squid 5's FormatSquidNative.cc), so GoAccess, SARG,
 * Calamaris and LightSquid read it:
 *   time.ms elapsed client tag/status bytes method URL user hier/peer mime
 * One writer per worker: lines are buffered and written with O_APPEND when
 * the buffer fills or at the end of each loop iteration (alog_flush), whole
 * lines only, so workers never interleave inside a line. It does not rotate
 * files; SIGUSR1 makes every worker reopen the path (after logrotate moved it).
 */
#ifndef MUS_PROXY_ACCESSLOG_H
#define MUS_PROXY_ACCESSLOG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define ALOG_BUF_SIZE   65536  /* flushed when fuller than this minus a line */
#define ALOG_LINE_MAX   8192   /* longer URLs are cut to fit */

typedef struct alog alog_t;

typedef struct alog_entry {
    const char *client;      /* numeric client address */
    const char *tag;         /* "TCP_MISS", "TCP_TUNNEL", "TCP_DENIED", "NONE_NONE" */
    int status;              /* sent to the client, 0 if none */
    uint64_t bytes;          /* bytes sent to the client, head + body */
    const char *method;      /* "-" if unknown */
    const char *url;         /* absolute URL or host:port (CONNECT); query cut */
    size_t url_len;
    const char *user;        /* NULL or "" = "-" */
    const char *hier;        /* "HIER_DIRECT" or "HIER_NONE" */
    const char *peer;        /* numeric server address, NULL = "-" */
    const char *mime;        /* reply Content-Type, NULL = "-" */
    size_t mime_len;
    uint64_t elapsed_ms;
} alog_entry_t;

/* Opens path for appending (creates it 0640 and its parent directory if
 * missing). path "" means disabled: every call is then a no-op. Returns NULL
 * with errno set on failure. */
alog_t *alog_open(const char *path);
void alog_close(alog_t *a);   /* flushes; NULL allowed */
void alog_write(alog_t *a, const alog_entry_t *e);
/* Appends one preformatted line (it must end in '\n'; at most ALOG_LINE_MAX
 * bytes) - the extended log's JSON lines. */
void alog_write_line(alog_t *a, const char *line, size_t len);
void alog_flush(alog_t *a);
/* False when the log is off (path ""): callers skip formatting altogether. */
bool alog_enabled(const alog_t *a);
/* Flushes and reopens the same path; on failure keeps the old descriptor
 * and returns -1. */
int alog_reopen(alog_t *a);

/* Formats one line (with '\n') into buf; returns its length. Exposed for tests. */
size_t alog_format(char *buf, size_t size, const alog_entry_t *e, int64_t secs, int msec);

#endif
