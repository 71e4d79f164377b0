/*
 * proxy/pac.c: the proxy auto-config file (see pac.h). Every string placed
 * in the JavaScript was validated by the configuration loader (names of
 * letters, digits, '-', '.', '_'; numeric prefixes), so nothing needs
 * escaping; address prefixes are tested only on address literals (isInNet
 * on a name would make the browser resolve it).
 */
#include "pac.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../common/cidr.h"

typedef struct out {
    char *buf;
    size_t cap, len;
    bool overflow;
} out_t;

static void put(out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
put(out_t *o, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (o->overflow)
        return;
    va_start(ap, fmt);
    n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->cap - o->len) {
        o->overflow = true;
        return;
    }
    o->len += (size_t)n;
}

bool
pac_path(const char *path, size_t len)
{
    return (len == 10 && memcmp(path, "/proxy.pac", 10) == 0) ||
           (len == 9 && memcmp(path, "/wpad.dat", 9) == 0);
}

/* The host of "host:port" / "[v6]:port" into h (cap bytes). */
static void
proxy_host(const char *hp, char *h, size_t cap)
{
    const char *colon = strrchr(hp, ':');
    size_t n = colon ? (size_t)(colon - hp) : strlen(hp);

    if (n >= 2 && hp[0] == '[' && hp[n - 1] == ']') {
        hp++;
        n -= 2;
    }
    if (n >= cap)
        n = cap - 1;
    memcpy(h, hp, n);
    h[n] = '\0';
}

/* One prefix test: IPv4 with isInNet (address, mask), IPv6 with isInNetEx. */
static void
put_prefix(out_t *o, const cidr_t *c)
{
    char a[INET6_ADDRSTRLEN];

    if (c->family == AF_INET) {
        uint32_t mask = c->prefix == 0 ? 0 : 0xffffffffu << (32 - c->prefix);
        char m[INET_ADDRSTRLEN];
        struct in_addr ma = { .s_addr = htonl(mask) };
        inet_ntop(AF_INET, c->addr, a, sizeof(a));
        inet_ntop(AF_INET, &ma, m, sizeof(m));
        put(o, "    if (v4 && isInNet(host, \"%s\", \"%s\")) return \"DIRECT\";\n", a, m);
    } else {
        inet_ntop(AF_INET6, c->addr, a, sizeof(a));
        put(o, "    if (v6 && isInNetEx(host, \"%s/%u\")) return \"DIRECT\";\n", a, c->prefix);
    }
}

size_t
pac_write(char *buf, size_t cap, const config_pac_t *p, const char *probe_host, bool remote,
          const char *default_proxy)
{
    out_t o = { .buf = buf, .cap = cap };
    const char *proxy = remote && p->remote_proxy[0] ? p->remote_proxy
                        : p->proxy[0]                ? p->proxy
                                                     : default_proxy;
    char self[CONFIG_NAME_MAX + 8];

    proxy_host(proxy, self, sizeof(self));
    put(&o, "// musproxy proxy auto-config for %s clients, written from its configuration.\n",
        remote ? "remote (VPN)" : "local");
    put(&o, "function FindProxyForURL(url, host) {\n");
    put(&o, "    var proxy = \"PROXY %s%s\";\n", proxy, p->fallback_direct ? "; DIRECT" : "");
    put(&o, "    host = host.toLowerCase();\n");
    put(&o, "    if (host.charAt(0) == \"[\") host = host.substring(1, host.length - 1);\n");
    put(&o, "    // the VPN client's probe is answered by the proxy itself\n");
    put(&o, "    if (host == \"%s\") return proxy;\n", probe_host);
    put(&o, "    // the proxy is never asked to reach itself\n");
    put(&o, "    if (host == \"%s\") return \"DIRECT\";\n", self);
    for (size_t i = 0; i < p->n_direct_domains; i++)
        put(&o, "    if (host == \"%s\" || dnsDomainIs(host, \".%s\")) return \"DIRECT\";\n",
            p->direct_domains[i], p->direct_domains[i]);
    if (p->n_direct_cidrs > 0) {
        put(&o, "    var v4 = /^[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+$/.test(host);\n");
        put(&o, "    var v6 = host.indexOf(\":\") >= 0;\n");
        for (size_t i = 0; i < p->n_direct_cidrs; i++)
            put_prefix(&o, &p->direct_cidrs[i]);
    }
    put(&o, "    return proxy;\n}\n");
    return o.overflow ? 0 : o.len;
}
