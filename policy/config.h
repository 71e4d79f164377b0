/*
 * policy/config.h: musproxy's configuration, loaded from one YAML file
 * (libyaml) and strictly validated: an unknown key, a wrong type, a bad value
 * or a missing required value is an error reported as "file:line:column:
 * message". A loaded configuration is immutable; a reload builds a new one
 * beside the old and the caller swaps them. It does not open sockets, read
 * secrets or start anything.
 */
#ifndef MUS_POLICY_CONFIG_H
#define MUS_POLICY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "../common/cidr.h"

/* Named limits of the file itself. */
#define CONFIG_MAX_FILE_BYTES   (4u << 20)  /* refuse larger files */
#define CONFIG_MAX_LISTEN       32
#define CONFIG_MAX_CIDRS        256         /* per list */
#define CONFIG_MAX_PORTS        64          /* connect_ports */
#define CONFIG_MAX_WORKERS      256
#define CONFIG_ERR_LEN          512         /* size of the err buffer callers pass */

enum config_listen_mode {
    CONFIG_MODE_EXPLICIT = 0,  /* browsers configured to use the proxy */
    CONFIG_MODE_TRANSPARENT,   /* traffic redirected to us (REDIRECT, TPROXY, WCCP) */
    CONFIG_MODE_PAC,           /* serves only the PAC file (/proxy.pac, /wpad.dat) */
    CONFIG_MODE_METRICS,       /* serves only /metrics (Prometheus); loopback addresses only */
};
const char *config_listen_mode_str(enum config_listen_mode m);

/* How a tunnel (CONNECT, Upgrade) moves bytes towards a peer. */
enum config_tunnel_relay {
    CONFIG_RELAY_AUTO = 0,     /* copy if that peer is on this host, else splice */
    CONFIG_RELAY_SPLICE,       /* zero-copy through a pipe: least proxy CPU per byte */
    CONFIG_RELAY_COPY,         /* through a pooled buffer: a local reader gets warm data */
};

typedef struct config_listen {
    char text[64];                    /* as written, e.g. "127.0.0.1:3128" */
    struct sockaddr_storage addr;     /* numeric address + port */
    socklen_t addr_len;
    enum config_listen_mode mode;
    bool tproxy;                      /* transparent: IP_TRANSPARENT (TPROXY) listener */
    bool spoof_client;                /* tproxy: the origin sees the client's address */
} config_listen_t;

/* A Host that does not name the original destination of an intercepted request. */
enum config_host_mismatch {
    CONFIG_HOST_MISMATCH_LOG = 0,     /* go to the original destination, log the mismatch */
    CONFIG_HOST_MISMATCH_REFUSE,      /* 409, like Squid's host_verify_strict */
};

/* A transparent TLS connection without SNI, or not TLS at all on a TLS port. */
enum config_no_sni {
    CONFIG_NO_SNI_ALLOW = 0,          /* decided by the destination address alone */
    CONFIG_NO_SNI_BLOCK,
};

#define CONFIG_MAX_BYPASS   256       /* bypass domains */
#define CONFIG_NAME_MAX     256       /* a DNS name incl. NUL */

typedef struct config_transparent {
    enum config_host_mismatch host_mismatch;
    enum config_no_sni no_sni;
    uint32_t peek_timeout;            /* ms: the whole ClientHello must arrive within */
    cidr_t bypass_cidrs[CONFIG_MAX_CIDRS];       /* relayed untouched */
    size_t n_bypass_cidrs;
    char bypass_domains[CONFIG_MAX_BYPASS][CONFIG_NAME_MAX]; /* lower case, the domain and below */
    size_t n_bypass_domains;
} config_transparent_t;

typedef struct config_timeouts {      /* all in milliseconds, > 0 */
    uint32_t header;       /* whole request head must arrive within (slowloris) */
    uint32_t idle;         /* keep-alive idle between requests */
    uint32_t connect;      /* upstream TCP connect (all addresses together) */
    uint32_t response;     /* upstream silence while a response is awaited/streams */
    uint32_t tunnel_idle;  /* CONNECT tunnel with no traffic either way */
    uint32_t shutdown;     /* SIGTERM drain deadline */
    uint32_t dns;          /* resolver answer */
} config_timeouts_t;

#define CONFIG_MAX_HEADENDS       32
#define CONFIG_MAX_HEADEND_ADDRS  4

typedef struct config_headend {
    char name[64];                    /* unique, letters/digits/-/_/. */
    size_t n_addrs;                   /* active first, then standbys */
    char addr_text[CONFIG_MAX_HEADEND_ADDRS][64];
    struct sockaddr_storage addrs[CONFIG_MAX_HEADEND_ADDRS];
    socklen_t addr_lens[CONFIG_MAX_HEADEND_ADDRS];
    char ca[4096];                    /* CA file, or "" when pin_sha256 is used */
    char pin_sha256[65];              /* lowercase hex SHA-256 of the SPKI, or "" */
    char cert_name[256];              /* expected name/IP; default: first address's host */
    char password_file[4096];         /* the shared secret lives there, never here */
} config_headend_t;

enum config_remote_source {
    CONFIG_REMOTE_HEADEND = 0,        /* remote = mapped by a headend (MUS) */
    CONFIG_REMOTE_IP_RANGES,          /* remote = inside vpn_pools, no headend */
};

typedef struct config_mus {
    enum config_remote_source remote_users;
    cidr_t vpn_pools[CONFIG_MAX_CIDRS];
    size_t n_vpn_pools;
    char probe_host[256];             /* answered by the proxy itself */
    uint32_t reconnect_interval;      /* ms, > 0 */
    uint32_t grace;                   /* ms, 0 = drop a lost headend's entries at once */
    char client_id[64];               /* our name towards the headends */
    char control_socket[108];         /* musctl talks to us here; "" = off */
    config_headend_t headends[CONFIG_MAX_HEADENDS];
    size_t n_headends;
} config_mus_t;

/* ---- policies (identity profiles, access policies, categories) ---- */

#define CONFIG_MAX_PROFILES        64
#define CONFIG_MAX_POLICIES        64
#define CONFIG_MAX_NAMES           64     /* users, groups, profiles ... in one list */
#define CONFIG_MAX_CATEGORY_RULES  128    /* category -> action entries of one policy */
#define CONFIG_MAX_CUSTOM_CATS     64
#define CONFIG_MAX_FRIENDLY        128    /* friendly category names */
#define CONFIG_MAX_TIME_RANGES     32
#define CONFIG_NAME_LEN            64
#define CONFIG_MAX_CUSTOM_ENTRIES  4096   /* domains, url_prefixes or regexes of one custom category */

enum config_location { CONFIG_LOC_ANY = 0, CONFIG_LOC_REMOTE, CONFIG_LOC_LOCAL };
enum config_mode_match { CONFIG_MATCH_ANY_MODE = 0, CONFIG_MATCH_EXPLICIT, CONFIG_MATCH_TRANSPARENT };
enum config_auth { CONFIG_AUTH_NONE = 0, CONFIG_AUTH_BASIC };
enum config_action { CONFIG_ACT_ALLOW = 0, CONFIG_ACT_BLOCK, CONFIG_ACT_MONITOR };

/* Bits for identity types (mus/map.h enum mus_id_type: 1 << type). */
#define CONFIG_TYPE_USER     (1u << 0)
#define CONFIG_TYPE_MACHINE  (1u << 1)
#define CONFIG_TYPE_DEVICE   (1u << 2)
#define CONFIG_TYPE_ANY      0u          /* no restriction (also matches "no identity") */

/* A list of names (users, groups, profiles, methods, categories). Heap
 * storage: names and names[i] point into the config's string pool (cfg->pool);
 * config_free frees it. n == 0 leaves names NULL. */
typedef struct config_names {
    size_t n;
    char **names;
} config_names_t;

typedef struct config_profile {
    char name[CONFIG_NAME_LEN];
    enum config_location location;    /* default any */
    cidr_t *subnets;                  /* NULL/0 = any; in the string pool */
    size_t n_subnets;
    uint16_t ports[CONFIG_MAX_PORTS]; /* proxy listening ports; 0 entries = any */
    size_t n_ports;
    enum config_mode_match mode;      /* default any */
    char user_agent[1024];            /* PCRE2 pattern, "" = any (compiled by policy/) */
    unsigned types;                   /* CONFIG_TYPE_* bits, 0 = any */
    config_names_t users;             /* exact names, 0 = any */
    config_names_t groups;            /* any of these groups, 0 = any */
    enum config_auth auth;            /* basic: explicit-mode clients must authenticate */
    bool refuse_unidentified;         /* refuse addresses inside vpn_pools with no identity */
} config_profile_t;

typedef struct config_time_range {
    char name[CONFIG_NAME_LEN];
    uint8_t days;                     /* bit 0 = Monday ... bit 6 = Sunday */
    uint16_t from_min, to_min;        /* minutes since midnight, local time; from < to */
} config_time_range_t;

typedef struct config_category_rule {
    char category[CONFIG_NAME_LEN];   /* friendly, list or custom category name */
    enum config_action action;
    int time_range;                   /* index into time_ranges, -1 = always */
} config_category_rule_t;

typedef struct config_policy {
    char name[CONFIG_NAME_LEN];
    config_names_t profiles;          /* empty = the default policy (must be last) */
    config_category_rule_t rules[CONFIG_MAX_CATEGORY_RULES];
    size_t n_rules;
    enum config_action default_action;/* for anything no rule decides; default allow */
    uint16_t connect_ports[CONFIG_MAX_PORTS]; /* 0 entries = proxy.connect_ports */
    size_t n_connect_ports;
    config_names_t methods;           /* allowed methods, 0 = any */
} config_policy_t;

typedef struct config_custom_category {
    char name[CONFIG_NAME_LEN];
    config_names_t domains;           /* a domain matches its subdomains */
    config_names_t url_prefixes;      /* "http://host/path" prefixes */
    config_names_t regexes;           /* PCRE2, matched against the full URL */
} config_custom_category_t;

typedef struct config_friendly {
    char name[CONFIG_NAME_LEN];       /* e.g. "arts-entertainment" */
    config_names_t lists;             /* list categories, e.g. [arts, radio] */
} config_friendly_t;

typedef struct config_policies {
    config_profile_t profiles[CONFIG_MAX_PROFILES];
    size_t n_profiles;
    config_policy_t policies[CONFIG_MAX_POLICIES];
    size_t n_policies;
    config_time_range_t time_ranges[CONFIG_MAX_TIME_RANGES];
    size_t n_time_ranges;
    config_custom_category_t custom[CONFIG_MAX_CUSTOM_CATS];
    size_t n_custom;
    config_friendly_t friendly[CONFIG_MAX_FRIENDLY];
    size_t n_friendly;
    char category_db[4096];           /* SQLite file from `musctl categories import`; "" = none */
    char auth_realm[128];             /* default "musproxy" */
    char auth_password_file[4096];    /* "user:pbkdf2-sha256$iter$salt$hash" lines; "" = none */
    uint32_t auth_surrogate_ttl;      /* ms an authenticated client address stays known; default 15m */
    char extended_log[4096];          /* JSON lines per transaction; "" = off */
} config_policies_t;

/* The storage behind every pointer in a config_t (opaque, policy/config.c). */
struct config_pool;

/* The proxy auto-config file (proxy/pac.h) browsers fetch. */
#define CONFIG_PAC_DIRECT_MAX 256
typedef struct config_pac {
    bool enabled;
    char proxy[CONFIG_NAME_MAX + 8];        /* "host:port" local clients use; "" = the first explicit listener */
    char remote_proxy[CONFIG_NAME_MAX + 8]; /* the same for remote (VPN) clients; "" = proxy */
    char direct_domains[CONFIG_PAC_DIRECT_MAX][CONFIG_NAME_MAX];  /* and their subdomains */
    size_t n_direct_domains;
    cidr_t direct_cidrs[CONFIG_MAX_CIDRS];  /* address literals in these go DIRECT */
    size_t n_direct_cidrs;
    uint32_t max_age;                       /* ms: Cache-Control max-age */
    bool fallback_direct;                   /* "PROXY p; DIRECT": fail open when the proxy is down */
} config_pac_t;

/* The transaction store (db/txnstore.h) the reports read. */
#define CONFIG_STORE_QUEUE_MAX  (1u << 22)
#define CONFIG_STORE_CONNINFO_MAX 1024
#define CONFIG_STORE_NODE_MAX     64
enum config_store_backend {
    CONFIG_STORE_SQLITE = 0,          /* path: one file (the default) */
    CONFIG_STORE_POSTGRESQL,          /* postgresql.conninfo: a database a group shares */
};
typedef struct config_store {
    enum config_store_backend backend;
    char path[4096];                  /* SQLite file; "" = off (either backend) */
    char conninfo[CONFIG_STORE_CONNINFO_MAX];  /* postgresql: libpq's, never a password */
    char password_file[4096];         /* postgresql: libpq's passfile; "" = libpq's default */
    char node[CONFIG_STORE_NODE_MAX]; /* postgresql: this proxy's name in the rows; "" = host name */
    uint32_t queue;                   /* records waiting for the writer, at most */
    uint32_t retain_days;             /* 0 = keep forever */
    uint32_t retain_mb;               /* 0 = no size cap */
    bool keep_query;                  /* store URL query strings (default: cut at '?') */
} config_store_t;

/* Scheduled reports (db/repsched.h): CSV files of each day, ISO week and
 * month just ended, written into the archive directory. */
#define CONFIG_REPORTS_DAILY    (1u << 0)
#define CONFIG_REPORTS_WEEKLY   (1u << 1)
#define CONFIG_REPORTS_MONTHLY  (1u << 2)
typedef struct config_reports {
    char archive[4096];               /* directory; "" = off (no store, or archive: off) */
    bool archive_default;             /* not written: the store's directory + "/reports" */
    unsigned schedule;                /* CONFIG_REPORTS_* bits (default all three) */
} config_reports_t;

/* WCCPv2 (proxy/wccp.h): musproxy as a cache engine behind routers that
 * redirect traffic to it. Addresses are IPv4 in host order. */
#define CONFIG_WCCP_MAX_ROUTERS   32
#define CONFIG_WCCP_MAX_SERVICES  8
#define CONFIG_WCCP_PORTS         8
#define CONFIG_WCCP_METHODS       2         /* gre, l2 / hash, mask */
#define CONFIG_WCCP_GRE           0x1u      /* forwarding/return method bits (the wire's) */
#define CONFIG_WCCP_L2            0x2u
#define CONFIG_WCCP_HASH          0x1u      /* assignment method bits (the wire's) */
#define CONFIG_WCCP_MASK          0x2u
/* Service Info flags, the wire's values (proxy/wccp_pkt.h WCCP_SF_*) */
#define CONFIG_WCCP_F_SRC_IP_HASH      0x0001u
#define CONFIG_WCCP_F_DST_IP_HASH      0x0002u
#define CONFIG_WCCP_F_SRC_PORT_HASH    0x0004u
#define CONFIG_WCCP_F_DST_PORT_HASH    0x0008u
#define CONFIG_WCCP_F_PORTS_DEFINED    0x0010u
#define CONFIG_WCCP_F_PORTS_SOURCE     0x0020u
#define CONFIG_WCCP_F_SRC_IP_ALT_HASH  0x0100u
#define CONFIG_WCCP_F_DST_IP_ALT_HASH  0x0200u
#define CONFIG_WCCP_F_SRC_PORT_ALT_HASH 0x0400u
#define CONFIG_WCCP_F_DST_PORT_ALT_HASH 0x0800u

typedef struct config_wccp_service {
    uint8_t id;
    bool dynamic;                     /* false: the standard web-cache service 0 */
    uint8_t protocol;                 /* dynamic: 6 (tcp) or 17 (udp) */
    uint8_t priority;                 /* dynamic */
    uint32_t flags;                   /* dynamic: CONFIG_WCCP_F_* */
    uint16_t ports[CONFIG_WCCP_PORTS];/* dynamic; n_ports > 0 sets PORTS_DEFINED */
    size_t n_ports;
} config_wccp_service_t;

typedef struct config_wccp {
    uint32_t routers[CONFIG_WCCP_MAX_ROUTERS];  /* none = WCCP off */
    size_t n_routers;
    uint32_t address;                 /* our address; 0 = the one routed to the first router */
    uint16_t weight;                  /* share of the buckets */
    char password_file[4096];         /* MD5 group password (first line); "" = no security */
    uint8_t forwarding[CONFIG_WCCP_METHODS];    /* CONFIG_WCCP_GRE/L2, preferred first */
    size_t n_forwarding;
    uint8_t ret[CONFIG_WCCP_METHODS];
    size_t n_ret;
    uint8_t assignment[CONFIG_WCCP_METHODS];    /* CONFIG_WCCP_HASH/MASK, preferred first */
    size_t n_assignment;
    config_wccp_service_t services[CONFIG_WCCP_MAX_SERVICES];
    size_t n_services;
} config_wccp_t;
/* musproxy's own GRE decapsulation (proxy/gre.h), for kernels without ip_gre. */
#define CONFIG_GRE_MAX_ROUTERS  32
#define CONFIG_GRE_TUN_LEN      16    /* IFNAMSIZ */
#define CONFIG_GRE_MTU_DEFAULT  1472  /* GRE_INNER_MTU: 1500 minus outer IPv4 + GRE + redirect header */
typedef struct config_gre {
    bool enabled;
    char tun[CONFIG_GRE_TUN_LEN];     /* the TUN device musproxy creates, e.g. wccp0 */
    uint32_t address;                 /* its IPv4 address, network order; 0 = none */
    uint8_t prefix;                   /* of that address (default 32) */
    uint32_t routers[CONFIG_GRE_MAX_ROUTERS]; /* GRE accepted from these only, network order */
    size_t n_routers;
    uint32_t mtu;                     /* of the TUN device, 68..65535 */
} config_gre_t;
/* musproxy's own RADIUS accounting listener (mus/feed_radius.h), for
 * single-box sites: the VPN headend's accounting comes straight here. */
#define CONFIG_RADIUS_MAX_LISTEN   8
#define CONFIG_RADIUS_PORT         1813
#define CONFIG_RADIUS_STALE_MAX    1000      /* stale_after, intervals */
typedef struct config_radius {
    size_t n_listen;                  /* 0 = off (the default) */
    char listen_text[CONFIG_RADIUS_MAX_LISTEN][64];   /* as written */
    struct sockaddr_storage listen[CONFIG_RADIUS_MAX_LISTEN];   /* numeric, UDP */
    socklen_t listen_lens[CONFIG_RADIUS_MAX_LISTEN];
    char clients_file[4096];          /* ADDRESS_OR_PREFIX SECRET lines; the secrets live there */
    char groups[80];                  /* class | filter-id | avpair | avpair:KEY | none */
    char machine_user[1024];          /* PCRE2 on the whole User-Name; "" = none */
    char machine_avpair[256];         /* a Cisco-AVPair KEY=VALUE; "" = none */
    uint32_t interim;                 /* ms, when a packet has no Acct-Interim-Interval; 0 = never stale */
    unsigned stale_after;             /* intervals without a refresh: stale (1..1000) */
    uint32_t stale_grace;             /* ms stale, then removed */
    char name[64];                    /* the headend name its map entries carry */
} config_radius_t;
/* The admin web UI (admin/admin.h). */
typedef struct config_admin {
    bool enabled;                     /* default true */
    char listen[64];                  /* as written, default "127.0.0.1:8080" */
    struct sockaddr_storage addr;     /* numeric address + port */
    socklen_t addr_len;
    char password_file[4096];         /* default etc/admin.passwd; "" = none (the UI does not start) */
    bool allow_remote;                /* a non-loopback listen address is refused unless true */
    char tls_cert[4096];              /* PEM certificate (chain) for HTTPS; "" = plain HTTP */
    char tls_key[4096];               /* its PEM private key; set both or neither */
    uint32_t session_idle;            /* ms a login lasts without a request (default 30 min) */
    uint32_t session_max;             /* ms a login lasts at most (default 12 h) */
} config_admin_t;
/* Who the daemon runs as (proxy/privdrop.h): the capabilities it may keep. */
#define CONFIG_CAP_NET_ADMIN        (1u << 0)   /* IP_TRANSPARENT (TPROXY, spoofing), TUN */
#define CONFIG_CAP_NET_RAW          (1u << 1)   /* raw sockets (GRE), IP_TRANSPARENT */
#define CONFIG_CAP_NET_BIND_SERVICE (1u << 2)   /* ports below 1024 bound at a reload */
#define CONFIG_RUN_NAME_MAX         33          /* user/group name incl. NUL (useradd's 32) */
typedef struct config_run {
    char user[CONFIG_RUN_NAME_MAX];   /* "" = do not switch */
    char group[CONFIG_RUN_NAME_MAX];  /* "" = the user's primary group */
    bool caps_auto;                   /* keep what the listeners need (default) */
    unsigned keep_caps;               /* CONFIG_CAP_* bits when !caps_auto */
} config_run_t;
/* "net_admin" for CONFIG_CAP_NET_ADMIN, ... ("?" for anything else). */
const char *config_cap_name(unsigned cap);

typedef struct config {
    char path[4096];                  /* the file it was loaded from */
    struct config_pool *pool;         /* owned; freed by config_free. A config_t
                                       * must not be copied by value. */

    /* proxy: */
    config_listen_t listen[CONFIG_MAX_LISTEN];
    size_t n_listen;
    unsigned workers;                 /* 0 = auto (one per core) */
    cidr_t clients[CONFIG_MAX_CIDRS]; /* who may use the proxy */
    size_t n_clients;
    cidr_t deny_destinations[CONFIG_MAX_CIDRS]; /* never connect there */
    size_t n_deny_destinations;
    uint16_t connect_ports[CONFIG_MAX_PORTS];
    size_t n_connect_ports;
    config_timeouts_t timeouts;
    unsigned max_connections;         /* per process, client side */
    enum config_tunnel_relay tunnel_relay;
    char access_log[4096];            /* "" = off */
    char visible_hostname[256];       /* used in Via and error pages */
    config_transparent_t transparent; /* intercepted traffic (mode: transparent listeners) */
    int log_level;                    /* enum log_level */

    config_mus_t mus;
    config_policies_t pol;
    config_store_t store;
    config_reports_t reports;
    config_pac_t pac;
    config_wccp_t wccp;
    config_gre_t gre;
    config_radius_t radius;
    config_admin_t admin;
    config_run_t run;
} config_t;

/*
 * Loads and validates path. Returns a new configuration, or NULL with a
 * message "path:line:column: what is wrong" in err (CONFIG_ERR_LEN bytes).
 * Keys and defaults (every key optional; the example is etc/musproxy.yaml):
 *
 *   proxy:
 *     listen: [ { address: "127.0.0.1:3128", mode: explicit } ]  # IPv6: "[::1]:3128"
 *             # mode: transparent takes tproxy: true (an IP_TRANSPARENT listener) and
 *             # then spoof_client_address: true (the origin sees the client's address)
 *     workers: auto | 1..CONFIG_MAX_WORKERS
 *     clients: [127.0.0.0/8, 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, ::1/128, fc00::/7]
 *     deny_destinations: [169.254.0.0/16, fe80::/10, 0.0.0.0/8, 100.100.100.200/32, fd00:ec2::254/128]
 *     connect_ports: [443]
 *     max_connections: 10000
 *     tunnel_relay: auto             # auto | splice | copy
 *     timeouts: { header: 10s, idle: 60s, connect: 10s, response: 60s,
 *                 tunnel_idle: 300s, shutdown: 10s, dns: 5s }   # units ms, s, m, h
 *     access_log: var/access.log     # "" or "off" disables
 *     visible_hostname: musproxy
 *     transparent:                   # for listeners with mode: transparent
 *       host_mismatch: log           # log | refuse (409)
 *       no_sni: allow                # allow | block: TLS without SNI, or not TLS
 *       peek_timeout: 5s             # the ClientHello must arrive within
 *       bypass: []                   # domains (and below) and address prefixes: relayed untouched
 *   log_level: info                  # error | warn | info | debug
 *   pac:                             # the proxy auto-config file (/proxy.pac, /wpad.dat)
 *     enabled: true                  # answered on explicit listeners and mode: pac listeners
 *     proxy: ""                      # host:port for local clients ("" = first explicit listener)
 *     remote_proxy: ""               # host:port for remote (VPN) clients ("" = proxy)
 *     direct: []                     # domains (and below) and prefixes that go DIRECT
 *     max_age: 5m                    # Cache-Control max-age
 *     fallback_direct: false         # "; DIRECT" after the proxy (fails open)
 *   store:                           # every transaction, for the reports
 *     path: var/musproxy.db          # SQLite (WAL); "" or off disables
 *     backend: sqlite                # sqlite | postgresql (a group of proxies, one database)
 *     node: ""                       # postgresql: this proxy's name in the rows ("" = host name)
 *     postgresql:
 *       conninfo: ""                 # libpq's "host=... dbname=... user=..." (no password)
 *       password_file: ""            # libpq's passfile (host:port:db:user:password lines)
 *     queue: 65536                   # records waiting for the writer (1-4194304)
 *     retain_days: 30                # 0 = forever
 *     retain_mb: 1024                # 0 = no size cap
 *     keep_query: false              # store ?query strings
 *   reports:                         # scheduled reports (CSV) of the store's data
 *     archive: var/reports           # default: the store's directory + /reports; off disables
 *     schedule: [daily, weekly, monthly]   # UTC day, ISO week, month just ended
 *   wccp:                            # WCCPv2 cache engine; off without routers
 *     routers: [192.0.2.1]           # numeric IPv4, at most 32
 *     address: 192.0.2.10            # ours (default: the one routed to the first router)
 *     weight: 100                    # 0-65535, share of the buckets
 *     password_file: etc/wccp.secret # MD5: the group password is its first line; "" = none
 *     forwarding: [gre, l2]          # methods we accept, preferred first
 *     return: [gre, l2]
 *     assignment: [hash, mask]
 *     services:                      # default [{ id: 0 }] (web-cache); ids unique
 *       - { id: 0 }                  # standard web-cache: no other keys
 *       - { id: 70, ports: [443], protocol: tcp, priority: 0,   # dynamic: 1-255
 *           flags: [dst_ip_hash] }   # src_ip_hash dst_ip_hash src_port_hash dst_port_hash
 *                                    # ports_source and the *_alt_hash forms
 *   gre:                             # decapsulate WCCP GRE in musproxy (no ip_gre)
 *     enabled: false                 # true needs routers (and CAP_NET_RAW, CAP_NET_ADMIN)
 *     tun: wccp0                     # the TUN device created (1-15 of [A-Za-z0-9._-])
 *     address: ""                    # its IPv4 address[/len] (REDIRECT needs one); "" = none
 *     routers: []                    # numeric IPv4 router IDs (GRE sources); others dropped
 *     mtu: 1472                      # 68-65535; 1472 = 1500 minus the 28 bytes of GRE
 *   radius:                          # RADIUS accounting straight into the map (no mus-headend)
 *     listen: []                     # numeric, UDP: "0.0.0.0", "127.0.0.1:1813", "[::]:1813"
 *                                    # (port 1813 by default); none = off
 *     clients_file: ""               # ADDRESS_OR_PREFIX SECRET lines, mode 0600; needed with listen
 *     groups: class                  # class | filter-id | avpair | avpair:KEY | none
 *     machine_user: ""               # PCRE2 on the User-Name: a machine tunnel
 *     machine_avpair: ""             # KEY=VALUE: a Cisco-AVPair making it a machine
 *     interim: 0                     # interval when a packet has none; 0 = such sessions never go stale
 *     stale_after: 3                 # no Interim-Update for 3 intervals: stale (1-1000)
 *     stale_grace: 5m                # then removed
 *     name: radius                   # the headend name of its entries (not a mus.headends name)
 *   admin:                           # the admin web UI with the reports
 *     enabled: true
 *     listen: 127.0.0.1:8080         # numeric; not loopback only with allow_remote: true
 *     password_file: etc/admin.passwd   # `musctl passwd USER --file ...`; missing: no UI
 *     allow_remote: false
 *     tls_cert: ""                   # PEM; with tls_key: HTTPS (both or neither; read before
 *     tls_key: ""                    #   privileges drop, so a key only root reads works)
 *     session_idle: 30m              # a login ends after this without a request (1s-24h)
 *     session_max: 12h               # and after this in any case (1s-7d, >= session_idle)
 *   run:                             # applied at start only (proxy/privdrop.h)
 *     user: ""                       # started as root: switch to this user ("" = stay)
 *     group: ""                      # "" = the user's primary group
 *     keep_capabilities: auto        # or a list of net_admin, net_raw, net_bind_service
 *   mus:
 *     remote_users: headend          # or ip_ranges
 *     vpn_pools: []                  # CIDRs of the VPN address pools
 *     probe_host: mus.cisco.com
 *     reconnect_interval: 60s
 *     grace: 5m                      # 0 drops a lost headend's entries at once
 *     client_id: musproxy
 *     control_socket: var/musproxy.sock   # "" or off disables
 *     headends:                      # none by default
 *       - name: asa-1
 *         addresses: ["192.0.2.1:11999", "192.0.2.2:11999"]   # numeric; active, standby
 *         ca: etc/headend-ca.pem     # or pin_sha256: <64 hex digits>
 *         cert_name: 192.0.2.1       # default: the first address's host
 *         password_file: etc/headend.secret
 *
 *   identity_profiles:               # ordered, first match wins; none by default
 *     - name: remote-users           # required, unique
 *       location: remote             # remote | local | any (default any)
 *       types: [user]                # user | machine | device; [] or absent = any
 *       subnets: [10.10.0.0/16]      # client addresses (<= CONFIG_MAX_CIDRS); [] = any
 *       ports: [3128]                # proxy listening ports; [] = any
 *       mode: explicit               # explicit | transparent | any (default any)
 *       user_agent: "regex"          # PCRE2, < 1024 bytes, compiled by policy/; "" = any
 *       users: [alice]               # identity or Basic user names; [] = any
 *       groups: [eng]                # [] = any
 *       auth: none                   # none | basic (explicit local users)
 *       refuse_unidentified: false   # true: unidentified addresses in vpn_pools get 403
 *   access_policies:                 # ordered; the last one has no profiles (default)
 *     - name: remote                 # required, unique
 *       profiles: [remote-users]     # defined identity profiles, each in one policy only
 *       categories: { arts-entertainment: allow, adult: block,
 *                     games: { action: block, time: work-hours } }
 *       default: allow               # allow | block | monitor (default allow)
 *       connect_ports: [443]         # not []; absent = proxy.connect_ports
 *       methods: [GET, HEAD, POST, CONNECT]   # not []; absent = any
 *     - { name: default, default: allow }
 *   time_ranges:                     # both keys required; 24:00 only as an end
 *     work-hours: { days: [mon, tue, wed, thu, fri], hours: "09:00-17:00" }
 *   custom_categories:               # at least one of the three lists non-empty
 *     - name: partner-sites
 *       domains: [partner.example]   # stored lowercase; matches subdomains too
 *       url_prefixes: ["http://intranet.example/wiki/"]
 *       regexes: ["^http://[^/]*\\.games\\."]
 *   categories:
 *     database: var/categories.db    # from `musctl categories import DIR`; default "" = none
 *     names: { arts-entertainment: [arts, radio], adult: [adult] }
 *   authentication:
 *     realm: musproxy                # printable ASCII, no '"' or '\'
 *     password_file: etc/users.passwd   # `musctl passwd` writes salted hashes; default ""
 *     surrogate_ttl: 15m
 *   extended_log: var/extended.log   # JSON lines; "" or off disables (default off)
 *
 * Every name used (profiles in a policy, time ranges in rules) must be
 * defined somewhere in the file (order of sections does not matter); a
 * category name is friendly, custom, or a list category name (checked
 * against the database by policy/, not here). Names (profiles, policies,
 * time ranges, categories) are 1-63 letters, digits, '-', '_', '.', unique
 * per kind; a custom category must not share a friendly category's name.
 * User and group names are 1-255 bytes without ',', control characters or
 * surrounding spaces; methods are uppercase letters (at most 32); domains
 * are letters, digits, '-', '_', '.' (at most 253, no empty label);
 * url_prefixes start with http:// or https:// (at most 2048 bytes, no
 * spaces); regexes are 1-1023 bytes. Lists of names hold at most
 * CONFIG_MAX_NAMES entries and refuse repeated entries (custom category
 * lists: CONFIG_MAX_CUSTOM_ENTRIES, repeats allowed). A policy with `profiles` absent or [] is the
 * default policy: at most one, and it must be the last. auth: basic needs
 * authentication.password_file and cannot go with mode: transparent.
 */
config_t *config_load(const char *path, char *err, size_t errlen);

/* Same as config_load, from a memory buffer; name is used in messages. */
config_t *config_load_buffer(const char *name, const char *data, size_t len,
                             char *err, size_t errlen);

/* Frees a configuration; NULL is allowed. */
void config_free(config_t *cfg);

/* Parses a duration like "250ms", "10s", "5m", "1h" (a bare number is
 * seconds) into milliseconds. Returns 0 or -1. */
int config_parse_duration(const char *text, uint32_t *out_ms);

/* Parses "host:port" with a numeric IPv4 or bracketed IPv6 host. 0 or -1. */
int config_parse_sockaddr(const char *text, struct sockaddr_storage *out, socklen_t *out_len);

#endif
