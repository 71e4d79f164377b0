/*
 * proxy/trace.c: the policy trace (see trace.h).
 */
#include "trace.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../common/cidr.h"
#include "admit.h"
#include "http.h"

#define TRACE_HEAD_MAX (HTTP_MAX_REQUEST_LINE + 2048)

static json_t *
trace_error(const char *msg)
{
    return json_pack("{s:s}", "error", msg);
}

/* Writes the request head the URL stands for; its length, or 0 if the
 * URL does not fit. */
static size_t
trace_head(char *out, size_t cap, const char *url, const char *method, const char *ua,
           const char *via)
{
    char target[HTTP_MAX_REQUEST_LINE];
    const char *m = method;
    int n;

    if (strncasecmp(url, "https://", 8) == 0) {
        /* a browser would CONNECT to the authority */
        const char *a = url + 8;
        size_t al = strcspn(a, "/?#");
        const char *rb = al > 0 && a[0] == '[' ? memchr(a, ']', al) : NULL;
        bool has_port = rb != NULL ? rb + 1 < a + al && rb[1] == ':' : memchr(a, ':', al) != NULL;
        n = snprintf(target, sizeof(target), "%.*s%s", (int)al, a, has_port ? "" : ":443");
        m = "CONNECT";
    } else if (strncasecmp(url, "http://", 7) == 0) {
        n = snprintf(target, sizeof(target), "%s", url);
        if (m == NULL)
            m = "GET";
    } else {
        n = snprintf(target, sizeof(target), "%s", url);
        m = "CONNECT";
    }
    if (n < 0 || (size_t)n >= sizeof(target))
        return 0;
    n = snprintf(out, cap, "%s %s HTTP/1.1\r\n%s%s%s%s%s%s\r\n", m, target,
                 ua ? "User-Agent: " : "", ua ? ua : "", ua ? "\r\n" : "",
                 via ? "Via: " : "", via ? via : "", via ? "\r\n" : "");
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

static int
parse_ip(const char *ip, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
        ss->ss_family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
        ss->ss_family = AF_INET6;
        return 0;
    }
    return -1;
}

static uint16_t
first_listen_port(const config_t *cfg)
{
    const struct sockaddr *l;

    if (cfg->n_listen == 0)
        return 0;
    l = (const struct sockaddr *)&cfg->listen[0].addr;
    return ntohs(l->sa_family == AF_INET ? ((const struct sockaddr_in *)l)->sin_port
                                         : ((const struct sockaddr_in6 *)l)->sin6_port);
}

/* The answer: who, what the admission said, and the policy's view. */
static json_t *
trace_answer(const admit_request_t *rq, const admit_result_t *res, const access_result_t *acc,
             const mus_identity_t *id, const char *client_s)
{
    char url[ADMIT_URL_MAX];
    json_t *idj = id ? json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b}", "name", id->s.name, "type",
                                 mus_id_type_str(id->s.type), "domain", id->s.domain, "groups",
                                 id->s.groups, "headend", id->headend, "sid", id->s.sid,
                                 "stale", id->stale)
                     : json_null();
    const char *action = res->decided ? policy_action_str(acc->d.action)
                                      : admit_verdict_str(res->verdict);
    json_t *out;

    admit_url(rq, url, sizeof(url));
    out = json_pack("{s:s, s:b, s:s, s:s, s:o, s:s, s:s, s:s, s:s}",
                    "client", client_s, "client_allowed", res->failed != ADMIT_CHECK_CLIENTS,
                    "location", res->remote ? "remote" : "local",
                    "user_source", res->decided ? policy_user_source_str(acc->source) : res->source,
                    "identity", idj, "url", url, "method", rq->method,
                    "verdict", admit_verdict_str(res->verdict), "action", action);
    if (out == NULL)
        return NULL;
    if (res->decided) {
        json_object_set_new(out, "identity_profile", json_string(acc->d.profile));
        json_object_set_new(out, "access_policy", json_string(acc->d.policy));
        json_object_set_new(out, "category",
                            acc->d.category ? json_string(acc->d.category) : json_null());
        json_object_set_new(out, "rule", json_string(acc->d.rule));
        json_object_set_new(out, "decision", json_string(acc->tag));
        json_object_set_new(out, "reason", json_string(acc->d.reason ? acc->d.reason : ""));
    } else if (res->verdict == ADMIT_DENY) {
        json_object_set_new(out, "status", json_integer(res->status));
        json_object_set_new(out, "refused_by", json_string(admit_check_str(res->failed)));
        json_object_set_new(out, "decision", json_string(txn_result_str(res->tag)));
        json_object_set_new(out, "reason", json_string(res->why));
        json_object_set_new(out, "note", json_string("refused before any policy"));
    } else {
        json_object_set_new(out, "reason", json_string(
            "the probe host: answered by musproxy itself, never forwarded"));
        json_object_set_new(out, "note", json_string(
            "the probe host: answered by musproxy itself, never forwarded"));
    }
    if (res->route == ADMIT_ROUTE_ORIGINAL_DST)
        json_object_set_new(out, "route", json_string("original_destination"));
    return out;
}

json_t *
trace_run(const config_t *cfg, const policy_t *policy, mus_map_t *map, const char *args)
{
    json_error_t jerr;
    json_t *q = json_loads(args, 0, &jerr), *out = NULL;
    const char *ip, *url, *ua, *method, *mode, *via;
    char head[TRACE_HEAD_MAX], client_s[CIDR_STRLEN], meth[24];
    struct sockaddr_storage ss;
    http_request_t req;
    admit_request_t rq;
    admit_result_t res;
    access_result_t acc;
    mus_identity_t id;
    mus_addr_t a;
    bool known;
    size_t hl;
    int r, port;

    if (q == NULL || !json_is_object(q)) {
        json_decref(q);
        return trace_error("usage: trace {\"ip\":\"ADDR\",\"url\":\"URL\"[,\"user_agent\":\"UA\"]"
                           "[,\"method\":\"M\"][,\"port\":P][,\"mode\":\"explicit|transparent\"]}");
    }
    ip = json_string_value(json_object_get(q, "ip"));
    url = json_string_value(json_object_get(q, "url"));
    ua = json_string_value(json_object_get(q, "user_agent"));
    method = json_string_value(json_object_get(q, "method"));
    mode = json_string_value(json_object_get(q, "mode"));
    via = json_string_value(json_object_get(q, "via"));
    port = (int)json_integer_value(json_object_get(q, "port"));
    if (ip == NULL || url == NULL || port < 0 || port > 65535) {
        out = trace_error("ip and url are required");
        goto done;
    }
    if (parse_ip(ip, &ss) < 0) {
        out = trace_error("ip is not an IP address");
        goto done;
    }
    hl = trace_head(head, sizeof(head), url, method, ua, via);
    r = hl > 0 ? http_parse_request(head, hl, &req) : HTTP_E_REQUEST_LINE_TOO_LONG;
    if (r <= 0) {
        char msg[256];
        snprintf(msg, sizeof(msg), "url must be http://host/path, https://host/ or host:port (%s)",
                 r == HTTP_INCOMPLETE ? "incomplete" : http_strerror(r));
        out = trace_error(msg);
        goto done;
    }
    snprintf(meth, sizeof(meth), "%.*s", (int)(req.method.len < 23 ? req.method.len : 23),
             req.method.p);
    mus_addr_from_sockaddr((struct sockaddr *)&ss, &a);
    known = map != NULL && mus_map_lookup(map, &a, &id);
    rq = (admit_request_t){
        .method = meth,
        .mode = mode != NULL && strcmp(mode, "transparent") == 0 ? CONFIG_MODE_TRANSPARENT
                                                                 : CONFIG_MODE_EXPLICIT,
        .client = (struct sockaddr *)&ss,
        .local_port = port > 0 ? (uint16_t)port : first_listen_port(cfg),
        .identity = known ? &id : NULL,
        .now = time(NULL),
    };
    admit_from_http(&rq, &req, cfg->visible_hostname);
    admit_decide(cfg, policy, NULL, &rq, &res, &acc);
    cidr_addr_str((struct sockaddr *)&ss, client_s, sizeof(client_s));
    out = trace_answer(&rq, &res, &acc, known ? &id : NULL, client_s);
done:
    json_decref(q);
    return out;
}
