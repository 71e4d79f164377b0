/*
 * proxy/wccp_pkt.h: the WCCPv2 wire format (draft-wilson-wrec-wccp-v2-01,
 * draft-mclaggan-wccp-v2rev1-00) for the cache-engine side: builders for the
 * four messages (Here_I_Am and Redirect_Assign, which a cache sends; I_See_You
 * and Removal_Query, which a router sends, for tests and router emulators) and
 * one strict parser that returns a view of any of them.
 *
 * What it does not do: sockets, timers, the protocol state machine, choosing
 * the designated cache or the bucket assignment (wccp_assign.h). No memory is
 * allocated; the parser copies into the caller's wccp_msg_t (only the
 * mask/value lists of the caches in a Router View point into the buffer).
 *
 * IPv4 only, as Cisco routers speak WCCPv2: every address is an IPv4 address
 * as a host-order uint32_t (10.0.0.1 == 0x0a000001, so `<` is numeric order).
 * IPv6 WCCP (the rev1 Address Table component, 17) is not supported: a message
 * carrying one is refused with WCCP_E_UNSUPPORTED, as are the rev1 assignment
 * data types "none"/"extended" and alternate-mask / weight-status assignments.
 *
 * Every count and length is checked against the bytes present and against
 * the named limits below; a message that breaks one is refused, never
 * "repaired". All fields are network order on the wire.
 */
#ifndef MUS_PROXY_WCCP_PKT_H
#define MUS_PROXY_WCCP_PKT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WCCP_PORT           2048     /* UDP, both ways */
#define WCCP_VERSION        0x0200   /* sent; any 0x02xx is accepted */
#define WCCP_HDR_LEN        8        /* type u32, version u16, length u16 */
#define WCCP_MSG_MAX        8192     /* largest message built or parsed */
#define WCCP_ROUTERS_MAX    32       /* routers in one list */
#define WCCP_CACHES_MAX     32       /* web caches in one list */
#define WCCP_BUCKETS        256      /* hash buckets */
#define WCCP_PORTS_MAX      8        /* ports in a Service Info */
#define WCCP_PASSWORD_LEN   8        /* MD5 key: shorter NUL-padded, longer cut */
#define WCCP_MD5_LEN        16
#define WCCP_MVSETS_MAX     4        /* mask/value sets in one list */
#define WCCP_MV_VALUES_MAX  256      /* value elements in one list, all sets */
#define WCCP_CAPS_MAX       8        /* capability elements in one component */
#define WCCP_BUCKET_NONE    0xff     /* unassigned bucket in Assignment Info */
#define WCCP_BUCKET_ALT     0x80     /* bucket flag: alternate hash */

enum wccp_msg_type {
    WCCP_HERE_I_AM = 10,
    WCCP_I_SEE_YOU = 11,
    WCCP_REDIRECT_ASSIGN = 12,
    WCCP_REMOVAL_QUERY = 13,
};

/* component type codes (the bit 1u << code is set in wccp_msg_t.components) */
enum wccp_comp_type {
    WCCP_C_SECURITY = 0,
    WCCP_C_SERVICE = 1,
    WCCP_C_ROUTER_ID = 2,
    WCCP_C_WC_ID = 3,
    WCCP_C_ROUTER_VIEW = 4,
    WCCP_C_WC_VIEW = 5,
    WCCP_C_ASSIGN = 6,
    WCCP_C_QUERY = 7,
    WCCP_C_CAPS = 8,
    WCCP_C_ALT_ASSIGN = 13,
    WCCP_C_ASSIGN_MAP = 14,
    WCCP_C_COMMAND = 15,
    WCCP_C_ALT_ASSIGN_MAP = 16,  /* rev1: refused */
    WCCP_C_ADDR_TABLE = 17,      /* rev1 IPv6: refused */
};

/* Return codes: builders return the message length (> 0) or one of these;
 * wccp_parse returns WCCP_OK or one of these. */
enum wccp_status {
    WCCP_OK = 0,
    WCCP_E_SHORT = -1,       /* fewer bytes than a header or a field needs */
    WCCP_E_VERSION = -2,     /* not WCCP version 2 (0x02xx) */
    WCCP_E_LENGTH = -3,      /* header length != datagram length, or > MSG_MAX */
    WCCP_E_TYPE = -4,        /* unknown message type */
    WCCP_E_COMPONENT = -5,   /* malformed, misplaced or duplicate component */
    WCCP_E_MISSING = -6,     /* a component this message type needs is absent */
    WCCP_E_SECURITY = -7,    /* security option differs from ours, bad digest */
    WCCP_E_TOO_MANY = -8,    /* a count above a WCCP_*_MAX limit */
    WCCP_E_UNSUPPORTED = -9, /* rev1 IPv6 address table, rev1 assignment forms */
    WCCP_E_SPACE = -10,      /* build: the buffer (or WCCP_MSG_MAX) is too small */
    WCCP_E_INVALID = -11,    /* build: the input breaks a limit or a rule */
};

const char *wccp_strerror(int code);
const char *wccp_msg_type_str(uint32_t type);   /* "Here_I_Am", ... or "unknown" */

enum wccp_security_option { WCCP_SEC_NONE = 0, WCCP_SEC_MD5 = 1 };

enum wccp_service_type { WCCP_SVC_STANDARD = 0, WCCP_SVC_DYNAMIC = 1 };
#define WCCP_SVC_WEB_CACHE  0   /* standard service 0: TCP dst port 80 */

/* Service Info flags */
#define WCCP_SF_SRC_IP_HASH        0x0001u
#define WCCP_SF_DST_IP_HASH        0x0002u
#define WCCP_SF_SRC_PORT_HASH      0x0004u
#define WCCP_SF_DST_PORT_HASH      0x0008u
#define WCCP_SF_PORTS_DEFINED      0x0010u
#define WCCP_SF_PORTS_SOURCE       0x0020u
#define WCCP_SF_SRC_IP_ALT_HASH    0x0100u
#define WCCP_SF_DST_IP_ALT_HASH    0x0200u
#define WCCP_SF_SRC_PORT_ALT_HASH  0x0400u
#define WCCP_SF_DST_PORT_ALT_HASH  0x0800u

typedef struct wccp_service {
    uint8_t type;        /* enum wccp_service_type */
    uint8_t id;          /* 0 = web-cache for standard; 0..255 dynamic */
    uint8_t priority;    /* dynamic only (built as 0 for standard) */
    uint8_t protocol;    /* IPPROTO_TCP/UDP, dynamic only */
    uint32_t flags;      /* WCCP_SF_*, dynamic only */
    uint16_t ports[WCCP_PORTS_MAX];   /* dynamic only, 0 = unused slot */
} wccp_service_t;

/* Capabilities (forwarding / assignment / return method bits) */
#define WCCP_FWD_GRE     0x1u
#define WCCP_FWD_L2      0x2u
#define WCCP_ASSIGN_HASH 0x1u
#define WCCP_ASSIGN_MASK 0x2u
#define WCCP_RET_GRE     0x1u
#define WCCP_RET_L2      0x2u

typedef struct wccp_caps {
    bool present;        /* parse: a Capabilities component was received
                            (when false the fields hold the defaults
                            GRE / hash / GRE); build: send the component */
    uint32_t forward;    /* WCCP_FWD_* */
    uint32_t assign;     /* WCCP_ASSIGN_* */
    uint32_t ret;        /* WCCP_RET_* */
} wccp_caps_t;

/* Mask/value set list (mask assignment): each set is one mask element and
 * the value elements that map masked packet fields to a cache. */
typedef struct wccp_mask {
    uint32_t src_ip, dst_ip;
    uint16_t src_port, dst_port;
} wccp_mask_t;

typedef struct wccp_value {
    uint32_t src_ip, dst_ip;
    uint16_t src_port, dst_port;
    uint32_t cache_ip;
} wccp_value_t;

typedef struct wccp_mvset {
    wccp_mask_t mask;
    uint16_t first;      /* index of its first value in wccp_mvlist_t.values */
    uint16_t count;      /* number of its values */
} wccp_mvset_t;

typedef struct wccp_mvlist {
    uint32_t n_sets;
    wccp_mvset_t sets[WCCP_MVSETS_MAX];
    uint32_t n_values;   /* all sets together, in set order */
    wccp_value_t values[WCCP_MV_VALUES_MAX];
} wccp_mvlist_t;

/* Parses a mask/value set list of exactly len bytes (as found in
 * wccp_cache_id_t.mv_wire). Returns WCCP_OK or a WCCP_E_* code. */
int wccp_mvlist_parse(const uint8_t *p, size_t len, wccp_mvlist_t *out);

/* Web-Cache Identity element flags */
#define WCCP_WCF_HISTORICAL   0x0001u  /* U: hash data is historical */
#define WCCP_WCF_MASK         0x0002u  /* assignment data type 1: mask form */
#define WCCP_WCF_TYPE_BITS    0x0006u  /* rev1 assignment-data type field */

typedef struct wccp_cache_id {
    uint32_t ip;
    uint16_t hash_rev;   /* must be 0 */
    uint16_t flags;      /* WCCP_WCF_*; the mask form has WCCP_WCF_MASK */
    uint8_t buckets[WCCP_BUCKETS / 8];  /* hash form: bit i%8 of byte i/8 = bucket i */
    uint16_t weight;
    uint16_t status;
    /* mask form, building: the list to send (NULL = empty list) */
    const wccp_mvlist_t *mv;
    /* mask form, parsing: the list as received, inside the parsed buffer */
    const uint8_t *mv_wire;
    uint16_t mv_wire_len;
} wccp_cache_id_t;

typedef struct wccp_router_id {   /* Router Identity element */
    uint32_t ip;
    uint32_t receive_id;
} wccp_router_id_t;

typedef struct wccp_assign_key {
    uint32_t ip;                  /* the designated cache */
    uint32_t change_number;
} wccp_assign_key_t;

typedef struct wccp_router_assign {   /* Router Assignment element */
    uint32_t ip;
    uint32_t receive_id;
    uint32_t change_number;       /* that router's member change number */
} wccp_router_assign_t;

enum wccp_cmd_type { WCCP_CMD_NONE = 0, WCCP_CMD_SHUTDOWN = 1, WCCP_CMD_SHUTDOWN_ACK = 2 };

/* An assignment: hash (Assignment Info, or Alternate Assignment type 0) or
 * mask (Alternate Assignment type 1). */
enum wccp_assign_form { WCCP_AF_HASH = 0, WCCP_AF_MASK = 1 };

typedef struct wccp_assignment {
    uint8_t form;                 /* enum wccp_assign_form */
    bool alternate;               /* in an Alternate Assignment component (13) */
    wccp_assign_key_t key;
    uint32_t n_routers;
    wccp_router_assign_t routers[WCCP_ROUTERS_MAX];
    uint32_t n_caches;            /* hash form */
    uint32_t caches[WCCP_CACHES_MAX];
    uint8_t buckets[WCCP_BUCKETS];   /* index into caches, or WCCP_BUCKET_NONE */
    const wccp_mvlist_t *mv;      /* mask form, building */
    wccp_mvlist_t mask;           /* mask form, parsing */
} wccp_assignment_t;

/* ---- what the builders take ------------------------------------------ */

typedef struct wccp_hia {         /* Here_I_Am: cache -> router */
    const char *password;         /* NULL: no security; else MD5 */
    wccp_service_t service;
    wccp_cache_id_t cache;        /* Web-Cache Identity Info */
    uint32_t change_number;       /* Web-Cache View */
    uint32_t n_routers;
    wccp_router_id_t routers[WCCP_ROUTERS_MAX];   /* with the last receive ids */
    uint32_t n_caches;
    uint32_t caches[WCCP_CACHES_MAX];
    wccp_caps_t caps;             /* sent only when caps.present */
    bool shutdown;                /* Command Extension "cache shutting down" */
} wccp_hia_t;

typedef struct wccp_isy {         /* I_See_You: router -> cache */
    const char *password;
    wccp_service_t service;
    wccp_router_id_t router;      /* Router Identity Info */
    uint32_t sent_to;
    uint32_t n_received_from;
    uint32_t received_from[WCCP_CACHES_MAX];
    uint32_t member_change;       /* Router View */
    wccp_assign_key_t key;
    uint32_t n_routers;
    uint32_t routers[WCCP_ROUTERS_MAX];
    uint32_t n_caches;
    wccp_cache_id_t caches[WCCP_CACHES_MAX];
    wccp_caps_t caps;
    const wccp_mvlist_t *map;     /* Assignment Map component when not NULL */
    uint32_t shutdown_ack;        /* != 0: Command Extension ack for this cache */
} wccp_isy_t;

typedef struct wccp_ra {          /* Redirect_Assign: designated cache -> router */
    const char *password;
    wccp_service_t service;
    wccp_assignment_t assign;     /* hash: buckets/caches; mask: assign.mv */
} wccp_ra_t;

typedef struct wccp_rq {          /* Removal_Query: router -> cache */
    const char *password;
    wccp_service_t service;
    wccp_router_id_t router;
    uint32_t sent_to;
    uint32_t target;              /* the cache asked about */
} wccp_rq_t;

/* Each writes one message into buf[0..cap) and returns its length, or
 * WCCP_E_SPACE / WCCP_E_INVALID (buf is then garbage). With a password the
 * Security Info carries the MD5 digest, computed last. */
int wccp_build_here_i_am(uint8_t *buf, size_t cap, const wccp_hia_t *m);
int wccp_build_i_see_you(uint8_t *buf, size_t cap, const wccp_isy_t *m);
int wccp_build_redirect_assign(uint8_t *buf, size_t cap, const wccp_ra_t *m);
int wccp_build_removal_query(uint8_t *buf, size_t cap, const wccp_rq_t *m);

/* ---- what the parser returns ----------------------------------------- */

typedef struct wccp_msg {
    uint32_t type;                /* enum wccp_msg_type */
    uint16_t version;
    uint32_t components;          /* 1u << enum wccp_comp_type, for each seen */
    uint32_t security;            /* enum wccp_security_option */
    wccp_service_t service;
    /* Router Identity Info (I_See_You) */
    wccp_router_id_t router;
    uint32_t sent_to;
    uint32_t n_received_from;
    uint32_t received_from[WCCP_CACHES_MAX];
    /* Router View Info (I_See_You) */
    struct {
        uint32_t member_change;
        wccp_assign_key_t key;
        uint32_t n_routers;
        uint32_t routers[WCCP_ROUTERS_MAX];
        uint32_t n_caches;
        wccp_cache_id_t caches[WCCP_CACHES_MAX];
    } rview;
    /* Web-Cache Identity Info (Here_I_Am) */
    wccp_cache_id_t cache;
    /* Web-Cache View Info (Here_I_Am) */
    struct {
        uint32_t change_number;
        uint32_t n_routers;
        wccp_router_id_t routers[WCCP_ROUTERS_MAX];
        uint32_t n_caches;
        uint32_t caches[WCCP_CACHES_MAX];
    } wcview;
    /* Assignment Info or Alternate Assignment (Redirect_Assign, I_See_You) */
    wccp_assignment_t assign;
    /* Router Query Info (Removal_Query) */
    struct {
        wccp_router_id_t router;
        uint32_t sent_to;
        uint32_t target;
    } query;
    wccp_caps_t caps;
    wccp_mvlist_t map;            /* Assignment Map */
    uint16_t cmd;                 /* enum wccp_cmd_type, last command element */
    uint32_t cmd_ip;              /* its cache address */
} wccp_msg_t;

/*
 * Parses buf[0..len), one whole datagram. password: NULL = we run without
 * security (an MD5 message is refused), else the group password (a message
 * without MD5, or with a wrong digest, is refused; the digest is compared in
 * constant time). The message must carry the components its type needs.
 * Returns WCCP_OK with *out filled, or a WCCP_E_* code (*out then undefined).
 */
int wccp_parse(const uint8_t *buf, size_t len, const char *password, wccp_msg_t *out);

#endif
