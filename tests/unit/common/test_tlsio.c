/*
 * tests/unit/common/test_tlsio.c: the want flags of common/tlsio.c on a
 * real OpenSSL client whose handshake cannot finish: with memory BIOs it
 * waits for the server's answer (WANT_READ), behind a 16-byte BIO pair it
 * cannot even send its hello (WANT_WRITE), and bytes that are not TLS make
 * it fail. The handshake call, SSL_read and SSL_write are each checked:
 * the events returned, which flag is set, and that a failure leaves the
 * flags alone. Not here: the loops that act on them (integration-mus-feed,
 * integration-headend).
 */
#include <criterion/criterion.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "../../../common/loop.h"
#include "../../../common/tlsio.h"

/* A client whose reads find nothing and whose writes always fit. */
static SSL *
client_mem(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    cr_assert(ctx != NULL);
    SSL *ssl = SSL_new(ctx);
    cr_assert(ssl != NULL);
    SSL_CTX_free(ctx);   /* ssl holds a reference */
    SSL_set_bio(ssl, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
    SSL_set_connect_state(ssl);
    return ssl;
}

/* A client behind a BIO pair of 16 bytes each way: its hello never fits. */
static SSL *
client_tight(BIO **peer)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    cr_assert(ctx != NULL);
    SSL *ssl = SSL_new(ctx);
    cr_assert(ssl != NULL);
    SSL_CTX_free(ctx);
    BIO *b = NULL;
    cr_assert(BIO_new_bio_pair(&b, 16, peer, 16) == 1);
    SSL_set_bio(ssl, b, b);
    SSL_set_connect_state(ssl);
    return ssl;
}

Test(tlsio, handshake_waits_for_read)
{
    SSL *ssl = client_mem();
    int r = SSL_connect(ssl), err = 0;

    cr_assert(r != 1);
    cr_expect_eq(tlsio_wait_events(ssl, r, &err), LOOP_READ);
    cr_expect_eq(err, SSL_ERROR_WANT_READ);
    SSL_free(ssl);
}

Test(tlsio, handshake_waits_for_write)
{
    BIO *peer = NULL;
    SSL *ssl = client_tight(&peer);
    int r = SSL_connect(ssl), err = 0;

    cr_assert(r != 1);
    cr_expect_eq(tlsio_wait_events(ssl, r, &err), LOOP_WRITE);
    cr_expect_eq(err, SSL_ERROR_WANT_WRITE);
    SSL_free(ssl);
    BIO_free(peer);
}

/* SSL_read (or SSL_write) on ssl, flags from w: the call must wait with
 * SSL_get_error err, leave its own flag at flag and the other one alone. */
static void
expect_waits(SSL *ssl, bool read, tlsio_want_t w, int want_err, bool flag)
{
    tlsio_want_t before = w;
    char buf[64];
    int r = read ? SSL_read(ssl, buf, sizeof(buf)) : SSL_write(ssl, "x", 1), err = 0;

    cr_assert(r <= 0);
    cr_expect(read ? tlsio_read_waits(&w, ssl, r, &err) : tlsio_write_waits(&w, ssl, r, &err));
    cr_expect_eq(err, want_err);
    cr_expect_eq(read ? w.read_wants_write : w.write_wants_read, flag);
    cr_expect_eq(read ? w.write_wants_read : w.read_wants_write,
                 read ? before.write_wants_read : before.read_wants_write);
}

Test(tlsio, read_that_wants_write_is_flagged)
{
    BIO *peer = NULL;
    SSL *ssl = client_tight(&peer);

    expect_waits(ssl, true, (tlsio_want_t){0}, SSL_ERROR_WANT_WRITE, true);
    SSL_free(ssl);
    BIO_free(peer);
}

Test(tlsio, read_that_wants_read_clears_the_flag)
{
    SSL *ssl = client_mem();

    expect_waits(ssl, true, (tlsio_want_t){.read_wants_write = true, .write_wants_read = true},
                 SSL_ERROR_WANT_READ, false);
    SSL_free(ssl);
}

Test(tlsio, write_that_wants_read_is_flagged)
{
    SSL *ssl = client_mem();

    expect_waits(ssl, false, (tlsio_want_t){0}, SSL_ERROR_WANT_READ, true);
    SSL_free(ssl);
}

Test(tlsio, write_that_wants_write_clears_the_flag)
{
    BIO *peer = NULL;
    SSL *ssl = client_tight(&peer);

    expect_waits(ssl, false, (tlsio_want_t){.read_wants_write = true, .write_wants_read = true},
                 SSL_ERROR_WANT_WRITE, false);
    SSL_free(ssl);
    BIO_free(peer);
}

Test(tlsio, failure_waits_for_nothing_and_keeps_the_flags)
{
    static const char junk[] = "HTTP/1.1 400 Bad Request\r\n\r\n";
    SSL *ssl = client_mem();
    tlsio_want_t w = {.read_wants_write = true, .write_wants_read = true};
    char buf[64];
    int r = SSL_connect(ssl), err = 0;

    cr_assert(r != 1);
    cr_assert(BIO_write(SSL_get_rbio(ssl), junk, sizeof(junk) - 1) > 0);
    r = SSL_read(ssl, buf, sizeof(buf));
    cr_assert(r <= 0);
    cr_expect_not(tlsio_read_waits(&w, ssl, r, &err));
    cr_expect_eq(err, SSL_ERROR_SSL);
    cr_expect_eq(tlsio_wait_events(ssl, r, &err), 0);
    cr_expect_not(tlsio_write_waits(&w, ssl, r, &err));
    cr_expect(w.read_wants_write);
    cr_expect(w.write_wants_read);
    ERR_clear_error();
    SSL_free(ssl);
}
