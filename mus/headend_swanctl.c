/*
 * mus/headend_swanctl.c: the `swanctl --list-sas` text reader (see
 * headend_swanctl.h). The lines it uses, as strongSwan 5.x prints them:
 *   NAME: #UNIQUEID, STATE, IKEv2, SPI_i SPI_r*
 *     remote 'ID' @ HOST[PORT] [EAP: 'ID'] [XAuth: 'ID'] [[VIP VIP...]]
 * Child SA lines and everything else are skipped.
 */
#include "headend_swanctl.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Copies [s, s+n) into dst (cap bytes), truncating. */
static void copy(char *dst, size_t cap, const char *s, size_t n)
{
    if (cap == 0)
        return;
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* A quoted value starting at *p ('...'); advances past it. */
static bool quoted(const char **p, const char *end, char *dst, size_t cap)
{
    const char *s = *p;
    if (s >= end || *s != '\'')
        return false;
    const char *q = memchr(s + 1, '\'', (size_t)(end - s - 1));
    if (!q)
        return false;
    copy(dst, cap, s + 1, (size_t)(q - s - 1));
    *p = q + 1;
    return true;
}

static bool starts(const char *p, const char *end, const char *lit)
{
    size_t n = strlen(lit);
    return (size_t)(end - p) >= n && memcmp(p, lit, n) == 0;
}

/* "NAME: #ID, STATE, ..." at column 0. */
static bool ike_line(const char *p, const char *end, swanctl_sa_t *sa)
{
    if (p >= end || *p == ' ' || *p == '\t')
        return false;
    const char *h = NULL;
    for (const char *q = p; q + 2 < end; q++)
        if (q[0] == ':' && q[1] == ' ' && q[2] == '#') {
            h = q + 3;
            break;
        }
    if (!h)
        return false;
    const char *c = h;
    while (c < end && *c >= '0' && *c <= '9')
        c++;
    if (c == h)
        return false;
    memset(sa, 0, sizeof(*sa));
    copy(sa->uniqueid, sizeof(sa->uniqueid), h, (size_t)(c - h));
    if (starts(c, end, ", ")) {
        const char *s = c + 2, *e = s;
        while (e < end && *e != ',')
            e++;
        copy(sa->state, sizeof(sa->state), s, (size_t)(e - s));
    }
    return true;
}

/* "  remote 'ID' @ HOST[PORT] EAP: 'X' XAuth: 'Y' [VIPS]" */
static void remote_line(const char *p, const char *end, swanctl_sa_t *sa)
{
    p += strlen("  remote");
    while (p < end && *p == ' ')
        p++;
    if (!quoted(&p, end, sa->remote_id, sizeof(sa->remote_id)))
        return;
    if (starts(p, end, " @ ")) {
        p += 3;
        const char *h = p;
        while (p < end && *p != '[' && *p != ' ')
            p++;
        copy(sa->remote_host, sizeof(sa->remote_host), h, (size_t)(p - h));
        if (p < end && *p == '[') {
            const char *rb = memchr(p, ']', (size_t)(end - p));
            p = rb ? rb + 1 : end;
        }
    }
    while (p < end) {
        while (p < end && *p == ' ')
            p++;
        if (starts(p, end, "EAP: ")) {
            p += 5;
            if (!quoted(&p, end, sa->remote_eap_id, sizeof(sa->remote_eap_id)))
                return;
        } else if (starts(p, end, "XAuth: ")) {
            p += 7;
            if (!quoted(&p, end, sa->remote_xauth_id, sizeof(sa->remote_xauth_id)))
                return;
        } else if (p < end && *p == '[') {
            const char *rb = memchr(p, ']', (size_t)(end - p));
            if (!rb)
                return;
            const char *v = p + 1;
            while (v < rb && sa->n_vips < SWANCTL_VIPS_MAX) {
                while (v < rb && *v == ' ')
                    v++;
                const char *e = v;
                while (e < rb && *e != ' ')
                    e++;
                if (e > v)
                    copy(sa->vips[sa->n_vips++], sizeof(sa->vips[0]), v, (size_t)(e - v));
                v = e;
            }
            p = rb + 1;
        } else {
            return;   /* something newer: keep what we have */
        }
    }
}

size_t swanctl_parse(const char *text, size_t len, swanctl_cb cb, void *arg)
{
    swanctl_sa_t sa;
    bool open = false;
    size_t n = 0;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *le = eol ? eol : end;
        if (le > p && le[-1] == '\r')
            le--;
        swanctl_sa_t next;
        if (ike_line(p, le, &next)) {
            if (open) {
                n++;
                if (cb(arg, &sa) != 0)
                    return n;
            }
            sa = next;
            open = true;
        } else if (open && starts(p, le, "  remote ")) {
            remote_line(p, le, &sa);
            n++;
            open = false;
            if (cb(arg, &sa) != 0)
                return n;
        }
        p = eol ? eol + 1 : end;
    }
    if (open) {
        n++;
        cb(arg, &sa);
    }
    return n;
}

void swanctl_sa_name(const swanctl_sa_t *sa, char *buf, size_t cap)
{
    const char *id = sa->remote_eap_id[0]     ? sa->remote_eap_id
                     : sa->remote_xauth_id[0] ? sa->remote_xauth_id
                                              : sa->remote_id;
    const char *cn = NULL;
    for (const char *q = id; *q; q++)
        if ((q == id || q[-1] == ' ' || q[-1] == ',' || q[-1] == '/') && strncmp(q, "CN=", 3) == 0)
            cn = q + 3;
    if (cn) {
        size_t n = strcspn(cn, ",/");
        copy(buf, cap, cn, n);
        return;
    }
    snprintf(buf, cap, "%s", id);
}
