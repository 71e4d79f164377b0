/*
 * musctl/musctl_cat.c: the musctl subcommands that write local files, not the
 * daemon: `categories import DIR [--db PATH]` loads a UT1-layout blacklist
 * directory into the category database (db/catdb.h) and prints what it
 * imported and how long it took; `categories counts [--db PATH]` prints
 * the database's counts; `passwd USER [--file PATH]` sets USER's salted
 * password hash in the proxy's Basic-authentication password file
 * (policy_hash_password), replacing the file atomically with mode 0600.
 * musproxy picks either up on its next start or reload.
 */
#include "musctl.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "../db/catdb.h"
#include "../policy/policy.h"

#define MUSCTL_DEFAULT_CATDB    "var/categories.db"
#define MUSCTL_DEFAULT_PASSWD   "etc/users.passwd"
#define MUSCTL_ERR_LEN          1024
#define MUSCTL_PASSWORD_MAX     1024          /* bytes of a password */
#define MUSCTL_USER_MAX         256           /* bytes of a user name */
#define MUSCTL_HASH_MAX         512           /* bytes of a policy_hash_password result */
#define MUSCTL_PASSWD_FILE_MAX  (16u << 20)   /* refuse to rewrite larger password files */

/* ---- categories ---- */

static int
categories_usage(int rc)
{
    fprintf(rc == 0 ? stdout : stderr, "usage: musctl categories import DIR [--db PATH]\n"
                    "       musctl categories counts [--db PATH]\n"
                    "  DIR is a UT1-layout folder (DIR/<category>/domains, urls, expressions);\n"
                    "  PATH defaults to %s.\n", MUSCTL_DEFAULT_CATDB);
    return rc;
}

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Parses "--db PATH" and the positional arguments of a categories action.
 * argv[0] is the action's name. 0, 1 for --help, or -1 for a usage error. */
static int
parse_db_opts(int argc, char **argv, const char **db, char **pos, int npos)
{
    static const struct option longopts[] = {
        {"db", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    *db = MUSCTL_DEFAULT_CATDB;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': *db = optarg; break;
        case 'h': return 1;
        default: return -1;
        }
    }
    if (argc - optind != npos)
        return -1;
    for (int i = 0; i < npos; i++)
        pos[i] = argv[optind + i];
    return 0;
}

static int
categories_import(int argc, char **argv)
{
    char err[MUSCTL_ERR_LEN];
    catdb_counts_t c;
    const char *db;
    char *dir;
    double t0, dt;
    int rc;

    if ((rc = parse_db_opts(argc, argv, &db, &dir, 1)) != 0)
        return categories_usage(rc > 0 ? 0 : 2);
    t0 = now_s();
    {
        /* the database's directory (var/ by default) is created if missing */
        char parent[4096];
        char *slash;
        snprintf(parent, sizeof(parent), "%s", db);
        slash = strrchr(parent, '/');
        if (slash != NULL && slash != parent) {
            *slash = '\0';
            if (mkdir(parent, 0750) < 0 && errno != EEXIST) {
                fprintf(stderr, "musctl: cannot create %s: %s\n", parent, strerror(errno));
                return 1;
            }
        }
    }
    if (catdb_import(db, dir, &c, err, sizeof(err)) < 0) {
        fprintf(stderr, "musctl: import failed, %s unchanged: %s\n", db, err);
        return 1;
    }
    dt = now_s() - t0;
    printf("Imported %s into %s in %.3f s:\n", dir, db, dt);
    printf("  categories:  %" PRIu64 "\n", c.categories);
    printf("  domains:     %" PRIu64 "\n", c.domains);
    printf("  urls:        %" PRIu64 "\n", c.urls);
    printf("  expressions: %" PRIu64 "\n", c.expressions);
    printf("  skipped:     %" PRIu64 " (malformed or too long lines, bad folder names)\n",
           c.skipped);
    if (dt > 0)
        printf("  rate:        %.0f entries/s\n",
               (double)(c.domains + c.urls + c.expressions) / dt);
    printf("musproxy reads them at start and on reload (SIGHUP).\n");
    return 0;
}

static int
categories_counts(int argc, char **argv)
{
    char err[MUSCTL_ERR_LEN];
    catdb_counts_t c;
    const char *db;
    int rc;

    if ((rc = parse_db_opts(argc, argv, &db, NULL, 0)) != 0)
        return categories_usage(rc > 0 ? 0 : 2);
    if (catdb_counts(db, &c, err, sizeof(err)) < 0) {
        fprintf(stderr, "musctl: %s\n", err);
        return 1;
    }
    printf("%s: %" PRIu64 " categories, %" PRIu64 " domains, %" PRIu64 " urls, %" PRIu64
           " expressions (%" PRIu64 " skipped at import)\n",
           db, c.categories, c.domains, c.urls, c.expressions, c.skipped);
    return 0;
}

int
musctl_cmd_categories(int argc, char **argv)
{
    if (argc < 2)
        return categories_usage(2);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0)
        return categories_usage(0);
    if (strcmp(argv[1], "import") == 0)
        return categories_import(argc - 1, argv + 1);
    if (strcmp(argv[1], "counts") == 0)
        return categories_counts(argc - 1, argv + 1);
    fprintf(stderr, "musctl: unknown categories action: %s\n", argv[1]);
    return categories_usage(2);
}

/* ---- passwd ---- */

static int
passwd_usage(int rc)
{
    fprintf(rc == 0 ? stdout : stderr, "usage: musctl passwd USER [--file PATH]\n"
                    "  reads the password from standard input (asked twice on a terminal);\n"
                    "  PATH defaults to %s.\n", MUSCTL_DEFAULT_PASSWD);
    return rc;
}

/* User names are written before a ':' on a line of their own. */
static int
valid_user(const char *u)
{
    size_t n = strlen(u);

    if (n == 0 || n >= MUSCTL_USER_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)u[i];
        if (c <= ' ' || c == 0x7f || c == ':' || c == '#')
            return 0;
    }
    return 1;
}

/* Reads one line from stdin into buf (cap bytes), without its line end;
 * prompt is shown with echo off when stdin is a terminal. 0 or -1. */
static int
read_password(const char *prompt, int tty, char *buf, size_t cap)
{
    struct termios old, quiet;
    int restore = 0, rc = -1;
    size_t n;

    if (tty) {
        fputs(prompt, stderr);
        fflush(stderr);
        if (tcgetattr(STDIN_FILENO, &old) == 0) {
            quiet = old;
            quiet.c_lflag &= ~(tcflag_t)ECHO;
            quiet.c_lflag |= ECHONL;
            restore = tcsetattr(STDIN_FILENO, TCSANOW, &quiet) == 0;
        }
    }
    if (fgets(buf, (int)cap, stdin) == NULL) {
        fprintf(stderr, "musctl: no password on standard input\n");
        goto cleanup;
    }
    n = strlen(buf);
    if (n > 0 && buf[n - 1] == '\n')
        buf[--n] = '\0';
    else if (!feof(stdin)) {
        fprintf(stderr, "musctl: password longer than %d bytes\n", MUSCTL_PASSWORD_MAX);
        goto cleanup;
    }
    if (n > 0 && buf[n - 1] == '\r')
        buf[--n] = '\0';
    if (n == 0) {
        fprintf(stderr, "musctl: empty password\n");
        goto cleanup;
    }
    rc = 0;
cleanup:
    if (restore)
        tcsetattr(STDIN_FILENO, TCSANOW, &old);
    return rc;
}

/* Reads the whole password file (missing: empty) into a NUL-terminated
 * heap buffer. NULL after a message. */
static char *
slurp(const char *path, size_t *len)
{
    char *buf = NULL;
    size_t n = 0;
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        if (errno != ENOENT) {
            fprintf(stderr, "musctl: cannot open %s: %s\n", path, strerror(errno));
            return NULL;
        }
        *len = 0;
        return calloc(1, 1);
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > MUSCTL_PASSWD_FILE_MAX) {
        fprintf(stderr, "musctl: %s: not a regular file of at most %u bytes\n", path,
                MUSCTL_PASSWD_FILE_MAX);
        goto fail;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        fprintf(stderr, "musctl: out of memory\n");
        goto fail;
    }
    while (n < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            fprintf(stderr, "musctl: cannot read %s: %s\n", path, strerror(errno));
            goto fail;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    close(fd);
    *len = n;
    return buf;
fail:
    free(buf);
    close(fd);
    return NULL;
}

static int
write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Writes old with USER's line replaced by (or, if absent, followed by)
 * "USER:hash\n" to a temporary file beside path, mode 0600, then renames it
 * over path. 0 or -1 after a message. */
static int
replace_line(const char *path, const char *user, const char *hash, int *replaced)
{
    char tmp[PATH_MAX];
    size_t len = 0, ulen = strlen(user);
    char *old = slurp(path, &len), *p, *end;
    struct stat st;
    int fd = -1, rc = -1, created = 0;

    *replaced = 0;
    if (old == NULL)
        return -1;
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= sizeof(tmp)) {
        fprintf(stderr, "musctl: path too long: %s\n", path);
        goto cleanup;
    }
    fd = mkstemp(tmp);
    if (fd < 0) {
        fprintf(stderr, "musctl: cannot create a file beside %s: %s\n", path, strerror(errno));
        goto cleanup;
    }
    created = 1;
    if (fchmod(fd, 0600) < 0) {
        fprintf(stderr, "musctl: chmod %s: %s\n", tmp, strerror(errno));
        goto cleanup;
    }
    /* Keep the owner of an existing file (musproxy's user may read it);
     * only root can, and failing to is not an error. */
    if (stat(path, &st) == 0 && (st.st_uid != geteuid() || st.st_gid != getegid()) &&
        fchown(fd, st.st_uid, st.st_gid) < 0 && errno != EPERM) {
        fprintf(stderr, "musctl: chown %s: %s\n", tmp, strerror(errno));
        goto cleanup;
    }
    for (p = old, end = old + len; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t l = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);

        if (l > ulen && memcmp(p, user, ulen) == 0 && p[ulen] == ':') {
            if (!*replaced && (write_all(fd, user, ulen) < 0 || write_all(fd, ":", 1) < 0 ||
                               write_all(fd, hash, strlen(hash)) < 0 || write_all(fd, "\n", 1) < 0))
                goto write_error;
            *replaced = 1;                    /* later duplicates are dropped */
        } else {
            if (write_all(fd, p, l) < 0)
                goto write_error;
            if (nl == NULL && write_all(fd, "\n", 1) < 0)
                goto write_error;
        }
        p += l;
    }
    if (!*replaced && (write_all(fd, user, ulen) < 0 || write_all(fd, ":", 1) < 0 ||
                       write_all(fd, hash, strlen(hash)) < 0 || write_all(fd, "\n", 1) < 0))
        goto write_error;
    if (fsync(fd) < 0)
        goto write_error;
    if (close(fd) < 0) {
        fd = -1;
        goto write_error;
    }
    fd = -1;
    if (rename(tmp, path) < 0) {
        fprintf(stderr, "musctl: cannot replace %s: %s\n", path, strerror(errno));
        goto cleanup;
    }
    created = 0;
    rc = 0;
    goto cleanup;
write_error:
    fprintf(stderr, "musctl: cannot write %s: %s\n", tmp, strerror(errno));
cleanup:
    if (fd >= 0)
        close(fd);
    if (created)
        unlink(tmp);
    free(old);
    return rc;
}

int
musctl_cmd_passwd(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"file", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *file = MUSCTL_DEFAULT_PASSWD, *user;
    char pw[MUSCTL_PASSWORD_MAX + 2], again[MUSCTL_PASSWORD_MAX + 2], hash[MUSCTL_HASH_MAX];
    int tty = isatty(STDIN_FILENO), c, replaced, rc = 1;

    optind = 1;
    while ((c = getopt_long(argc, argv, "f:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'f': file = optarg; break;
        case 'h': return passwd_usage(0);
        default: return passwd_usage(2);
        }
    }
    if (argc - optind != 1)
        return passwd_usage(2);
    user = argv[optind];
    if (!valid_user(user)) {
        fprintf(stderr, "musctl: bad user name \"%s\" (1 to %d bytes, no spaces, ':' or '#')\n",
                user, MUSCTL_USER_MAX - 1);
        return 2;
    }

    if (read_password("Password: ", tty, pw, sizeof(pw)) < 0)
        goto cleanup;
    if (tty) {
        if (read_password("Again: ", tty, again, sizeof(again)) < 0)
            goto cleanup;
        if (strcmp(pw, again) != 0) {
            fprintf(stderr, "musctl: the passwords differ; nothing changed\n");
            goto cleanup;
        }
    }
    if (policy_hash_password(pw, hash, sizeof(hash)) < 0) {
        fprintf(stderr, "musctl: cannot hash the password\n");
        goto cleanup;
    }
    if (replace_line(file, user, hash, &replaced) < 0)
        goto cleanup;
    printf("%s %s in %s. Reload musproxy to use it.\n", replaced ? "Changed" : "Added", user,
           file);
    rc = 0;
cleanup:
    explicit_bzero(pw, sizeof(pw));
    explicit_bzero(again, sizeof(again));
    explicit_bzero(hash, sizeof(hash));
    return rc;
}
