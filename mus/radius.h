/*
 * mus/radius.h: the RADIUS accounting wire format (RFC 2866 on RFC 2865's
 * packet layout): parsing an Accounting-Request into the attributes
 * mus-headend uses, verifying its Request Authenticator with a shared
 * secret, building the Accounting-Response (and, for tests and tools,
 * Accounting-Requests), and splitting User-Name forms and Cisco AVPairs.
 *
 * Every length is checked: the packet's Length field against the datagram
 * (octets past Length are padding and ignored, RFC 2865 section 3), every
 * attribute's length against what is left and against its type (integer and
 * IPv4 address 6, IPv6 address 18, IPv6 prefix 4..20 with a prefix length
 * of at most 128, Vendor-Specific at least 7 with well-formed sub-attributes
 * for Cisco). A text attribute holding a NUL is malformed. Attributes it does
 * not use are skipped (counted).
 *
 * Pure functions, no I/O, no allocation; MD5 through OpenSSL EVP. It knows
 * nothing of sessions, clients or sockets (mus/headend_radius.c does).
 */
#ifndef MUS_MUS_RADIUS_H
#define MUS_MUS_RADIUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RADIUS_HDR_LEN        20
#define RADIUS_AUTH_LEN       16
#define RADIUS_PKT_MAX        4096     /* RFC 2865: 20..4096 */
#define RADIUS_ATTR_VAL_MAX   253
#define RADIUS_STR_MAX        (RADIUS_ATTR_VAL_MAX + 1)   /* a value and its NUL */
#define RADIUS_MULTI_MAX      8        /* Class, Filter-Id, AVPairs kept per packet */
#define RADIUS_SECRET_MAX     128

#define RADIUS_CODE_ACCT_REQUEST   4
#define RADIUS_CODE_ACCT_RESPONSE  5

/* Attribute types (RFC 2865, 2866, 2869, 3162, 6911). */
enum radius_attr {
    RADIUS_A_USER_NAME = 1,
    RADIUS_A_NAS_IP_ADDRESS = 4,
    RADIUS_A_FRAMED_IP_ADDRESS = 8,
    RADIUS_A_FILTER_ID = 11,
    RADIUS_A_CLASS = 25,
    RADIUS_A_VENDOR_SPECIFIC = 26,
    RADIUS_A_CALLING_STATION_ID = 31,
    RADIUS_A_NAS_IDENTIFIER = 32,
    RADIUS_A_ACCT_STATUS_TYPE = 40,
    RADIUS_A_ACCT_SESSION_ID = 44,
    RADIUS_A_ACCT_INTERIM_INTERVAL = 85,
    RADIUS_A_NAS_IPV6_ADDRESS = 95,
    RADIUS_A_FRAMED_IPV6_PREFIX = 97,
    RADIUS_A_FRAMED_IPV6_ADDRESS = 168,
};

#define RADIUS_VENDOR_CISCO        9
#define RADIUS_CISCO_AVPAIR        1

/* Acct-Status-Type values. */
enum radius_status {
    RADIUS_ST_START = 1,
    RADIUS_ST_STOP = 2,
    RADIUS_ST_INTERIM = 3,
    RADIUS_ST_ACCT_ON = 7,
    RADIUS_ST_ACCT_OFF = 8,
};

const char *radius_status_str(uint32_t status);   /* "start", ..., "other" */

/* Results of radius_parse. */
enum radius_err {
    RADIUS_OK = 0,
    RADIUS_E_SHORT,        /* fewer than 20 octets, or Length beyond the datagram */
    RADIUS_E_LENGTH,       /* Length field below 20 or above 4096 */
    RADIUS_E_CODE,         /* not an Accounting-Request */
    RADIUS_E_ATTR_LEN,     /* an attribute length below 2 or past the end */
    RADIUS_E_ATTR_VALUE,   /* a length wrong for the type, a NUL in text, a bad prefix */
    RADIUS_E_VSA,          /* a malformed Cisco sub-attribute */
    RADIUS_E_NO_STATUS,    /* no Acct-Status-Type (mandatory) */
};

const char *radius_err_str(enum radius_err e);

/* A parsed Accounting-Request. Text attributes are NUL-terminated copies;
 * absent ones are "". When an attribute is repeated, the first is kept
 * (Class, Filter-Id and AVPairs keep up to RADIUS_MULTI_MAX each). */
typedef struct radius_acct {
    uint8_t code, identifier;
    uint16_t length;                        /* the Length field */
    uint8_t authenticator[RADIUS_AUTH_LEN];
    uint32_t status;                        /* Acct-Status-Type */
    char user_name[RADIUS_STR_MAX];
    char session_id[RADIUS_STR_MAX];        /* Acct-Session-Id */
    char calling_station[RADIUS_STR_MAX];   /* Calling-Station-Id */
    char nas_identifier[RADIUS_STR_MAX];
    bool has_nas_ip, has_nas_ipv6, has_framed_ip, has_framed_ipv6, has_framed_prefix;
    bool has_interim;
    uint8_t nas_ip[4];
    uint8_t nas_ipv6[16];
    uint8_t framed_ip[4];
    uint8_t framed_ipv6[16];                /* Framed-IPv6-Address */
    uint8_t framed_prefix[16];              /* Framed-IPv6-Prefix, host bits cleared */
    uint8_t framed_prefix_len;
    uint32_t interim_interval;              /* Acct-Interim-Interval, seconds */
    char classes[RADIUS_MULTI_MAX][RADIUS_STR_MAX];
    size_t n_classes;
    char filter_ids[RADIUS_MULTI_MAX][RADIUS_STR_MAX];
    size_t n_filter_ids;
    char avpairs[RADIUS_MULTI_MAX][RADIUS_STR_MAX];   /* Cisco-AVPair "key=value" */
    size_t n_avpairs;
    size_t n_attrs;                         /* attributes in the packet */
    size_t n_skipped;                       /* of which not used (or beyond the limits) */
} radius_acct_t;

/* Parses an Accounting-Request of len octets. It does not check the
 * authenticator (radius_verify_request does). Returns RADIUS_OK or the
 * first problem found; *out is only meaningful on RADIUS_OK. */
enum radius_err radius_parse(const uint8_t *pkt, size_t len, radius_acct_t *out);

/* True if the Request Authenticator of the packet (its header's Length
 * octets, len >= that) is MD5(Code+Identifier+Length+16 zero octets+
 * Attributes+Secret) (RFC 2866 section 3). Compared in constant time.
 * False too if the packet is shorter than its header says or MD5 fails. */
bool radius_verify_request(const uint8_t *pkt, size_t len, const uint8_t *secret,
                           size_t secret_len);

/* Builds an Accounting-Response without attributes for the request's
 * identifier and authenticator: its Response Authenticator is
 * MD5(5+Identifier+20+RequestAuth+Secret). Returns 20, or -1 if cap < 20 or
 * MD5 fails. */
int radius_build_response(uint8_t identifier, const uint8_t req_auth[RADIUS_AUTH_LEN],
                          const uint8_t *secret, size_t secret_len, uint8_t *out, size_t cap);

/* True if a response (e.g. read by a test) carries the Response
 * Authenticator computed with the request's authenticator and secret. */
bool radius_verify_response(const uint8_t *pkt, size_t len, const uint8_t req_auth[RADIUS_AUTH_LEN],
                            const uint8_t *secret, size_t secret_len);

/* ---- building requests (tests, tools) ---- */

typedef struct radius_builder {
    uint8_t buf[RADIUS_PKT_MAX];
    size_t len;
    bool overflow;
} radius_builder_t;

void radius_build_begin(radius_builder_t *b, uint8_t code, uint8_t identifier);
void radius_build_attr(radius_builder_t *b, uint8_t type, const void *val, size_t len);
void radius_build_u32(radius_builder_t *b, uint8_t type, uint32_t v);
void radius_build_str(radius_builder_t *b, uint8_t type, const char *s);
void radius_build_cisco_avpair(radius_builder_t *b, const char *avpair);
/* Sets Length and the Request Authenticator. Returns the packet length, or
 * -1 if an attribute did not fit (or was longer than 253 octets). */
int radius_build_finish(radius_builder_t *b, const uint8_t *secret, size_t secret_len);

/* ---- values ---- */

/* Splits a User-Name: "DOMAIN\user" -> name "user", domain "DOMAIN";
 * "user@realm" -> "user", "realm" (at the last '@'); "user" -> "user", "".
 * An empty part makes it -1 ("\\user", "DOMAIN\\", "@realm", "user@"),
 * as does a part that does not fit its buffer. */
int radius_user_split(const char *user, char *name, size_t name_cap, char *domain,
                      size_t domain_cap);

/* Splits a Cisco AVPair "key=value" (or "key*value", an optional
 * attribute). The key must be non-empty, without spaces; the value may be
 * empty. -1 if malformed or too long. */
int radius_avpair_split(const char *avpair, char *key, size_t key_cap, char *value,
                        size_t value_cap);

#endif
