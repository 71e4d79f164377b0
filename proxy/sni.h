/*
 * proxy/sni.h: the TLS ClientHello / SNI parser for transparent HTTPS. The
 * proxy peeks the first bytes of a redirected connection, asks sni_parse()
 * for the server name, decides policy, then replays the same bytes to the
 * origin (or answers with sni_alert()). Stateless and strict like http.h:
 * the caller hands the whole buffer received so far on every call; anything
 * that breaks the TLS grammar is an error, never repaired. It does no I/O,
 * allocates nothing, keeps no state and never decrypts anything (with ECH
 * the name it returns is the outer, public one).
 *
 * Contract of sni_parse(): buf[0..len) holds the first bytes the client
 * sent. The result depends only on those bytes, and a result other than
 * SNI_INCOMPLETE is final: calling again with a longer buffer that starts
 * with the same bytes gives the same result, and with len >= SNI_PEEK_MAX
 * the result is never SNI_INCOMPLETE (so the caller never needs to buffer
 * more than that). *out is cleared on every call;
 * its fields mean something only for SNI_FOUND and SNI_NONE (host only for
 * SNI_FOUND). Bytes after out->consumed are not looked at.
 *
 * Choices where the brief or the RFCs leave one (the details are in sni.c):
 *  - a first byte other than 22 (handshake), or a first record whose major
 *    version is not 3, is SNI_NOT_TLS; that includes the SSLv2-compatible
 *    hello (first byte 0x80), which cannot carry extensions, so no SNI;
 *  - a server name that is an IP literal (RFC 6066 forbids them) is
 *    SNI_NONE, as if the client had sent no name: the caller then decides
 *    on the original destination address, which is what the literal would
 *    have said; a name with characters outside letters, digits, '-', '.',
 *    '_' (so also an IPv6 literal, which has ':'), an empty label, a label
 *    over 63 bytes or a trailing dot is SNI_E_MALFORMED;
 *  - GREASE extension types (RFC 8701) are skipped unread and are not part
 *    of the duplicate check.
 */
#ifndef MUS_PROXY_SNI_H
#define MUS_PROXY_SNI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SNI_PEEK_MAX 16384          /* bytes of ClientHello we will buffer, all records together */
#define SNI_HOST_MAX 255            /* bytes of a server name, no trailing dot */

typedef enum sni_status {
    SNI_FOUND,        /* complete ClientHello with a server_name host_name */
    SNI_NONE,         /* complete ClientHello without SNI (or with an IP literal) */
    SNI_INCOMPLETE,   /* valid so far, need more bytes (call again with the longer buffer) */
    SNI_NOT_TLS,      /* first bytes are not a TLS handshake record (e.g. plain HTTP) */
    SNI_E_MALFORMED,  /* a TLS record/handshake that breaks the grammar */
    SNI_E_TOO_LARGE,  /* the ClientHello would need more than SNI_PEEK_MAX bytes */
} sni_status_t;

typedef struct sni_hello {
    char host[SNI_HOST_MAX + 1];   /* lower-cased DNS name, NUL-terminated */
    size_t host_len;
    bool ech;                      /* encrypted_client_hello (0xfe0d) present: host is the outer name */
    bool alpn_h2, alpn_http11;     /* offered in application_layer_protocol_negotiation */
    uint16_t record_version;       /* of the first record (0x0300..0x0304) */
    uint16_t client_version;       /* ClientHello.legacy_version */
    size_t consumed;               /* bytes of TLS records that made up the ClientHello */
} sni_hello_t;

/* Parses the ClientHello at the start of buf[0..len) (see the contract above). */
sni_status_t sni_parse(const uint8_t *buf, size_t len, sni_hello_t *out);

/* A short English name of a status (static string). */
const char *sni_status_str(sni_status_t s);

/*
 * Writes a fatal TLS alert record (level 2) with the given description
 * (e.g. 49 access_denied, 112 unrecognized_name) in the given record version
 * (the hello's record_version; 0x0303 when unknown) and returns its size, 7.
 */
size_t sni_alert(uint8_t out[7], uint8_t description, uint16_t record_version);

#endif
