/*
 * tests/unit/db/test_catdb.c: the category database (db/catdb.c): importing
 * the shipped synthetic lists (etc/categories) and crafted directories
 * (CRLF, comments, blank lines, overlong lines, spaces and control
 * characters, a bad folder name, missing files, symbolic links), replacing
 * on re-import, keeping the old content when an import fails, reading back
 * through catdb_source in a deterministic order, the missing-database
 * message, and the time to import 200 000 generated domains.
 */
#include <criterion/criterion.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <errno.h>
#include <ftw.h>
#include <sqlite3.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../../db/catdb.h"

#define ERR_LEN 1024
#define GEN_DOMAINS 200000

static const char *const sample_categories[] = {"adult", "arts", "games", "radio", "social",
                                                "update"};
#define N_SAMPLE (sizeof(sample_categories) / sizeof(sample_categories[0]))
static const char *const kind_files[] = {"domains", "urls", "expressions"};

/* ---- helpers ---- */

static char tmpdir[64];     /* "/tmp/test-catdb-XXXXXX" */

static void
setup_tmp(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-catdb-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp: %s", strerror(errno));
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void
teardown_tmp(void)
{
    if (tmpdir[0] != '\0')
        nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(catdb, .init = setup_tmp, .fini = teardown_tmp);

static const char *
tpath(const char *rel)
{
    static char buf[4][PATH_MAX];
    static int i;

    i = (i + 1) % 4;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", tmpdir, rel);
    return buf[i];
}

static void
mkdir_t(const char *rel)
{
    cr_assert_eq(mkdir(tpath(rel), 0755), 0, "mkdir %s: %s", rel, strerror(errno));
}

static void
write_t(const char *rel, const char *content, size_t len)
{
    FILE *f = fopen(tpath(rel), "w");

    cr_assert_not_null(f, "%s: %s", rel, strerror(errno));
    cr_assert_eq(fwrite(content, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

static const char *
sample_dir(void)
{
    static char buf[PATH_MAX];
    const char *src = getenv("MP_SRCDIR");

    cr_assert_not_null(src, "MP_SRCDIR is not set");
    snprintf(buf, sizeof(buf), "%s/etc/categories", src);
    return buf;
}

/* What catdb_source emitted. */
typedef struct entry {
    char category[CATDB_MAX_CATEGORY];
    enum policy_list_kind kind;
    char value[CATDB_LINE_MAX + 1];
} entry_t;

typedef struct entries {
    entry_t *v;
    size_t n, cap;
    size_t abort_after;          /* 0: never */
    char *err;
    size_t errlen;
} entries_t;

static int
collect(void *ctx, const char *category, enum policy_list_kind kind, const char *value)
{
    entries_t *e = ctx;

    if (e->abort_after && e->n == e->abort_after) {
        snprintf(e->err, e->errlen, "emit says stop");
        return -1;
    }
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 64;
        e->v = realloc(e->v, e->cap * sizeof(*e->v));
        cr_assert_not_null(e->v);
    }
    cr_assert_lt(strlen(category), sizeof(e->v[0].category));
    cr_assert_leq(strlen(value), CATDB_LINE_MAX);
    strcpy(e->v[e->n].category, category);
    e->v[e->n].kind = kind;
    strcpy(e->v[e->n].value, value);
    e->n++;
    return 0;
}

static entries_t
read_all(const char *db)
{
    char err[ERR_LEN] = "";
    entries_t e = {0};

    cr_assert_eq(catdb_source((void *)db, collect, &e, err, sizeof(err)), 0, "%s", err);
    return e;
}

/* The expected entries of a clean list directory, read independently: the
 * categories in name order, then domains, urls, expressions in file order,
 * without blanks and comments. */
static entries_t
expected_from_files(const char *dir, const char *const *cats, size_t ncats)
{
    entries_t e = {0};

    for (size_t c = 0; c < ncats; c++) {
        for (size_t k = 0; k < 3; k++) {
            char path[PATH_MAX], line[CATDB_LINE_MAX + 2];
            FILE *f;

            snprintf(path, sizeof(path), "%s/%s/%s", dir, cats[c], kind_files[k]);
            f = fopen(path, "r");
            if (f == NULL)
                continue;
            while (fgets(line, sizeof(line), f) != NULL) {
                line[strcspn(line, "\r\n")] = '\0';
                if (line[0] == '\0' || line[0] == '#')
                    continue;
                collect(&e, cats[c], (enum policy_list_kind)k, line);
            }
            fclose(f);
        }
    }
    return e;
}

static void
assert_same_entries(const entries_t *got, const entries_t *want)
{
    cr_assert_eq(got->n, want->n, "got %zu entries, want %zu", got->n, want->n);
    for (size_t i = 0; i < got->n; i++) {
        cr_assert_str_eq(got->v[i].category, want->v[i].category, "entry %zu", i);
        cr_assert_eq(got->v[i].kind, want->v[i].kind, "entry %zu (%s)", i, want->v[i].value);
        cr_assert_str_eq(got->v[i].value, want->v[i].value, "entry %zu", i);
    }
}

static void
import_ok(const char *db, const char *dir, catdb_counts_t *c)
{
    char err[ERR_LEN] = "";

    cr_assert_eq(catdb_import(db, dir, c, err, sizeof(err)), 0, "import %s: %s", dir, err);
}

static void
assert_sample_counts(const catdb_counts_t *c)
{
    entries_t want = expected_from_files(sample_dir(), sample_categories, N_SAMPLE);
    uint64_t n[3] = {0};

    for (size_t i = 0; i < want.n; i++)
        n[want.v[i].kind]++;
    cr_assert_eq(c->categories, N_SAMPLE);
    cr_assert_eq(c->domains, n[POLICY_LIST_DOMAIN]);
    cr_assert_eq(c->urls, n[POLICY_LIST_URL]);
    cr_assert_eq(c->expressions, n[POLICY_LIST_EXPRESSION]);
    cr_assert_eq(c->skipped, 0);
    free(want.v);
}

/* ---- the shipped sample ---- */

Test(catdb, sample_counts_match_files)
{
    catdb_counts_t c, stored;
    char err[ERR_LEN] = "";

    import_ok(tpath("cat.db"), sample_dir(), &c);
    assert_sample_counts(&c);
    cr_assert_eq(c.domains, 18);      /* also pinned, so a sample edit is deliberate */
    cr_assert_eq(c.urls, 4);
    cr_assert_eq(c.expressions, 1);
    cr_assert_eq(catdb_counts(tpath("cat.db"), &stored, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(memcmp(&stored, &c, sizeof(c)), 0);
}

Test(catdb, sample_source_emits_every_entry_in_order)
{
    entries_t want = expected_from_files(sample_dir(), sample_categories, N_SAMPLE), got;

    import_ok(tpath("cat.db"), sample_dir(), NULL);
    got = read_all(tpath("cat.db"));
    assert_same_entries(&got, &want);
    /* a second read gives the same sequence */
    free(got.v);
    got = read_all(tpath("cat.db"));
    assert_same_entries(&got, &want);
    free(got.v);
    free(want.v);
}

Test(catdb, sample_domains_are_reserved_names_and_expressions_compile)
{
    entries_t got;

    import_ok(tpath("cat.db"), sample_dir(), NULL);
    got = read_all(tpath("cat.db"));
    for (size_t i = 0; i < got.n; i++) {
        const char *v = got.v[i].value;
        char host[CATDB_LINE_MAX + 1];
        size_t hl;

        if (got.v[i].kind == POLICY_LIST_EXPRESSION) {
            int code;
            PCRE2_SIZE off;
            pcre2_code *re = pcre2_compile((PCRE2_SPTR)v, PCRE2_ZERO_TERMINATED, 0, &code, &off,
                                           NULL);
            pcre2_match_data *md;
            static const char *const yes[] = {"http://games.example/", "mygames.example:443",
                                              "http://www.game-zone.test/x"};
            static const char *const no[] = {"http://arts.example/", "http://games.example.com/"};

            cr_assert_not_null(re, "%s does not compile at %zu", v, (size_t)off);
            md = pcre2_match_data_create_from_pattern(re, NULL);
            for (size_t j = 0; j < sizeof(yes) / sizeof(yes[0]); j++)
                cr_expect_geq(pcre2_match(re, (PCRE2_SPTR)yes[j], strlen(yes[j]), 0, 0, md, NULL),
                              0, "%s should match %s", v, yes[j]);
            for (size_t j = 0; j < sizeof(no) / sizeof(no[0]); j++)
                cr_expect_lt(pcre2_match(re, (PCRE2_SPTR)no[j], strlen(no[j]), 0, 0, md, NULL), 0,
                             "%s should not match %s", v, no[j]);
            pcre2_match_data_free(md);
            pcre2_code_free(re);
            continue;
        }
        hl = strcspn(v, "/");
        memcpy(host, v, hl);
        host[hl] = '\0';
        cr_expect(hl >= 8 && (strcmp(host + hl - 8, ".example") == 0 ||
                              strcmp(host + hl - 5, ".test") == 0 ||
                              strcmp(host + hl - 12, ".example.com") == 0 ||
                              strcmp(host + hl - 12, ".example.org") == 0),
                  "%s is not a reserved name", v);
    }
    free(got.v);
}

/* ---- a crafted directory ---- */

static char overlong[CATDB_LINE_MAX + 100];

static void
make_crafted(void)
{
    static const char domains[] =
        "# a comment\r\n"
        "Example.COM\r\n"
        "\r\n"
        "\n"
        "   \t \n"
        "  # indented comment\n"
        "with space.example\n"
        "tab\there.example\n"
        "ctl\001char.example\n"
        ".leading-dot.example\n"
        "trailing-dot.example.\n"
        "bad..label.example\n"
        "slash.example/path\n"
        "%s\n"
        "after-overlong.example\n"
        "no-newline.test";
    static const char urls[] =
        "News.Example/Path/KeepCase\r\n"
        "http://Scheme.Example/x\n"
        "bad url.example/\n"
        "#comment\n";
    char buf[sizeof(domains) + sizeof(overlong)];
    int n;

    memset(overlong, 'a', sizeof(overlong) - 1);
    overlong[sizeof(overlong) - 1] = '\0';

    mkdir_t("lists");
    mkdir_t("lists/good");
    n = snprintf(buf, sizeof(buf), domains, overlong);
    write_t("lists/good/domains", buf, (size_t)n);
    write_t("lists/good/urls", urls, sizeof(urls) - 1);
    /* no expressions file in good/; no domains file in onlyurls/ */
    mkdir_t("lists/onlyurls");
    write_t("lists/onlyurls/urls", "portal.test/a/\n", 15);
    mkdir_t("lists/exprs");
    write_t("lists/exprs/domains", "", 0);
    write_t("lists/exprs/expressions", "(^|\\.)Foo[0-9]+\\.test\n", 22);
    /* a bad folder name, a hidden folder, a plain file */
    mkdir_t("lists/bad name!");
    write_t("lists/bad name!/domains", "bad-folder.example\n", 19);
    mkdir_t("lists/.hidden");
    write_t("lists/.hidden/domains", "hidden.example\n", 15);
    write_t("lists/global_usage", "NAME: good\n", 11);
    /* a folder that is a link to elsewhere, and an alias of a sibling */
    mkdir_t("outside");
    write_t("outside/domains", "linked.example\n", 15);
    cr_assert_eq(symlink(tpath("outside"), tpath("lists/linked")), 0, "%s", strerror(errno));
    cr_assert_eq(symlink("good", tpath("lists/alias")), 0, "%s", strerror(errno));
    cr_assert_eq(symlink("nowhere", tpath("lists/dangling")), 0, "%s", strerror(errno));
}

Test(catdb, crafted_directory)
{
    static const struct {
        const char *cat;
        enum policy_list_kind kind;
        const char *value;
    } want[] = {
        {"exprs", POLICY_LIST_EXPRESSION, "(^|\\.)Foo[0-9]+\\.test"},
        {"good", POLICY_LIST_DOMAIN, "example.com"},
        {"good", POLICY_LIST_DOMAIN, "leading-dot.example"},
        {"good", POLICY_LIST_DOMAIN, "trailing-dot.example"},
        {"good", POLICY_LIST_DOMAIN, "after-overlong.example"},
        {"good", POLICY_LIST_DOMAIN, "no-newline.test"},
        {"good", POLICY_LIST_URL, "news.example/Path/KeepCase"},
        {"good", POLICY_LIST_URL, "scheme.example/x"},
        {"linked", POLICY_LIST_DOMAIN, "linked.example"},
        {"onlyurls", POLICY_LIST_URL, "portal.test/a/"},
    };
    catdb_counts_t c;
    entries_t got;

    make_crafted();
    import_ok(tpath("cat.db"), tpath("lists"), &c);
    cr_expect_eq(c.categories, 4, "%llu", (unsigned long long)c.categories);
    cr_expect_eq(c.domains, 6);
    cr_expect_eq(c.urls, 3);
    cr_expect_eq(c.expressions, 1);
    /* space, tab, control char, "..", "/" in a domain, overlong; a space in a
     * url; the bad folder name */
    cr_expect_eq(c.skipped, 8, "%llu", (unsigned long long)c.skipped);

    got = read_all(tpath("cat.db"));
    cr_assert_eq(got.n, sizeof(want) / sizeof(want[0]), "%zu entries", got.n);
    for (size_t i = 0; i < got.n; i++) {
        cr_expect_str_eq(got.v[i].category, want[i].cat, "entry %zu", i);
        cr_expect_eq(got.v[i].kind, want[i].kind, "entry %zu", i);
        cr_expect_str_eq(got.v[i].value, want[i].value, "entry %zu", i);
    }
    free(got.v);

    /* the sibling link is recorded as an alias, not imported twice */
    {
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        cr_assert_eq(sqlite3_open_v2(tpath("cat.db"), &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        cr_assert_eq(sqlite3_prepare_v2(db, "SELECT a.name, c.name FROM aliases a "
                                        "JOIN categories c ON c.id = a.category", -1, &st, NULL),
                     SQLITE_OK, "%s", sqlite3_errmsg(db));
        cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
        cr_expect_str_eq((const char *)sqlite3_column_text(st, 0), "alias");
        cr_expect_str_eq((const char *)sqlite3_column_text(st, 1), "good");
        cr_expect_eq(sqlite3_step(st), SQLITE_DONE);
        sqlite3_finalize(st);
        sqlite3_close(db);
    }
}

Test(catdb, line_of_exactly_the_limit_is_kept)
{
    char *buf = malloc(CATDB_LINE_MAX + 64);
    catdb_counts_t c;
    size_t n;

    mkdir_t("lists");
    mkdir_t("lists/long");
    /* a URL of exactly CATDB_LINE_MAX bytes, then one of CATDB_LINE_MAX + 1 */
    n = (size_t)snprintf(buf, CATDB_LINE_MAX + 64, "long.example/");
    memset(buf + n, 'p', CATDB_LINE_MAX - n);
    buf[CATDB_LINE_MAX] = '\n';
    write_t("lists/long/urls", buf, CATDB_LINE_MAX + 1);
    import_ok(tpath("a.db"), tpath("lists"), &c);
    cr_expect_eq(c.urls, 1);
    cr_expect_eq(c.skipped, 0);

    memset(buf + n, 'p', CATDB_LINE_MAX + 1 - n);
    buf[CATDB_LINE_MAX + 1] = '\n';
    write_t("lists/long/urls", buf, CATDB_LINE_MAX + 2);
    import_ok(tpath("b.db"), tpath("lists"), &c);
    cr_expect_eq(c.urls, 0);
    cr_expect_eq(c.skipped, 1);
    free(buf);
}

/* ---- replacing and failing ---- */

Test(catdb, reimport_replaces_contents)
{
    entries_t want = expected_from_files(sample_dir(), sample_categories, N_SAMPLE), got;
    catdb_counts_t c;
    char err[ERR_LEN];

    make_crafted();
    import_ok(tpath("cat.db"), tpath("lists"), NULL);
    import_ok(tpath("cat.db"), sample_dir(), NULL);
    got = read_all(tpath("cat.db"));
    assert_same_entries(&got, &want);
    cr_assert_eq(catdb_counts(tpath("cat.db"), &c, err, sizeof(err)), 0, "%s", err);
    assert_sample_counts(&c);
    free(got.v);
    free(want.v);
}

static void
assert_failed_import_keeps(const char *dir, const char *needle)
{
    entries_t want = expected_from_files(sample_dir(), sample_categories, N_SAMPLE), got;
    catdb_counts_t c = {0}, before, after;
    char err[ERR_LEN] = "";

    import_ok(tpath("cat.db"), sample_dir(), &before);
    cr_assert_eq(catdb_import(tpath("cat.db"), dir, &c, err, sizeof(err)), -1);
    cr_expect(strstr(err, needle) != NULL, "error \"%s\" lacks \"%s\"", err, needle);
    cr_assert_eq(catdb_counts(tpath("cat.db"), &after, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(memcmp(&before, &after, sizeof(before)), 0);
    got = read_all(tpath("cat.db"));
    assert_same_entries(&got, &want);
    free(got.v);
    free(want.v);
}

Test(catdb, failed_import_missing_dir_keeps_old_data)
{
    assert_failed_import_keeps(tpath("no-such-dir"), "no-such-dir");
}

Test(catdb, failed_import_empty_dir_keeps_old_data)
{
    mkdir_t("empty");
    assert_failed_import_keeps(tpath("empty"), "no category folders");
}

Test(catdb, failed_import_midway_keeps_old_data)
{
    /* a category whose `urls` is a directory: read fails after earlier
     * categories were already written inside the transaction */
    mkdir_t("lists");
    mkdir_t("lists/aaa");
    write_t("lists/aaa/domains", "first.example\n", 14);
    mkdir_t("lists/bbb");
    write_t("lists/bbb/domains", "second.example\n", 15);
    mkdir_t("lists/bbb/urls");
    assert_failed_import_keeps(tpath("lists"), "bbb/urls");
}

Test(catdb, failed_import_bad_db_path_has_sqlite_message)
{
    char err[ERR_LEN] = "";

    cr_assert_eq(catdb_import(tpath("no-dir/cat.db"), sample_dir(), NULL, err, sizeof(err)), -1);
    cr_expect(strstr(err, "unable to open database file") != NULL, "%s", err);
    cr_expect(strstr(err, "no-dir/cat.db") != NULL, "%s", err);
}

/* ---- reading ---- */

Test(catdb, missing_database_is_a_clear_error)
{
    char err[ERR_LEN] = "", want[PATH_MAX + 100];
    entries_t e = {0};
    catdb_counts_t c;

    snprintf(want, sizeof(want),
             "category database %s not found: run musctl categories import DIR",
             tpath("missing.db"));
    cr_assert_eq(catdb_source((void *)tpath("missing.db"), collect, &e, err, sizeof(err)), -1);
    cr_expect_str_eq(err, want);
    cr_expect_eq(e.n, 0);
    err[0] = '\0';
    cr_assert_eq(catdb_counts(tpath("missing.db"), &c, err, sizeof(err)), -1);
    cr_expect_str_eq(err, want);
    cr_expect_eq(access(tpath("missing.db"), F_OK), -1, "reading must not create the file");
}

Test(catdb, not_a_category_database)
{
    char err[ERR_LEN] = "";
    entries_t e = {0};

    write_t("junk.db", "this is not sqlite, just some text that is long enough\n", 56);
    cr_assert_eq(catdb_source((void *)tpath("junk.db"), collect, &e, err, sizeof(err)), -1);
    cr_expect(strstr(err, "junk.db") != NULL && strstr(err, "not a database") != NULL, "%s", err);
}

Test(catdb, emit_error_aborts_and_keeps_its_message)
{
    char err[ERR_LEN] = "";
    entries_t e = {.abort_after = 3};

    import_ok(tpath("cat.db"), sample_dir(), NULL);
    e.err = err;
    e.errlen = sizeof(err);
    cr_assert_eq(catdb_source((void *)tpath("cat.db"), collect, &e, err, sizeof(err)), -1);
    cr_expect_str_eq(err, "emit says stop");
    cr_expect_eq(e.n, 3);
    free(e.v);
}

/* ---- speed ---- */

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
count_only(void *ctx, const char *category, enum policy_list_kind kind, const char *value)
{
    (void)category;
    (void)kind;
    (void)value;
    (*(size_t *)ctx)++;
    return 0;
}

Test(catdb, generated_200k_domains, .timeout = 120)
{
    catdb_counts_t c;
    char err[ERR_LEN] = "";
    size_t n = 0;
    double t0, t_import, t_read;
    FILE *f;

    mkdir_t("gen");
    mkdir_t("gen/big");
    f = fopen(tpath("gen/big/domains"), "w");
    cr_assert_not_null(f);
    for (int i = 0; i < GEN_DOMAINS; i++)
        fprintf(f, "host%06d.sub%03d.example\n", i, i % 997);
    cr_assert_eq(fclose(f), 0);

    t0 = now_s();
    import_ok(tpath("big.db"), tpath("gen"), &c);
    t_import = now_s() - t0;
    cr_assert_eq(c.domains, GEN_DOMAINS);

    t0 = now_s();
    cr_assert_eq(catdb_source((void *)tpath("big.db"), count_only, &n, err, sizeof(err)), 0, "%s",
                 err);
    t_read = now_s() - t0;
    cr_assert_eq(n, GEN_DOMAINS);
    fprintf(stderr, "catdb: imported %d domains in %.3f s (%.0f/s), read back in %.3f s\n",
            GEN_DOMAINS, t_import, GEN_DOMAINS / t_import, t_read);
}
