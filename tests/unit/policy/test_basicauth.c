/*
 * tests/unit/policy/test_basicauth.c: the password file and Basic
 * credentials (policy/basicauth.c) on their own, as the admin UI uses them:
 * what loads, the exact messages for what does not, checks and the hash
 * format. The proxy's use through policy_check_basic is in test_policy.c.
 */
#include <criterion/criterion.h>
#include <openssl/evp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../../policy/basicauth.h"

static char path[64];

static void
write_file(const char *text)
{
    int fd;
    FILE *fp;

    snprintf(path, sizeof(path), "/tmp/test-basicauth.XXXXXX");
    fd = mkstemp(path);
    cr_assert(fd >= 0);
    fp = fdopen(fd, "w");
    fputs(text, fp);
    fclose(fp);
}

static const char *
basic(const char *userpass)
{
    static char buf[256];
    unsigned char b64[200];

    EVP_EncodeBlock(b64, (const unsigned char *)userpass, (int)strlen(userpass));
    snprintf(buf, sizeof(buf), "Basic %s", (char *)b64);
    return buf;
}

Test(basicauth, load_check_and_free)
{
    char h1[BASICAUTH_HASH_MAX], h2[BASICAUTH_HASH_MAX], text[600], err[BASICAUTH_ERR_LEN];
    char user[64];
    basicauth_t *a;
    const char *v;

    cr_assert_eq(basicauth_hash("pass", h1, sizeof(h1)), 0);
    cr_assert_eq(basicauth_hash("other", h2, sizeof(h2)), 0);
    cr_assert_eq(strncmp(h1, "pbkdf2-sha256$100000$", 21), 0, "%s", h1);
    snprintf(text, sizeof(text), "# admins\n\nadmin:%s\r\n  viewer:%s\n", h1, h2);
    write_file(text);
    a = basicauth_load(path, err, sizeof(err));
    unlink(path);
    cr_assert_not_null(a, "%s", err);
    cr_assert_eq(basicauth_count(a), 2);
    v = basic("admin:pass");
    cr_assert(basicauth_check(a, v, strlen(v), user, sizeof(user)));
    cr_assert_str_eq(user, "admin");
    v = basic("viewer:other");
    cr_assert(basicauth_check(a, v, strlen(v), user, sizeof(user)));
    cr_assert_str_eq(user, "viewer");
    v = basic("admin:other");                     /* another account's password */
    cr_assert_not(basicauth_check(a, v, strlen(v), user, sizeof(user)));
    v = basic("admin:pas");
    cr_assert_not(basicauth_check(a, v, strlen(v), user, sizeof(user)));
    v = basic("nobody:pass");
    cr_assert_not(basicauth_check(a, v, strlen(v), user, sizeof(user)));
    cr_assert_not(basicauth_check(NULL, v, strlen(v), user, sizeof(user)));
    basicauth_free(a);
    basicauth_free(NULL);
}

/* A login form's user and password, and what a file read again keeps. */
Test(basicauth, verify_walk_and_same_account)
{
    char h1[BASICAUTH_HASH_MAX], h2[BASICAUTH_HASH_MAX], text[800], err[BASICAUTH_ERR_LEN];
    basicauth_t *a, *b;

    cr_assert_eq(basicauth_hash("pass", h1, sizeof(h1)), 0);
    cr_assert_eq(basicauth_hash("other", h2, sizeof(h2)), 0);
    snprintf(text, sizeof(text), "viewer:%s\nadmin:%s\n", h2, h1);
    write_file(text);
    a = basicauth_load(path, err, sizeof(err));
    unlink(path);
    cr_assert_not_null(a, "%s", err);
    cr_expect(basicauth_verify(a, "admin", "pass", 4));
    cr_expect(basicauth_verify(a, "viewer", "other", 5));
    cr_expect_not(basicauth_verify(a, "admin", "other", 5));
    cr_expect_not(basicauth_verify(a, "admin", "pass", 3), "a prefix of the password");
    cr_expect_not(basicauth_verify(a, "admin", "pass\0", 5), "a NUL after the password");
    cr_expect_not(basicauth_verify(a, "nobody", "pass", 4));
    cr_expect_not(basicauth_verify(NULL, "admin", "pass", 4));
    /* the accounts in name order */
    cr_expect_str_eq(basicauth_user(a, 0), "admin");
    cr_expect_str_eq(basicauth_user(a, 1), "viewer");
    cr_expect_null(basicauth_user(a, 2));

    /* admin's password changes, viewer stays, carol is new */
    cr_assert_eq(basicauth_hash("new", h1, sizeof(h1)), 0);
    snprintf(text, sizeof(text), "admin:%s\nviewer:%s\ncarol:%s\n", h1, h2, h2);
    write_file(text);
    b = basicauth_load(path, err, sizeof(err));
    unlink(path);
    cr_assert_not_null(b, "%s", err);
    cr_expect_not(basicauth_same_account(a, b, "admin"));
    cr_expect(basicauth_same_account(a, b, "viewer"));
    cr_expect_not(basicauth_same_account(a, b, "carol"), "not in the old file");
    cr_expect_not(basicauth_same_account(a, NULL, "viewer"));
    cr_expect(basicauth_verify(b, "admin", "new", 3));
    basicauth_free(a);
    basicauth_free(b);
}

Test(basicauth, empty_file_has_no_accounts)
{
    char err[BASICAUTH_ERR_LEN], user[64];
    basicauth_t *a;
    const char *v = basic("admin:pass");

    write_file("# nobody yet\n");
    a = basicauth_load(path, err, sizeof(err));
    unlink(path);
    cr_assert_not_null(a, "%s", err);
    cr_assert_eq(basicauth_count(a), 0);
    cr_assert_not(basicauth_check(a, v, strlen(v), user, sizeof(user)));
    basicauth_free(a);
}

Test(basicauth, load_errors)
{
    char err[BASICAUTH_ERR_LEN], want[256], h[BASICAUTH_HASH_MAX], text[600];

    cr_assert_null(basicauth_load("/nonexistent/admin.passwd", err, sizeof(err)));
    cr_assert_str_eq(err, "password file /nonexistent/admin.passwd: No such file or directory");

    write_file("# x\nadmin:md5$abc\n");
    cr_assert_null(basicauth_load(path, err, sizeof(err)));
    snprintf(want, sizeof(want),
             "password file %s:2: malformed line (want user:pbkdf2-sha256$ITER$SALT$HASH)", path);
    cr_assert_str_eq(err, want);
    unlink(path);

    cr_assert_eq(basicauth_hash("p", h, sizeof(h)), 0);
    snprintf(text, sizeof(text), "admin:%s\n admin:%s\n", h, h);
    write_file(text);
    cr_assert_null(basicauth_load(path, err, sizeof(err)));
    snprintf(want, sizeof(want), "password file %s:2: user admin listed twice", path);
    cr_assert_str_eq(err, want);
    unlink(path);

    cr_assert_eq(basicauth_hash("p", h, 20), -1);   /* does not fit */
}
