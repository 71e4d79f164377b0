/*
 * tests/integration/harness.h: helpers for the Criterion integration tests
 * that drive the real musproxy binary and mp-origin over loopback.
 *
 * Processes started here get their own process group, stderr (and stdout,
 * except mp-origin's which is read for the port) in files under the test's
 * temporary directory, and PR_SET_PDEATHSIG so nothing outlives a crashed
 * test. mp_cleanup() (use it as the Criterion .fini) kills whatever is still
 * running and removes the temporary directory (kept if MP_KEEP_TMP is set).
 *
 * Environment: MUSPROXY_BIN, ORIGIN_BIN (binaries), MP_SRCDIR (source tree),
 * all set by tests/meson.build.
 */
#ifndef MP_TEST_HARNESS_H
#define MP_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MP_PATH_MAX 1024

typedef struct mp_proc {
    pid_t pid;                      /* 0 when not running / reaped */
    int status;                     /* waitpid status once reaped */
    bool reaped;
    char name[64];
    char stderr_path[MP_PATH_MAX];
    char stdout_path[MP_PATH_MAX];
} mp_proc_t;

/* ---- environment, files, temp dir ---- */
const char *mp_musproxy_bin(void);
const char *mp_origin_bin(void);
/* Creates (once per test process) /tmp/mp-it-XXXXXX and returns it. */
const char *mp_tmpdir(void);
/* dir/name into out (MP_PATH_MAX). Returns out. */
char *mp_path(char *out, const char *name);
int mp_write_file(const char *path, const char *text);
/* Appends text (e.g. top-level YAML after mp_config_write). 0/-1. */
int mp_append_file(const char *path, const char *text);
/* Whole file, NUL-terminated, malloc'd; NULL if it cannot be read. */
char *mp_read_file(const char *path, size_t *len_out);
/* Kills every process still registered and removes the temp dir. */
void mp_cleanup(void);

/* ---- musproxy configuration ---- */
typedef struct mp_config {
    int listen_port;
    const char *workers;            /* "2" */
    const char *clients;            /* "[127.0.0.0/8]" */
    const char *deny_destinations;  /* "[169.254.0.0/16]" */
    const char *connect_ports;      /* "[443]" */
    const char *timeouts;           /* flow map without braces */
    const char *access_log;         /* absolute path; NULL = <tmp>/access.log */
    const char *visible_hostname;   /* "musproxy" */
    const char *log_level;          /* "debug" */
    const char *extra_proxy;        /* raw lines appended under proxy: (indented) */
    const char *max_connections;    /* "1000" */
    const char *extra_listen;       /* ", { address: ... }" appended to listen, or NULL */
} mp_config_t;

/* Fills the defaults above with short timeouts and a free listen port. */
void mp_config_defaults(mp_config_t *c);
/* Writes the YAML to <tmp>/name; full path into out (MP_PATH_MAX). 0/-1. */
int mp_config_write(const mp_config_t *c, const char *name, char *out);

/* ---- processes ---- */
/* fork/exec argv[0] with argv, new process group, stdout/stderr in files
 * <tmp>/<name>.stdout/.stderr (stdout to a pipe if stdout_pipe != NULL). */
int mp_proc_start(mp_proc_t *p, const char *name, char *const argv[], int *stdout_pipe);
bool mp_proc_alive(mp_proc_t *p);
int mp_proc_signal(mp_proc_t *p, int sig);
/* Waits for exit up to timeout_ms. 0 when exited (status in p->status), -1 on timeout. */
int mp_proc_wait(mp_proc_t *p, int timeout_ms);
/* Sends sig, waits timeout_ms, then SIGKILLs the group. Returns the wait status
 * or -1 if it had to be killed. */
int mp_proc_stop(mp_proc_t *p, int sig, int timeout_ms);
/* The process's stderr so far (malloc'd, never NULL). */
char *mp_proc_stderr(mp_proc_t *p);

/* Starts mp-origin on 127.0.0.1:0 (TLS if cert != NULL); returns its port or -1. */
int mp_origin_start(mp_proc_t *p, const char *name, const char *cert, const char *key);
/* Starts musproxy -c cfg_path and waits until port accepts. 0 or -1 (stderr
 * of the failed process is printed to our stderr). */
int mp_proxy_start(mp_proc_t *p, const char *cfg_path, int port);
/* Runs argv to completion (timeout_ms), stderr into *err (malloc'd). Returns
 * the exit code, or -1 on timeout/signal. */
int mp_run(char *const argv[], int timeout_ms, char **err);

/* VmRSS / VmHWM etc. of pid in KiB, -1 if unavailable. */
long mp_proc_status_kb(pid_t pid, const char *field);
/* Largest value of field over pid and all its descendants (KiB). */
long mp_tree_status_kb(pid_t pid, const char *field);

/* ---- certificates (openssl CLI) ---- */
/* Makes a CA and a server cert for 127.0.0.1/localhost in the temp dir. */
int mp_make_certs(char *ca_out, char *cert_out, char *key_out);

/* ---- sockets ---- */
int mp_free_port(void);
/* 0 when 127.0.0.1:port accepts a TCP connection within timeout_ms. */
int mp_wait_port(int port, int timeout_ms);
/* Connected blocking socket to 127.0.0.1:port, -1 on failure (errno kept). */
int mp_connect(int port);
int mp_send_all(int fd, const void *buf, size_t len);
int mp_send_str(int fd, const char *s);
/* One recv with a poll timeout. >0 bytes, 0 EOF, -1 error, -2 timeout. */
ssize_t mp_recv_timeout(int fd, void *buf, size_t cap, int timeout_ms);
/* Reads until EOF or timeout; NUL-terminates. Returns bytes read; *closed
 * tells whether EOF (or a reset) was seen. */
size_t mp_read_until_close(int fd, char *buf, size_t cap, int timeout_ms, bool *closed);

/* Buffered reader to pull whole responses off a raw socket. */
typedef struct mp_reader {
    int fd;
    size_t len;
    char buf[1 << 20];
} mp_reader_t;

typedef struct mp_response {
    int status;
    char head[16384];               /* status line + headers, NUL-terminated */
    char *body;                     /* malloc'd, NUL-terminated */
    size_t body_len;
} mp_response_t;

void mp_reader_init(mp_reader_t *r, int fd);
/* Reads one response head (up to CRLFCRLF). 0 ok, -1 error/EOF/timeout. */
int mp_read_head(mp_reader_t *r, mp_response_t *out, int timeout_ms);
/* Reads one complete response (head + Content-Length or chunked or
 * close-delimited body; no body for HEAD (set is_head), 1xx, 204, 304). */
int mp_read_response(mp_reader_t *r, mp_response_t *out, bool is_head, int timeout_ms);
void mp_response_free(mp_response_t *resp);
/* Value of header name in a head (case-insensitive) into out; true if present. */
bool mp_header(const char *head, const char *name, char *out, size_t cap);

/* ---- misc ---- */
uint64_t mp_fnv1a64(uint64_t h, const void *p, size_t n);
#define MP_FNV_INIT 0xcbf29ce484222325ULL
/* Byte i of mp-origin's /size and /chunked bodies. */
static inline unsigned char mp_pattern_byte(uint64_t i) { return (unsigned char)(i % 251u); }
/* Monotonic milliseconds. */
long long mp_now_ms(void);
void mp_sleep_ms(int ms);
/* Finds "<basename>:<line>:<col>:" in text; returns line (>0) or -1 (col out). */
int mp_find_file_line_col(const char *text, const char *basename, int *col_out);

#endif
