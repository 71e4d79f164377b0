/*
 * admin/admin.c: the admin UI's daemon (see admin.h): the listening socket,
 * libmicrohttpd in external epoll mode driven by our own thread, its
 * callbacks (the request target is taken raw from the URI callback so the
 * query string is parsed by our own code only; the body is gathered up to
 * QUERY_INPUT_MAX), and each request's first steps: the Host check and the
 * login; then admin/routes.c answers it.
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

#include "../common/log.h"
#include "admin_int.h"
#include "auth.h"

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The Host check and the login, then the route. */
static enum MHD_Result
serve(admin_t *a, struct MHD_Connection *c, req_t *rq, const char *method)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    char user[AUTH_USER_MAX] = "", retry[16];
    bool api = strncmp(rq->uri, "/api/", 5) == 0;
    unsigned retry_s = 0;
    int64_t now = now_ms();

    auth_maybe_reload(a->auth, now / 1000);
    if (!admin_host_ok(a, admin_header(c, "Host")))
        return admin_send_error(c, api, 421, "this server answers to its loopback address only",
                                NULL, NULL, NULL);
    switch (auth_check(a->auth, ci ? ci->client_addr : NULL, admin_header(c, "Authorization"),
                       now / 1000, user, &retry_s)) {
    case AUTH_OK:
        break;
    case AUTH_LIMITED:
        snprintf(retry, sizeof(retry), "%u", retry_s);
        return admin_send_error(c, api, 429, "too many failed logins from this address; try later",
                                NULL, "Retry-After", retry);
    case AUTH_MISSING:
    case AUTH_FAILED:
    default:
        return admin_send_error(c, api, 401, "login required", NULL, "WWW-Authenticate",
                                "Basic realm=\"" ADMIN_REALM "\", charset=\"UTF-8\"");
    }
    return admin_route(a, c, rq, method, user, now);
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
    (void)cls;
    (void)c;
    (void)tc;
    free(*req_cls);
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

admin_t *
admin_start(const config_admin_t *cfg, const status_sources_t *src, const char *store_path)
{
    char err[AUTH_ERR_MAX];
    admin_t *a;
    int fd;

    if (!cfg->enabled) {
        log_info("admin UI disabled (admin.enabled: false)");
        return NULL;
    }
    a = calloc(1, sizeof(*a));
    if (a == NULL) {
        log_error("admin UI not started: out of memory");
        return NULL;
    }
    a->wake_fd = -1;
    a->auth = auth_new(cfg->password_file, err, sizeof(err));
    if (a->auth == NULL) {
        log_warn("admin UI not started: %s (create an account with: musctl passwd admin "
                 "--file %s)", err, cfg->password_file[0] ? cfg->password_file : "etc/admin.passwd");
        goto fail;
    }
    a->src = *src;
    snprintf(a->store_path, sizeof(a->store_path), "%s", store_path ? store_path : "");
    snprintf(a->listen, sizeof(a->listen), "%s", cfg->listen);
    a->loopback = addr_loopback(&cfg->addr);
    a->port = ntohs(cfg->addr.ss_family == AF_INET6
                        ? ((const struct sockaddr_in6 *)&cfg->addr)->sin6_port
                        : ((const struct sockaddr_in *)&cfg->addr)->sin_port);
    atomic_init(&a->stop, false);
    fd = open_listener(cfg, err, sizeof(err));
    if (fd < 0) {
        log_error("admin UI not started: %s", err);
        goto fail;
    }
    a->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    a->d = a->wake_fd < 0 ? NULL : MHD_start_daemon(
        MHD_USE_EPOLL | MHD_USE_ERROR_LOG | (cfg->addr.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
        0, NULL, NULL, on_request, a,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, a,
        MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, a,
        MHD_OPTION_NOTIFY_COMPLETED, on_done, a,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)ADMIN_CONN_MAX,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)ADMIN_CONN_PER_IP,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)ADMIN_IDLE_S,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)ADMIN_CONN_MEMORY,
        MHD_OPTION_END);
    if (a->d == NULL) {
        log_error("admin UI not started: libmicrohttpd did not start on %s", cfg->listen);
        close(fd);
        goto fail;
    }
    if (pthread_create(&a->thread, NULL, admin_main, a) != 0) {
        log_error("admin UI not started: cannot start its thread");
        MHD_stop_daemon(a->d);
        goto fail;
    }
    log_info("admin UI on http://%s/ (%zu account%s in %s)", cfg->listen, auth_accounts(a->auth),
             auth_accounts(a->auth) == 1 ? "" : "s", cfg->password_file);
    if (!a->loopback)
        log_warn("admin UI listens on %s, not a loopback address (allow_remote: true): "
                 "logins cross the network in clear text unless TLS is put in front", cfg->listen);
    return a;
fail:
    if (a->wake_fd >= 0)
        close(a->wake_fd);
    auth_free(a->auth);
    free(a);
    return NULL;
}

void
admin_stop(admin_t *a)
{
    uint64_t one = 1;

    if (a == NULL)
        return;
    atomic_store(&a->stop, true);
    (void)!write(a->wake_fd, &one, sizeof(one));
    pthread_join(a->thread, NULL);
    MHD_stop_daemon(a->d);
    close(a->wake_fd);
    report_close(a->report);
    auth_free(a->auth);
    free(a);
}
