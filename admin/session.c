/*
 * admin/session.c: the session table (see session.h): a fixed array of
 * SESSION_MAX slots, searched linearly. An id is decoded from hex and then
 * compared with every slot's, the whole array each time, so how long a
 * lookup takes does not depend on how much of an id is right. Ended slots
 * are wiped.
 */
#include "session.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/hex.h"
#include "../common/log.h"

typedef struct slot {
    bool used;
    uint8_t id[SESSION_ID_BYTES];
    int64_t created, last;      /* monotonic ms: login, latest request */
    session_t s;
} slot_t;

struct session_table {
    int64_t idle_ms, max_ms;
    size_t n;                   /* used slots */
    slot_t slots[SESSION_MAX];
};

session_table_t *
session_table_new(int64_t idle_ms, int64_t max_ms)
{
    session_table_t *t;

    if (idle_ms <= 0 || max_ms <= 0)
        return NULL;
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->idle_ms = idle_ms;
    t->max_ms = max_ms;
    return t;
}

void
session_table_free(session_table_t *t)
{
    if (t == NULL)
        return;
    OPENSSL_cleanse(t, sizeof(*t));
    free(t);
}

static void
slot_end(session_table_t *t, slot_t *e)
{
    OPENSSL_cleanse(e, sizeof(*e));
    t->n--;
}

static void
hex_encode(const uint8_t *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

/* text (len bytes) as SESSION_ID_BYTES bytes: 0, or -1 if it is not
 * SESSION_TOKEN_LEN hex digits. */
static int
hex_decode(const char *text, size_t len, uint8_t *out)
{
    if (text == NULL || len != SESSION_TOKEN_LEN)
        return -1;
    for (size_t i = 0; i < SESSION_ID_BYTES; i++) {
        int hi = hex_digit(text[2 * i]), lo = hex_digit(text[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

static bool
expired(const session_table_t *t, const slot_t *e, int64_t now)
{
    return now - e->last >= t->idle_ms || now - e->created >= t->max_ms;
}

int
session_create(session_table_t *t, const char *user, int64_t now, char *id)
{
    slot_t *e = NULL, *oldest = NULL;
    size_t ulen = user ? strlen(user) : SESSION_USER_MAX;

    if (ulen >= SESSION_USER_MAX)
        return -1;
    for (size_t i = 0; i < SESSION_MAX; i++) {
        slot_t *s = &t->slots[i];
        if (s->used && expired(t, s, now))
            slot_end(t, s);
        if (!s->used) {
            if (e == NULL)
                e = s;
        } else if (oldest == NULL || s->created < oldest->created) {
            oldest = s;
        }
    }
    if (e == NULL) {
        log_info("admin: %d sessions at once: the oldest (%s) is logged out", SESSION_MAX,
                 oldest->s.user);
        slot_end(t, oldest);
        e = oldest;
    }
    if (RAND_bytes(e->id, sizeof(e->id)) != 1 || session_random_token(e->s.csrf) < 0) {
        OPENSSL_cleanse(e, sizeof(*e));
        return -1;
    }
    e->used = true;
    e->created = e->last = now;
    memcpy(e->s.user, user, ulen + 1);
    hex_encode(e->id, sizeof(e->id), id);
    t->n++;
    return 0;
}

/* The used slot whose id is text, whatever its time; every slot is compared. */
static slot_t *
lookup(session_table_t *t, const char *text, size_t len)
{
    uint8_t want[SESSION_ID_BYTES];
    slot_t *found = NULL;

    if (hex_decode(text, len, want) < 0)
        return NULL;
    for (size_t i = 0; i < SESSION_MAX; i++) {
        slot_t *s = &t->slots[i];
        int diff = CRYPTO_memcmp(s->id, want, sizeof(want));
        if (s->used && diff == 0)
            found = s;
    }
    OPENSSL_cleanse(want, sizeof(want));
    return found;
}

const session_t *
session_find(session_table_t *t, const char *text, size_t len, int64_t now)
{
    slot_t *e = lookup(t, text, len);

    if (e == NULL)
        return NULL;
    if (expired(t, e, now)) {
        slot_end(t, e);
        return NULL;
    }
    e->last = now;
    return &e->s;
}

int
session_random_token(char *out)
{
    uint8_t b[SESSION_ID_BYTES];

    if (RAND_bytes(b, sizeof(b)) != 1)
        return -1;
    hex_encode(b, sizeof(b), out);
    OPENSSL_cleanse(b, sizeof(b));
    return 0;
}

bool
session_token_eq(const char *a, size_t alen, const char *b)
{
    return a != NULL && b != NULL && alen == SESSION_TOKEN_LEN &&
           CRYPTO_memcmp(a, b, SESSION_TOKEN_LEN) == 0;
}

bool
session_csrf_ok(const session_t *s, const char *token)
{
    return s != NULL && token != NULL && session_token_eq(token, strlen(token), s->csrf);
}

bool
session_end(session_table_t *t, const char *text, size_t len)
{
    slot_t *e = lookup(t, text, len);

    if (e == NULL)
        return false;
    slot_end(t, e);
    return true;
}

size_t
session_end_user(session_table_t *t, const char *user)
{
    size_t n = 0;

    for (size_t i = 0; i < SESSION_MAX; i++) {
        slot_t *s = &t->slots[i];
        if (s->used && strcmp(s->s.user, user) == 0) {
            slot_end(t, s);
            n++;
        }
    }
    return n;
}

size_t
session_count(const session_table_t *t)
{
    return t->n;
}
