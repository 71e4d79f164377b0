/*
 * tests/unit/mus/test_map.c: the IP -> identity map (mus/map.c): address parsing
 * and formatting, add/lookup for IPv4, IPv6 and IPv4-mapped addresses, the
 * correctness rules of docs/mus-protocol.md (late deletes, newest wins,
 * machine/user tunnel hand-over in both orders), snapshots (a concurrent
 * reader never misses a kept address, absent entries go only at the end,
 * abort keeps the old set), stale headends and expiry, QSBR reclamation
 * waiting for readers, and a multi-threaded stress run checking that every
 * identity a reader gets is internally consistent.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../../mus/map.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static mus_addr_t
A(const char *text)
{
    mus_addr_t a;

    cr_assert_eq(mus_addr_parse(text, &a), 0, "%s", text);
    return a;
}

/* A session whose strings all derive from sid. */
static mus_session_t
sess(const char *sid, enum mus_id_type type, int64_t started)
{
    mus_session_t s;

    memset(&s, 0, sizeof(s));
    snprintf(s.sid, sizeof(s.sid), "%s", sid);
    s.type = type;
    snprintf(s.name, sizeof(s.name), "n:%s", sid);
    snprintf(s.domain, sizeof(s.domain), "CORP");
    snprintf(s.groups, sizeof(s.groups), "g:%s", sid);
    s.started = started;
    snprintf(s.client_ip, sizeof(s.client_ip), "198.51.100.7");
    snprintf(s.tunnel, sizeof(s.tunnel), "ssl");
    return s;
}

static int
add1(mus_map_t *m, unsigned h, const char *sid, enum mus_id_type t, int64_t started,
     const char *ip)
{
    mus_session_t s = sess(sid, t, started);
    mus_addr_t a = A(ip);

    return mus_map_add(m, h, &s, &a, 1);
}

static int
del1(mus_map_t *m, unsigned h, const char *sid, const char *ip)
{
    mus_addr_t a = A(ip);

    return mus_map_del(m, h, sid, &a, 1);
}

/* The sid mapped at ip, or "" if unmapped. */
static const char *
sid_at(mus_map_t *m, const char *ip)
{
    static mus_identity_t id;
    mus_addr_t a = A(ip);

    if (!mus_map_lookup(m, &a, &id))
        return "";
    return id.s.sid;
}

static mus_map_t *
new_map(void)
{
    mus_map_t *m = mus_map_new();

    cr_assert_not_null(m);
    cr_assert_eq(mus_map_headend_set(m, 0, "asa-0"), 0);
    cr_assert_eq(mus_map_headend_set(m, 1, "asa-1"), 0);
    cr_assert_eq(mus_map_headend_set(m, 2, "asa-2"), 0);
    return m;
}

static uint64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- addresses and types ---- */

Test(map, addr_parse_format)
{
    static const char *const round_trip[] = {"10.0.0.1", "0.0.0.0", "255.255.255.255",
                                             "fd00::5", "2001:db8::1", "::1", "::"};
    static const char *const bad[] = {"", "10.0.0.256", "10.0.0", "abc", "10.0.0.1/24",
                                      "fd00::5::1", " 10.0.0.1", "[::1]"};
    char buf[48];
    mus_addr_t a, b;

    for (size_t i = 0; i < N_ELEMS(round_trip); i++) {
        a = A(round_trip[i]);
        mus_addr_format(&a, buf, sizeof(buf));
        cr_expect_str_eq(buf, round_trip[i]);
    }
    for (size_t i = 0; i < N_ELEMS(bad); i++)
        cr_expect_eq(mus_addr_parse(bad[i], &a), -1, "%s", bad[i]);

    /* IPv4 is stored IPv4-mapped: both spellings are one address */
    a = A("10.1.2.3");
    b = A("::ffff:10.1.2.3");
    cr_expect_eq(memcmp(&a, &b, sizeof(a)), 0);
    cr_expect_eq(a.b[10], 0xff);
    cr_expect_eq(a.b[15], 3);
    mus_addr_format(&b, buf, sizeof(buf));
    cr_expect_str_eq(buf, "10.1.2.3");

    /* truncation never overflows */
    mus_addr_format(&a, buf, 4);
    cr_expect_str_eq(buf, "10.");
}

Test(map, addr_from_sockaddr)
{
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
    mus_addr_t a, want = A("192.0.2.9");

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    inet_pton(AF_INET, "192.0.2.9", &sin.sin_addr);
    mus_addr_from_sockaddr((struct sockaddr *)&sin, &a);
    cr_expect_eq(memcmp(&a, &want, 16), 0);

    memset(&sin6, 0, sizeof(sin6));
    sin6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::ffff:192.0.2.9", &sin6.sin6_addr);
    mus_addr_from_sockaddr((struct sockaddr *)&sin6, &a);
    cr_expect_eq(memcmp(&a, &want, 16), 0);

    inet_pton(AF_INET6, "2001:db8::7", &sin6.sin6_addr);
    mus_addr_from_sockaddr((struct sockaddr *)&sin6, &a);
    want = A("2001:db8::7");
    cr_expect_eq(memcmp(&a, &want, 16), 0);
}

Test(map, id_types)
{
    enum mus_id_type t;

    cr_expect_str_eq(mus_id_type_str(MUS_ID_USER), "user");
    cr_expect_str_eq(mus_id_type_str(MUS_ID_MACHINE), "machine");
    cr_expect_str_eq(mus_id_type_str(MUS_ID_DEVICE), "device");
    cr_expect_eq(mus_id_type_parse("machine", &t), 0);
    cr_expect_eq(t, MUS_ID_MACHINE);
    cr_expect_eq(mus_id_type_parse("root", &t), -1);
}

/* ---- basic mapping ---- */

Test(map, add_lookup_v4_v6_mapped)
{
    mus_map_t *m = new_map();
    mus_session_t s = sess("s1", MUS_ID_USER, 100);
    mus_addr_t ips[2] = {A("10.10.10.5"), A("fd00::5")};
    mus_identity_t id;
    struct sockaddr_in6 sin6;
    mus_addr_t a;
    mus_map_counters_t c;

    cr_assert_eq(mus_map_add(m, 1, &s, ips, 2), 2);
    cr_assert(mus_map_lookup(m, &ips[0], &id));
    cr_expect_str_eq(id.s.sid, "s1");
    cr_expect_str_eq(id.s.name, "n:s1");
    cr_expect_str_eq(id.s.domain, "CORP");
    cr_expect_str_eq(id.s.groups, "g:s1");
    cr_expect_str_eq(id.s.client_ip, "198.51.100.7");
    cr_expect_str_eq(id.s.tunnel, "ssl");
    cr_expect_eq(id.s.type, MUS_ID_USER);
    cr_expect_eq(id.s.started, 100);
    cr_expect_str_eq(id.headend, "asa-1");
    cr_expect_not(id.stale);

    cr_assert(mus_map_lookup(m, &ips[1], &id));
    cr_expect_str_eq(id.s.sid, "s1");

    /* a worker sees an IPv4 client on a dual-stack socket as ::ffff:a.b.c.d */
    memset(&sin6, 0, sizeof(sin6));
    sin6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::ffff:10.10.10.5", &sin6.sin6_addr);
    mus_addr_from_sockaddr((struct sockaddr *)&sin6, &a);
    cr_assert(mus_map_lookup(m, &a, &id));
    cr_expect_str_eq(id.s.sid, "s1");

    a = A("10.10.10.6");
    cr_expect_not(mus_map_lookup(m, &a, &id));
    a = A("fd00::6");
    cr_expect_not(mus_map_lookup(m, &a, &id));

    mus_map_counters(m, 1, &c);
    cr_expect_eq(c.entries, 2);
    cr_expect_eq(c.adds, 2);
    mus_map_counters(m, 0, &c);
    cr_expect_eq(c.entries, 0);
    mus_map_counters(m, -1, &c);
    cr_expect_eq(c.entries, 2);

    /* bad arguments */
    cr_expect_eq(mus_map_add(m, MUS_MAP_MAX_HEADENDS, &s, ips, 1), -1);
    s.sid[0] = '\0';
    cr_expect_eq(mus_map_add(m, 0, &s, ips, 1), -1);
    s = sess("s2", MUS_ID_USER, 1);
    memset(s.name, 'x', sizeof(s.name));   /* unterminated */
    cr_expect_eq(mus_map_add(m, 0, &s, ips, 1), -1);
    cr_expect_str_eq(sid_at(m, "10.10.10.5"), "s1");
    mus_map_free(m);
}

Test(map, update_sets_address_list_and_identity)
{
    mus_map_t *m = new_map();
    mus_session_t s = sess("s1", MUS_ID_USER, 100);
    mus_addr_t ips[3] = {A("10.0.0.1"), A("10.0.0.2"), A("10.0.0.3")};
    mus_identity_t id;
    mus_map_counters_t c;

    cr_assert_eq(mus_map_add(m, 0, &s, ips, 2), 2);
    snprintf(s.groups, sizeof(s.groups), "eng,sales");
    cr_assert_eq(mus_map_add(m, 0, &s, ips + 1, 2), 2);   /* upd: .2 and .3 */
    cr_expect_str_eq(sid_at(m, "10.0.0.1"), "");
    cr_assert(mus_map_lookup(m, &ips[1], &id));
    cr_expect_str_eq(id.s.groups, "eng,sales");
    cr_assert(mus_map_lookup(m, &ips[2], &id));
    cr_expect_str_eq(id.s.groups, "eng,sales");
    mus_map_counters(m, 0, &c);
    cr_expect_eq(c.entries, 2);
    cr_expect_eq(c.conflicts, 0);

    /* duplicate addresses in one add are one address */
    mus_addr_t dup[2] = {ips[0], ips[0]};
    cr_expect_eq(mus_map_add(m, 0, &s, dup, 2), 1);
    mus_map_counters(m, 0, &c);
    cr_expect_eq(c.entries, 1);

    /* an empty list removes the session */
    cr_expect_eq(mus_map_add(m, 0, &s, NULL, 0), 0);
    mus_map_counters(m, 0, &c);
    cr_expect_eq(c.entries, 0);
    mus_map_free(m);
}

Test(map, del_whole_session_and_guarded_by_headend)
{
    mus_map_t *m = new_map();
    mus_session_t s = sess("s1", MUS_ID_USER, 100);
    mus_addr_t ips[2] = {A("10.0.0.1"), A("fd00::1")};
    mus_map_counters_t c;

    cr_assert_eq(mus_map_add(m, 0, &s, ips, 2), 2);
    /* same sid, other headend: not ours */
    cr_expect_eq(mus_map_del(m, 1, "s1", NULL, 0), 0);
    cr_expect_eq(mus_map_del(m, 1, "s1", ips, 2), 0);
    cr_expect_str_eq(sid_at(m, "10.0.0.1"), "s1");
    mus_map_counters(m, 1, &c);
    cr_expect_eq(c.ignored_dels, 3);
    /* n == 0: every address of the session */
    cr_expect_eq(mus_map_del(m, 0, "s1", NULL, 0), 2);
    cr_expect_str_eq(sid_at(m, "10.0.0.1"), "");
    cr_expect_str_eq(sid_at(m, "fd00::1"), "");
    mus_map_counters(m, 0, &c);
    cr_expect_eq(c.dels, 2);
    cr_expect_eq(c.entries, 0);
    cr_expect_eq(mus_map_del(m, 0, "s1", NULL, 0), 0);
    mus_map_free(m);
}

/* ---- correctness rules ---- */

Test(map, late_delete_never_removes_newer_session)
{
    mus_map_t *m = new_map();
    mus_map_counters_t c;

    /* ocserv reconnect: new sid on the same address before the old one's del */
    cr_assert_eq(add1(m, 0, "old", MUS_ID_USER, 100, "10.0.0.9"), 1);
    cr_assert_eq(add1(m, 0, "new", MUS_ID_USER, 200, "10.0.0.9"), 1);
    cr_expect_str_eq(sid_at(m, "10.0.0.9"), "new");
    cr_expect_eq(del1(m, 0, "old", "10.0.0.9"), 0);
    cr_expect_eq(mus_map_del(m, 0, "old", NULL, 0), 0);
    cr_expect_str_eq(sid_at(m, "10.0.0.9"), "new");
    mus_map_counters(m, 0, &c);
    cr_expect_eq(c.ignored_dels, 2);
    cr_expect_eq(c.conflicts, 1);
    cr_expect_eq(c.entries, 1);
    cr_expect_eq(del1(m, 0, "new", "10.0.0.9"), 1);
    cr_expect_str_eq(sid_at(m, "10.0.0.9"), "");
    mus_map_free(m);
}

Test(map, conflict_newest_wins_and_is_counted)
{
    mus_map_t *m = new_map();
    mus_map_counters_t c;

    cr_assert_eq(add1(m, 0, "b", MUS_ID_USER, 200, "10.0.0.1"), 1);
    /* an older session arriving later loses */
    cr_expect_eq(add1(m, 0, "a", MUS_ID_USER, 100, "10.0.0.1"), 0);
    cr_expect_str_eq(sid_at(m, "10.0.0.1"), "b");
    /* same `started`: the later arrival wins */
    cr_expect_eq(add1(m, 0, "c", MUS_ID_USER, 200, "10.0.0.1"), 1);
    cr_expect_str_eq(sid_at(m, "10.0.0.1"), "c");
    /* another headend: same rule */
    cr_expect_eq(add1(m, 1, "d", MUS_ID_USER, 150, "10.0.0.1"), 0);
    cr_expect_eq(add1(m, 1, "c", MUS_ID_USER, 300, "10.0.0.1"), 1);
    cr_expect_str_eq(sid_at(m, "10.0.0.1"), "c");
    mus_identity_t id;
    mus_addr_t a = A("10.0.0.1");
    cr_assert(mus_map_lookup(m, &a, &id));
    cr_expect_str_eq(id.headend, "asa-1");
    /* the loser's del changes nothing */
    cr_expect_eq(del1(m, 0, "c", "10.0.0.1"), 0);
    cr_expect_str_eq(sid_at(m, "10.0.0.1"), "c");

    mus_map_counters(m, 0, &c);
    cr_expect_eq(c.conflicts, 2);
    cr_expect_eq(c.entries, 0);
    mus_map_counters(m, 1, &c);
    cr_expect_eq(c.conflicts, 2);
    cr_expect_eq(c.entries, 1);
    mus_map_counters(m, -1, &c);
    cr_expect_eq(c.entries, 1);
    mus_map_free(m);
}

/* The machine tunnel hands over to the user tunnel and back, with the del of
 * the previous tunnel arriving before or after the add of the next one. */
Test(map, machine_user_machine_del_first)
{
    mus_map_t *m = new_map();
    mus_identity_t id;
    mus_addr_t a = A("10.0.0.50");

    cr_assert_eq(add1(m, 0, "m1", MUS_ID_MACHINE, 100, "10.0.0.50"), 1);
    cr_expect_eq(del1(m, 0, "m1", "10.0.0.50"), 1);
    cr_assert_eq(add1(m, 0, "u1", MUS_ID_USER, 110, "10.0.0.50"), 1);
    cr_assert(mus_map_lookup(m, &a, &id));
    cr_expect_eq(id.s.type, MUS_ID_USER);
    cr_expect_eq(del1(m, 0, "u1", "10.0.0.50"), 1);
    cr_assert_eq(add1(m, 0, "m2", MUS_ID_MACHINE, 120, "10.0.0.50"), 1);
    cr_assert(mus_map_lookup(m, &a, &id));
    cr_expect_eq(id.s.type, MUS_ID_MACHINE);
    cr_expect_str_eq(id.s.sid, "m2");
    mus_map_free(m);
}

Test(map, machine_user_machine_add_first)
{
    mus_map_t *m = new_map();
    mus_identity_t id;
    mus_addr_t a = A("10.0.0.50");
    mus_map_counters_t c;

    cr_assert_eq(add1(m, 0, "m1", MUS_ID_MACHINE, 100, "10.0.0.50"), 1);
    cr_assert_eq(add1(m, 0, "u1", MUS_ID_USER, 110, "10.0.0.50"), 1);
    cr_expect_eq(del1(m, 0, "m1", "10.0.0.50"), 0);   /* late */
    cr_assert(mus_map_lookup(m, &a, &id));
    cr_expect_eq(id.s.type, MUS_ID_USER);
    cr_expect_str_eq(id.s.sid, "u1");
    cr_assert_eq(add1(m, 0, "m2", MUS_ID_MACHINE, 120, "10.0.0.50"), 1);
    cr_expect_eq(mus_map_del(m, 0, "u1", NULL, 0), 0);   /* late, whole session */
    cr_assert(mus_map_lookup(m, &a, &id));
    cr_expect_eq(id.s.type, MUS_ID_MACHINE);
    cr_expect_str_eq(id.s.sid, "m2");
    mus_map_counters(m, 0, &c);
    cr_expect_eq(c.entries, 1);
    cr_expect_eq(c.conflicts, 2);
    mus_map_free(m);
}

/* ---- snapshots ---- */

#define SNAP_N      3000    /* addresses 10.2.x.y, 0 .. SNAP_N-1 */
#define SNAP_KEPT   1500    /* [0, SNAP_KEPT) are in every snapshot */
#define SNAP_ROUNDS 30

static void
snap_ip(unsigned i, char *buf, size_t len)
{
    snprintf(buf, len, "10.2.%u.%u", i / 250, i % 250 + 1);
}

struct snap_reader {
    mus_map_t *m;
    mus_addr_t kept[SNAP_KEPT];
    atomic_bool stop, ready;
    atomic_ulong lookups, misses;
};

static void *
snap_reader_main(void *arg)
{
    struct snap_reader *sr = arg;
    mus_map_reader_t *r = mus_map_reader_register(sr->m);
    mus_identity_t id;

    if (r == NULL) {
        atomic_fetch_add(&sr->misses, 1000000);
        atomic_store(&sr->ready, true);
        return NULL;
    }
    atomic_store(&sr->ready, true);
    while (!atomic_load_explicit(&sr->stop, memory_order_relaxed)) {
        for (unsigned i = 0; i < SNAP_KEPT; i++) {
            if (!mus_map_lookup(sr->m, &sr->kept[i], &id))
                atomic_fetch_add_explicit(&sr->misses, 1, memory_order_relaxed);
        }
        atomic_fetch_add_explicit(&sr->lookups, SNAP_KEPT, memory_order_relaxed);
        mus_map_reader_quiescent(r);
    }
    mus_map_reader_unregister(r);
    return NULL;
}

Test(map, snapshot_keeps_common_entries_visible, .timeout = 30)
{
    mus_map_t *m = new_map();
    struct snap_reader *sr = calloc(1, sizeof(*sr));
    pthread_t th;
    char ip[32], sid[32];
    mus_map_counters_t c;

    cr_assert_not_null(sr);
    sr->m = m;
    for (unsigned i = 0; i < SNAP_N; i++) {
        snap_ip(i, ip, sizeof(ip));
        snprintf(sid, sizeof(sid), "s%u", i);
        cr_assert_eq(add1(m, 0, sid, MUS_ID_USER, 1000, ip), 1);
        if (i < SNAP_KEPT)
            sr->kept[i] = A(ip);
    }
    cr_assert_eq(pthread_create(&th, NULL, snap_reader_main, sr), 0);
    while (!atomic_load(&sr->ready))
        sched_yield();

    for (unsigned round = 0; round < SNAP_ROUNDS; round++) {
        mus_map_snapshot_begin(m, 0);
        for (unsigned i = 0; i < SNAP_N; i++) {
            /* kept: a third same sid and identity, a third same sid with new
             * groups, a third a new sid (older!) taking over the address;
             * the rest alternates between present and absent */
            mus_session_t s;
            mus_addr_t a;
            if (i >= SNAP_KEPT && (i + round) % 2 == 0)
                continue;
            snap_ip(i, ip, sizeof(ip));
            a = A(ip);
            if (i < SNAP_KEPT && i % 3 == 2)
                snprintf(sid, sizeof(sid), "r%u-%u", round, i);
            else
                snprintf(sid, sizeof(sid), "s%u", i);
            s = sess(sid, MUS_ID_USER, i % 3 == 2 ? 500 : 1000);
            if (i % 3 == 1)
                snprintf(s.groups, sizeof(s.groups), "round-%u", round);
            cr_assert_eq(mus_map_snapshot_add(m, 0, &s, &a, 1), 0);
            if (i % 50 == 0)
                sched_yield();   /* let the reader run in between */
        }
        mus_map_snapshot_end(m, 0);
        mus_map_reclaim(m);
        for (unsigned i = SNAP_KEPT; i < SNAP_N; i++) {
            snap_ip(i, ip, sizeof(ip));
            if ((i + round) % 2 == 0)
                cr_expect_str_eq(sid_at(m, ip), "", "round %u %s", round, ip);
            else
                cr_expect_str_neq(sid_at(m, ip), "", "round %u %s", round, ip);
        }
        for (unsigned i = 0; i < SNAP_KEPT; i += 3) {
            snap_ip(i + 2, ip, sizeof(ip));
            snprintf(sid, sizeof(sid), "r%u-%u", round, i + 2);
            cr_expect_str_eq(sid_at(m, ip), sid);
        }
    }
    atomic_store(&sr->stop, true);
    pthread_join(th, NULL);
    cr_expect_eq(atomic_load(&sr->misses), 0, "a kept address was missing %lu times",
                 atomic_load(&sr->misses));
    cr_expect_gt(atomic_load(&sr->lookups), SNAP_ROUNDS * SNAP_KEPT);
    cr_log_info("snapshot: %lu lookups of kept addresses during %u snapshots",
                atomic_load(&sr->lookups), SNAP_ROUNDS);
    mus_map_counters(m, 0, &c);
    cr_expect_eq(c.snapshots, SNAP_ROUNDS);
    cr_expect_eq(c.conflicts, 0);   /* a snapshot rules its own headend */
    cr_expect_eq(mus_map_reclaim(m), 0);
    free(sr);
    mus_map_free(m);
}

Test(map, snapshot_absent_go_at_end_abort_keeps)
{
    mus_map_t *m = new_map();
    mus_session_t s;
    mus_addr_t a;
    mus_map_counters_t c;

    cr_assert_eq(add1(m, 0, "keep", MUS_ID_USER, 10, "10.0.0.1"), 1);
    cr_assert_eq(add1(m, 0, "gone", MUS_ID_USER, 10, "10.0.0.2"), 1);
    cr_assert_eq(add1(m, 1, "other", MUS_ID_USER, 10, "10.0.0.3"), 1);

    /* snapshot_add without begin */
    s = sess("x", MUS_ID_USER, 1);
    a = A("10.0.0.9");
    cr_expect_eq(mus_map_snapshot_add(m, 0, &s, &a, 1), -1);

    mus_map_snapshot_begin(m, 0);
    s = sess("keep", MUS_ID_USER, 10);
    a = A("10.0.0.1");
    cr_assert_eq(mus_map_snapshot_add(m, 0, &s, &a, 1), 0);
    s = sess("fresh", MUS_ID_USER, 20);
    a = A("10.0.0.4");
    cr_assert_eq(mus_map_snapshot_add(m, 0, &s, &a, 1), 0);
    /* staged only: nothing changed yet */
    cr_expect_str_eq(sid_at(m, "10.0.0.2"), "gone");
    cr_expect_str_eq(sid_at(m, "10.0.0.4"), "");
    mus_map_snapshot_end(m, 0);
    cr_expect_str_eq(sid_at(m, "10.0.0.1"), "keep");
    cr_expect_str_eq(sid_at(m, "10.0.0.2"), "");
    cr_expect_str_eq(sid_at(m, "10.0.0.3"), "other");   /* other headend untouched */
    cr_expect_str_eq(sid_at(m, "10.0.0.4"), "fresh");
    /* the removed session is forgotten: its late del is ignored */
    cr_expect_eq(mus_map_del(m, 0, "gone", NULL, 0), 0);

    /* abort: the live set stays as it was */
    mus_map_snapshot_begin(m, 0);
    s = sess("only", MUS_ID_USER, 30);
    a = A("10.0.0.5");
    cr_assert_eq(mus_map_snapshot_add(m, 0, &s, &a, 1), 0);
    mus_map_snapshot_abort(m, 0);
    cr_expect_str_eq(sid_at(m, "10.0.0.1"), "keep");
    cr_expect_str_eq(sid_at(m, "10.0.0.4"), "fresh");
    cr_expect_str_eq(sid_at(m, "10.0.0.5"), "");
    cr_expect_eq(mus_map_snapshot_add(m, 0, &s, &a, 1), -1);
    mus_map_snapshot_end(m, 0);   /* no snapshot: no-op */
    cr_expect_str_eq(sid_at(m, "10.0.0.1"), "keep");

    /* an empty snapshot empties that headend only */
    mus_map_snapshot_begin(m, 0);
    mus_map_snapshot_end(m, 0);
    cr_expect_str_eq(sid_at(m, "10.0.0.1"), "");
    cr_expect_str_eq(sid_at(m, "10.0.0.3"), "other");
    mus_map_counters(m, 0, &c);
    cr_expect_eq(c.entries, 0);
    cr_expect_eq(c.snapshots, 2);
    mus_map_counters(m, 1, &c);
    cr_expect_eq(c.entries, 1);
    mus_map_free(m);
}

Test(map, snapshot_conflict_with_other_headend)
{
    mus_map_t *m = new_map();
    mus_session_t s;
    mus_addr_t a = A("10.0.0.1");
    mus_map_counters_t c;

    cr_assert_eq(add1(m, 1, "theirs", MUS_ID_USER, 500, "10.0.0.1"), 1);
    mus_map_snapshot_begin(m, 0);
    s = sess("older", MUS_ID_USER, 100);
    cr_assert_eq(mus_map_snapshot_add(m, 0, &s, &a, 1), 0);
    mus_map_snapshot_end(m, 0);
    cr_expect_str_eq(sid_at(m, "10.0.0.1"), "theirs");
    mus_map_counters(m, 0, &c);
    cr_expect_eq(c.conflicts, 1);
    cr_expect_eq(c.entries, 0);
    mus_map_free(m);
}

/* ---- stale headends ---- */

Test(map, headend_lost_stale_expire_connected)
{
    mus_map_t *m = new_map();
    mus_identity_t id;
    mus_addr_t a = A("10.0.0.1");
    mus_map_counters_t c;

    cr_assert_eq(add1(m, 0, "s0", MUS_ID_USER, 10, "10.0.0.1"), 1);
    cr_assert_eq(add1(m, 0, "s1", MUS_ID_USER, 10, "10.0.0.2"), 1);
    cr_assert_eq(add1(m, 1, "t0", MUS_ID_USER, 10, "10.0.1.1"), 1);

    mus_map_headend_lost(m, 0, 1000);
    cr_assert(mus_map_lookup(m, &a, &id));
    cr_expect(id.stale);
    cr_expect_str_eq(id.headend, "asa-0");
    a = A("10.0.1.1");
    cr_assert(mus_map_lookup(m, &a, &id));
    cr_expect_not(id.stale);
    mus_map_counters(m, -1, &c);
    cr_expect_eq(c.entries, 3);
    cr_expect_eq(c.stale_entries, 2);

    /* reconnect within grace: no longer stale */
    mus_map_headend_connected(m, 0);
    a = A("10.0.0.1");
    cr_assert(mus_map_lookup(m, &a, &id));
    cr_expect_not(id.stale);
    cr_expect_eq(mus_map_expire(m, 0, 5000, 300), 0);   /* not stale: nothing */

    /* lost again; expiry only after the grace period (counted from the loss) */
    mus_map_headend_lost(m, 0, 2000);
    mus_map_headend_lost(m, 0, 2100);   /* repeated: keeps the first time */
    cr_expect_eq(mus_map_expire(m, 0, 2200, 300), 0);
    cr_expect_eq(mus_map_expire(m, 0, 2299, 300), 0);
    cr_assert(mus_map_lookup(m, &a, &id));
    cr_expect_eq(mus_map_expire(m, 0, 2300, 300), 2);
    cr_expect_not(mus_map_lookup(m, &a, &id));
    cr_expect_str_eq(sid_at(m, "10.0.1.1"), "t0");
    mus_map_counters(m, 0, &c);
    cr_expect_eq(c.entries, 0);
    cr_expect_eq(c.expired, 2);
    cr_expect_eq(mus_map_expire(m, 0, 9999, 300), 0);

    /* grace 0: dropped at once */
    mus_map_headend_lost(m, 1, 3000);
    cr_expect_eq(mus_map_expire(m, 1, 3000, 0), 1);
    cr_expect_str_eq(sid_at(m, "10.0.1.1"), "");
    mus_map_free(m);
}

/* ---- reclamation ---- */

struct hold_reader {
    mus_map_t *m;
    atomic_int state;   /* 0 start, 1 registered+looked up, 2 go quiescent, 3 done, 4 exit */
};

static void *
hold_reader_main(void *arg)
{
    struct hold_reader *hr = arg;
    mus_map_reader_t *r = mus_map_reader_register(hr->m);
    mus_identity_t id;
    mus_addr_t a;

    mus_addr_parse("10.0.0.1", &a);
    (void)mus_map_lookup(hr->m, &a, &id);   /* may hold a reference now */
    atomic_store(&hr->state, 1);
    while (atomic_load(&hr->state) != 2)
        sched_yield();
    mus_map_reader_quiescent(r);
    atomic_store(&hr->state, 3);
    while (atomic_load(&hr->state) != 4)
        sched_yield();
    mus_map_reader_unregister(r);
    return NULL;
}

Test(map, reclaim_waits_for_quiescent_readers)
{
    mus_map_t *m = new_map();
    struct hold_reader hr = {.m = m};
    pthread_t th;
    mus_map_reader_t *off;

    cr_assert_eq(add1(m, 0, "s", MUS_ID_USER, 10, "10.0.0.1"), 1);
    cr_expect_eq(mus_map_reclaim(m), 0);

    /* a registered reader that is offline holds nothing back */
    off = mus_map_reader_register(m);
    cr_assert_not_null(off);
    mus_map_reader_offline(off);

    cr_assert_eq(pthread_create(&th, NULL, hold_reader_main, &hr), 0);
    while (atomic_load(&hr.state) != 1)
        sched_yield();

    cr_expect_eq(mus_map_del(m, 0, "s", NULL, 0), 1);
    cr_assert_eq(add1(m, 0, "t", MUS_ID_USER, 10, "10.0.0.2"), 1);
    cr_assert_eq(add1(m, 0, "t", MUS_ID_USER, 11, "10.0.0.2"), 1);   /* replaces */
    cr_expect_eq(mus_map_reclaim(m), 2);   /* both wait for the reader */
    cr_expect_eq(mus_map_reclaim(m), 2);

    atomic_store(&hr.state, 2);
    while (atomic_load(&hr.state) != 3)
        sched_yield();
    cr_expect_eq(mus_map_reclaim(m), 0);

    /* an online reader that was quiescent before the change holds it back */
    mus_map_reader_online(off);
    cr_assert_eq(add1(m, 0, "t", MUS_ID_USER, 12, "10.0.0.2"), 1);
    cr_expect_eq(mus_map_reclaim(m), 1);
    mus_map_reader_quiescent(off);
    atomic_store(&hr.state, 4);
    pthread_join(th, NULL);   /* unregistered: no longer counts */
    cr_expect_eq(mus_map_reclaim(m), 0);
    mus_map_reader_unregister(off);
    mus_map_free(m);
}

Test(map, reader_slots_are_limited)
{
    mus_map_t *m = new_map();
    mus_map_reader_t **rs = calloc(MUS_MAP_MAX_READERS, sizeof(*rs));

    cr_assert_not_null(rs);
    for (unsigned i = 0; i < MUS_MAP_MAX_READERS; i++) {
        rs[i] = mus_map_reader_register(m);
        cr_assert_not_null(rs[i]);
    }
    cr_expect_null(mus_map_reader_register(m));
    mus_map_reader_unregister(rs[7]);
    rs[7] = mus_map_reader_register(m);
    cr_expect_not_null(rs[7]);
    for (unsigned i = 0; i < MUS_MAP_MAX_READERS; i++)
        mus_map_reader_unregister(rs[i]);
    free(rs);
    mus_map_free(m);
}

/* ---- walk ---- */

struct walk_count {
    unsigned n, bad;
};

static int
walk_cb(void *arg, const mus_addr_t *addr, const mus_identity_t *id)
{
    struct walk_count *wc = arg;
    char buf[48], want[64];

    mus_addr_format(addr, buf, sizeof(buf));
    snprintf(want, sizeof(want), "s-%s", buf);
    if (strcmp(want, id->s.sid) != 0)
        wc->bad++;
    wc->n++;
    return 0;
}

Test(map, walk_visits_every_entry)
{
    mus_map_t *m = new_map();
    struct walk_count wc = {0};
    char ip[32], sid[64];

    for (unsigned i = 0; i < 100; i++) {
        snprintf(ip, sizeof(ip), "10.3.0.%u", i);
        snprintf(sid, sizeof(sid), "s-%s", ip);
        cr_assert_eq(add1(m, i % 3, sid, MUS_ID_DEVICE, 1, ip), 1);
    }
    mus_map_walk(m, walk_cb, &wc);
    cr_expect_eq(wc.n, 100);
    cr_expect_eq(wc.bad, 0);
    mus_map_free(m);
}

/* ---- stress ---- */

#define STRESS_POOL     512      /* addresses 10.9.x.y and fd09::x */
#define STRESS_READERS  3
#define STRESS_MS       2500     /* writer run time */
#define STRESS_RECENT   256      /* sids the writer may delete */
#define WHY_LEN         2048     /* room for a whole identity in a message */

struct stress {
    mus_map_t *m;
    mus_addr_t pool[STRESS_POOL];
    atomic_bool stop;
    atomic_ulong lookups, hits, bad;
    char first_bad[WHY_LEN];
    atomic_flag bad_reported;
};

static void
stress_addr(unsigned i, mus_addr_t *a)
{
    char ip[48];

    if (i % 4 == 3)
        snprintf(ip, sizeof(ip), "fd09::%x", i);
    else
        snprintf(ip, sizeof(ip), "10.9.%u.%u", i / 200, i % 200);
    mus_addr_parse(ip, a);
}

/* A session "h<h>-<n>" on addresses ips: everything else derives from it. */
static mus_session_t
stress_sess(unsigned h, unsigned long n, int64_t started, const mus_addr_t *ips, size_t k)
{
    mus_session_t s;
    size_t off;

    memset(&s, 0, sizeof(s));
    snprintf(s.sid, sizeof(s.sid), "h%u-%lu", h, n);
    s.type = (enum mus_id_type)(n % 3);
    snprintf(s.name, sizeof(s.name), "user-%s@corp.example", s.sid);
    snprintf(s.domain, sizeof(s.domain), "D%lu", n % 7);
    off = (size_t)snprintf(s.groups, sizeof(s.groups), "sid=%s", s.sid);
    for (size_t i = 0; i < k; i++) {
        char buf[48];
        mus_addr_format(&ips[i], buf, sizeof(buf));
        off += (size_t)snprintf(s.groups + off, sizeof(s.groups) - off, ",ip=%s", buf);
    }
    s.started = started;
    snprintf(s.client_ip, sizeof(s.client_ip), "203.0.113.%lu", n % 250);
    snprintf(s.tunnel, sizeof(s.tunnel), "%s", n % 2 ? "ssl" : "ipsec");
    return s;
}

/* Every field of id agrees with its sid and the looked-up address. */
static bool
stress_consistent(const mus_addr_t *a, const mus_identity_t *id, char *why, size_t len)
{
    unsigned h;
    unsigned long n;
    char want[MUS_NAME_MAX], ip[48], he[16];

    if (sscanf(id->s.sid, "h%u-%lu", &h, &n) != 2) {
        snprintf(why, len, "sid %s", id->s.sid);
        return false;
    }
    snprintf(he, sizeof(he), "asa-%u", h);
    snprintf(want, sizeof(want), "user-%s@corp.example", id->s.sid);
    mus_addr_format(a, ip, sizeof(ip));
    if (strcmp(id->s.name, want) != 0 || strcmp(id->headend, he) != 0 ||
        id->s.type != (enum mus_id_type)(n % 3) || strncmp(id->s.groups, "sid=", 4) != 0 ||
        strncmp(id->s.groups + 4, id->s.sid, strlen(id->s.sid)) != 0) {
        snprintf(why, len, "identity of %s: %s %s %s", id->s.sid, id->s.name, id->headend,
                 id->s.groups);
        return false;
    }
    snprintf(want, sizeof(want), ",ip=%s", ip);
    const char *g = id->s.groups;
    size_t wl = strlen(want);
    while ((g = strstr(g, want)) != NULL && g[wl] != ',' && g[wl] != '\0')
        g += wl;
    if (g == NULL) {
        snprintf(why, len, "%s not in %s", ip, id->s.groups);
        return false;
    }
    return true;
}

static void *
stress_reader(void *arg)
{
    struct stress *st = arg;
    mus_map_reader_t *r = mus_map_reader_register(st->m);
    mus_identity_t id;
    unsigned long lookups = 0, hits = 0, bad = 0;
    unsigned x = (unsigned)(uintptr_t)&id;
    char why[WHY_LEN];

    if (r == NULL) {
        atomic_fetch_add(&st->bad, 1);
        return NULL;
    }
    while (!atomic_load_explicit(&st->stop, memory_order_relaxed)) {
        for (unsigned i = 0; i < 64; i++) {
            const mus_addr_t *a;
            x = x * 1103515245u + 12345u;
            a = &st->pool[(x >> 8) % STRESS_POOL];
            lookups++;
            if (!mus_map_lookup(st->m, a, &id))
                continue;
            hits++;
            if (!stress_consistent(a, &id, why, sizeof(why))) {
                bad++;
                if (!atomic_flag_test_and_set(&st->bad_reported))
                    snprintf(st->first_bad, sizeof(st->first_bad), "%s", why);
            }
        }
        mus_map_reader_quiescent(r);
        if ((lookups & 0x3fff) == 0) {   /* now and then, a "blocking wait" */
            mus_map_reader_offline(r);
            sched_yield();
            mus_map_reader_online(r);
        }
    }
    mus_map_reader_unregister(r);
    atomic_fetch_add(&st->lookups, lookups);
    atomic_fetch_add(&st->hits, hits);
    atomic_fetch_add(&st->bad, bad);
    return NULL;
}

struct stress_walk {
    uint64_t per_he[MUS_MAP_MAX_HEADENDS];
    unsigned bad;
};

static int
stress_walk_cb(void *arg, const mus_addr_t *addr, const mus_identity_t *id)
{
    struct stress_walk *sw = arg;
    char why[WHY_LEN];
    unsigned h;

    if (!stress_consistent(addr, id, why, sizeof(why)) ||
        sscanf(id->s.sid, "h%u-", &h) != 1 || h >= MUS_MAP_MAX_HEADENDS)
        sw->bad++;
    else
        sw->per_he[h]++;
    return 0;
}

Test(map, stress_readers_and_writer, .timeout = 60)
{
    struct stress *st = calloc(1, sizeof(*st));
    pthread_t th[STRESS_READERS];
    struct { unsigned h; unsigned long n; } recent[STRESS_RECENT];
    unsigned long next = 1, ops = 0;
    unsigned x = 12345;
    uint64_t t0;
    mus_map_counters_t c;
    struct stress_walk sw = {0};

    cr_assert_not_null(st);
    st->m = new_map();
    atomic_flag_clear(&st->bad_reported);
    for (unsigned i = 0; i < STRESS_POOL; i++)
        stress_addr(i, &st->pool[i]);
    memset(recent, 0, sizeof(recent));
    for (int i = 0; i < STRESS_READERS; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, stress_reader, st), 0);

    t0 = now_ms();
    while (now_ms() - t0 < STRESS_MS) {
        for (int burst = 0; burst < 100; burst++, ops++) {
            unsigned op, h;
            mus_addr_t ips[3];
            size_t k;
            x = x * 1103515245u + 12345u;
            op = (x >> 8) % 100;
            h = (x >> 20) % 3;
            k = 1 + (x >> 4) % 3;
            for (size_t i = 0; i < k; i++) {
                x = x * 1103515245u + 12345u;
                ips[i] = st->pool[(x >> 8) % STRESS_POOL];
            }
            if (op < 55) {              /* add, sometimes an older session */
                int64_t started = (int64_t)next - (int64_t)((x >> 12) % 20);
                mus_session_t s = stress_sess(h, next, started, ips, k);
                mus_map_add(st->m, h, &s, ips, k);
                recent[next % STRESS_RECENT].h = h;
                recent[next % STRESS_RECENT].n = next;
                next++;
            } else if (op < 90) {       /* del, whole or part */
                char sid[32];
                unsigned j = (x >> 14) % STRESS_RECENT;
                snprintf(sid, sizeof(sid), "h%u-%lu", recent[j].h, recent[j].n);
                if (op < 70)
                    mus_map_del(st->m, recent[j].h, sid, NULL, 0);
                else
                    mus_map_del(st->m, recent[j].h, sid, ips, k);
            } else if (op < 92) {       /* snapshot of headend 2 */
                unsigned count = 50 + (x >> 10) % 100;
                mus_map_snapshot_begin(st->m, 2);
                for (unsigned i = 0; i < count; i++) {
                    x = x * 1103515245u + 12345u;
                    ips[0] = st->pool[(x >> 8) % STRESS_POOL];
                    mus_session_t s = stress_sess(2, next, (int64_t)next, ips, 1);
                    mus_map_snapshot_add(st->m, 2, &s, ips, 1);
                    recent[next % STRESS_RECENT].h = 2;
                    recent[next % STRESS_RECENT].n = next;
                    next++;
                }
                if (op == 90)
                    mus_map_snapshot_abort(st->m, 2);
                else
                    mus_map_snapshot_end(st->m, 2);
            } else if (op < 95) {
                mus_map_headend_lost(st->m, 1, (int64_t)ops);
            } else if (op < 98) {
                mus_map_headend_connected(st->m, 1);
            } else {
                mus_map_expire(st->m, 1, (int64_t)ops, 50);
            }
        }
        mus_map_reclaim(st->m);
    }
    atomic_store(&st->stop, true);
    for (int i = 0; i < STRESS_READERS; i++)
        pthread_join(th[i], NULL);

    cr_expect_eq(atomic_load(&st->bad), 0, "inconsistent identities: %lu (first: %s)",
                 atomic_load(&st->bad), st->first_bad);
    cr_expect_gt(atomic_load(&st->hits), 1000, "hits %lu", atomic_load(&st->hits));
    cr_log_info("stress: %lu writer ops, %lu lookups, %lu hits", ops,
                atomic_load(&st->lookups), atomic_load(&st->hits));

    /* the writer's books agree with the table */
    mus_map_walk(st->m, stress_walk_cb, &sw);
    cr_expect_eq(sw.bad, 0);
    for (unsigned h = 0; h < 3; h++) {
        mus_map_counters(st->m, (int)h, &c);
        cr_expect_eq(c.entries, sw.per_he[h], "headend %u: %lu vs %lu", h,
                     (unsigned long)c.entries, (unsigned long)sw.per_he[h]);
    }
    cr_expect_eq(mus_map_reclaim(st->m), 0);
    mus_map_free(st->m);
    free(st);
}

/* ---- the history the observer is told ---- */

struct obs_log {
    char lines[32][1024];
    int n;
};

static void
obs_cb(void *arg, enum mus_map_event ev, const mus_addr_t *addr, const mus_identity_t *id,
       const char *reason)
{
    struct obs_log *l = arg;
    char ip[64];

    mus_addr_format(addr, ip, sizeof(ip));
    cr_assert_lt(l->n, 32);
    snprintf(l->lines[l->n++], sizeof(l->lines[0]), "%s %s %s %s %s",
             ev == MUS_MAP_START ? "start" : "end", ip, id->s.sid, id->headend,
             reason ? reason : "-");
}

Test(map, observer_sees_every_start_and_end)
{
    mus_map_t *m = new_map();
    struct obs_log l = {0};
    mus_session_t s = sess("s1", MUS_ID_USER, 100);
    mus_addr_t two[2] = { A("10.0.0.1"), A("fd00::1") };

    cr_assert_eq(mus_map_headend_set(m, 0, "hq"), 0);
    cr_assert_eq(mus_map_headend_set(m, 1, "branch"), 0);
    mus_map_set_observer(m, obs_cb, &l);
    cr_assert_eq(mus_map_add(m, 0, &s, two, 2), 2);
    snprintf(s.groups, sizeof(s.groups), "changed");
    cr_assert_eq(mus_map_add(m, 0, &s, two, 2), 2);          /* details only: no event */
    cr_assert_eq(mus_map_add(m, 0, &s, two, 1), 1);          /* drops fd00::1 */
    cr_assert_eq(add1(m, 1, "s2", MUS_ID_USER, 200, "10.0.0.1"), 1);   /* newer, elsewhere */
    cr_assert_eq(del1(m, 1, "s2", "10.0.0.1"), 1);
    cr_assert_eq(add1(m, 0, "s3", MUS_ID_MACHINE, 300, "10.0.0.3"), 1);
    cr_assert_eq(add1(m, 0, "s4", MUS_ID_USER, 300, "10.0.0.4"), 1);
    mus_map_snapshot_begin(m, 0);
    {
        mus_session_t s4 = sess("s4", MUS_ID_USER, 300);
        mus_addr_t a4 = A("10.0.0.4");
        cr_assert_geq(mus_map_snapshot_add(m, 0, &s4, &a4, 1), 0);
    }
    mus_map_snapshot_end(m, 0);                              /* s3 is gone */
    mus_map_headend_lost(m, 0, 1000);
    cr_assert_eq(mus_map_expire(m, 0, 1100, 60), 1);         /* s4 */

    const char *want[] = {
        "start 10.0.0.1 s1 hq -",
        "start fd00::1 s1 hq -",
        "end fd00::1 s1 hq address removed",
        "end 10.0.0.1 s1 hq replaced by a newer session",
        "start 10.0.0.1 s2 branch -",
        "end 10.0.0.1 s2 branch logout",
        "start 10.0.0.3 s3 hq -",
        "start 10.0.0.4 s4 hq -",
        "end 10.0.0.3 s3 hq not in the headend's snapshot",
        "end 10.0.0.4 s4 hq headend unreachable past the grace period",
    };
    for (int i = 0; i < l.n && i < (int)N_ELEMS(want); i++)
        cr_expect_str_eq(l.lines[i], want[i], "event %d: %s", i, l.lines[i]);
    cr_expect_eq(l.n, (int)N_ELEMS(want));
    mus_map_free(m);
}

/* ---- the headend's stale mark on one session ---- */

Test(map, session_stale_mark_is_kept_and_cleared)
{
    mus_map_t *m = new_map();
    mus_map_reader_t *r = mus_map_reader_register(m);
    mus_session_t s = sess("s1", MUS_ID_USER, 100);
    mus_addr_t a = A("10.1.2.3");
    mus_identity_t id;

    cr_assert_eq(mus_map_add(m, 0, &s, &a, 1), 1);
    cr_assert(mus_map_lookup(m, &a, &id));
    cr_expect(!id.stale);
    cr_expect(!id.s.stale);
    s.stale = true;   /* an upd with "stale":true: same identity, new mark */
    cr_assert_eq(mus_map_add(m, 0, &s, &a, 1), 1);
    cr_assert(mus_map_lookup(m, &a, &id));
    cr_expect(id.s.stale, "the session's own mark");
    cr_expect(id.stale, "shown as stale like a lost headend's entry");
    cr_expect_str_eq(id.s.name, "n:s1");
    s.stale = false;  /* refreshed */
    cr_assert_eq(mus_map_add(m, 0, &s, &a, 1), 1);
    cr_assert(mus_map_lookup(m, &a, &id));
    cr_expect(!id.stale);
    cr_expect(!id.s.stale);
    mus_map_reader_unregister(r);
    mus_map_free(m);
}
