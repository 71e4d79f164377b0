/*
 * common/tlsio.c: SSL_get_error mapped onto common/loop events (see
 * tlsio.h). It only classifies: no I/O, no loop calls, no logging, and the
 * OpenSSL error queue and errno are left for the caller to read.
 */
#include "tlsio.h"

#include "loop.h"

uint32_t
tlsio_wait_events(SSL *ssl, int r, int *err)
{
    *err = SSL_get_error(ssl, r);
    if (*err == SSL_ERROR_WANT_READ)
        return LOOP_READ;
    if (*err == SSL_ERROR_WANT_WRITE)
        return LOOP_WRITE;
    return 0;
}

/* Sets *flag when the call waits for the other direction (cross), clears
 * it when it waits for its own; leaves it alone when the call failed. */
static bool
waits(bool *flag, uint32_t cross, SSL *ssl, int r, int *err)
{
    uint32_t ev = tlsio_wait_events(ssl, r, err);

    if (ev == 0)
        return false;
    *flag = ev == cross;
    return true;
}

bool
tlsio_read_waits(tlsio_want_t *w, SSL *ssl, int r, int *err)
{
    return waits(&w->read_wants_write, LOOP_WRITE, ssl, r, err);
}

bool
tlsio_write_waits(tlsio_want_t *w, SSL *ssl, int r, int *err)
{
    return waits(&w->write_wants_read, LOOP_READ, ssl, r, err);
}
