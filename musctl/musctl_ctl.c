/*
 * musctl/musctl_ctl.c: the musctl subcommands that ask a running musproxy
 * through its control socket (proxy/control.h): `status` prints every
 * headend session the way the appliance's musstatus does, the RADIUS
 * listener's counters, plus map and probe counters; `map` lists the IP -> identity map, optionally filtered; `wccp`
 * shows the WCCP service groups from the same status document. It
 * only reads; it changes nothing in the daemon.
 */
#include "musctl.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define REPLY_MAX (64u << 20)   /* a map of 100 000 entries is ~30 MiB of JSON */

/* Sends one request line and reads the JSON reply. NULL with a message on stderr. */
static json_t *
ask(const char *path, const char *request)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    char *buf = NULL;
    size_t len = 0, cap = 0;
    json_error_t jerr;
    json_t *reply = NULL;
    int fd = -1;

    if (strlen(path) >= sizeof(sun.sun_path)) {
        fprintf(stderr, "musctl: socket path too long: %s\n", path);
        return NULL;
    }
    strcpy(sun.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        fprintf(stderr, "musctl: cannot reach musproxy at %s: %s (is it running? see mus.control_socket)\n",
                path, strerror(errno));
        goto out;
    }
    if (write(fd, request, strlen(request)) < 0 || write(fd, "\n", 1) < 0) {
        fprintf(stderr, "musctl: %s: %s\n", path, strerror(errno));
        goto out;
    }
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t n;
        if (poll(&p, 1, MUSCTL_TIMEOUT_MS) <= 0) {
            fprintf(stderr, "musctl: no answer from musproxy within %d ms\n", MUSCTL_TIMEOUT_MS);
            goto out;
        }
        if (len + 4096 > cap) {
            char *b;
            cap = cap ? cap * 2 : 65536;
            if (cap > REPLY_MAX) {
                fprintf(stderr, "musctl: reply too large\n");
                goto out;
            }
            b = realloc(buf, cap);
            if (b == NULL)
                goto out;
            buf = b;
        }
        n = read(fd, buf + len, cap - len);
        if (n < 0) {
            fprintf(stderr, "musctl: %s\n", strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    reply = json_loadb(buf ? buf : "", len, 0, &jerr);
    if (reply == NULL)
        fprintf(stderr, "musctl: bad reply from musproxy: %s\n", jerr.text);
    else if (json_is_string(json_object_get(reply, "error"))) {
        fprintf(stderr, "musctl: %s\n", json_string_value(json_object_get(reply, "error")));
        json_decref(reply);
        reply = NULL;
    }
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    return reply;
}

static const char *
str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s && s[0] ? s : "-";
}

static long long
num(json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

/* "2026-11-22 11:00:00 UTC", or "-" for 0 */
static const char *
when(long long t, char *buf, size_t len)
{
    struct tm tm;
    time_t tt = (time_t)t;

    if (t <= 0)
        return "-";
    gmtime_r(&tt, &tm);
    strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
    return buf;
}

struct common_opts {
    const char *socket;
    int json;
    const char *user;
    const char *ip;
};

static int
parse_opts(int argc, char **argv, struct common_opts *o, int with_filters)
{
    static const struct option longopts[] = {
        {"socket", required_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},
        {"user", required_argument, NULL, 'u'},
        {"ip", required_argument, NULL, 'i'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    o->socket = MUSCTL_DEFAULT_SOCKET;
    optind = 1;
    while ((c = getopt_long(argc, argv, "s:ju:i:h", longopts, NULL)) != -1) {
        switch (c) {
        case 's': o->socket = optarg; break;
        case 'j': o->json = 1; break;
        case 'u': if (!with_filters) goto usage; o->user = optarg; break;
        case 'i': if (!with_filters) goto usage; o->ip = optarg; break;
        default: goto usage;
        }
    }
    if (optind != argc || (o->user && o->ip))
        goto usage;
    return 0;
usage:
    fprintf(stderr, "usage: musctl %s [--socket PATH] [--json]%s\n", argv[0],
            with_filters ? " [--user NAME | --ip ADDR]" : "");
    return -1;
}

/* The userspace GRE decapsulation (proxy/gre.h), when enabled. */
static void
print_gre(json_t *g)
{
    json_t *d = json_object_get(g, "dropped"), *rt;
    const char *le = json_string_value(json_object_get(g, "last_error"));
    size_t i;

    if (!json_is_true(json_object_get(g, "enabled"))) {
        printf("GRE: off\n");
        return;
    }
    printf("GRE: %s (mtu %lld): %lld packets in (%lld bytes), %lld decapsulated (%lld bytes, "
           "%lld WCCPv1)\n", str(g, "tun"), num(g, "mtu"), num(g, "packets_in"),
           num(g, "bytes_in"), num(g, "decapsulated"), num(g, "bytes_out"), num(g, "wccpv1"));
    printf("  dropped: %lld not from a router, %lld bad GRE, %lld bad inner packet, "
           "%lld TUN write errors\n", num(d, "not_router"), num(d, "bad_gre"),
           num(d, "bad_inner"), num(d, "tun_write"));
    json_array_foreach(json_object_get(g, "routers"), i, rt)
        printf("  router %s: %lld packets\n", str(rt, "address"), num(rt, "packets"));
    if (le && le[0])
        printf("  last error: %s\n", le);
}

/* musproxy's own RADIUS accounting listener (mus/feed_radius.h), if any. */
static void
print_radius(json_t *r)
{
    json_t *d = json_object_get(r, "dropped"), *t = json_object_get(r, "status_types");
    json_t *s = json_object_get(r, "sessions"), *a;
    char t1[64];
    size_t i;

    printf("RADIUS %s: %s", str(r, "name"),
           json_is_true(json_object_get(r, "listening")) ? "listening on" : "STOPPED (was on");
    json_array_foreach(json_object_get(r, "listen"), i, a)
        printf("%s %s", i ? "," : "", json_string_value(a));
    printf("%s (%lld clients)\n", json_is_true(json_object_get(r, "listening")) ? "" : ")",
           num(r, "clients"));
    printf("  received: %lld   answered: %lld   applied: %lld map changes   "
           "retransmissions: %lld\n", num(r, "received"), num(r, "responses"),
           num(r, "applied"), num(r, "duplicates"));
    printf("  dropped:  %lld wrong secret, %lld unknown client, %lld malformed, "
           "%lld not applied\n", num(d, "wrong_secret"), num(d, "unknown_client"),
           num(d, "malformed"), num(d, "not_applied"));
    printf("  requests: %lld start, %lld interim, %lld stop, %lld accounting-on, "
           "%lld accounting-off, %lld other; %lld without an address\n", num(t, "start"),
           num(t, "interim"), num(t, "stop"), num(t, "accounting_on"), num(t, "accounting_off"),
           num(t, "other"), num(r, "no_address"));
    printf("  sessions: %lld (stale %lld; %lld marked stale, %lld removed)   entries: %lld "
           "(stale %lld)\n", num(s, "now"), num(s, "stale"), num(s, "marked_stale"),
           num(s, "removed_stale"), num(r, "entries"), num(r, "stale_entries"));
    printf("  last event:     %s\n", when(num(r, "last_event"), t1, sizeof(t1)));
    printf("  last error:     %s\n", str(r, "last_error"));
}

int
musctl_cmd_status(int argc, char **argv)
{
    struct common_opts o = {0};
    json_t *r, *hs, *h, *m, *p;
    size_t i;
    char t1[64], t2[64], t3[64];

    if (parse_opts(argc, argv, &o, 0) < 0)
        return 2;
    r = ask(o.socket, "status");
    if (r == NULL)
        return 1;
    if (o.json) {
        json_dumpf(r, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        putchar('\n');
        json_decref(r);
        return 0;
    }
    hs = json_object_get(r, "headends");
    if (json_array_size(hs) == 0 && !json_is_object(json_object_get(r, "radius")))
        printf("No headends configured (mus.headends in the configuration).\n");
    json_array_foreach(hs, i, h) {
        printf("Headend %s: %s", str(h, "name"), str(h, "state"));
        if (num(h, "connected_since") > 0)
            printf(" since %s", when(num(h, "connected_since"), t1, sizeof(t1)));
        printf(" (%s)\n", str(h, "address"));
        printf("  last event:     %s\n", when(num(h, "last_event"), t1, sizeof(t1)));
        printf("  last attempt:   %s   next attempt: %s\n",
               when(num(h, "last_attempt"), t2, sizeof(t2)),
               strcmp(str(h, "state"), "idle") == 0 ? when(num(h, "next_attempt"), t3, sizeof(t3)) : "-");
        printf("  events applied: %lld   reconnects: %lld   snapshots: %lld   resumes: %lld\n",
               num(h, "events_applied"), num(h, "reconnects"), num(h, "snapshots"),
               num(h, "resumes"));
        printf("  entries:        %lld (stale %lld)   epoch %s seq %lld\n", num(h, "entries"),
               num(h, "stale_entries"), str(h, "epoch"), num(h, "seq"));
        printf("  last error:     %s\n", str(h, "last_error"));
    }
    if (json_is_object(json_object_get(r, "radius")))
        print_radius(json_object_get(r, "radius"));
    m = json_object_get(r, "map");
    printf("Map: %lld addresses (%lld stale), %lld adds, %lld deletes (%lld ignored as late), "
           "%lld conflicts, %lld snapshots, %lld expired\n",
           num(m, "entries"), num(m, "stale_entries"), num(m, "adds"), num(m, "dels"),
           num(m, "ignored_dels"), num(m, "conflicts"), num(m, "snapshots"), num(m, "expired"));
    p = json_object_get(r, "probes");
    printf("Probes: %lld from %zu clients\n", num(p, "total"),
           json_array_size(json_object_get(p, "clients")));
    p = json_object_get(r, "connections");
    printf("Connections: %lld open of max_connections %lld (at the limit %lld times)\n",
           num(p, "open"), num(p, "max"), num(p, "times_full"));
    p = json_object_get(r, "store");
    if (json_is_object(p)) {
        const char *le = json_string_value(json_object_get(p, "last_error"));
        printf("Store: %s, %lld written, %lld queued, %lld dropped (queue full), %lld lost%s%s\n",
               json_is_true(json_object_get(p, "open")) ? "open" : "NOT OPEN",
               num(p, "written"), num(p, "queued"), num(p, "dropped"), num(p, "lost"),
               le && le[0] ? "; last error: " : "", le && le[0] ? le : "");
    } else {
        printf("Store: off\n");
    }
    print_gre(json_object_get(r, "gre"));
    json_decref(r);
    return 0;
}

int
musctl_cmd_map(int argc, char **argv)
{
    struct common_opts o = {0};
    char req[600];
    json_t *r, *es, *e;
    size_t i;

    if (parse_opts(argc, argv, &o, 1) < 0)
        return 2;
    if (o.user)
        snprintf(req, sizeof(req), "map user %s", o.user);
    else if (o.ip)
        snprintf(req, sizeof(req), "map ip %s", o.ip);
    else
        snprintf(req, sizeof(req), "map");
    if (strchr(req, '\n') != NULL) {
        fprintf(stderr, "musctl: bad filter\n");
        return 2;
    }
    r = ask(o.socket, req);
    if (r == NULL)
        return 1;
    es = json_object_get(r, "entries");
    if (o.json) {
        json_dumpf(r, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        putchar('\n');
    } else {
        printf("%-39s %-24s %-8s %-10s %-16s %-10s %s\n", "ADDRESS", "NAME", "TYPE", "DOMAIN",
               "GROUPS", "HEADEND", "STATE");
        json_array_foreach(es, i, e) {
            printf("%-39s %-24s %-8s %-10s %-16s %-10s %s\n", str(e, "ip"), str(e, "name"),
                   str(e, "type"), str(e, "domain"), str(e, "groups"), str(e, "headend"),
                   json_is_true(json_object_get(e, "stale")) ? "stale" : "live");
        }
        printf("%zu entries\n", json_array_size(es));
    }
    json_decref(r);
    return 0;
}

int
musctl_cmd_trace(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"socket", required_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},
        {"ip", required_argument, NULL, 'i'},
        {"url", required_argument, NULL, 'u'},
        {"user-agent", required_argument, NULL, 'a'},
        {"port", required_argument, NULL, 'p'},
        {"method", required_argument, NULL, 'm'},
        {"mode", required_argument, NULL, 'M'},
        {"via", required_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *sock = MUSCTL_DEFAULT_SOCKET, *ip = NULL, *url = NULL, *ua = NULL, *method = NULL;
    const char *mode = NULL, *via = NULL;
    int json = 0, port = 0, c;
    json_t *q, *r, *id;
    char *text, req[16384];   /* a URL of up to the parser's 8 KiB, JSON-escaped */

    optind = 1;
    while ((c = getopt_long(argc, argv, "s:ji:u:a:p:m:M:V:h", longopts, NULL)) != -1) {
        switch (c) {
        case 's': sock = optarg; break;
        case 'j': json = 1; break;
        case 'i': ip = optarg; break;
        case 'u': url = optarg; break;
        case 'a': ua = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'm': method = optarg; break;
        case 'M': mode = optarg; break;
        case 'V': via = optarg; break;
        default: goto usage;
        }
    }
    if (optind != argc || ip == NULL || url == NULL || port < 0 || port > 65535)
        goto usage;
    q = json_pack("{s:s, s:s, s:i}", "ip", ip, "url", url, "port", port);
    if (q == NULL)
        return 1;
    if (ua)
        json_object_set_new(q, "user_agent", json_string(ua));
    if (method)
        json_object_set_new(q, "method", json_string(method));
    if (mode)
        json_object_set_new(q, "mode", json_string(mode));
    if (via)
        json_object_set_new(q, "via", json_string(via));
    text = json_dumps(q, JSON_COMPACT);
    json_decref(q);
    if (text == NULL || strlen(text) + 7 > sizeof(req)) {
        free(text);
        fprintf(stderr, "musctl: trace arguments too long\n");
        return 2;
    }
    snprintf(req, sizeof(req), "trace %s", text);
    free(text);
    r = ask(sock, req);
    if (r == NULL)
        return 1;
    if (json) {
        json_dumpf(r, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        putchar('\n');
        json_decref(r);
        return 0;
    }
    id = json_object_get(r, "identity");
    printf("Client:           %s%s\n", str(r, "client"),
           json_is_true(json_object_get(r, "client_allowed")) ? "" : " (NOT in proxy.clients)");
    printf("Location:         %s\n", str(r, "location"));
    if (json_is_object(id))
        printf("Identity:         %s (%s, domain %s, groups %s) from headend %s%s\n", str(id, "name"),
               str(id, "type"), str(id, "domain"), str(id, "groups"), str(id, "headend"),
               json_is_true(json_object_get(id, "stale")) ? ", stale" : "");
    else
        printf("Identity:         none\n");
    printf("User source:      %s\n", str(r, "user_source"));
    printf("Request:          %s %s\n", str(r, "method"), str(r, "url"));
    printf("Identity profile: %s\n", str(r, "identity_profile"));
    printf("Category:         %s\n", str(r, "category"));
    printf("Access policy:    %s\n", str(r, "access_policy"));
    printf("Rule:             %s\n", str(r, "rule"));
    printf("Verdict:          %s\n", str(r, "verdict"));
    printf("Action:           %s (%s)\n", str(r, "action"), str(r, "decision"));
    printf("Reason:           %s\n", str(r, "reason"));
    if (json_is_string(json_object_get(r, "note")))
        printf("Note:             %s\n", str(r, "note"));
    json_decref(r);
    return 0;
usage:
    fprintf(stderr, "usage: musctl trace --ip ADDR --url URL [--user-agent UA] [--port P] "
                    "[--method M] [--mode explicit|transparent] [--via VIA] [--socket PATH] [--json]\n");
    return 2;
}

/* musctl wccp: the WCCP service groups from the "status" document. */
int
musctl_cmd_wccp(int argc, char **argv)
{
    struct common_opts o = {0};
    json_t *r, *w, *p, *s, *x;
    size_t i, k;
    char t1[64];

    if (parse_opts(argc, argv, &o, 0) < 0)
        return 2;
    r = ask(o.socket, "status");
    if (r == NULL)
        return 1;
    w = json_object_get(r, "wccp");
    if (o.json) {
        json_dumpf(w ? w : json_null(), stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
        putchar('\n');
        json_decref(r);
        return 0;
    }
    if (!json_is_object(w)) {
        printf("WCCP: off (no wccp.routers in the configuration)\n");
        json_decref(r);
        return 0;
    }
    p = json_object_get(w, "packets");
    printf("WCCP cache engine %s (weight %lld, %s, Here_I_Am every %lld ms, %s)\n",
           str(w, "address"), num(w, "weight"),
           json_is_true(json_object_get(w, "md5")) ? "MD5" : "no security",
           num(w, "interval_ms"), str(w, "state"));
    printf("  packets: %lld in, %lld out; dropped: %lld not from a router, %lld malformed, "
           "%lld failed security, %lld unknown service; %lld send errors\n",
           num(p, "in"), num(p, "out"), num(p, "dropped_not_router"), num(p, "dropped_malformed"),
           num(p, "dropped_security"), num(p, "dropped_unknown_service"), num(p, "send_errors"));
    printf("  last error: %s\n", str(w, "last_error"));
    json_array_foreach(json_object_get(w, "services"), i, s) {
        printf("Service %lld (%s): %s\n", num(s, "id"), str(s, "type"), str(s, "state"));
        printf("  designated: %s%s   our share: %lld of %s   assignment key %lld\n",
               str(s, "designated"), json_is_true(json_object_get(s, "designated_self")) ? " (us)" : "",
               num(s, "buckets"), str(s, "share_of"), num(s, "assignment_key"));
        printf("  methods: forwarding %s, return %s, assignment %s   view change %lld\n",
               str(s, "forwarding"), str(s, "return"), str(s, "assignment"),
               num(s, "change_number"));
        printf("  caches:");
        json_array_foreach(json_object_get(s, "caches"), k, x)
            printf(" %s (weight %lld)", str(x, "address"), num(x, "weight"));
        printf("%s\n", json_array_size(json_object_get(s, "caches")) ? "" : " none");
        json_array_foreach(json_object_get(s, "routers"), k, x) {
            printf("  router %s (id %s): %s, last I_See_You %s, receive id %lld, "
                   "member change %lld\n", str(x, "address"), str(x, "router_id"),
                   str(x, "state"), when(num(x, "last_i_see_you"), t1, sizeof(t1)),
                   num(x, "receive_id"), num(x, "member_change"));
        }
        p = json_object_get(s, "packets");
        printf("  packets: %lld in, %lld out, %lld dropped   last error: %s\n", num(p, "in"),
               num(p, "out"), num(p, "dropped"), str(s, "last_error"));
    }
    json_decref(r);
    return 0;
}
