/*
 * proxy/http.h: our HTTP/1.1 message parser. Incremental (the caller calls it
 * again with more bytes until the head is complete), zero-copy (every string
 * it returns points into the caller's buffer) and strict: anything ambiguous
 * that could be used to smuggle a request past a proxy is an error, never
 * "repaired". It parses request and response heads and chunked framing; it
 * does no I/O, allocates nothing, and knows nothing of proxying policy.
 *
 * Contract of http_parse_request()/http_parse_response(): buf[0..len) holds
 * the bytes received so far, starting at the first byte of the message.
 * They return the length of the head (request/status line + headers + the
 * empty line) when it is complete, HTTP_INCOMPLETE when more bytes are
 * needed, or another negative HTTP_E_* code. Only when the return value is
 * positive is *out filled; its pointers stay valid while buf does.
 */
#ifndef MUS_PROXY_HTTP_H
#define MUS_PROXY_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Named limits. A message exceeding one is refused (see the error codes). */
#define HTTP_MAX_REQUEST_LINE  8192   /* request line, CRLF excluded -> 414 */
#define HTTP_MAX_HEAD_BYTES    65536  /* whole head incl. start line -> 431 */
#define HTTP_MAX_HEADERS       100    /* header fields -> 431 */
#define HTTP_MAX_CHUNK_EXT     1024   /* bytes of extensions on one chunk line */
#define HTTP_MAX_TRAILER_BYTES 8192   /* all trailer fields together */
#define HTTP_MAX_CONN_TOKENS   16     /* tokens remembered from Connection */

enum http_status_code {
    HTTP_INCOMPLETE = -1,        /* need more bytes (not an error) */
    HTTP_E_SYNTAX = -2,          /* malformed start line or header -> 400 */
    HTTP_E_REQUEST_LINE_TOO_LONG = -3, /* -> 414 */
    HTTP_E_HEAD_TOO_LARGE = -4,  /* head bytes or header count -> 431 */
    HTTP_E_VERSION = -5,         /* not HTTP/1.0 or HTTP/1.1 -> 505 */
    HTTP_E_SMUGGLING = -6,       /* CL+TE, differing CLs, bad TE, ... -> 400 */
    HTTP_E_TARGET = -7,          /* unusable request-target / Host -> 400 */
    HTTP_E_METHOD = -8,          /* unknown method token -> 501 */
    HTTP_E_CHUNK = -9,           /* malformed chunked framing */
};

/* Returns a short English description of an HTTP_E_* code (static string). */
const char *http_strerror(int code);
/* The HTTP status a server should answer with for that error (400/414/431/501/505). */
int http_error_status(int code);

enum http_method {
    HTTP_M_OTHER = 0,  /* a valid token we do not know: forwarded as is */
    HTTP_M_GET,
    HTTP_M_HEAD,
    HTTP_M_POST,
    HTTP_M_PUT,
    HTTP_M_DELETE,
    HTTP_M_CONNECT,
    HTTP_M_OPTIONS,
    HTTP_M_TRACE,
    HTTP_M_PATCH,
};

enum http_target_form {
    HTTP_FORM_ORIGIN = 0,  /* "/path?q" (Host header gives the authority) */
    HTTP_FORM_ABSOLUTE,    /* "http://host:port/path" */
    HTTP_FORM_AUTHORITY,   /* "host:port", CONNECT only */
    HTTP_FORM_ASTERISK,    /* "*", OPTIONS only */
};

enum http_body_kind {
    HTTP_BODY_NONE = 0,    /* no body follows the head */
    HTTP_BODY_LENGTH,      /* content_length bytes follow */
    HTTP_BODY_CHUNKED,     /* chunked framing follows (use http_chunked_*) */
    HTTP_BODY_UNTIL_CLOSE, /* responses only: body ends when the peer closes */
};

typedef struct http_str {
    const char *p;
    size_t len;
} http_str_t;

typedef struct http_header {
    http_str_t name;   /* as received (case preserved), never empty */
    http_str_t value;  /* leading/trailing whitespace trimmed */
} http_header_t;

/* Facts the parser extracts from the header fields that frame the message. */
typedef struct http_framing {
    enum http_body_kind body;
    uint64_t content_length;          /* the body size when body == HTTP_BODY_LENGTH (responses:
                                       * also the size announced for HEAD/304) */
    bool keep_alive;                  /* after version + Connection close/keep-alive */
    bool conn_upgrade;                /* "upgrade" listed in Connection */
    bool has_upgrade;                 /* an Upgrade header is present */
    unsigned n_content_length;        /* Content-Length members seen (all equal);
                                       * > 1 means a sender must write one value */
    size_t n_conn_tokens;             /* tokens listed in Connection (lowercase compare) */
    http_str_t conn_tokens[HTTP_MAX_CONN_TOKENS];
} http_framing_t;

typedef struct http_request {
    http_str_t method;
    enum http_method meth;
    http_str_t target;                /* the raw request-target */
    enum http_target_form form;
    int version_minor;                /* 0 or 1 (HTTP/1.x) */

    /* Authority and path, from the absolute-form/authority-form target or,
     * for origin-form, from the Host header. host has IPv6 brackets removed;
     * port is the explicit port or 80 (http scheme) / 443 (https scheme);
     * port == 0 means no port was given for an authority-form target, which
     * is an error, so never seen by callers. path is "/" + rest for absolute
     * form with no path ("http://h" -> "/"), points to a static "/" then. */
    http_str_t scheme;                /* "http"/"https" (absolute form), else empty */
    http_str_t host;                  /* lowercase not guaranteed */
    uint16_t port;
    http_str_t path;                  /* path + query, empty for authority form */
    bool has_host_header;
    http_str_t host_header;           /* raw Host value if present */

    bool expect_continue;             /* Expect: 100-continue */
    http_framing_t framing;

    http_header_t headers[HTTP_MAX_HEADERS];
    size_t n_headers;
} http_request_t;

typedef struct http_response {
    int status;                       /* 100..999 */
    http_str_t reason;
    int version_minor;
    http_framing_t framing;
    http_header_t headers[HTTP_MAX_HEADERS];
    size_t n_headers;
} http_response_t;

/*
 * Parses a request head. Rules beyond the RFC 9112 grammar:
 *  - Content-Length together with Transfer-Encoding, several Content-Length
 *    fields or list members with different values, a Content-Length that is
 *    not all digits or overflows: HTTP_E_SMUGGLING.
 *  - Transfer-Encoding whose final coding is not "chunked", or any coding
 *    other than "chunked" at all, or "chunked" twice: HTTP_E_SMUGGLING
 *    (requests; an HTTP/1.0 request with Transfer-Encoding likewise).
 *  - obs-fold (a line starting with SP/HTAB), a bare CR or LF alone as line
 *    end, NUL or other CTLs in values, non-token characters in names,
 *    whitespace between name and colon: HTTP_E_SYNTAX (or HTTP_E_SMUGGLING
 *    for whitespace before the colon).
 *  - absolute-form with a scheme other than http/https, a missing host,
 *    userinfo ("user@host"), a bad port; authority-form outside CONNECT or
 *    CONNECT without authority-form; HTTP/1.1 origin-form without exactly
 *    one Host header; several Host headers; a "#" (fragment) anywhere in
 *    the request-target: HTTP_E_TARGET.
 *  - A lone LF line ending is accepted nowhere (strict CRLF).
 * Leading empty lines (CRLF) before a request line are skipped (RFC 9112
 * section 2.2) and counted in the returned length.
 */
int http_parse_request(const char *buf, size_t len, http_request_t *out);

/*
 * Parses a response head. req_method is the method of the request it
 * answers: a response to HEAD, a 1xx, 204 or 304 has no body; a 2xx to
 * CONNECT has no body (the tunnel follows). Without Content-Length or
 * chunked, the body runs until close. Content-Length with Transfer-Encoding
 * or differing Content-Lengths: HTTP_E_SMUGGLING.
 */
int http_parse_response(const char *buf, size_t len, enum http_method req_method,
                        http_response_t *out);

/* Case-insensitive lookup of the first header named name; NULL if absent. */
const http_header_t *http_find_header(const http_header_t *h, size_t n, const char *name);

/* True if name (case-insensitive) equals the NUL-terminated literal lit. */
bool http_str_eq_nocase(http_str_t s, const char *lit);

/*
 * Incremental chunked-body scanner. The proxy forwards chunked bodies with
 * their framing unchanged, so the scanner validates and finds the end; it
 * can also decode (strip the framing) for an HTTP/1.0 peer.
 */
enum http_chunk_state {
    HTTP_CHUNK_SIZE = 0,     /* reading the hex size */
    HTTP_CHUNK_EXT,          /* reading ";ext" up to CR */
    HTTP_CHUNK_SIZE_LF,      /* expecting LF after the size line's CR */
    HTTP_CHUNK_DATA,         /* inside data, `remaining` bytes left */
    HTTP_CHUNK_DATA_CR,      /* expecting CR after data */
    HTTP_CHUNK_DATA_LF,      /* expecting LF after data */
    HTTP_CHUNK_TRAILER,      /* at the start of a trailer line (or final CRLF) */
    HTTP_CHUNK_TRAILER_LINE, /* inside a trailer field line */
    HTTP_CHUNK_TRAILER_LF,   /* expecting LF after a trailer line's CR */
    HTTP_CHUNK_FINAL_LF,     /* expecting the LF of the final empty line */
    HTTP_CHUNK_DONE,         /* the body is complete */
    HTTP_CHUNK_ERROR,        /* malformed; stays here */
};

typedef struct http_chunked {
    enum http_chunk_state state;
    uint64_t remaining;      /* data bytes left in the current chunk */
    unsigned size_digits;    /* hex digits seen on the size line */
    unsigned ext_state;      /* where in the chunk-ext grammar (http.c) */
    size_t ext_bytes;        /* extension bytes on the current size line */
    size_t trailer_bytes;    /* trailer bytes so far */
    bool filter;             /* drop forbidden trailer fields (http_chunked_init_filter) */
} http_chunked_t;

void http_chunked_init(http_chunked_t *c);

/*
 * Like http_chunked_init, for a proxy that forwards the framing: the scanner
 * then also removes from the trailer section every field that must not be
 * processed after the content (RFC 9110 6.5.1: framing, routing,
 * authentication, request modifiers, content metadata, connection options:
 * see http_trailer_forbidden). To decide a trailer line it needs the whole
 * line: a line cut by the end of buf is not consumed (the caller keeps those
 * bytes and feeds them again with more). Kept bytes are moved to the start
 * of buf and counted in *out_len, as when decoding.
 */
void http_chunked_init_filter(http_chunked_t *c);

/* True if a trailer field of this name is dropped by a filtering scanner. */
bool http_trailer_forbidden(const char *name, size_t len);

/*
 * Splits a comma-separated field value (#element, RFC 9110 5.6.1): returns
 * the next non-empty member of [*p, end) with surrounding whitespace
 * removed, and advances *p past it; false when there is none left.
 */
bool http_list_next(const char **p, const char *end, http_str_t *member);

/*
 * Feeds buf[0..len). Stops right after the final CRLF of the body (so bytes
 * of a following pipelined message are not consumed). A chunk extension must
 * follow the RFC 9112 grammar (";" name ["=" token / quoted-string]): a
 * quoted string cut by CR, a bare quote or junk is an error, so that no
 * reader can see a line end where we saw none. Returns the number of
 * bytes consumed (0..len) or HTTP_E_CHUNK. If decode is true, the payload
 * bytes among those consumed are moved to the start of buf and their count
 * stored in *out_len (framing, extensions and trailers are dropped);
 * if decode is false, *out_len is set to the consumed count and buf is untouched.
 * Chunk sizes above 2^60, extensions above HTTP_MAX_CHUNK_EXT or trailers above
 * HTTP_MAX_TRAILER_BYTES are errors.
 */
ssize_t http_chunked_feed(http_chunked_t *c, char *buf, size_t len, bool decode,
                          size_t *out_len);

static inline bool
http_chunked_done(const http_chunked_t *c)
{
    return c->state == HTTP_CHUNK_DONE;
}

#endif
