/*
 * common/loop.c: the epoll loop (see loop.h). Level-triggered epoll; an event
 * carries its descriptor and a registration number, and the loop finds the
 * io in a table indexed by descriptor, so handing a descriptor to another io
 * (loop_io_move) costs no system call when the interest stays the same.
 * Timers in a binary min-heap of pointers to the caller's loop_timer_t;
 * deferred callbacks in a growable array run after each batch. Not
 * thread-safe: one loop per thread.
 */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define LOOP_HEAP_INITIAL 64
#define LOOP_DEFER_INITIAL 32
#define LOOP_IOS_INITIAL 256

typedef struct loop_deferred {
    loop_defer_cb cb;
    void *arg;
} loop_deferred_t;

struct loop {
    int epfd;
    uint64_t now;
    loop_timer_t **heap;
    uint32_t heap_len, heap_cap;
    loop_deferred_t *defer;
    size_t defer_len, defer_cap;
    loop_hook_cb before_wait, after_wait;
    void *hook_arg;
    loop_io_t **ios;          /* by descriptor: the io it is registered for */
    uint32_t ios_cap;
    uint32_t next_gen;        /* registration numbers, never 0 */
    uint64_t batch;           /* counts loop_run_once calls */
    struct epoll_event events[LOOP_MAX_EVENTS];
};

static uint64_t
monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

loop_t *
loop_new(void)
{
    loop_t *loop = calloc(1, sizeof(*loop));

    if (loop == NULL)
        return NULL;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0)
        goto fail;
    loop->heap_cap = LOOP_HEAP_INITIAL;
    loop->heap = calloc(loop->heap_cap, sizeof(*loop->heap));
    if (loop->heap == NULL)
        goto fail;
    loop->now = monotonic_ms();
    return loop;
fail:
    if (loop->epfd >= 0)
        close(loop->epfd);
    free(loop->heap);
    free(loop);
    return NULL;
}

void
loop_free(loop_t *loop)
{
    if (loop == NULL)
        return;
    close(loop->epfd);
    free(loop->heap);
    free(loop->defer);
    free(loop->ios);
    free(loop);
}

uint64_t
loop_now(const loop_t *loop)
{
    return loop->now;
}

void
loop_update_time(loop_t *loop)
{
    loop->now = monotonic_ms();
}

/* ---- I/O ---- */

static uint32_t
to_epoll(uint32_t interest)
{
    uint32_t ev = 0;

    if (interest & LOOP_READ)
        ev |= EPOLLIN;
    if (interest & LOOP_WRITE)
        ev |= EPOLLOUT;
    return ev;
}

static struct epoll_event
io_event(const loop_io_t *io, uint32_t interest)
{
    struct epoll_event ev = {.events = to_epoll(interest)};

    ev.data.u64 = (uint64_t)io->gen << 32 | (uint32_t)io->fd;
    return ev;
}

/* Makes ios[fd] addressable. 0 or -ENOMEM. */
static int
ios_reserve(loop_t *loop, int fd)
{
    uint32_t cap = loop->ios_cap ? loop->ios_cap : LOOP_IOS_INITIAL;
    loop_io_t **ios;

    if ((uint32_t)fd < loop->ios_cap)
        return 0;
    while (cap <= (uint32_t)fd)
        cap *= 2;
    ios = realloc(loop->ios, cap * sizeof(*ios));
    if (ios == NULL)
        return -ENOMEM;
    memset(ios + loop->ios_cap, 0, (cap - loop->ios_cap) * sizeof(*ios));
    loop->ios = ios;
    loop->ios_cap = cap;
    return 0;
}

void
loop_io_init(loop_io_t *io, loop_io_cb cb, void *arg)
{
    io->fd = -1;
    io->interest = 0;
    io->parked = false;
    io->gen = 0;
    io->moved_batch = 0;
    io->cb = cb;
    io->arg = arg;
}

int
loop_io_start(loop_t *loop, loop_io_t *io, int fd, uint32_t interest)
{
    struct epoll_event ev;
    int rc;

    if (fd < 0)
        return -EBADF;
    if ((rc = ios_reserve(loop, fd)) < 0)
        return rc;
    if (++loop->next_gen == 0)
        loop->next_gen = 1;
    io->fd = fd;
    io->gen = loop->next_gen;
    ev = io_event(io, interest);
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        rc = -errno;
        io->fd = -1;
        return rc;
    }
    io->interest = interest;
    io->parked = false;
    loop->ios[fd] = io;
    return 0;
}

int
loop_io_set(loop_t *loop, loop_io_t *io, uint32_t interest)
{
    struct epoll_event ev = io_event(io, interest);

    if (io->fd < 0)
        return 0;
    if (io->parked) {
        if (interest == 0)
            return 0;
        if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, io->fd, &ev) < 0)
            return -errno;
        io->parked = false;
        io->interest = interest;
        return 0;
    }
    if (io->interest == interest)
        return 0;
    if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, io->fd, &ev) < 0)
        return -errno;
    io->interest = interest;
    return 0;
}

int
loop_io_move(loop_t *loop, loop_io_t *from, loop_io_t *to, uint32_t interest)
{
    int rc;

    if (from->fd < 0)
        return -EBADF;
    to->fd = from->fd;
    to->gen = from->gen;
    to->interest = from->interest;
    to->parked = from->parked;
    if ((rc = loop_io_set(loop, to, interest)) < 0) {
        to->fd = -1;
        to->parked = false;
        return rc;
    }
    /* readiness collected in this batch was meant for from's owner; if it
     * still holds, the next wait reports it again */
    to->moved_batch = loop->batch;
    loop->ios[to->fd] = to;
    from->fd = -1;
    from->interest = 0;
    from->parked = false;
    return 0;
}

void
loop_io_stop(loop_t *loop, loop_io_t *io)
{
    if (io->fd < 0)
        return;
    if (!io->parked)
        epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    if (loop->ios[io->fd] == io)
        loop->ios[io->fd] = NULL;
    io->fd = -1;
    io->interest = 0;
    io->parked = false;
}

/* Hung up while nobody waits on it: stop watching until asked again. */
static void
io_park(loop_t *loop, loop_io_t *io)
{
    if (epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL) == 0)
        io->parked = true;
}

/* ---- timers: binary min-heap on `when` ---- */

static void
heap_swap(loop_t *loop, uint32_t a, uint32_t b)
{
    loop_timer_t *t = loop->heap[a];

    loop->heap[a] = loop->heap[b];
    loop->heap[b] = t;
    loop->heap[a]->heap_idx = a;
    loop->heap[b]->heap_idx = b;
}

static void
heap_up(loop_t *loop, uint32_t i)
{
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (loop->heap[parent]->when <= loop->heap[i]->when)
            break;
        heap_swap(loop, i, parent);
        i = parent;
    }
}

static void
heap_down(loop_t *loop, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < loop->heap_len && loop->heap[l]->when < loop->heap[m]->when)
            m = l;
        if (r < loop->heap_len && loop->heap[r]->when < loop->heap[m]->when)
            m = r;
        if (m == i)
            break;
        heap_swap(loop, i, m);
        i = m;
    }
}

void
loop_timer_init(loop_timer_t *t, loop_timer_cb cb, void *arg)
{
    t->when = 0;
    t->heap_idx = UINT32_MAX;
    t->cb = cb;
    t->arg = arg;
}

void
loop_timer_cancel(loop_t *loop, loop_timer_t *t)
{
    uint32_t i = t->heap_idx;

    if (i == UINT32_MAX)
        return;
    loop->heap_len--;
    if (i != loop->heap_len) {
        loop->heap[i] = loop->heap[loop->heap_len];
        loop->heap[i]->heap_idx = i;
        heap_down(loop, i);
        heap_up(loop, i);
    }
    t->heap_idx = UINT32_MAX;
}

void
loop_timer_set_at(loop_t *loop, loop_timer_t *t, uint64_t when)
{
    if (t->heap_idx != UINT32_MAX) {
        uint64_t old = t->when;
        t->when = when;
        if (when < old)
            heap_up(loop, t->heap_idx);
        else
            heap_down(loop, t->heap_idx);
        return;
    }
    if (loop->heap_len == loop->heap_cap) {
        uint32_t cap = loop->heap_cap * 2;
        loop_timer_t **h = realloc(loop->heap, cap * sizeof(*h));
        if (h == NULL)
            abort(); /* out of memory: a timer we cannot arm is a wait without a limit */
        loop->heap = h;
        loop->heap_cap = cap;
    }
    t->when = when;
    t->heap_idx = loop->heap_len;
    loop->heap[loop->heap_len++] = t;
    heap_up(loop, t->heap_idx);
}

void
loop_timer_set(loop_t *loop, loop_timer_t *t, uint32_t ms)
{
    loop_timer_set_at(loop, t, loop->now + ms);
}

void
loop_set_wait_hooks(loop_t *loop, loop_hook_cb before, loop_hook_cb after, void *arg)
{
    loop->before_wait = before;
    loop->after_wait = after;
    loop->hook_arg = arg;
}

unsigned
loop_timer_count(const loop_t *loop)
{
    return loop->heap_len;
}

/* ---- deferred callbacks ---- */

int
loop_defer(loop_t *loop, loop_defer_cb cb, void *arg)
{
    if (loop->defer_len == loop->defer_cap) {
        size_t cap = loop->defer_cap ? loop->defer_cap * 2 : LOOP_DEFER_INITIAL;
        loop_deferred_t *d = realloc(loop->defer, cap * sizeof(*d));
        if (d == NULL)
            return -1;
        loop->defer = d;
        loop->defer_cap = cap;
    }
    loop->defer[loop->defer_len++] = (loop_deferred_t){cb, arg};
    return 0;
}

static void
run_deferred(loop_t *loop)
{
    /* A deferred callback may defer more work: loop until the queue is empty. */
    for (size_t i = 0; i < loop->defer_len; i++) {
        loop_deferred_t d = loop->defer[i];
        d.cb(d.arg);
    }
    loop->defer_len = 0;
}

/* ---- the iteration ---- */

static void
run_timers(loop_t *loop)
{
    while (loop->heap_len > 0 && loop->heap[0]->when <= loop->now) {
        loop_timer_t *t = loop->heap[0];
        loop_timer_cancel(loop, t);
        t->cb(loop, t);
    }
}

int
loop_run_once(loop_t *loop, int max_wait_ms)
{
    int timeout = max_wait_ms, n;

    if (loop->defer_len > 0)
        timeout = 0;
    else if (loop->heap_len > 0) {
        uint64_t when = loop->heap[0]->when;
        int64_t wait = when > loop->now ? (int64_t)(when - loop->now) : 0;
        if (timeout < 0 || wait < timeout)
            timeout = (int)wait;
    }
    if (loop->before_wait)
        loop->before_wait(loop->hook_arg);
    n = epoll_wait(loop->epfd, loop->events, LOOP_MAX_EVENTS, timeout);
    if (loop->after_wait)
        loop->after_wait(loop->hook_arg);
    loop->now = monotonic_ms();
    if (n < 0) {
        if (errno != EINTR)
            return -errno;
        n = 0;
    }
    loop->batch++;
    for (int i = 0; i < n; i++) {
        uint64_t data = loop->events[i].data.u64;
        int fd = (int)(uint32_t)data;
        uint32_t ev = loop->events[i].events, out = 0;
        loop_io_t *io = (uint32_t)fd < loop->ios_cap ? loop->ios[fd] : NULL;
        /* An earlier callback of this batch may have stopped, parked or
         * handed over this io, or registered the descriptor number anew:
         * skip what epoll collected for the earlier owner. */
        if (io == NULL || io->fd != fd || io->gen != (uint32_t)(data >> 32) || io->parked ||
            io->moved_batch == loop->batch)
            continue;
        if (ev & (EPOLLIN | EPOLLRDHUP))
            out |= LOOP_READ;
        if (ev & EPOLLOUT)
            out |= LOOP_WRITE;
        if (ev & EPOLLERR)
            out |= LOOP_ERROR | (io->interest & (LOOP_READ | LOOP_WRITE));
        if (ev & EPOLLHUP)
            out |= io->interest & (LOOP_READ | LOOP_WRITE);
        if (out != 0)
            io->cb(loop, io, out);
        else if (ev & EPOLLHUP)
            io_park(loop, io);
    }
    run_timers(loop);
    run_deferred(loop);
    return n;
}
