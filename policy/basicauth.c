/*
 * policy/basicauth.c: Basic credentials against a PBKDF2-SHA256 password
 * file (see basicauth.h). The accounts are kept sorted by name for a binary
 * search; a verified header value is remembered by its SHA-256 in a small
 * direct-mapped cache so a browser or proxy client resending the same
 * credentials does not pay the PBKDF2 every time.
 */
#include "basicauth.h"
#include "../common/err.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include "../common/grow.h"

#define BASICAUTH_HASH_LEN   32        /* bytes of a hash basicauth_hash makes */
#define BASICAUTH_SALT_LEN   16
#define BASICAUTH_FIELD_MAX  64        /* decoded salt or hash bytes in a file */
#define BASICAUTH_DECODED_MAX 3072     /* decoded "user:password" bytes */

typedef struct pw_user {
    char *name;
    uint32_t iter;
    uint8_t salt[BASICAUTH_FIELD_MAX], hash[BASICAUTH_FIELD_MAX];
    size_t salt_len, hash_len;
} pw_user_t;

struct basicauth {
    pw_user_t *users;                  /* sorted by name */
    size_t n_users, cap_users;
    uint8_t dummy_salt[BASICAUTH_SALT_LEN];
    pthread_mutex_t mu;                /* the cache */
    struct {
        uint8_t key[32];
        uint32_t user;                 /* index + 1 into users; 0 = empty */
    } cache[BASICAUTH_CACHE];
};



static int
b64_val(int c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Strict standard base64 (padding optional). Returns the decoded length or
 * -1 (bad input or more than cap bytes). */
static long
b64_decode(const char *s, size_t n, uint8_t *out, size_t cap)
{
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;

    while (n > 0 && s[n - 1] == '=')
        n--;
    if (n % 4 == 1)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int v = b64_val((unsigned char)s[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap)
                return -1;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    return (long)o;
}

static int
pw_cmp(const void *a, const void *b)
{
    return strcmp(((const pw_user_t *)a)->name, ((const pw_user_t *)b)->name);
}

/* Parses "pbkdf2-sha256$ITER$SALT$HASH" into u. 0 or -1. */
static int
parse_pw_hash(const char *h, pw_user_t *u)
{
    static const char pfx[] = "pbkdf2-sha256$";
    const char *salt, *d;
    unsigned long it;
    long sl, hl;
    char *end;

    if (strncmp(h, pfx, sizeof(pfx) - 1) != 0)
        return -1;
    h += sizeof(pfx) - 1;
    errno = 0;
    it = strtoul(h, &end, 10);
    if (errno != 0 || end == h || *end != '$' || it == 0 || it > BASICAUTH_MAX_ITER ||
        !isdigit((unsigned char)h[0]))
        return -1;
    u->iter = (uint32_t)it;
    salt = end + 1;
    d = strchr(salt, '$');
    if (d == NULL)
        return -1;
    sl = b64_decode(salt, (size_t)(d - salt), u->salt, sizeof(u->salt));
    hl = b64_decode(d + 1, strlen(d + 1), u->hash, sizeof(u->hash));
    if (sl < 1 || hl < 16)
        return -1;
    u->salt_len = (size_t)sl;
    u->hash_len = (size_t)hl;
    return 0;
}

/* One line of the file (without its newline): 1 added, 0 blank or comment,
 * -1 malformed, -2 listed twice, -3 out of memory. */
static int
add_line(basicauth_t *a, char *s)
{
    pw_user_t u;
    char *colon;

    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '\0' || *s == '#')
        return 0;
    colon = strchr(s, ':');
    if (colon == NULL || colon == s)
        return -1;
    *colon = '\0';
    memset(&u, 0, sizeof(u));
    if (parse_pw_hash(colon + 1, &u) < 0)
        return -1;
    for (size_t i = 0; i < a->n_users; i++)
        if (strcmp(a->users[i].name, s) == 0)
            return -2;
    u.name = strdup(s);
    if (u.name == NULL ||
        grow_array(&a->users, &a->cap_users, a->n_users + 1, sizeof(*a->users)) < 0) {
        free(u.name);
        return -3;
    }
    a->users[a->n_users++] = u;
    return 1;
}

basicauth_t *
basicauth_load(const char *path, char *err, size_t errlen)
{
    basicauth_t *a = NULL;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t r;
    unsigned lineno = 0;
    FILE *f = fopen(path, "r");

    if (f == NULL) {
        err_set(err, errlen, "password file %s: %s", path, strerror(errno));
        return NULL;
    }
    a = calloc(1, sizeof(*a));
    if (a == NULL || pthread_mutex_init(&a->mu, NULL) != 0) {
        free(a);
        a = NULL;
        err_set(err, errlen, "out of memory");
        goto out;
    }
    if (RAND_bytes(a->dummy_salt, sizeof(a->dummy_salt)) != 1)
        memset(a->dummy_salt, 0x5a, sizeof(a->dummy_salt));
    while ((r = getline(&line, &lcap, f)) >= 0) {
        int rc;
        lineno++;
        while (r > 0 && (line[r - 1] == '\n' || line[r - 1] == '\r'))
            line[--r] = '\0';
        rc = add_line(a, line);
        if (rc >= 0)
            continue;
        if (rc == -1)
            err_set(err, errlen,
                    "password file %s:%u: malformed line (want user:pbkdf2-sha256$ITER$SALT$HASH)",
                    path, lineno);
        else if (rc == -2)
            err_set(err, errlen, "password file %s:%u: user %s listed twice", path, lineno,
                    line + strspn(line, " \t"));
        else
            err_set(err, errlen, "out of memory");
        goto fail;
    }
    if (ferror(f)) {
        err_set(err, errlen, "password file %s: read error", path);
        goto fail;
    }
    if (a->n_users > 0)
        qsort(a->users, a->n_users, sizeof(*a->users), pw_cmp);
    goto out;
fail:
    basicauth_free(a);
    a = NULL;
out:
    if (line != NULL) {
        OPENSSL_cleanse(line, lcap);
        free(line);
    }
    fclose(f);
    return a;
}

void
basicauth_free(basicauth_t *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->n_users; i++)
        free(a->users[i].name);
    if (a->users != NULL) {
        OPENSSL_cleanse(a->users, a->n_users * sizeof(*a->users));
        free(a->users);
    }
    pthread_mutex_destroy(&a->mu);
    OPENSSL_cleanse(a, sizeof(*a));
    free(a);
}

size_t
basicauth_count(const basicauth_t *a)
{
    return a ? a->n_users : 0;
}

static const pw_user_t *
find_user(const basicauth_t *a, const char *name)
{
    size_t lo = 0, hi = a->n_users;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, a->users[mid].name);
        if (c == 0)
            return &a->users[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

static bool
copy_user(const char *name, char *user, size_t cap)
{
    size_t n = strlen(name);

    if (user == NULL || n + 1 > cap)
        return false;
    memcpy(user, name, n + 1);
    return true;
}

/* The account of name if pass (pass_len bytes) is its password, else NULL.
 * Unknown users cost the same PBKDF2 as known ones. */
static const pw_user_t *
verify(const basicauth_t *a, const char *name, const char *pass, size_t pass_len)
{
    uint8_t out[BASICAUTH_FIELD_MAX];
    const pw_user_t *u = find_user(a, name);
    const uint8_t *salt = u ? u->salt : a->dummy_salt;
    size_t salt_len = u ? u->salt_len : sizeof(a->dummy_salt);
    uint32_t iter = u ? u->iter : BASICAUTH_PBKDF2_ITER;
    size_t hl = u ? u->hash_len : BASICAUTH_HASH_LEN;
    bool ok;

    if (pass_len > BASICAUTH_VALUE_MAX)
        return NULL;
    ok = PKCS5_PBKDF2_HMAC(pass, (int)pass_len, salt, (int)salt_len, (int)iter, EVP_sha256(),
                           (int)hl, out) == 1;
    ok = ok && u != NULL && CRYPTO_memcmp(out, u->hash, hl) == 0;
    OPENSSL_cleanse(out, sizeof(out));
    return ok ? u : NULL;
}

bool
basicauth_verify(const basicauth_t *a, const char *user, const char *pass, size_t pass_len)
{
    /* a NUL would pass for the end of the key (HMAC pads keys with zeros) */
    if (a == NULL || user == NULL || pass == NULL || a->n_users == 0 ||
        memchr(pass, '\0', pass_len) != NULL)
        return false;
    return verify(a, user, pass, pass_len) != NULL;
}

const char *
basicauth_user(const basicauth_t *a, size_t i)
{
    return a != NULL && i < a->n_users ? a->users[i].name : NULL;
}

bool
basicauth_same_account(const basicauth_t *a, const basicauth_t *b, const char *user)
{
    const pw_user_t *x = a ? find_user(a, user) : NULL, *y = b ? find_user(b, user) : NULL;

    return x != NULL && y != NULL && x->iter == y->iter && x->salt_len == y->salt_len &&
           x->hash_len == y->hash_len && memcmp(x->salt, y->salt, x->salt_len) == 0 &&
           CRYPTO_memcmp(x->hash, y->hash, x->hash_len) == 0;
}

bool
basicauth_check(const basicauth_t *a_const, const char *value, size_t len, char *user,
                size_t cap)
{
    basicauth_t *a = (basicauth_t *)a_const;   /* only the cache changes, under a->mu */
    uint8_t key[32], dec[BASICAUTH_DECODED_MAX];
    unsigned slot;
    uint32_t hit = 0;
    size_t i = 0, end = len, pass_len;
    const pw_user_t *u;
    const char *pass;
    char *colon;
    long dn;

    if (a == NULL || value == NULL || a->n_users == 0 || len > BASICAUTH_VALUE_MAX)
        return false;
    if (EVP_Digest(value, len, key, NULL, EVP_sha256(), NULL) != 1)
        return false;
    slot = ((unsigned)key[0] | (unsigned)key[1] << 8) % BASICAUTH_CACHE;
    pthread_mutex_lock(&a->mu);
    if (a->cache[slot].user != 0 && CRYPTO_memcmp(a->cache[slot].key, key, sizeof(key)) == 0)
        hit = a->cache[slot].user;
    pthread_mutex_unlock(&a->mu);
    if (hit != 0)
        return copy_user(a->users[hit - 1].name, user, cap);

    while (i < len && (value[i] == ' ' || value[i] == '\t'))
        i++;
    if (len - i < 6 || strncasecmp(value + i, "basic", 5) != 0 ||
        (value[i + 5] != ' ' && value[i + 5] != '\t'))
        return false;
    i += 5;
    while (i < len && (value[i] == ' ' || value[i] == '\t'))
        i++;
    while (end > i && (value[end - 1] == ' ' || value[end - 1] == '\t'))
        end--;
    dn = b64_decode(value + i, end - i, dec, sizeof(dec) - 1);
    if (dn <= 0)
        return false;
    dec[dn] = '\0';
    colon = memchr(dec, ':', (size_t)dn);
    if (colon == NULL || colon == (char *)dec || memchr(dec, '\0', (size_t)dn) != NULL) {
        OPENSSL_cleanse(dec, sizeof(dec));
        return false;
    }
    *colon = '\0';
    pass = colon + 1;
    pass_len = (size_t)dn - (size_t)(colon + 1 - (char *)dec);
    u = verify(a, (const char *)dec, pass, pass_len);
    OPENSSL_cleanse(dec, sizeof(dec));
    if (u == NULL)
        return false;
    pthread_mutex_lock(&a->mu);
    memcpy(a->cache[slot].key, key, sizeof(key));
    a->cache[slot].user = (uint32_t)(u - a->users) + 1;
    pthread_mutex_unlock(&a->mu);
    return copy_user(u->name, user, cap);
}

int
basicauth_hash(const char *password, char *out, size_t cap)
{
    uint8_t salt[BASICAUTH_SALT_LEN], hash[BASICAUTH_HASH_LEN];
    unsigned char s64[4 * ((BASICAUTH_SALT_LEN + 2) / 3) + 1];
    unsigned char h64[4 * ((BASICAUTH_HASH_LEN + 2) / 3) + 1];
    int n;

    if (password == NULL || out == NULL || RAND_bytes(salt, sizeof(salt)) != 1)
        return -1;
    if (PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, sizeof(salt),
                          BASICAUTH_PBKDF2_ITER, EVP_sha256(), sizeof(hash), hash) != 1)
        return -1;
    EVP_EncodeBlock(s64, salt, sizeof(salt));
    EVP_EncodeBlock(h64, hash, sizeof(hash));
    OPENSSL_cleanse(hash, sizeof(hash));
    n = snprintf(out, cap, "pbkdf2-sha256$%d$%s$%s", BASICAUTH_PBKDF2_ITER, (char *)s64,
                 (char *)h64);
    if (n < 0 || (size_t)n >= cap)
        return -1;
    return 0;
}
