/*
 * common/cidr.h: IPv4/IPv6 address prefixes ("10.0.0.0/8", "fc00::/7",
 * "192.0.2.1") and lists of them, parsed from text and matched against socket
 * addresses. IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) match IPv4 prefixes.
 * It does no name resolution and allocates nothing.
 */
#ifndef MUS_COMMON_CIDR_H
#define MUS_COMMON_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct cidr {
    int family;          /* AF_INET or AF_INET6 */
    uint8_t addr[16];    /* network byte order; IPv4 uses the first 4 bytes */
    uint8_t prefix;      /* 0..32 or 0..128 */
} cidr_t;

/* Parses "ADDR" or "ADDR/LEN" (no spaces). Host bits beyond LEN are cleared.
 * Returns 0, or -1 if the text is not a valid prefix. */
int cidr_parse(const char *text, cidr_t *out);

/* True if the socket address (AF_INET or AF_INET6) lies inside the prefix. */
bool cidr_match(const cidr_t *c, const struct sockaddr *sa);

/* True if the address matches any of the n prefixes. */
bool cidr_list_match(const cidr_t *list, size_t n, const struct sockaddr *sa);

/* Formats the prefix as "addr/len" into buf (at least CIDR_STRLEN bytes). */
#define CIDR_STRLEN 52
void cidr_format(const cidr_t *c, char *buf, size_t len);

/* Formats only the address of a socket address (no port) into buf
 * (at least CIDR_STRLEN bytes); IPv4-mapped IPv6 is shown as IPv4. */
void cidr_addr_str(const struct sockaddr *sa, char *buf, size_t len);

#endif
