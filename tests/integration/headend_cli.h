/*
 * tests/integration/headend_cli.h: what the mus-headend integration tests
 * share: starting the real mus-headend in a temporary directory (its
 * certificate from the openssl CLI, a password file, a sessions file with
 * two sessions, a feed socket), a small blocking OpenSSL MUS/1 client written
 * here (independent of mus/client.c), and `musctl notify` as ocserv runs it.
 * Failures are Criterion assertions. Environment: HEADEND_BIN, MUSCTL_BIN.
 */
#ifndef MUS_TESTS_HEADEND_CLI_H
#define MUS_TESTS_HEADEND_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "../../mus/proto.h"

extern char dir[64];     /* the temporary directory */
extern int port;         /* the TLS port on 127.0.0.1 */
extern pid_t he_pid;

void pathf(char *buf, size_t cap, const char *name);
void write_file(const char *name, const char *data, mode_t mode);
void sleep_ms(int ms);
int tcp_connect(void);
/* Starts mus-headend (server id "he-test", password "right-password",
 * journal 100); extra: more arguments, NULL-terminated, or NULL. */
void headend_start_args(bool standby, const char *const *extra);
/* The two halves of headend_start_args: the directory and its files (dir
 * and port are set after it), then the process (waits until it listens). */
void headend_prepare(void);
void headend_spawn(bool standby, const char *const *extra);
void headend_start(bool standby);
void headend_stop(void);

typedef struct cli {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    char buf[MUS_FRAME_MAX + 2];
    size_t len;
    mus_frame_t hello;
} cli_t;

void cli_write(cli_t *c, const char *s);
size_t cli_until(cli_t *c, const char *delim);
void cli_consume(cli_t *c, size_t n);
bool cli_frame(cli_t *c, mus_frame_t *f);          /* next frame; false on EOF */
void cli_send(cli_t *c, const mus_frame_t *f);
int cli_open(cli_t *c);                             /* TLS + upgrade: the HTTP status */
void cli_auth_send(cli_t *c, const char *password, mus_frame_t *a, uint8_t *k, uint8_t *cb);
enum mus_frame_type cli_auth(cli_t *c, const char *password);
void cli_subscribe(cli_t *c, const char *epoch, bool has_seq, uint64_t seq);
void cli_close(cli_t *c);
void notify(const char *reason, const char *id, const char *user, const char *ip4,
            const char *ip6);
/* Reads a whole snapshot; returns its seq, *count sessions. */
uint64_t read_snapshot(cli_t *c, size_t *count, char *epoch, size_t epoch_cap);

#endif
