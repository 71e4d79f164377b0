/*
 * proxy/accesslog.c: Squid-native access log lines (see accesslog.h).
 * Squid prints "%9ld.%03d %6ld %s %s/%03d %lld %s %s %s %s%s/%s %s\n"; the
 * empty %s before the hierarchy is the (unused) timeout prefix. The line is
 * written by hand, not by snprintf (once per request: it showed in profiles);
 * tests/unit/proxy/test_accesslog.c checks it against that format string.
 */
#include "accesslog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/dec.h"
#include "../common/log.h"
#include "../common/path.h"

struct alog {
    int fd;
    char path[4096];
    size_t len;
    char buf[ALOG_BUF_SIZE];
};

static int
open_log(const char *path)
{
    if (path_mkdir_parent(path) < 0)
        return -1;
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

alog_t *
alog_open(const char *path)
{
    alog_t *a;

    if (strlen(path) >= sizeof(a->path)) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    a = malloc(sizeof(*a));
    if (a == NULL)
        return NULL;
    a->len = 0;
    a->fd = -1;
    strcpy(a->path, path);
    if (path[0] != '\0') {
        a->fd = open_log(path);
        if (a->fd < 0) {
            int e = errno;
            free(a);
            errno = e;
            return NULL;
        }
    }
    return a;
}

void
alog_flush(alog_t *a)
{
    size_t off = 0;

    if (a == NULL || a->len == 0)
        return;
    while (off < a->len) {
        ssize_t n = write(a->fd, a->buf + off, a->len - off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            log_error("access log %s: write failed: %s (%zu bytes lost)", a->path,
                      strerror(errno), a->len - off);
            break;
        }
        off += (size_t)n;
    }
    a->len = 0;
}

void
alog_close(alog_t *a)
{
    if (a == NULL)
        return;
    alog_flush(a);
    if (a->fd >= 0)
        close(a->fd);
    free(a);
}

int
alog_reopen(alog_t *a)
{
    int fd;

    if (a == NULL || a->fd < 0)
        return 0;
    alog_flush(a);
    fd = open_log(a->path);
    if (fd < 0) {
        log_error("access log %s: cannot reopen: %s", a->path, strerror(errno));
        return -1;
    }
    close(a->fd);
    a->fd = fd;
    return 0;
}

/* The line being written: at most cap - 2 bytes of text, then '\n' (like
 * snprintf's cut line ending in '\n' before its NUL). */
typedef struct lbuf {
    char *p;
    size_t off, cap;
} lbuf_t;

static void
lb_bytes(lbuf_t *b, const char *s, size_t n)
{
    if (n > b->cap - 2 - b->off)
        n = b->cap - 2 - b->off;
    memcpy(b->p + b->off, s, n);
    b->off += n;
}

static void
lb_str(lbuf_t *b, const char *s)
{
    lb_bytes(b, s, strlen(s));
}

static void
lb_char(lbuf_t *b, char ch)
{
    if (b->off < b->cap - 2)
        b->p[b->off++] = ch;
}

/* printf's %<width>llu (pad ' ') or %0<width>llu (pad '0'). */
static void
lb_num(lbuf_t *b, unsigned long long v, int width, char pad)
{
    char tmp[DEC_U64_MAX];
    size_t n = dec_u64(tmp, v);

    for (int len = (int)n; len < width; len++)
        lb_char(b, pad);
    lb_bytes(b, tmp, n);
}

/* Appends s[0..n) as one field: whitespace, control bytes and '%' as '%XX'
 * so that a field never splits, "-" if empty; at most cap - 4 bytes of it
 * (the field limits of Squid's line), runs of plain bytes in one copy. */
static void
lb_field(lbuf_t *b, const char *s, size_t n, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0, i = 0;

    if (s == NULL || n == 0) {
        lb_char(b, '-');
        return;
    }
    while (i < n && o + 4 < cap) {
        size_t run = i;
        while (run < n && run - i + o + 4 < cap) {
            unsigned char ch = (unsigned char)s[run];
            if (ch <= 0x20 || ch == 0x7f || ch == '%')
                break;
            run++;
        }
        if (run > i) {
            lb_bytes(b, s + i, run - i);
            o += run - i;
            i = run;
            continue;
        }
        unsigned char ch = (unsigned char)s[i++];
        if (ch <= 0x20 || ch == 0x7f || ch == '%') {
            char esc[3] = {'%', hex[ch >> 4], hex[ch & 15]};
            lb_bytes(b, esc, 3);
            o += 3;
        } else {
            lb_char(b, (char)ch);
            o++;
        }
    }
}

/* Squid's "%9ld.%03d %6ld %s %s/%03d %lld %s %s %s %s%s/%s %s\n", written
 * by hand (it runs once per request). */
size_t
alog_format(char *buf, size_t size, const alog_entry_t *e, int64_t secs, int msec)
{
    size_t url_len = e->url_len, mime_len = e->mime_len;
    const char *q;
    lbuf_t b = {buf, 0, size};

    if (size < 3)
        return 0;
    lb_num(&b, secs < 0 ? 0 : (unsigned long long)secs, 9, ' ');
    lb_char(&b, '.');
    lb_num(&b, msec < 0 ? 0 : (unsigned long long)msec, 3, '0');
    lb_char(&b, ' ');
    lb_num(&b, e->elapsed_ms, 6, ' ');
    lb_char(&b, ' ');
    lb_str(&b, e->client);
    lb_char(&b, ' ');
    lb_str(&b, e->tag);
    lb_char(&b, '/');
    lb_num(&b, e->status < 0 ? 0 : (unsigned long long)e->status, 3, '0');
    lb_char(&b, ' ');
    lb_num(&b, e->bytes, 0, ' ');
    lb_char(&b, ' ');
    lb_str(&b, e->method ? e->method : "-");
    lb_char(&b, ' ');
    /* strip_query_terms: Squid logs "http://h/p?" without the query. */
    q = e->url ? memchr(e->url, '?', url_len) : NULL;
    if (q != NULL)
        url_len = (size_t)(q - e->url) + 1;
    lb_field(&b, e->url, url_len, ALOG_LINE_MAX / 2);
    lb_char(&b, ' ');
    lb_field(&b, e->user, e->user ? strlen(e->user) : 0, 256);
    lb_char(&b, ' ');
    lb_str(&b, e->hier);
    lb_char(&b, '/');
    lb_str(&b, e->peer ? e->peer : "-");
    lb_char(&b, ' ');
    /* the media type only: "text/html; charset=utf-8" -> "text/html" */
    if (e->mime != NULL) {
        for (size_t i = 0; i < mime_len; i++) {
            if (e->mime[i] == ';' || e->mime[i] == ' ' || e->mime[i] == '\t') {
                mime_len = i;
                break;
            }
        }
    }
    lb_field(&b, e->mime, e->mime ? mime_len : 0, 128);
    buf[b.off++] = '\n';
    return b.off;
}

bool
alog_enabled(const alog_t *a)
{
    return a != NULL && a->fd >= 0;
}

void
alog_write_line(alog_t *a, const char *line, size_t len)
{
    if (a == NULL || a->fd < 0 || len > ALOG_LINE_MAX)
        return;
    if (a->len + len > sizeof(a->buf))
        alog_flush(a);
    memcpy(a->buf + a->len, line, len);
    a->len += len;
}

void
alog_write(alog_t *a, const alog_entry_t *e)
{
    struct timespec ts;

    if (a == NULL || a->fd < 0)
        return;
    if (a->len + ALOG_LINE_MAX > sizeof(a->buf))
        alog_flush(a);
    clock_gettime(CLOCK_REALTIME, &ts);
    a->len += alog_format(a->buf + a->len, ALOG_LINE_MAX, e, (int64_t)ts.tv_sec,
                          (int)(ts.tv_nsec / 1000000));
}
