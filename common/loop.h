/*
 * common/loop.h: a small epoll event loop with millisecond timers, one per
 * worker thread (never shared between threads). Objects embed a loop_io_t per
 * file descriptor and a loop_timer_t per timeout; the loop stores pointers to
 * them, so an object must stop its I/O and timers before it is freed, and
 * must not be freed while the loop may still deliver an event of the current
 * batch to it: free from a loop_defer() callback, which runs after the batch.
 * It does no I/O itself besides epoll_wait and knows nothing of HTTP.
 */
#ifndef MUS_COMMON_LOOP_H
#define MUS_COMMON_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#define LOOP_READ  0x1u
#define LOOP_WRITE 0x2u
#define LOOP_ERROR 0x4u   /* reported only: EPOLLERR (e.g. a reset) */

/* A hang-up (EPOLLHUP: the peer finished and so did we) is reported as the
 * interest the io has, since bytes may still wait to be read and the next
 * read or write tells what happened. An io hung up while its interest is 0
 * is parked instead: unregistered from epoll (level-triggered, it would be
 * reported on every wait) until loop_io_set asks for events again. */

#define LOOP_MAX_EVENTS 256   /* events taken from epoll_wait per batch */

typedef struct loop loop_t;
typedef struct loop_io loop_io_t;
typedef struct loop_timer loop_timer_t;

typedef void (*loop_io_cb)(loop_t *loop, loop_io_t *io, uint32_t events);
typedef void (*loop_timer_cb)(loop_t *loop, loop_timer_t *t);
typedef void (*loop_defer_cb)(void *arg);

struct loop_io {
    int fd;            /* -1 when not registered */
    uint32_t interest; /* LOOP_READ | LOOP_WRITE currently asked for */
    bool parked;       /* hung up with interest 0: not in epoll for now */
    uint32_t gen;      /* registration number (the loop's, read-only) */
    uint64_t moved_batch; /* the loop's batch in which it was handed this fd */
    loop_io_cb cb;
    void *arg;         /* owner; read by callbacks */
};

struct loop_timer {
    uint64_t when;      /* absolute loop time in ms */
    uint32_t heap_idx;  /* position in the heap, UINT32_MAX if not armed */
    loop_timer_cb cb;
    void *arg;
};

loop_t *loop_new(void);
/* Frees the loop; registered descriptors are not closed. NULL allowed. */
void loop_free(loop_t *loop);

void loop_io_init(loop_io_t *io, loop_io_cb cb, void *arg);
/* Registers fd with the given interest; returns 0 or -errno. */
int loop_io_start(loop_t *loop, loop_io_t *io, int fd, uint32_t interest);
/* Changes the interest (no syscall if unchanged; a parked io is registered
 * again once interest is not 0); returns 0 or -errno. */
int loop_io_set(loop_t *loop, loop_io_t *io, uint32_t interest);
/* Hands from's registered descriptor over to to, with the given interest:
 * no system call if the interest does not change (events already collected
 * for from are skipped; from is left unregistered). Returns 0 or -errno
 * (then nothing changed). */
int loop_io_move(loop_t *loop, loop_io_t *from, loop_io_t *to, uint32_t interest);
/* Unregisters (does not close) the descriptor; safe if not registered. */
void loop_io_stop(loop_t *loop, loop_io_t *io);

void loop_timer_init(loop_timer_t *t, loop_timer_cb cb, void *arg);
/* Arms (or re-arms) the timer to fire once after ms milliseconds. */
void loop_timer_set(loop_t *loop, loop_timer_t *t, uint32_t ms);
/* Arms the timer for an absolute loop time (ms). */
void loop_timer_set_at(loop_t *loop, loop_timer_t *t, uint64_t when);
void loop_timer_cancel(loop_t *loop, loop_timer_t *t);
static inline bool loop_timer_armed(const loop_timer_t *t) { return t->heap_idx != UINT32_MAX; }

/* Runs cb(arg) after the current batch of events (once). Returns 0 or -1
 * on allocation failure (then the caller must not rely on it). */
int loop_defer(loop_t *loop, loop_defer_cb cb, void *arg);

/* Monotonic time in ms, cached at the start of each iteration. */
uint64_t loop_now(const loop_t *loop);
/* Refreshes the cached time (after a long computation). */
void loop_update_time(loop_t *loop);

/* Waits at most max_wait_ms (or until the next timer), dispatches the ready
 * events, expired timers and deferred callbacks. Returns the number of
 * events dispatched, or -errno on an epoll failure other than EINTR. */
int loop_run_once(loop_t *loop, int max_wait_ms);

/* Hooks run right before and right after each epoll_wait (e.g. to tell a
 * read-copy-update scheme that this thread holds no references while it
 * sleeps). Either may be NULL. */
typedef void (*loop_hook_cb)(void *arg);
void loop_set_wait_hooks(loop_t *loop, loop_hook_cb before, loop_hook_cb after, void *arg);

/* Number of armed timers (tests, diagnostics). */
unsigned loop_timer_count(const loop_t *loop);

#endif
