/*
 * mus/proto.h: the MUS/1 wire format (docs/mus-protocol.md): one JSON object
 * per line, at most MUS_FRAME_MAX bytes, member "t" naming the type; parsing
 * into a typed frame (strict on the members we use, unknown members ignored),
 * formatting frames, and the mutual HMAC authentication with TLS channel
 * binding. It does no socket I/O; the session logic lives in
 * mus/client_proto.c (proxy side) and mus/headend_session.c (headend side).
 */
#ifndef MUS_MUS_PROTO_H
#define MUS_MUS_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "map.h"

#define MUS_FRAME_MAX        65536   /* bytes of one line, '\n' excluded */
#define MUS_MAX_IPS          8       /* addresses of one session */
#define MUS_NONCE_LEN        32
#define MUS_KEY_LEN          32
#define MUS_MAC_LEN          32
#define MUS_CB_LEN           32      /* TLS exporter, label EXPORTER-Channel-Binding */
#define MUS_SALT_MAX         64
#define MUS_ID_MAX           64      /* server_id, client_id */
#define MUS_EPOCH_MAX        64
#define MUS_KDF_ITER_MIN     10000
#define MUS_KDF_ITER_MAX     10000000
#define MUS_PING_AFTER_MS    15000   /* send a ping after this long without sending */
#define MUS_DEAD_AFTER_MS    45000   /* no frame for this long: the session is dead */
#define MUS_ACK_EVERY_MS     1000
#define MUS_UPGRADE_PATH     "/mus/v1"
#define MUS_UPGRADE_TOKEN    "mus/1"

enum mus_frame_type {
    MUS_F_UNKNOWN = 0,  /* a "t" we do not know: answer with an error frame */
    MUS_F_HELLO,
    MUS_F_AUTH,
    MUS_F_AUTH_OK,
    MUS_F_AUTH_FAIL,
    MUS_F_SUBSCRIBE,
    MUS_F_SNAP_BEGIN,
    MUS_F_SNAP,
    MUS_F_SNAP_END,
    MUS_F_ADD,
    MUS_F_UPD,
    MUS_F_DEL,
    MUS_F_ACK,
    MUS_F_PING,
    MUS_F_PONG,
    MUS_F_ERROR,
};

const char *mus_frame_type_str(enum mus_frame_type t);

/* A parsed frame. Which members are meaningful depends on type:
 *  hello:      server_id, epoch, nonce, kdf_alg, kdf_iter, salt/salt_len
 *  auth:       client_id, cnonce, mac
 *  auth_ok:    mac
 *  subscribe:  has_epoch/epoch, has_seq/seq (both absent on first contact)
 *  snap_begin: epoch, seq, count;   snap: session, ips;   snap_end: seq
 *  add, upd:   seq, session, ips;   del: seq, session.sid, ips, reason
 *  ack:        seq;   error: message;   ping, pong, auth_fail: nothing */
typedef struct mus_frame {
    enum mus_frame_type type;
    char type_name[32];              /* the raw "t", for MUS_F_UNKNOWN */
    char server_id[MUS_ID_MAX];
    char client_id[MUS_ID_MAX];
    char epoch[MUS_EPOCH_MAX];
    bool has_epoch, has_seq;
    uint64_t seq;
    uint64_t count;
    uint8_t nonce[MUS_NONCE_LEN];
    uint8_t cnonce[MUS_NONCE_LEN];
    uint8_t mac[MUS_MAC_LEN];
    char kdf_alg[32];                /* "pbkdf2-sha256" */
    uint32_t kdf_iter;
    uint8_t salt[MUS_SALT_MAX];
    size_t salt_len;
    mus_session_t session;
    mus_addr_t ips[MUS_MAX_IPS];
    size_t n_ips;
    char reason[32];                 /* del: logout|idle|admin|lost */
    char message[256];               /* error */
} mus_frame_t;

/*
 * Parses one line (without its '\n'). Returns 0, or -1 with a short reason
 * in err (errlen bytes): not JSON, not an object, over MUS_FRAME_MAX, a
 * missing or mistyped member required by the type, a bad base64 value or
 * length, a bad address, too many addresses, an unknown identity type, a
 * string too long for its field. An unknown "t" is NOT an error: type is
 * MUS_F_UNKNOWN and type_name holds it.
 */
int mus_frame_parse(const char *line, size_t len, mus_frame_t *out, char *err, size_t errlen);

/* Formats f as one JSON line ending in '\n' into buf. Returns the length,
 * or -1 if it does not fit. Only the members of f's type are written. */
int mus_frame_format(const mus_frame_t *f, char *buf, size_t cap);

/* Parses one session object, the "s" member of snap/add/upd
 * ({"sid":...,"ips":[...],"id":{"type":...,"name":...},...}), with the same
 * rules as inside a frame; len excludes any '\n'. Used by the headend for its
 * local feed and sessions file. Returns 0, or -1 with a reason in err. */
int mus_session_parse(const char *json, size_t len, mus_session_t *s, mus_addr_t ips[MUS_MAX_IPS],
                      size_t *n_ips, char *err, size_t errlen);

/* Formats a session object as compact JSON (no '\n', NUL-terminated) into
 * buf. Returns the length without the NUL, or -1 if it does not fit. */
int mus_session_format(const mus_session_t *s, const mus_addr_t *ips, size_t n_ips, char *buf,
                       size_t cap);

/* ---- authentication ---- */

/* K = PBKDF2-HMAC-SHA256(password, salt, iter, 32). 0 or -1. */
int mus_auth_derive(const char *password, size_t pwlen, const uint8_t *salt, size_t salt_len,
                    uint32_t iter, uint8_t key[MUS_KEY_LEN]);

/* mac = HMAC-SHA256(K, "MUS1-C" | nonce | cnonce | server_id | client_id | cb) */
void mus_auth_client_mac(const uint8_t key[MUS_KEY_LEN], const uint8_t nonce[MUS_NONCE_LEN],
                         const uint8_t cnonce[MUS_NONCE_LEN], const char *server_id,
                         const char *client_id, const uint8_t cb[MUS_CB_LEN],
                         uint8_t mac[MUS_MAC_LEN]);

/* mac = HMAC-SHA256(K, "MUS1-S" | cnonce | nonce | server_id | client_id | cb) */
void mus_auth_server_mac(const uint8_t key[MUS_KEY_LEN], const uint8_t nonce[MUS_NONCE_LEN],
                         const uint8_t cnonce[MUS_NONCE_LEN], const char *server_id,
                         const char *client_id, const uint8_t cb[MUS_CB_LEN],
                         uint8_t mac[MUS_MAC_LEN]);

/* Constant-time comparison of two MACs. */
bool mus_auth_mac_equal(const uint8_t a[MUS_MAC_LEN], const uint8_t b[MUS_MAC_LEN]);

/* Fills buf with n random bytes (OpenSSL RAND_bytes). 0 or -1. */
int mus_random(uint8_t *buf, size_t n);

/* The RFC 9266 channel binding of an established TLS session (SSL *, kept
 * as void * so callers without OpenSSL headers can include this file). */
int mus_tls_channel_binding(void *ssl, uint8_t cb[MUS_CB_LEN]);

/* Reads a password file: the first line, without its line end; refuses
 * files readable by group/other ("permissions too open") or empty. Returns
 * 0 or -1 with a message. The caller wipes pw with OPENSSL_cleanse. */
int mus_read_password_file(const char *path, char *pw, size_t cap, char *err, size_t errlen);

#endif
