/*
 * proxy/intercept.h: the kernel side of intercepted (transparent) traffic.
 * Where a redirected connection was going (SO_ORIGINAL_DST after an
 * nftables/iptables REDIRECT, the local address of an IP_TRANSPARENT socket
 * after TPROXY), the listener and upstream socket options TPROXY needs (and
 * binding the upstream to the client's address when the origin must see
 * it), whether a name's DNS answers contain the original destination (the
 * Host check), and the bypass list. It does no policy and keeps no state.
 */
#ifndef MUS_PROXY_INTERCEPT_H
#define MUS_PROXY_INTERCEPT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "../policy/config.h"
#include "dns.h"

/* Sets what a listener of this kind needs before bind (IP_TRANSPARENT for
 * tproxy). 0, or -1 with errno. */
int intercept_listener_opts(int fd, const config_listen_t *l);

/* The original destination of an accepted intercepted connection: the
 * conntrack entry's (REDIRECT, IPv4 and IPv6), else the local address
 * (TPROXY, or a connection made straight to the port). 0, or -1 with errno. */
int intercept_original_dst(int fd, struct sockaddr_storage *out, socklen_t *len);

/* Prepares an unconnected upstream socket so that it leaves from client's
 * address (IP_TRANSPARENT + bind, any port). 0, or -1 with errno. */
int intercept_spoof_source(int fd, const struct sockaddr *client, socklen_t len);

/* True if a and b are the same address (the ports are not compared;
 * an IPv4-mapped IPv6 address equals its IPv4 address). */
bool intercept_same_addr(const struct sockaddr *a, const struct sockaddr *b);

/* True if dst is one of res's addresses. */
bool intercept_in_answer(const dns_result_t *res, const struct sockaddr *dst);

/* True if the host (NULL/0 if unknown) or the destination is in the bypass
 * list: a domain covers itself and every name below it. */
bool intercept_bypassed(const config_transparent_t *t, const char *host, size_t host_len,
                        const struct sockaddr *dst);

#define INTERCEPT_ALERT_LEN 7

/* The fatal TLS alert record that answers an intercepted TLS connection
 * instead of a page with this HTTP status: access_denied (49) for 403,
 * decode_error (50) for 400, internal_error (80) otherwise. Returns its
 * length, INTERCEPT_ALERT_LEN. */
size_t intercept_tls_alert(char *out, int status);

#endif
