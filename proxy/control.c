/*
 * proxy/control.c: the control socket (see control.h). Blocking I/O with
 * poll() timeouts in a thread of its own: one client at a time, which is
 * plenty for an administrator's tool. The answers come from proxy/status.c.
 */
#include "control.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../common/cidr.h"
#include "../common/log.h"

#define CONTROL_POLL_MS 250   /* how often the thread checks for stop */

struct control {
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int fd;
    pthread_t thread;
    atomic_bool stop;
    status_sources_t src;     /* copied at start */
    mus_map_reader_t *reader;
};

/* Waits until fd is ready for events, at most CONTROL_IO_TIMEOUT_MS. */
static int
wait_fd(int fd, short events)
{
    struct pollfd p = {.fd = fd, .events = events};
    int r = poll(&p, 1, CONTROL_IO_TIMEOUT_MS);

    return r > 0 ? 0 : -1;
}

static void
serve(control_t *c, int fd)
{
    char req[CONTROL_REQUEST_MAX];
    size_t len = 0;
    json_t *resp = NULL;
    char *text = NULL;
    size_t off = 0, tlen;

    for (;;) {
        ssize_t n;
        if (len == sizeof(req) - 1 || wait_fd(fd, POLLIN) < 0)
            goto done;
        n = read(fd, req + len, sizeof(req) - 1 - len);
        if (n <= 0)
            goto done;
        len += (size_t)n;
        if (memchr(req, '\n', len) != NULL)
            break;
    }
    req[len] = '\0';
    req[strcspn(req, "\r\n")] = '\0';
    resp = status_request(&c->src, req);
    mus_map_reader_quiescent(c->reader);
    if (resp == NULL)
        goto done;
    text = json_dumps(resp, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    if (text == NULL)
        goto done;
    tlen = strlen(text);
    while (off < tlen) {
        ssize_t n;
        if (wait_fd(fd, POLLOUT) < 0)
            goto done;
        n = write(fd, text + off, tlen - off);
        if (n <= 0)
            goto done;
        off += (size_t)n;
    }
    (void)!write(fd, "\n", 1);
done:
    free(text);
    json_decref(resp);
}

static void *
control_main(void *arg)
{
    control_t *c = arg;

    c->reader = mus_map_reader_register(c->src.map);
    if (c->reader == NULL) {
        log_error("control: cannot register as a map reader");
        return NULL;
    }
    while (!atomic_load(&c->stop)) {
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int fd;
        mus_map_reader_offline(c->reader);
        if (poll(&p, 1, CONTROL_POLL_MS) <= 0) {
            mus_map_reader_online(c->reader);
            continue;
        }
        mus_map_reader_online(c->reader);
        fd = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        serve(c, fd);
        close(fd);
        mus_map_reader_quiescent(c->reader);
    }
    mus_map_reader_unregister(c->reader);
    return NULL;
}

control_t *
control_start(const char *path, const status_sources_t *src, char *err, size_t errlen)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    control_t *c;
    mode_t old;
    int r;

    if (strlen(path) >= sizeof(sun.sun_path)) {
        snprintf(err, errlen, "control socket path %s is too long", path);
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(c->path, sizeof(c->path), "%s", path);
    strcpy(sun.sun_path, path);
    c->src = *src;
    atomic_init(&c->stop, false);
    {
        /* create the parent directory (0750) if missing */
        char dir[sizeof(sun.sun_path)];
        char *slash;
        snprintf(dir, sizeof(dir), "%s", path);
        slash = strrchr(dir, '/');
        if (slash != NULL && slash != dir) {
            *slash = '\0';
            if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
                snprintf(err, errlen, "control socket directory %s: %s", dir, strerror(errno));
                goto fail;
            }
        }
    }
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (c->fd < 0) {
        snprintf(err, errlen, "control socket: %s", strerror(errno));
        goto fail;
    }
    /* A socket file left by a previous run: remove it if nobody answers. */
    if (connect(c->fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
        snprintf(err, errlen, "control socket %s is in use by another musproxy", path);
        goto fail_fd;
    }
    close(c->fd);
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (c->fd < 0) {
        snprintf(err, errlen, "control socket: %s", strerror(errno));
        goto fail;
    }
    unlink(path);
    old = umask(0077);   /* mode 0600: the owner only */
    r = bind(c->fd, (struct sockaddr *)&sun, sizeof(sun));
    umask(old);
    if (r == 0)
        r = chmod(path, 0600);
    if (r < 0 || listen(c->fd, 16) < 0) {
        snprintf(err, errlen, "control socket %s: %s", path, strerror(errno));
        goto fail_fd;
    }
    if (pthread_create(&c->thread, NULL, control_main, c) != 0) {
        snprintf(err, errlen, "cannot start the control thread");
        unlink(path);
        goto fail_fd;
    }
    return c;
fail_fd:
    close(c->fd);
fail:
    free(c);
    return NULL;
}

void
control_stop(control_t *c)
{
    if (c == NULL)
        return;
    atomic_store(&c->stop, true);
    pthread_join(c->thread, NULL);
    close(c->fd);
    unlink(c->path);
    free(c);
}
