/*
 * tests/unit/common/test_loop.c: the event loop's hang-up handling (a
 * descriptor whose peer finished while nobody waits on it is parked, not
 * reported on every wait, and its bytes stay readable) and errors. Real
 * socketpairs and TCP sockets on loopback; no timing assertions.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../../common/loop.h"

typedef struct seen {
    int calls;
    uint32_t last;
} seen_t;

static void on_io(loop_t *loop, loop_io_t *io, uint32_t events)
{
    (void)loop;
    seen_t *s = io->arg;
    s->calls++;
    s->last = events;
}

/* Both directions of a (Unix) socket pair are finished: EPOLLHUP. */
static void hung_up_pair(int sv[2])
{
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    cr_assert_eq(send(sv[1], "tail", 4, 0), 4);
    cr_assert_eq(shutdown(sv[1], SHUT_WR), 0);
    cr_assert_eq(shutdown(sv[0], SHUT_WR), 0);
}

Test(loop, hangup_without_interest_parks_and_keeps_bytes)
{
    loop_t *loop = loop_new();
    cr_assert_not_null(loop);
    int sv[2];
    hung_up_pair(sv);
    seen_t s = { 0 };
    loop_io_t io;
    loop_io_init(&io, on_io, &s);
    cr_assert_eq(loop_io_start(loop, &io, sv[0], 0), 0);
    for (int i = 0; i < 5; i++)
        loop_run_once(loop, 0);
    cr_assert_eq(s.calls, 0, "hang-up without interest reported %d times", s.calls);
    cr_assert(io.parked, "hung-up io not parked");
    cr_assert_eq(io.fd, sv[0]);

    /* asking again registers it: the bytes and the EOF are still there */
    cr_assert_eq(loop_io_set(loop, &io, LOOP_READ), 0);
    cr_assert(!io.parked);
    loop_run_once(loop, 100);
    cr_assert_eq(s.calls, 1);
    cr_assert_eq(s.last & LOOP_READ, LOOP_READ);
    cr_assert_eq(s.last & LOOP_ERROR, 0, "a hang-up is not an error");
    char b[8];
    cr_assert_eq(recv(sv[0], b, sizeof b, 0), 4);
    cr_assert_eq(memcmp(b, "tail", 4), 0);
    cr_assert_eq(recv(sv[0], b, sizeof b, 0), 0);

    loop_io_stop(loop, &io);
    cr_assert_eq(io.fd, -1);
    close(sv[0]);
    close(sv[1]);
    loop_free(loop);
}

Test(loop, parked_io_moves_and_stops)
{
    loop_t *loop = loop_new();
    int sv[2];
    hung_up_pair(sv);
    seen_t a = { 0 }, b = { 0 };
    loop_io_t from, to;
    loop_io_init(&from, on_io, &a);
    loop_io_init(&to, on_io, &b);
    cr_assert_eq(loop_io_start(loop, &from, sv[0], 0), 0);
    loop_run_once(loop, 0);
    cr_assert(from.parked);
    /* moved with interest: registered again, reported to the new owner */
    cr_assert_eq(loop_io_move(loop, &from, &to, LOOP_READ), 0);
    cr_assert_eq(from.fd, -1);
    cr_assert(!from.parked);
    cr_assert_eq(to.fd, sv[0]);
    loop_run_once(loop, 100);
    cr_assert_eq(a.calls, 0);
    cr_assert_eq(b.calls, 1);
    /* parked again, then stopped: stop must not fail on an unregistered fd */
    cr_assert_eq(loop_io_set(loop, &to, 0), 0);
    loop_run_once(loop, 0);
    cr_assert(to.parked);
    loop_io_stop(loop, &to);
    cr_assert_eq(to.fd, -1);
    cr_assert(!to.parked);
    close(sv[0]);
    close(sv[1]);
    loop_free(loop);
}

Test(loop, reset_without_interest_is_an_error)
{
    loop_t *loop = loop_new();
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof(a);
    cr_assert_eq(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(listen(l, 1), 0);
    cr_assert_eq(getsockname(l, (struct sockaddr *)&a, &al), 0);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_eq(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
    int s = accept(l, NULL, NULL);
    cr_assert_geq(s, 0);
    seen_t seen = { 0 };
    loop_io_t io;
    loop_io_init(&io, on_io, &seen);
    cr_assert_eq(loop_io_start(loop, &io, c, 0), 0);
    /* SO_LINGER 0: close sends a reset */
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
    cr_assert_eq(setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    close(s);
    for (int i = 0; i < 10 && seen.calls == 0; i++)
        loop_run_once(loop, 100);
    cr_assert_geq(seen.calls, 1, "a reset was not reported");
    cr_assert_eq(seen.last, LOOP_ERROR, "reset reported as 0x%x", seen.last);
    loop_io_stop(loop, &io);
    close(c);
    close(l);
    loop_free(loop);
}
