/*
 * common/tlsio.h: what a non-blocking OpenSSL call on a socket waits for,
 * as common/loop events (the redis tls.c pattern: handleSSLReturnCode and
 * the want flags). After SSL_connect/SSL_accept, SSL_read or SSL_write
 * returned without success, SSL_get_error says whether the call only needs
 * the socket readable (SSL_ERROR_WANT_READ) or writable (WANT_WRITE), or
 * failed. A read that needs the socket writable, or a write that needs it
 * readable, is remembered in a tlsio_want_t so the owner asks the loop for
 * that event and retries the call when it comes.
 *
 * It does no I/O, sets no loop interest and never touches the error queue
 * or errno: the caller decides which events to wait for, and reports (and
 * clears) the errors of a call that failed.
 */
#ifndef MUS_COMMON_TLSIO_H
#define MUS_COMMON_TLSIO_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/ssl.h>

typedef struct tlsio_want {
    bool read_wants_write;   /* the last SSL_read returned WANT_WRITE: retry it when writable */
    bool write_wants_read;   /* the last SSL_write returned WANT_READ: retry it when readable */
} tlsio_want_t;

/* For a call on ssl that returned r without success: LOOP_READ or
 * LOOP_WRITE when it waits for that, 0 when it failed or the peer closed.
 * *err is SSL_get_error(ssl, r) in every case. */
uint32_t tlsio_wait_events(SSL *ssl, int r, int *err);

/* After SSL_read returned r <= 0: true when the read waits (the socket
 * readable, or writable with w->read_wants_write set), false when it
 * failed or the peer closed (*err: SSL_get_error; the flag is then left
 * as it was). */
bool tlsio_read_waits(tlsio_want_t *w, SSL *ssl, int r, int *err);

/* After SSL_write returned r <= 0: true when the write waits (the socket
 * writable, or readable with w->write_wants_read set), false when it
 * failed (*err: SSL_get_error; the flag is then left as it was). */
bool tlsio_write_waits(tlsio_want_t *w, SSL *ssl, int r, int *err);

#endif
