/*
 * tests/integration/harness.c: process, file, certificate and raw-socket
 * helpers for the musproxy integration tests (see harness.h).
 */
#include "harness.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_PROCS 32

static char g_tmp[MP_PATH_MAX];
static mp_proc_t *g_procs[MAX_PROCS];
/* the pid each registered process had: a registry entry whose memory no
 * longer holds that pid (a stack mp_proc_t that went out of scope) is never
 * signalled, since a garbage pid could be 1 or another program's group */
static pid_t g_pids[MAX_PROCS];

/* ---------- misc ---------- */

long long mp_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void mp_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

uint64_t mp_fnv1a64(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

int mp_find_file_line_col(const char *text, const char *basename, int *col_out)
{
    size_t bl = strlen(basename);
    for (const char *p = strstr(text, basename); p; p = strstr(p + 1, basename)) {
        const char *q = p + bl;
        if (*q != ':' || !isdigit((unsigned char)q[1]))
            continue;
        char *end;
        long line = strtol(q + 1, &end, 10);
        if (*end != ':' || !isdigit((unsigned char)end[1]))
            continue;
        long col = strtol(end + 1, &end, 10);
        if (*end != ':')
            continue;
        if (col_out)
            *col_out = (int)col;
        return (int)line;
    }
    return -1;
}

/* ---------- environment and files ---------- */

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

const char *mp_musproxy_bin(void) { return env_or("MUSPROXY_BIN", "./musproxy"); }
const char *mp_origin_bin(void) { return env_or("ORIGIN_BIN", "./mp-origin"); }

const char *mp_tmpdir(void)
{
    /* one directory per process: Criterion runs each test in a child, and
     * a directory made by the parent would be removed by the first child's
     * cleanup under the next test's feet */
    static pid_t owner;
    if (!g_tmp[0] || owner != getpid()) {
        owner = getpid();
        snprintf(g_tmp, sizeof g_tmp, "/tmp/mp-it-XXXXXX");
        if (!mkdtemp(g_tmp)) {
            perror("mkdtemp");
            abort();
        }
    }
    return g_tmp;
}

char *mp_path(char *out, const char *name)
{
    const char *d = mp_tmpdir();
    size_t dl = strlen(d), nl = strlen(name);
    if (dl + 1 + nl >= MP_PATH_MAX)
        abort();
    memcpy(out, d, dl);
    out[dl] = '/';
    memcpy(out + dl + 1, name, nl + 1);
    return out;
}

static int put_file(const char *path, const char *mode, const char *text)
{
    FILE *f = fopen(path, mode);
    if (!f)
        return -1;
    size_t n = strlen(text);
    int rc = fwrite(text, 1, n, f) == n ? 0 : -1;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

int mp_write_file(const char *path, const char *text)
{
    return put_file(path, "w", text);
}

int mp_append_file(const char *path, const char *text)
{
    return put_file(path, "a", text);
}

char *mp_read_file(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 1 >= cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        size_t r = fread(buf + len, 1, cap - len - 1, f);
        if (r == 0)
            break;
        len += r;
    }
    fclose(f);
    buf[len] = '\0';
    if (len_out)
        *len_out = len;
    return buf;
}

static void rm_rf(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char p[MP_PATH_MAX * 2];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rm_rf(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

void mp_cleanup(void)
{
    for (int i = 0; i < MAX_PROCS; i++) {
        if (g_procs[i]) {
            if (g_procs[i]->pid == g_pids[i] && g_pids[i] > 1 && !g_procs[i]->reaped)
                mp_proc_stop(g_procs[i], SIGKILL, 2000);
            g_procs[i] = NULL;
        }
    }
    if (g_tmp[0] && !getenv("MP_KEEP_TMP"))
        rm_rf(g_tmp);
    else if (g_tmp[0])
        fprintf(stderr, "harness: kept %s\n", g_tmp);
    g_tmp[0] = '\0';
}

/* ---------- configuration ---------- */

void mp_config_defaults(mp_config_t *c)
{
    memset(c, 0, sizeof *c);
    c->listen_port = mp_free_port();
    c->workers = "2";
    c->clients = "[127.0.0.0/8]";
    c->deny_destinations = "[169.254.0.0/16]";
    c->connect_ports = "[443]";
    c->timeouts = "header: 1s, idle: 5s, connect: 2s, response: 5s, tunnel_idle: 5s, "
                  "shutdown: 5s, dns: 2s";
    c->access_log = NULL;
    c->visible_hostname = "musproxy";
    c->log_level = "debug";
}

int mp_config_write(const mp_config_t *c, const char *name, char *out)
{
    char log_path[MP_PATH_MAX], store_path[MP_PATH_MAX];
    const char *al = c->access_log ? c->access_log : mp_path(log_path, "access.log");
    char text[8192];
    int n = snprintf(text, sizeof text,
                     "# musproxy integration test configuration\n"
                     "proxy:\n"
                     "  listen: [ { address: \"127.0.0.1:%d\", mode: explicit }%s ]\n"
                     "  workers: %s\n"
                     "  clients: %s\n"
                     "  deny_destinations: %s\n"
                     "  connect_ports: %s\n"
                     "  max_connections: %s\n"
                     "  timeouts: { %s }\n"
                     "  access_log: %s\n"
                     "  visible_hostname: %s\n"
                     "%s"
                     "log_level: %s\n"
                     "store: { path: %s }\n",
                     c->listen_port, c->extra_listen ? c->extra_listen : "", c->workers,
                     c->clients, c->deny_destinations, c->connect_ports,
                     c->max_connections ? c->max_connections : "1000", c->timeouts, al, c->visible_hostname,
                     c->extra_proxy ? c->extra_proxy : "", c->log_level,
                     mp_path(store_path, "musproxy.db"));
    if (n < 0 || (size_t)n >= sizeof text)
        return -1;
    mp_path(out, name);
    return mp_write_file(out, text);
}

/* ---------- processes ---------- */

static void register_proc(mp_proc_t *p)
{
    for (int i = 0; i < MAX_PROCS; i++)
        if (g_procs[i] == p) {
            g_pids[i] = p->pid;
            return;
        }
    for (int i = 0; i < MAX_PROCS; i++)
        if (!g_procs[i]) {
            g_procs[i] = p;
            g_pids[i] = p->pid;
            return;
        }
}

int mp_proc_start(mp_proc_t *p, const char *name, char *const argv[], int *stdout_pipe)
{
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    char file[128];
    snprintf(file, sizeof file, "%s.stderr", name);
    mp_path(p->stderr_path, file);
    snprintf(file, sizeof file, "%s.stdout", name);
    mp_path(p->stdout_path, file);

    int pfd[2] = { -1, -1 };
    if (stdout_pipe && pipe2(pfd, O_CLOEXEC) < 0)
        return -1;
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        signal(SIGPIPE, SIG_DFL);
        int in = open("/dev/null", O_RDONLY);
        int err = open(p->stderr_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int out = stdout_pipe ? pfd[1] : open(p->stdout_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || err < 0 || out < 0)
            _exit(127);
        dup2(in, 0);
        dup2(out, 1);
        dup2(err, 2);
        execv(argv[0], argv);
        dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid);
    p->pid = pid;
    register_proc(p);
    if (stdout_pipe) {
        close(pfd[1]);
        *stdout_pipe = pfd[0];
    }
    return 0;
}

static int reap(mp_proc_t *p, int flags)
{
    if (p->reaped)
        return 1;
    if (p->pid <= 0)
        return 1;
    int st;
    pid_t r = waitpid(p->pid, &st, flags);
    if (r == p->pid) {
        p->status = st;
        p->reaped = true;
        return 1;
    }
    if (r < 0 && errno == ECHILD) {
        p->reaped = true;
        p->status = -1;
        return 1;
    }
    return 0;
}

bool mp_proc_alive(mp_proc_t *p)
{
    return p->pid > 0 && !reap(p, WNOHANG);
}

int mp_proc_signal(mp_proc_t *p, int sig)
{
    if (p->pid <= 0 || p->reaped)
        return -1;
    return kill(p->pid, sig);
}

int mp_proc_wait(mp_proc_t *p, int timeout_ms)
{
    long long end = mp_now_ms() + timeout_ms;
    for (;;) {
        if (reap(p, WNOHANG))
            return 0;
        if (mp_now_ms() >= end)
            return -1;
        mp_sleep_ms(10);
    }
}

int mp_proc_stop(mp_proc_t *p, int sig, int timeout_ms)
{
    if (p->pid <= 1)   /* never kill(-1, ...): that is every process */
        return -1;
    if (!p->reaped) {
        kill(p->pid, sig);
        if (mp_proc_wait(p, timeout_ms) < 0) {
            kill(-p->pid, SIGKILL);
            kill(p->pid, SIGKILL);
            reap(p, 0);
            kill(-p->pid, SIGKILL);    /* leftovers of the group */
            return -1;
        }
    }
    kill(-p->pid, SIGKILL);            /* forked workers left behind, if any */
    return p->status;
}

char *mp_proc_stderr(mp_proc_t *p)
{
    char *s = mp_read_file(p->stderr_path, NULL);
    return s ? s : strdup("");
}

int mp_origin_start(mp_proc_t *p, const char *name, const char *cert, const char *key)
{
    char *argv[8];
    int i = 0;
    argv[i++] = (char *)mp_origin_bin();
    argv[i++] = "--listen";
    argv[i++] = "127.0.0.1:0";
    if (cert) {
        argv[i++] = "--tls";
        argv[i++] = (char *)cert;
        argv[i++] = (char *)key;
    }
    argv[i] = NULL;
    int fd;
    if (mp_proc_start(p, name, argv, &fd) < 0)
        return -1;
    char line[128];
    size_t n = 0;
    long long end = mp_now_ms() + 5000;
    while (n + 1 < sizeof line && mp_now_ms() < end) {
        struct pollfd pf = { .fd = fd, .events = POLLIN };
        if (poll(&pf, 1, 100) <= 0)
            continue;
        ssize_t r = read(fd, line + n, 1);
        if (r <= 0)
            break;
        if (line[n] == '\n')
            break;
        n++;
    }
    close(fd);
    line[n] = '\0';
    int port = -1;
    if (sscanf(line, "listening %d", &port) != 1)
        return -1;
    return port;
}

int mp_proxy_start(mp_proc_t *p, const char *cfg_path, int port)
{
    char *argv[] = { (char *)mp_musproxy_bin(), "-c", (char *)cfg_path, NULL };
    if (mp_proc_start(p, "musproxy", argv, NULL) < 0)
        return -1;
    long long end = mp_now_ms() + 5000;
    while (mp_now_ms() < end) {
        if (!mp_proc_alive(p))
            break;
        if (mp_wait_port(port, 50) == 0)
            return 0;
        mp_sleep_ms(20);
    }
    char *err = mp_proc_stderr(p);
    fprintf(stderr, "harness: musproxy did not come up on %d; stderr:\n%s\n", port, err);
    free(err);
    return -1;
}

int mp_run(char *const argv[], int timeout_ms, char **err)
{
    static int seq;
    char name[32];
    snprintf(name, sizeof name, "run%d", ++seq);
    mp_proc_t p;
    if (mp_proc_start(&p, name, argv, NULL) < 0)
        return -1;
    int rc = -1;
    if (mp_proc_wait(&p, timeout_ms) == 0 && WIFEXITED(p.status))
        rc = WEXITSTATUS(p.status);
    else
        mp_proc_stop(&p, SIGKILL, 1000);
    if (err)
        *err = mp_proc_stderr(&p);
    for (int i = 0; i < MAX_PROCS; i++)
        if (g_procs[i] == &p)
            g_procs[i] = NULL;
    return rc;
}

long mp_proc_status_kb(pid_t pid, const char *field)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[256];
    long v = -1;
    size_t fl = strlen(field);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
            v = strtol(line + fl + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

long mp_tree_status_kb(pid_t pid, const char *field)
{
    long best = mp_proc_status_kb(pid, field);
    char path[96];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return best;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char cp[MP_PATH_MAX];
        snprintf(cp, sizeof cp, "/proc/%d/task/%s/children", (int)pid, e->d_name);
        char *kids = mp_read_file(cp, NULL);
        if (!kids)
            continue;
        for (char *s = kids; *s;) {
            char *end;
            long k = strtol(s, &end, 10);
            if (end == s)
                break;
            long v = mp_tree_status_kb((pid_t)k, field);
            if (v > best)
                best = v;
            s = end;
        }
        free(kids);
    }
    closedir(d);
    return best;
}

/* ---------- certificates ---------- */

int mp_make_certs(char *ca_out, char *cert_out, char *key_out)
{
    char cakey[MP_PATH_MAX], csr[MP_PATH_MAX], ext[MP_PATH_MAX], serial[MP_PATH_MAX];
    mp_path(ca_out, "ca.pem");
    mp_path(cakey, "ca.key");
    mp_path(cert_out, "server.pem");
    mp_path(key_out, "server.key");
    mp_path(csr, "server.csr");
    mp_path(ext, "server.ext");
    mp_path(serial, "ca.srl");
    if (mp_write_file(ext, "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                           "basicConstraints=CA:FALSE\n"
                           "extendedKeyUsage=serverAuth\n") < 0)
        return -1;
    char *ca[] = { "/usr/bin/openssl", "req", "-x509", "-newkey", "ec",
                   "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                   "-keyout", cakey, "-out", ca_out, "-days", "2",
                   "-subj", "/CN=musproxy test CA",
                   "-addext", "basicConstraints=critical,CA:TRUE",
                   "-addext", "keyUsage=critical,keyCertSign,cRLSign", NULL };
    char *req[] = { "/usr/bin/openssl", "req", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", key_out, "-out", csr, "-subj", "/CN=localhost", NULL };
    char *sign[] = { "/usr/bin/openssl", "x509", "-req", "-in", csr, "-CA", ca_out,
                     "-CAkey", cakey, "-CAcreateserial", "-CAserial", serial,
                     "-out", cert_out, "-days", "2", "-extfile", ext, NULL };
    char *err = NULL;
    if (mp_run(ca, 20000, &err) != 0 || (free(err), err = NULL, mp_run(req, 20000, &err)) != 0 ||
        (free(err), err = NULL, mp_run(sign, 20000, &err)) != 0) {
        fprintf(stderr, "harness: openssl failed: %s\n", err ? err : "");
        free(err);
        return -1;
    }
    free(err);
    return 0;
}

/* ---------- sockets ---------- */

int mp_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = 0 };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t l = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &l) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

int mp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

int mp_wait_port(int port, int timeout_ms)
{
    long long end = mp_now_ms() + timeout_ms;
    for (;;) {
        int fd = mp_connect(port);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        if (mp_now_ms() >= end)
            return -1;
        mp_sleep_ms(20);
    }
}

int mp_send_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int mp_send_str(int fd, const char *s)
{
    return mp_send_all(fd, s, strlen(s));
}

ssize_t mp_recv_timeout(int fd, void *buf, size_t cap, int timeout_ms)
{
    struct pollfd pf = { .fd = fd, .events = POLLIN };
    int pr;
    do
        pr = poll(&pf, 1, timeout_ms);
    while (pr < 0 && errno == EINTR);
    if (pr == 0)
        return -2;
    if (pr < 0)
        return -1;
    ssize_t r;
    do
        r = recv(fd, buf, cap, 0);
    while (r < 0 && errno == EINTR);
    return r;
}

size_t mp_read_until_close(int fd, char *buf, size_t cap, int timeout_ms, bool *closed)
{
    size_t n = 0;
    long long end = mp_now_ms() + timeout_ms;
    bool eof = false;
    while (n + 1 < cap) {
        long long left = end - mp_now_ms();
        if (left <= 0)
            break;
        ssize_t r = mp_recv_timeout(fd, buf + n, cap - n - 1, (int)left);
        if (r == -2)
            break;
        if (r <= 0) {
            eof = true;
            break;
        }
        n += (size_t)r;
    }
    buf[n] = '\0';
    if (closed)
        *closed = eof;
    return n;
}

void mp_reader_init(mp_reader_t *r, int fd)
{
    r->fd = fd;
    r->len = 0;
}

/* Appends more data; 1 got data, 0 EOF, -1 error/timeout. */
static int reader_more(mp_reader_t *r, long long deadline)
{
    if (r->len >= sizeof r->buf)
        return -1;
    long long left = deadline - mp_now_ms();
    if (left <= 0)
        return -1;
    ssize_t n = mp_recv_timeout(r->fd, r->buf + r->len, sizeof r->buf - r->len, (int)left);
    if (n == 0)
        return 0;
    if (n < 0)
        return -1;
    r->len += (size_t)n;
    return 1;
}

static void reader_consume(mp_reader_t *r, size_t n)
{
    memmove(r->buf, r->buf + n, r->len - n);
    r->len -= n;
}

static char *memfind(char *hay, size_t n, const char *needle)
{
    size_t nl = strlen(needle);
    if (n < nl)
        return NULL;
    for (size_t i = 0; i + nl <= n; i++)
        if (memcmp(hay + i, needle, nl) == 0)
            return hay + i;
    return NULL;
}

static int read_head_deadline(mp_reader_t *r, mp_response_t *out, long long deadline)
{
    memset(out, 0, sizeof *out);
    char *e;
    while ((e = memfind(r->buf, r->len, "\r\n\r\n")) == NULL) {
        if (reader_more(r, deadline) <= 0)
            return -1;
    }
    size_t hl = (size_t)(e - r->buf) + 4;
    if (hl >= sizeof out->head)
        return -1;
    memcpy(out->head, r->buf, hl);
    out->head[hl] = '\0';
    reader_consume(r, hl);
    if (sscanf(out->head, "HTTP/1.%*d %d", &out->status) != 1)
        return -1;
    return 0;
}

int mp_read_head(mp_reader_t *r, mp_response_t *out, int timeout_ms)
{
    return read_head_deadline(r, out, mp_now_ms() + timeout_ms);
}

static int body_append(mp_response_t *o, const char *p, size_t n, size_t *cap)
{
    if (o->body_len + n + 1 > *cap) {
        while (o->body_len + n + 1 > *cap)
            *cap = *cap ? *cap * 2 : 4096;
        char *nb = realloc(o->body, *cap);
        if (!nb)
            return -1;
        o->body = nb;
    }
    memcpy(o->body + o->body_len, p, n);
    o->body_len += n;
    o->body[o->body_len] = '\0';
    return 0;
}

int mp_read_response(mp_reader_t *r, mp_response_t *out, bool is_head, int timeout_ms)
{
    long long deadline = mp_now_ms() + timeout_ms;
    if (read_head_deadline(r, out, deadline) < 0)
        return -1;
    size_t cap = 0;
    out->body = NULL;
    body_append(out, "", 0, &cap);
    char v[256];
    int st = out->status;
    if (is_head || (st >= 100 && st < 200) || st == 204 || st == 304)
        return 0;
    if (mp_header(out->head, "Transfer-Encoding", v, sizeof v) && strcasestr(v, "chunked")) {
        for (;;) {
            char *e;
            while ((e = memfind(r->buf, r->len, "\r\n")) == NULL)
                if (reader_more(r, deadline) <= 0)
                    return -1;
            unsigned long long sz = strtoull(r->buf, NULL, 16);
            reader_consume(r, (size_t)(e - r->buf) + 2);
            if (sz == 0) {
                /* trailers up to the empty line */
                for (;;) {
                    while ((e = memfind(r->buf, r->len, "\r\n")) == NULL)
                        if (reader_more(r, deadline) <= 0)
                            return -1;
                    bool empty = e == r->buf;
                    reader_consume(r, (size_t)(e - r->buf) + 2);
                    if (empty)
                        return 0;
                }
            }
            while (r->len < sz + 2)
                if (reader_more(r, deadline) <= 0)
                    return -1;
            body_append(out, r->buf, (size_t)sz, &cap);
            reader_consume(r, (size_t)sz + 2);
        }
    }
    if (mp_header(out->head, "Content-Length", v, sizeof v)) {
        size_t want = (size_t)strtoull(v, NULL, 10);
        while (out->body_len < want) {
            if (r->len == 0 && reader_more(r, deadline) <= 0)
                return -1;
            size_t take = r->len < want - out->body_len ? r->len : want - out->body_len;
            body_append(out, r->buf, take, &cap);
            reader_consume(r, take);
        }
        return 0;
    }
    /* close-delimited */
    for (;;) {
        body_append(out, r->buf, r->len, &cap);
        r->len = 0;
        int m = reader_more(r, deadline);
        if (m == 0)
            return 0;
        if (m < 0)
            return -1;
    }
}

void mp_response_free(mp_response_t *resp)
{
    free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
}

bool mp_header(const char *head, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    const char *p = strchr(head, '\n');
    while (p) {
        p++;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            size_t n = strcspn(v, "\r\n");
            if (n >= cap)
                n = cap - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return true;
        }
        p = strchr(p, '\n');
    }
    return false;
}
