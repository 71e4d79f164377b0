/*
 * admin/admin.c: the admin UI's daemon (see admin.h): the TLS certificate
 * and key (read and checked with OpenSSL in the open step, handed to
 * libmicrohttpd's GnuTLS in memory, then wiped), the listening socket,
 * libmicrohttpd in external epoll mode driven by our own thread, its
 * callbacks (the request target is taken raw from the URI callback so the
 * query string is parsed by our own code only; the body is gathered up to
 * QUERY_INPUT_MAX and wiped when the request ends), and each request's
 * first steps: the Host check, the login pages and the gate
 * (admin/login.c); then admin/routes.c answers it.
 */
#include "admin.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "../common/log.h"
#include "admin_int.h"
#include "auth.h"

static int64_t
clock_ms(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The password file was read again: the sessions of an account it changed end. */
static void
account_changed(void *arg, const char *user)
{
    admin_t *a = arg;
    size_t n = session_end_user(a->sessions, user);

    if (n > 0)
        log_info("admin: the password of %.64s changed or was removed: %zu session%s ended",
                 user, n, n == 1 ? "" : "s");
}

static bool
path_is(const req_t *rq, size_t plen, const char *path)
{
    return strlen(path) == plen && strncmp(rq->uri, path, plen) == 0;
}

/* The Host check, the login pages, the gate, then the route. */
static enum MHD_Result
serve(admin_t *a, struct MHD_Connection *c, req_t *rq, const char *method)
{
    bool api = strncmp(rq->uri, "/api/", 5) == 0;
    size_t plen = strcspn(rq->uri, "?#");
    int64_t now = clock_ms(CLOCK_REALTIME), mono = clock_ms(CLOCK_MONOTONIC);
    enum MHD_Result ok;
    who_t who;

    auth_maybe_reload(a->auth, now / 1000, account_changed, a);
    if (!admin_host_ok(a, admin_header(c, "Host")))
        return admin_send_error(c, api, 421, "this server answers to its loopback address only",
                                NULL, NULL, NULL);
    if (rq->too_long)
        return admin_send_error(c, api, 414, "request target too long", NULL, NULL, NULL);
    if (path_is(rq, plen, "/login"))
        return admin_login(a, c, rq, method, now, mono);
    if (path_is(rq, plen, "/logout"))
        return admin_logout(a, c, rq, method, mono);
    if (!admin_who(a, c, rq, now, mono, &who, &ok))
        return ok;
    return admin_route(a, c, rq, method, &who, now);
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
           const char *version, const char *upload, size_t *upload_size, void **req_cls)
{
    admin_t *a = cls;
    req_t *rq = *req_cls;

    (void)url;
    (void)version;
    if (rq == NULL)
        return MHD_NO;
    if (!rq->started) {
        rq->started = true;
        return MHD_YES;   /* the body, if any, comes next */
    }
    if (*upload_size > 0) {
        if (rq->body_len + *upload_size > sizeof(rq->body))
            rq->body_too_big = true;
        else {
            memcpy(rq->body + rq->body_len, upload, *upload_size);
            rq->body_len += *upload_size;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    return serve(a, c, rq, method);
}

static void *
on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    req_t *rq = calloc(1, sizeof(*rq));
    size_t n = uri ? strlen(uri) : 0;

    (void)cls;
    (void)c;
    if (rq == NULL)
        return NULL;
    if (n > ADMIN_URI_MAX)
        rq->too_long = true;
    else if (n > 0)
        memcpy(rq->uri, uri, n + 1);
    return rq;
}

static void
on_done(void *cls, struct MHD_Connection *c, void **req_cls, enum MHD_RequestTerminationCode tc)
{
    req_t *rq = *req_cls;

    (void)cls;
    (void)c;
    (void)tc;
    if (rq != NULL)
        OPENSSL_cleanse(rq->body, rq->body_len);   /* a login's password */
    free(rq);
    *req_cls = NULL;
}

static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    size_t n;

    (void)cls;
    vsnprintf(line, sizeof(line), fmt, ap);
    n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    log_warn("admin: libmicrohttpd: %s", line);
}

/* ---- the thread ---- */

static void *
admin_main(void *arg)
{
    admin_t *a = arg;
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(a->d, MHD_DAEMON_INFO_EPOLL_FD);
    int epfd = di ? di->epoll_fd : -1;

    a->reader = mus_map_reader_register(a->src.map);
    if (a->reader == NULL || epfd < 0) {
        log_error("admin: cannot %s: the UI stops",
                  a->reader == NULL ? "register as a map reader" : "get the epoll descriptor");
        if (a->reader != NULL)
            mus_map_reader_unregister(a->reader);
        return NULL;
    }
    while (!atomic_load(&a->stop)) {
        struct pollfd p[2] = {{.fd = epfd, .events = POLLIN}, {.fd = a->wake_fd, .events = POLLIN}};
        MHD_UNSIGNED_LONG_LONG to;
        int ms = ADMIN_POLL_MS;

        if (MHD_get_timeout(a->d, &to) == MHD_YES && to < (MHD_UNSIGNED_LONG_LONG)ms)
            ms = (int)to;
        mus_map_reader_offline(a->reader);
        (void)poll(p, 2, ms);
        mus_map_reader_online(a->reader);
        if (p[1].revents != 0)
            break;
        MHD_run(a->d);
        mus_map_reader_quiescent(a->reader);
    }
    mus_map_reader_unregister(a->reader);
    return NULL;
}

/* A listening socket on cfg->addr; -1 with a message. */
static int
open_listener(const config_admin_t *cfg, char *err, size_t errlen)
{
    int one = 1;
    int fd = socket(cfg->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)&cfg->addr, cfg->addr_len) < 0 ||
        listen(fd, 64) < 0) {
        snprintf(err, errlen, "%s: %s", cfg->listen, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static bool
addr_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    return ss->ss_family == AF_INET6 &&
           IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

/* ---- TLS material ---- */

static void
wipe_free(char **p)
{
    if (*p != NULL) {
        OPENSSL_cleanse(*p, strlen(*p));
        free(*p);
        *p = NULL;
    }
}

/* The whole of path (at most ADMIN_TLS_FILE_MAX bytes) as a NUL-terminated
 * text in *out. 0, or -1 with err naming key ("tls_cert") and the file. */
static int
read_pem(const char *key, const char *path, char **out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    char *buf = NULL;
    size_t n = 0;
    int rc = -1;

    *out = NULL;
    if (f == NULL) {
        snprintf(err, errlen, "admin.%s %s: %s", key, path, strerror(errno));
        return -1;
    }
    buf = malloc(ADMIN_TLS_FILE_MAX + 1);
    if (buf == NULL) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    n = fread(buf, 1, ADMIN_TLS_FILE_MAX + 1, f);
    if (ferror(f) || n > ADMIN_TLS_FILE_MAX || n == 0 || memchr(buf, '\0', n) != NULL) {
        snprintf(err, errlen, "admin.%s %s: %s", key, path,
                 ferror(f) ? "read error" : n == 0 ? "empty" : "not a PEM text file of at most 1 MiB");
        goto done;
    }
    buf[n] = '\0';
    *out = buf;
    buf = NULL;
    rc = 0;
done:
    if (buf != NULL) {
        OPENSSL_cleanse(buf, n);
        free(buf);
    }
    fclose(f);
    return rc;
}

/* Encrypted keys would need a passphrase typed in: refused, never asked for. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* Checks with OpenSSL what libmicrohttpd (GnuTLS) will be given, so that a
 * bad file is named at once: a certificate, a private key without a
 * passphrase, and that they belong together. An expired certificate is
 * only a warning (browsers will say so too). 0, or -1 with err. */
static int
check_pem(const config_admin_t *cfg, const char *cert, const char *key, char *err,
          size_t errlen)
{
    BIO *cb = BIO_new_mem_buf(cert, -1), *kb = BIO_new_mem_buf(key, -1);
    X509 *x = cb != NULL ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
    EVP_PKEY *k = kb != NULL ? PEM_read_bio_PrivateKey(kb, NULL, no_passphrase, NULL) : NULL;
    int rc = -1;

    if (x == NULL)
        snprintf(err, errlen, "admin.tls_cert %s: no PEM certificate in it", cfg->tls_cert);
    else if (k == NULL)
        snprintf(err, errlen, "admin.tls_key %s: no PEM private key in it (a key with a "
                 "passphrase is not supported)", cfg->tls_key);
    else if (X509_check_private_key(x, k) != 1)
        snprintf(err, errlen, "admin.tls_key %s is not the key of the certificate in %s",
                 cfg->tls_key, cfg->tls_cert);
    else
        rc = 0;
    if (rc == 0 && X509_cmp_current_time(X509_get0_notAfter(x)) < 0)
        log_warn("admin: the certificate in %s has expired", cfg->tls_cert);
    ERR_clear_error();
    X509_free(x);
    EVP_PKEY_free(k);
    BIO_free(cb);
    BIO_free(kb);
    return rc;
}

/* Reads and checks cfg's certificate and key into *cert and *key, their
 * SHA-256 into digest. 0, or -1 with err (nothing kept). */
static int
load_tls(const config_admin_t *cfg, char **cert, char **key, unsigned char *digest, char *err,
         size_t errlen)
{
    EVP_MD_CTX *md = NULL;
    int rc = -1;

    *cert = *key = NULL;
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        snprintf(err, errlen, "this libmicrohttpd is built without TLS: admin.tls_cert and "
                 "tls_key cannot be served (unset them, or install a libmicrohttpd with GnuTLS)");
        return -1;
    }
    if (read_pem("tls_cert", cfg->tls_cert, cert, err, errlen) < 0 ||
        read_pem("tls_key", cfg->tls_key, key, err, errlen) < 0 ||
        check_pem(cfg, *cert, *key, err, errlen) < 0)
        goto done;
    md = EVP_MD_CTX_new();
    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(md, *cert, strlen(*cert)) != 1 ||
        EVP_DigestUpdate(md, *key, strlen(*key)) != 1 ||
        EVP_DigestFinal_ex(md, digest, NULL) != 1) {
        snprintf(err, errlen, "cannot hash the TLS files");
        goto done;
    }
    rc = 0;
done:
    EVP_MD_CTX_free(md);
    if (rc < 0) {
        wipe_free(cert);
        wipe_free(key);
    }
    return rc;
}

/* ---- lifecycle ---- */

admin_t *
admin_new(const config_admin_t *cfg, char *err, size_t errlen)
{
    admin_t *a = calloc(1, sizeof(*a));

    if (a == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->wake_fd = -1;
    a->cfg = *cfg;
    atomic_init(&a->stop, false);
    if (cfg->tls_cert[0] != '\0') {
        if (load_tls(cfg, &a->tls_cert, &a->tls_key, a->tls_digest, err, errlen) < 0) {
            free(a);
            return NULL;
        }
        a->tls = true;
    }
    return a;
}

int
admin_tls_changed(const admin_t *a, const config_admin_t *cfg, char *err, size_t errlen)
{
    unsigned char digest[32];
    char *cert, *key;

    if (!a->tls || cfg->tls_cert[0] == '\0')
        return 0;
    if (load_tls(cfg, &cert, &key, digest, err, errlen) < 0)
        return -1;
    wipe_free(&cert);
    wipe_free(&key);
    return memcmp(digest, a->tls_digest, sizeof(digest)) != 0;
}

int
admin_start(admin_t *a, const status_sources_t *src, const report_store_t *store, char *err,
            size_t errlen)
{
    const config_admin_t *cfg = &a->cfg;
    char why[AUTH_ERR_MAX];
    /* TLS 1.2 and 1.3 only */
    struct MHD_OptionItem tls_opts[] = {
        {MHD_OPTION_HTTPS_MEM_CERT, 0, a->tls_cert},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, a->tls_key},
        {MHD_OPTION_HTTPS_PRIORITIES, 0,
         (void *)"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"},
        {MHD_OPTION_END, 0, NULL},
    };
    int fd;

    a->auth = auth_new(cfg->password_file, why, sizeof(why));
    if (a->auth == NULL) {
        snprintf(err, errlen, "%s (create an account with: musctl passwd admin --file %s)", why,
                 cfg->password_file[0] ? cfg->password_file : "etc/admin.passwd");
        return -1;
    }
    a->sessions = session_table_new(cfg->session_idle, cfg->session_max);
    if (a->sessions == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    a->src = *src;
    a->store_pg = store != NULL && store->postgresql;
    snprintf(a->store_path, sizeof(a->store_path), "%s", store && store->path ? store->path : "");
    snprintf(a->store_conninfo, sizeof(a->store_conninfo), "%s",
             store && store->conninfo ? store->conninfo : "");
    snprintf(a->store_passfile, sizeof(a->store_passfile), "%s",
             store && store->password_file ? store->password_file : "");
    if (a->store_pg && a->store_path[0] != '\0')   /* what the store page names */
        snprintf(a->store_where, sizeof(a->store_where), "postgresql: %s", a->store_conninfo);
    else
        snprintf(a->store_where, sizeof(a->store_where), "%s", a->store_path);
    a->loopback = addr_loopback(&cfg->addr);
    a->port = ntohs(cfg->addr.ss_family == AF_INET6
                        ? ((const struct sockaddr_in6 *)&cfg->addr)->sin6_port
                        : ((const struct sockaddr_in *)&cfg->addr)->sin_port);
    fd = open_listener(cfg, err, errlen);
    if (fd < 0)
        return -1;
    a->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    a->d = a->wake_fd < 0 ? NULL : MHD_start_daemon(
        MHD_USE_EPOLL | MHD_USE_ERROR_LOG | (cfg->addr.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0) |
            (a->tls ? MHD_USE_TLS : 0),
        0, NULL, NULL, on_request, a,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, a,
        MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, a,
        MHD_OPTION_NOTIFY_COMPLETED, on_done, a,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)ADMIN_CONN_MAX,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)ADMIN_CONN_PER_IP,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)ADMIN_IDLE_S,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)ADMIN_CONN_MEMORY,
        MHD_OPTION_ARRAY, a->tls ? tls_opts : &tls_opts[3],
        MHD_OPTION_END);
    /* GnuTLS has its own copy now (or failed): ours goes */
    wipe_free(&a->tls_cert);
    wipe_free(&a->tls_key);
    if (a->d == NULL) {
        snprintf(err, errlen, "libmicrohttpd did not start on %s%s", cfg->listen,
                 a->tls ? " (is the certificate one GnuTLS reads? see its message above)" : "");
        close(fd);
        return -1;
    }
    if (pthread_create(&a->thread, NULL, admin_main, a) != 0) {
        snprintf(err, errlen, "cannot start its thread");
        return -1;
    }
    a->started = true;
    log_info("admin UI on %s://%s/ (%zu account%s in %s; a login lasts %us idle, %us at most)",
             a->tls ? "https" : "http", cfg->listen, auth_accounts(a->auth),
             auth_accounts(a->auth) == 1 ? "" : "s", cfg->password_file,
             (unsigned)(cfg->session_idle / 1000), (unsigned)(cfg->session_max / 1000));
    if (!a->loopback)
        log_warn("admin UI listens on %s, not a loopback address (allow_remote: true)%s",
                 cfg->listen, a->tls ? "" : ", without TLS: logins cross the network in clear "
                 "text (set admin.tls_cert and tls_key)");
    return 0;
}

void
admin_stop(admin_t *a)
{
    uint64_t one = 1;

    if (a == NULL)
        return;
    if (a->started) {
        atomic_store(&a->stop, true);
        (void)!write(a->wake_fd, &one, sizeof(one));
        pthread_join(a->thread, NULL);
    }
    if (a->d != NULL)
        MHD_stop_daemon(a->d);
    if (a->wake_fd >= 0)
        close(a->wake_fd);
    report_close(a->report);
    auth_free(a->auth);
    session_table_free(a->sessions);
    wipe_free(&a->tls_cert);
    wipe_free(&a->tls_key);
    free(a);
}
