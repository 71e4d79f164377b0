/*
 * proxy/limits.h: named limits and fixed timings of the data plane, in one
 * place. Configurable values (timeouts, ports, ACLs) live in the
 * configuration (policy/config.h); these are the ones an administrator
 * should not need to touch.
 */
#ifndef MUS_PROXY_LIMITS_H
#define MUS_PROXY_LIMITS_H

#define CONN_BUF_SIZE          16384   /* per direction body buffer */
#define CONN_BODY_BUF_MAX      65536   /* a streaming response body's buffer grows to
                                          (16 KiB: 550 us of CPU per MiB, 64 KiB: 470;
                                          256 KiB: 850, out of the CPU caches) */
#define CONN_BODY_BURST        (256u << 10) /* response bytes one wakeup moves before
                                          the other connections' turn (p99 latency) */
#define CONN_HEAD_BUF_MAX      (65536 + 1024) /* a head may grow the buffer to this */
#define CONN_MAX_URL_LOG       4096    /* URL bytes kept for the access log */
#define CONN_UPGRADE_MAX       128     /* bytes of Upgrade protocols offered upstream */
#define CONN_TUNNEL_PIPE_SIZE  (1 << 20) /* F_SETPIPE_SZ of a tunnel's pipes (kernel memory) */
#define CONN_TUNNEL_PIPE_CHUNK (1 << 20) /* bytes asked per splice(2) call */
#define CONN_TUNNEL_BURST      (8u << 20) /* bytes one direction moves before other connections' turn */
#define RELAYBUF_BIG           (1 << 20) /* copy buffer of a tunnel direction (bytes per recv) */
#define RELAYBUF_SMALL         CONN_BUF_SIZE /* ... once a worker's large ones reach the budget */
#define RELAYBUF_BUDGET        (64u << 20) /* large copy buffers lent per worker, in bytes */
#define RELAYBUF_SPARE         4       /* free large buffers a worker keeps */
#define RELAYBUF_CONN_SPARE    128     /* free CONN_BUF_SIZE buffers a worker keeps (2 MiB) */
#define POOL_MAX_PER_WORKER    512     /* idle upstream connections kept */
#define POOL_MAX_PER_DEST      256     /* ... of which to one destination: at least the
                                          concurrent requests to one busy origin, or each
                                          one past it pays a new TCP connection (30% more
                                          proxy CPU per request at 50 clients with 32) */
#define POOL_IDLE_MS           30000   /* an idle upstream connection is closed after */
#define ACCEPT_PAUSE_MS        100     /* accept paused this long on EMFILE/ENFILE */
#define ACCEPT_BATCH           64      /* accepts per readiness event */
#define ACCEPT_FULL_LOG_MS     1000    /* at most one "at max_connections" warning per worker per */
#define WORKER_WAKE_MS         1000    /* longest epoll wait (flag checks) */
#define WORKER_TRIM_MS         1000    /* at most one malloc_trim per worker per second */

#endif
