/*
 * musctl/musctl.c: the musctl tool: a subcommand dispatcher plus `notify`, the
 * ocserv connect-script/disconnect-script that tells mus-headend about VPN
 * sessions over its local feed socket (see mus/headend.c). The subcommands
 * that talk to musproxy live in musctl_ctl.c (musctl.h).
 *
 *   musctl notify [--socket PATH]
 *
 * reads REASON (connect|disconnect), ID, USERNAME, GROUPNAME, IP_REMOTE,
 * IPV6_REMOTE and IP_REAL from the environment (as ocserv sets them), and
 * sends one datagram to the headend: {"op":"connect","s":{session}} or
 * {"op":"disconnect","sid":ID,"reason":"logout"}. The session is a user
 * session, sid = ID, started = now, tunnel "ssl", client_ip = IP_REAL; a
 * "%N" zone suffix on an address is dropped. It ALWAYS exits 0, so a headend
 * that is down never makes ocserv refuse a user; problems are printed on
 * stderr (ocserv logs them). ocserv runs scripts without arguments: point
 * connect-script/disconnect-script at a two-line wrapper
 * (exec musctl notify --socket PATH) or at a symlink named "musctl-notify",
 * which uses the default socket MUSCTL_HEADEND_SOCKET.
 *
 * strongSwan: run by charon's updown (PLUTO_VERB is set), it reads
 * PLUTO_VERB (up-client, up-client-v6 -> connect; down-client,
 * down-client-v6 -> disconnect; other verbs: nothing), PLUTO_UNIQUEID (the
 * IKE_SA's unique id: the sid), PLUTO_XAUTH_ID or else PLUTO_PEER_ID (a DN
 * is reduced to its CN), the peer's virtual IPs PLUTO_PEER_SOURCEIP4_N,
 * PLUTO_PEER_SOURCEIP6_N, PLUTO_PEER_SOURCEIP (else PLUTO_PEER_CLIENT when
 * it is a single address), PLUTO_PEER (client_ip) and sends the session
 * with "feed":"strongswan", tunnel "ipsec". Same rules: always exit 0.
 * tools/strongswan-updown.sh is the script to name in swanctl.conf.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "../mus/headend_swanctl.h"
#include "musctl.h"

#define MUSCTL_HEADEND_SOCKET "/run/mus-headend.sock"
#define NOTIFY_SEND_TIMEOUT_MS 200

/* ---- notify ---- */

static void notify_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void notify_warn(const char *fmt, ...)
{
    va_list ap;
    fputs("musctl notify: warning: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* Copies an address from the environment without its "%N" zone; NULL if
 * absent or not an IPv4/IPv6 address. */
static const char *env_addr(const char *name, char *buf, size_t cap)
{
    const char *v = env(name);
    if (!v)
        return NULL;
    snprintf(buf, cap, "%s", v);
    char *pct = strchr(buf, '%');
    if (pct)
        *pct = '\0';
    unsigned char tmp[16];
    if (inet_pton(AF_INET, buf, tmp) != 1 && inet_pton(AF_INET6, buf, tmp) != 1) {
        notify_warn("%s=\"%s\" is not an IP address; ignored", name, v);
        return NULL;
    }
    return buf;
}

static json_t *notify_build_connect(const char *sid)
{
    const char *user = env("USERNAME");
    const char *group = env("GROUPNAME");
    char v4[64], v6[64], real[64];
    const char *a4 = env_addr("IP_REMOTE", v4, sizeof(v4));
    const char *a6 = env_addr("IPV6_REMOTE", v6, sizeof(v6));
    const char *client = env_addr("IP_REAL", real, sizeof(real));
    if (!user) {
        notify_warn("USERNAME is not set; session %s not reported", sid);
        return NULL;
    }
    if (!a4 && !a6) {
        notify_warn("neither IP_REMOTE nor IPV6_REMOTE is set; session %s not reported", sid);
        return NULL;
    }
    json_t *ips = json_array(), *groups = json_array(), *id = json_object(), *s = json_object(),
           *msg = json_object();
    if (a4)
        json_array_append_new(ips, json_string(a4));
    if (a6)
        json_array_append_new(ips, json_string(a6));
    if (group && strcmp(group, "(none)") != 0)
        json_array_append_new(groups, json_string(group));
    json_t *name = json_string(user);
    if (!name)
        notify_warn("USERNAME is not valid UTF-8; session %s not reported", sid);
    json_object_set_new(id, "type", json_string("user"));
    json_object_set_new(id, "name", name);
    json_object_set_new(s, "sid", json_string(sid));
    json_object_set_new(s, "ips", ips);
    json_object_set_new(s, "id", id);
    json_object_set_new(s, "groups", groups);
    json_object_set_new(s, "started", json_integer((json_int_t)time(NULL)));
    if (client)
        json_object_set_new(s, "client_ip", json_string(client));
    json_object_set_new(s, "tunnel", json_string("ssl"));
    json_object_set_new(msg, "op", json_string("connect"));
    json_object_set_new(msg, "s", s);
    if (!name) {
        json_decref(msg);
        return NULL;
    }
    return msg;
}

/* ---- strongSwan updown ---- */

#define NOTIFY_SWAN_VIPS 8

/* Adds an address from the environment (prefix length "/32" or "/128"
 * allowed when single) to ips unless already there. */
static void swan_add_ip(json_t *ips, const char *name, bool client)
{
    const char *v = env(name);
    char buf[64];
    if (!v)
        return;
    snprintf(buf, sizeof(buf), "%s", v);
    char *slash = strchr(buf, '/');
    if (slash) {
        if (!client || (strcmp(slash, "/32") != 0 && strcmp(slash, "/128") != 0))
            return;
        *slash = '\0';
    }
    unsigned char tmp[16];
    if (inet_pton(AF_INET, buf, tmp) != 1 && inet_pton(AF_INET6, buf, tmp) != 1) {
        notify_warn("%s=\"%s\" is not an IP address; ignored", name, v);
        return;
    }
    size_t i;
    json_t *e;
    json_array_foreach(ips, i, e)
        if (strcmp(json_string_value(e), buf) == 0)
            return;
    if (json_array_size(ips) < NOTIFY_SWAN_VIPS)
        json_array_append_new(ips, json_string(buf));
}

static json_t *notify_swan_connect(const char *sid)
{
    swanctl_sa_t sa;
    memset(&sa, 0, sizeof(sa));
    const char *xauth = env("PLUTO_XAUTH_ID"), *peer_id = env("PLUTO_PEER_ID");
    snprintf(sa.remote_xauth_id, sizeof(sa.remote_xauth_id), "%s", xauth ? xauth : "");
    snprintf(sa.remote_id, sizeof(sa.remote_id), "%s", peer_id ? peer_id : "");
    char name[SWANCTL_STR_MAX];
    swanctl_sa_name(&sa, name, sizeof(name));
    if (!name[0]) {
        notify_warn("neither PLUTO_XAUTH_ID nor PLUTO_PEER_ID is set; session %s not reported", sid);
        return NULL;
    }
    json_t *ips = json_array();
    char var[64];
    for (int i = 1; i <= NOTIFY_SWAN_VIPS; i++) {
        snprintf(var, sizeof(var), "PLUTO_PEER_SOURCEIP4_%d", i);
        swan_add_ip(ips, var, false);
        snprintf(var, sizeof(var), "PLUTO_PEER_SOURCEIP6_%d", i);
        swan_add_ip(ips, var, false);
    }
    swan_add_ip(ips, "PLUTO_PEER_SOURCEIP", false);
    if (json_array_size(ips) == 0)
        swan_add_ip(ips, "PLUTO_PEER_CLIENT", true);
    if (json_array_size(ips) == 0) {
        notify_warn("no virtual IP (PLUTO_PEER_SOURCEIP*) and PLUTO_PEER_CLIENT is not one "
                    "address; session %s not reported", sid);
        json_decref(ips);
        return NULL;
    }
    char real[64];
    const char *client = env_addr("PLUTO_PEER", real, sizeof(real));
    json_t *s = json_object(), *id = json_object(), *msg = json_object(), *jn = json_string(name);
    json_object_set_new(id, "type", json_string("user"));
    json_object_set_new(id, "name", jn);
    json_object_set_new(s, "sid", json_string(sid));
    json_object_set_new(s, "ips", ips);
    json_object_set_new(s, "id", id);
    json_object_set_new(s, "started", json_integer((json_int_t)time(NULL)));
    if (client)
        json_object_set_new(s, "client_ip", json_string(client));
    json_object_set_new(s, "tunnel", json_string("ipsec"));
    json_object_set_new(msg, "op", json_string("connect"));
    json_object_set_new(msg, "feed", json_string("strongswan"));
    json_object_set_new(msg, "s", s);
    if (!jn) {
        notify_warn("the peer identity is not valid UTF-8; session %s not reported", sid);
        json_decref(msg);
        return NULL;
    }
    return msg;
}

/* The message for strongSwan's updown environment; *quiet when the verb is
 * not ours (nothing to send, nothing to say). */
static json_t *notify_swan(const char *verb, const char **sid_out, bool *quiet)
{
    const char *sid = env("PLUTO_UNIQUEID");
    bool up = strcmp(verb, "up-client") == 0 || strcmp(verb, "up-client-v6") == 0;
    bool down = strcmp(verb, "down-client") == 0 || strcmp(verb, "down-client-v6") == 0;
    *quiet = !up && !down;
    *sid_out = sid ? sid : "?";
    if (*quiet)
        return NULL;
    if (!sid) {
        notify_warn("PLUTO_UNIQUEID is not set; nothing sent");
        return NULL;
    }
    if (up)
        return notify_swan_connect(sid);
    json_t *msg = json_object();
    json_object_set_new(msg, "op", json_string("disconnect"));
    json_object_set_new(msg, "feed", json_string("strongswan"));
    json_object_set_new(msg, "sid", json_string(sid));
    json_object_set_new(msg, "reason", json_string("logout"));
    return msg;
}

/* Sends one datagram; 0 or -1 with errno. */
static int notify_send(const char *path, const char *data, size_t len)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sun.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(sun.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = 0, .tv_usec = NOTIFY_SEND_TIMEOUT_MS * 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    ssize_t n = sendto(fd, data, len, MSG_NOSIGNAL, (struct sockaddr *)&sun, sizeof(sun));
    int saved = errno;
    close(fd);
    errno = saved;
    return n == (ssize_t)len ? 0 : -1;
}

static int cmd_notify(int argc, char **argv)
{
    static const struct option opts[] = {
        {"socket", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = MUSCTL_HEADEND_SOCKET;
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "s:h", opts, NULL)) != -1) {
        if (o == 's') {
            path = optarg;
        } else if (o == 'h') {
            printf("usage: musctl notify [--socket PATH]   (default %s)\n"
                   "ocserv connect/disconnect script; reads REASON, ID, USERNAME, GROUPNAME,\n"
                   "IP_REMOTE, IPV6_REMOTE, IP_REAL; or strongSwan's updown environment\n"
                   "(PLUTO_VERB, PLUTO_UNIQUEID, PLUTO_XAUTH_ID/PLUTO_PEER_ID,\n"
                   "PLUTO_PEER_SOURCEIP*, PLUTO_PEER_CLIENT, PLUTO_PEER); always exits 0\n",
                   MUSCTL_HEADEND_SOCKET);
            return 0;
        } else {
            notify_warn("bad arguments; nothing sent");
            return 0;
        }
    }
    const char *reason = env("REASON"), *sid = env("ID"), *verb = env("PLUTO_VERB");
    json_t *msg = NULL;
    if (verb) {
        bool quiet;
        msg = notify_swan(verb, &sid, &quiet);
        reason = verb;
        if (!msg)
            return 0;
    } else if (!reason || !sid) {
        notify_warn("REASON or ID (ocserv) or PLUTO_VERB (strongSwan) is not set; nothing sent");
        return 0;
    } else if (strcmp(reason, "connect") == 0) {
        msg = notify_build_connect(sid);
    } else if (strcmp(reason, "disconnect") == 0) {
        msg = json_object();
        json_object_set_new(msg, "op", json_string("disconnect"));
        json_object_set_new(msg, "sid", json_string(sid));
        json_object_set_new(msg, "reason", json_string("logout"));
    } else {
        notify_warn("REASON=%s is neither connect nor disconnect; nothing sent", reason);
        return 0;
    }
    if (!msg)
        return 0;
    char *text = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    if (!text) {
        notify_warn("cannot encode the %s of session %s (bad UTF-8?); nothing sent", reason, sid);
        return 0;
    }
    if (notify_send(path, text, strlen(text)) < 0)
        notify_warn("headend not reachable at %s (%s); %s of session %s not reported", path,
                    strerror(errno), reason, sid);
    free(text);
    return 0;
}

/* ---- dispatcher ---- */

static int cmd_help(int argc, char **argv);

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} commands[] = {
    {"notify", cmd_notify, "ocserv connect/disconnect script: report a VPN session to mus-headend"},
    {"status", musctl_cmd_status, "headend sessions of a running musproxy (like musstatus)"},
    {"map", musctl_cmd_map, "the IP -> identity map of a running musproxy"},
    {"wccp", musctl_cmd_wccp, "WCCP service groups of a running musproxy: routers, caches, buckets"},
    {"trace", musctl_cmd_trace, "what the policy decides for a URL from an address, and why"},
    {"report", musctl_cmd_report, "a report from the transaction store (sites, blocked, ...) as JSON or CSV"},
    {"categories", musctl_cmd_categories, "import UT1 lists into the category database, or show its counts"},
    {"passwd", musctl_cmd_passwd, "set a user's password in the Basic-auth password file"},
    {"help", cmd_help, "this list"},
};

static int cmd_help(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("usage: musctl COMMAND [options]   (musctl COMMAND --help for its options)\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        printf("  %-10s %s\n", commands[i].name, commands[i].help);
    return 0;
}

int main(int argc, char **argv)
{
    /* a symlink named musctl-notify is the ocserv script (no arguments) */
    const char *base = strrchr(argv[0], '/');
    base = base ? base + 1 : argv[0];
    if (strcmp(base, "musctl-notify") == 0)
        return cmd_notify(argc, argv);
    if (argc < 2) {
        cmd_help(0, NULL);
        return 2;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
        return cmd_help(0, NULL);
    fprintf(stderr, "musctl: unknown command \"%s\"\n", argv[1]);
    cmd_help(0, NULL);
    return 2;
}
