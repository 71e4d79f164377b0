/*
 * tests/unit/mus/test_proto.c: mus/proto.c — frame parsing (valid frames of every
 * type, hostile input with the expected reason), format/parse round trips,
 * fixed authentication vectors (computed independently with Python's
 * hashlib.pbkdf2_hmac and hmac), and the password file checks.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../../mus/proto.h"

#define NONCE_B64   "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="   /* bytes 0..31 */
#define NONCE31_B64 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg=="   /* bytes 0..30 */
#define SALT_B64    "AAECAwQFBgcICQoLDA0ODw=="                       /* bytes 0..15 */
#define SESSION \
    "{\"sid\":\"22666\",\"ips\":[\"10.10.10.5\",\"fd00::5\"],\"id\":{\"type\":\"user\"," \
    "\"name\":\"alice@corp.example\",\"domain\":\"CORP\"},\"groups\":[\"eng\",\"vpn\"]," \
    "\"started\":1763800000,\"client_ip\":\"198.51.100.7\",\"tunnel\":\"ssl\"}"

static int parse(const char *s, mus_frame_t *f, char *err, size_t errlen)
{
    return mus_frame_parse(s, strlen(s), f, err, errlen);
}

/* ---- valid frames of every type ---- */

struct valid_case {
    const char *line;
    enum mus_frame_type type;
};

static const struct valid_case valid[] = {
    {"{\"t\":\"hello\",\"v\":1,\"server_id\":\"asa-1\",\"epoch\":\"9f3c\",\"nonce\":\"" NONCE_B64
     "\",\"kdf\":{\"alg\":\"pbkdf2-sha256\",\"iter\":100000,\"salt\":\"" SALT_B64 "\"}}",
     MUS_F_HELLO},
    {"{\"t\":\"auth\",\"client_id\":\"proxy-a\",\"cnonce\":\"" NONCE_B64 "\",\"mac\":\"" NONCE_B64
     "\"}", MUS_F_AUTH},
    {"{\"t\":\"auth_ok\",\"mac\":\"" NONCE_B64 "\"}", MUS_F_AUTH_OK},
    {"{\"t\":\"auth_fail\"}", MUS_F_AUTH_FAIL},
    {"{\"t\":\"subscribe\"}", MUS_F_SUBSCRIBE},
    {"{\"t\":\"subscribe\",\"epoch\":\"ab\",\"seq\":7}", MUS_F_SUBSCRIBE},
    {"{\"t\":\"snap_begin\",\"epoch\":\"ab\",\"seq\":7,\"count\":2}", MUS_F_SNAP_BEGIN},
    {"{\"t\":\"snap\",\"s\":" SESSION "}", MUS_F_SNAP},
    {"{\"t\":\"snap_end\",\"seq\":7}", MUS_F_SNAP_END},
    {"{\"t\":\"add\",\"seq\":8,\"s\":" SESSION "}", MUS_F_ADD},
    {"{\"t\":\"upd\",\"seq\":9,\"s\":" SESSION "}", MUS_F_UPD},
    {"{\"t\":\"del\",\"seq\":10,\"sid\":\"22666\",\"ips\":[\"10.10.10.5\"],\"reason\":\"logout\"}",
     MUS_F_DEL},
    {"{\"t\":\"del\",\"seq\":10,\"sid\":\"22666\"}", MUS_F_DEL},
    {"{\"t\":\"ack\",\"seq\":10}", MUS_F_ACK},
    {"{\"t\":\"ping\"}", MUS_F_PING},
    {"{\"t\":\"pong\"}", MUS_F_PONG},
    {"{\"t\":\"error\",\"message\":\"unknown frame type\"}", MUS_F_ERROR},
    {"{\"t\":\"error\"}", MUS_F_ERROR},
    {"{\"t\":\"future_thing\",\"x\":[1,2]}", MUS_F_UNKNOWN},
    /* unknown members ignored, whitespace around the object allowed */
    {"  {\"t\":\"ping\",\"extra\":{\"deep\":[1,2,3]}}  ", MUS_F_PING},
    /* minimal session: only the required members */
    {"{\"t\":\"add\",\"seq\":1,\"s\":{\"sid\":\"x\",\"ips\":[\"::1\"],\"id\":{\"type\":\"machine\","
     "\"name\":\"PC1$\"}}}", MUS_F_ADD},
};

Test(proto_parse, valid_frames_of_every_type)
{
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        mus_frame_t f;
        char err[128];
        int rc = parse(valid[i].line, &f, err, sizeof(err));
        cr_expect_eq(rc, 0, "case %zu: rc %d (%s): %s", i, rc, err, valid[i].line);
        if (rc == 0)
            cr_expect_eq(f.type, valid[i].type, "case %zu: type %s", i,
                         mus_frame_type_str(f.type));
    }
}

Test(proto_parse, hello_members)
{
    mus_frame_t f;
    cr_assert_eq(parse(valid[0].line, &f, NULL, 0), 0);
    cr_expect_str_eq(f.server_id, "asa-1");
    cr_expect_str_eq(f.epoch, "9f3c");
    cr_expect_str_eq(f.kdf_alg, "pbkdf2-sha256");
    cr_expect_eq(f.kdf_iter, 100000);
    cr_expect_eq(f.salt_len, 16);
    for (int i = 0; i < 32; i++)
        cr_expect_eq(f.nonce[i], i);
    for (int i = 0; i < 16; i++)
        cr_expect_eq(f.salt[i], i);
}

Test(proto_parse, session_members)
{
    mus_frame_t f;
    cr_assert_eq(parse(valid[9].line, &f, NULL, 0), 0);
    cr_expect_eq(f.seq, 8);
    cr_expect(f.has_seq);
    cr_expect_str_eq(f.session.sid, "22666");
    cr_expect_eq(f.session.type, MUS_ID_USER);
    cr_expect_str_eq(f.session.name, "alice@corp.example");
    cr_expect_str_eq(f.session.domain, "CORP");
    cr_expect_str_eq(f.session.groups, "eng,vpn");
    cr_expect_eq(f.session.started, 1763800000);
    cr_expect_str_eq(f.session.client_ip, "198.51.100.7");
    cr_expect_str_eq(f.session.tunnel, "ssl");
    cr_assert_eq(f.n_ips, 2);
    uint8_t v4[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 10, 10, 5};
    uint8_t v6[16];
    inet_pton(AF_INET6, "fd00::5", v6);
    cr_expect_arr_eq(f.ips[0].b, v4, 16);
    cr_expect_arr_eq(f.ips[1].b, v6, 16);
}

Test(proto_parse, subscribe_presence_flags)
{
    mus_frame_t f;
    cr_assert_eq(parse("{\"t\":\"subscribe\"}", &f, NULL, 0), 0);
    cr_expect(!f.has_epoch && !f.has_seq);
    cr_assert_eq(parse("{\"t\":\"subscribe\",\"epoch\":\"e1\",\"seq\":0}", &f, NULL, 0), 0);
    cr_expect(f.has_epoch && f.has_seq);
    cr_expect_str_eq(f.epoch, "e1");
    cr_expect_eq(f.seq, 0);
}

Test(proto_parse, unknown_type_keeps_name)
{
    mus_frame_t f;
    cr_assert_eq(parse("{\"t\":\"frobnicate\"}", &f, NULL, 0), 0);
    cr_expect_eq(f.type, MUS_F_UNKNOWN);
    cr_expect_str_eq(f.type_name, "frobnicate");
}

/* ---- hostile input ---- */

struct bad_case {
    const char *line;
    const char *why;   /* substring of the error message */
};

static char long_name[600];
static char many_groups[1200];

static const struct bad_case bad[] = {
    {"", "not JSON"},
    {"hello", "not JSON"},
    {"{\"t\":\"ping\"", "not JSON"},
    {"{\"t\":\"ping\"}{}", "not JSON"},
    {"[\"t\",\"ping\"]", "not a JSON object"},
    {"\"ping\"", "not JSON"},          /* jansson refuses a bare string without DECODE_ANY */
    {"42", "not JSON"},
    {"{}", "missing \"t\""},
    {"{\"type\":\"ping\"}", "missing \"t\""},
    {"{\"t\":1}", "\"t\" is not"},
    {"{\"t\":\"\"}", "\"t\" is not"},
    {"{\"t\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}", "\"t\" is not"},
    {"{\"t\":\"ping\",\"t\":\"pong\"}", "duplicate"},
    {"{\"t\":\"ack\",\"seq\":1,\"seq\":2}", "duplicate"},
    {"{\"t\":\"ack\"}", "missing \"seq\""},
    {"{\"t\":\"ack\",\"seq\":\"1\"}", "\"seq\" is not"},
    {"{\"t\":\"ack\",\"seq\":-1}", "\"seq\" is not"},
    {"{\"t\":\"ack\",\"seq\":1.5}", "\"seq\" is not"},
    {"{\"t\":\"ack\",\"seq\":99999999999999999999999}", "not JSON"},
    {"{\"t\":\"hello\",\"v\":1,\"server_id\":\"a\",\"epoch\":\"e\",\"nonce\":\"" NONCE31_B64
     "\",\"kdf\":{\"alg\":\"pbkdf2-sha256\",\"iter\":100000,\"salt\":\"" SALT_B64 "\"}}",
     "\"nonce\": bad base64"},
    {"{\"t\":\"hello\",\"v\":1,\"server_id\":\"a\",\"epoch\":\"e\",\"nonce\":\"!!!!" NONCE_B64
     "\",\"kdf\":{\"alg\":\"pbkdf2-sha256\",\"iter\":100000,\"salt\":\"" SALT_B64 "\"}}",
     "\"nonce\": bad base64"},
    {"{\"t\":\"hello\",\"v\":1,\"server_id\":\"a\",\"epoch\":\"e\",\"nonce\":\"" NONCE_B64
     "\",\"kdf\":{\"alg\":\"pbkdf2-sha256\",\"iter\":100,\"salt\":\"" SALT_B64 "\"}}",
     "\"iter\" out of range"},
    {"{\"t\":\"hello\",\"v\":1,\"server_id\":\"a\",\"epoch\":\"e\",\"nonce\":\"" NONCE_B64
     "\",\"kdf\":{\"alg\":\"pbkdf2-sha256\",\"iter\":100000,\"salt\":\"\"}}",
     "\"salt\": bad base64"},
    {"{\"t\":\"hello\",\"v\":1,\"server_id\":\"a\",\"epoch\":\"e\",\"nonce\":\"" NONCE_B64 "\"}",
     "missing \"kdf\""},
    {"{\"t\":\"hello\",\"v\":1,\"server_id\":\"a\",\"epoch\":\"e\",\"nonce\":\"" NONCE_B64
     "\",\"kdf\":[]}", "\"kdf\" is not an object"},
    {"{\"t\":\"hello\",\"v\":\"1\",\"server_id\":\"a\",\"epoch\":\"e\",\"nonce\":\"" NONCE_B64
     "\",\"kdf\":{\"alg\":\"pbkdf2-sha256\",\"iter\":100000,\"salt\":\"" SALT_B64 "\"}}",
     "\"v\" is not"},
    {"{\"t\":\"auth\",\"client_id\":\"p\",\"cnonce\":\"" NONCE_B64 "\"}", "missing \"mac\""},
    {"{\"t\":\"auth\",\"client_id\":\"p\",\"cnonce\":\"" NONCE_B64 "\",\"mac\":\"AAEC\"}",
     "\"mac\": bad base64"},
    {"{\"t\":\"auth\",\"client_id\":\"p\",\"cnonce\":\"" NONCE_B64 "\",\"mac\":\"" NONCE_B64 " \"}",
     "\"mac\": bad base64"},
    {"{\"t\":\"auth\",\"client_id\":\"p\",\"cnonce\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\","
     "\"mac\":\"" NONCE_B64 "\"}", "\"cnonce\": bad base64"},   /* padding missing */
    {"{\"t\":\"auth\",\"client_id\":\"pppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp"
     "pppppppppp\",\"cnonce\":\"" NONCE_B64 "\",\"mac\":\"" NONCE_B64 "\"}",
     "\"client_id\" too long"},
    {"{\"t\":\"auth_ok\",\"mac\":5}", "\"mac\" is not a string"},
    {"{\"t\":\"add\",\"seq\":1}", "missing \"s\""},
    {"{\"t\":\"add\",\"seq\":1,\"s\":[]}", "\"s\" is not an object"},
    {"{\"t\":\"add\",\"seq\":1,\"s\":{\"ips\":[\"10.0.0.1\"],\"id\":{\"type\":\"user\",\"name\":\"a\"}}}",
     "missing \"sid\""},
    {"{\"t\":\"add\",\"seq\":1,\"s\":{\"sid\":\"1\",\"ips\":[\"10.0.0.1\"]}}", "missing \"id\""},
    {"{\"t\":\"add\",\"seq\":1,\"s\":{\"sid\":\"1\",\"ips\":\"10.0.0.1\",\"id\":{\"type\":\"user\","
     "\"name\":\"a\"}}}", "\"ips\" is not an array"},
    {"{\"t\":\"add\",\"seq\":1,\"s\":{\"sid\":\"1\",\"ips\":[],\"id\":{\"type\":\"user\","
     "\"name\":\"a\"}}}", "without addresses"},
    {"{\"t\":\"add\",\"seq\":1,\"s\":{\"sid\":\"1\",\"ips\":[\"1.1.1.1\",\"1.1.1.2\",\"1.1.1.3\","
     "\"1.1.1.4\",\"1.1.1.5\",\"1.1.1.6\",\"1.1.1.7\",\"1.1.1.8\",\"1.1.1.9\"],\"id\":{\"type\":"
     "\"user\",\"name\":\"a\"}}}", "too many addresses"},
    {"{\"t\":\"add\",\"seq\":1,\"s\":{\"sid\":\"1\",\"ips\":[\"10.0.0.256\"],\"id\":{\"type\":\"user\","
     "\"name\":\"a\"}}}", "not an IP address"},
    {"{\"t\":\"add\",\"seq\":1,\"s\":{\"sid\":\"1\",\"ips\":[\"fd00::5%3\"],\"id\":{\"type\":\"user\","
     "\"name\":\"a\"}}}", "not an IP address"},
    {"{\"t\":\"add\",\"seq\":1,\"s\":{\"sid\":\"1\",\"ips\":[\"010.0.0.1\"],\"id\":{\"type\":\"user\","
     "\"name\":\"a\"}}}", "not an IP address"},
    {"{\"t\":\"add\",\"seq\":1,\"s\":{\"sid\":\"1\",\"ips\":[10],\"id\":{\"type\":\"user\","
     "\"name\":\"a\"}}}", "address 0 is not a string"},
    {"{\"t\":\"add\",\"seq\":1,\"s\":{\"sid\":\"1\",\"ips\":[\"10.0.0.1\"],\"id\":{\"type\":\"robot\","
     "\"name\":\"a\"}}}", "unknown identity type"},
    {"{\"t\":\"add\",\"seq\":1,\"s\":{\"sid\":\"1\",\"ips\":[\"10.0.0.1\"],\"id\":{\"type\":\"user\"}}}",
     "missing \"name\""},
    {"{\"t\":\"add\",\"seq\":1,\"s\":{\"sid\":\"1\",\"ips\":[\"10.0.0.1\"],\"id\":{\"type\":\"user\","
     "\"name\":\"a\"},\"groups\":\"eng\"}}", "\"groups\" is not an array"},
    {"{\"t\":\"add\",\"seq\":1,\"s\":{\"sid\":\"1\",\"ips\":[\"10.0.0.1\"],\"id\":{\"type\":\"user\","
     "\"name\":\"a\"},\"groups\":[\"a,b\"]}}", "contains ','"},
    {"{\"t\":\"add\",\"seq\":1,\"s\":{\"sid\":\"1\",\"ips\":[\"10.0.0.1\"],\"id\":{\"type\":\"user\","
     "\"name\":\"a\"},\"started\":\"now\"}}", "\"started\" is not"},
    {"{\"t\":\"add\",\"seq\":1,\"s\":{\"sid\":\"1\",\"ips\":[\"10.0.0.1\"],\"id\":{\"type\":\"user\","
     "\"name\":\"a\"},\"client_ip\":\"example.com\"}}", "\"client_ip\" is not"},
    {"{\"t\":\"add\",\"seq\":1,\"s\":{\"sid\":\"1\",\"ips\":[\"10.0.0.1\"],\"id\":{\"type\":\"user\","
     "\"name\":\"a\"},\"tunnel\":\"ssl-and-more-and-more\"}}", "\"tunnel\" too long"},
    {"{\"t\":\"add\",\"seq\":1,\"s\":{\"sid\":\"1\",\"ips\":[\"10.0.0.1\"],\"id\":{\"type\":\"user\","
     "\"name\":\"a\\u0000b\"}}}", "not JSON"},
    {"{\"t\":\"del\",\"seq\":3}", "missing \"sid\""},
    {"{\"t\":\"del\",\"seq\":3,\"sid\":\"x\",\"ips\":[\"bogus\"]}", "not an IP address"},
    {"{\"t\":\"snap_begin\",\"epoch\":\"e\",\"seq\":1}", "missing \"count\""},
    {"{\"t\":\"subscribe\",\"epoch\":7}", "\"epoch\" is not a string"},
    {"{\"t\":\"error\",\"message\":[]}", "\"message\" is not a string"},
    {"{\"t\":\"ping\",\"x\":\"\xff\xfe\"}", "not JSON"},   /* invalid UTF-8 */
    /* filled in by the init function below (long_name, many_groups) */
    {long_name, "\"name\" too long"},
    {many_groups, "\"groups\" too long"},
};

static void fill_long_strings(void)
{
    char big[400];
    memset(big, 'n', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    snprintf(long_name, sizeof(long_name),
             "{\"t\":\"snap\",\"s\":{\"sid\":\"1\",\"ips\":[\"10.0.0.1\"],\"id\":{\"type\":\"user\","
             "\"name\":\"%s\"}}}", big);
    int n = snprintf(many_groups, sizeof(many_groups),
                     "{\"t\":\"snap\",\"s\":{\"sid\":\"1\",\"ips\":[\"10.0.0.1\"],\"id\":{\"type\":"
                     "\"user\",\"name\":\"a\"},\"groups\":[");
    for (int i = 0; i < 60; i++)
        n += snprintf(many_groups + n, sizeof(many_groups) - (size_t)n, "%s\"group-%03d\"",
                      i ? "," : "", i);
    snprintf(many_groups + n, sizeof(many_groups) - (size_t)n, "]}}");
}

Test(proto_parse, hostile_frames, .init = fill_long_strings)
{
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        mus_frame_t f;
        char err[256] = "";
        int rc = parse(bad[i].line, &f, err, sizeof(err));
        cr_expect_eq(rc, -1, "case %zu accepted: %.120s", i, bad[i].line);
        cr_expect(strstr(err, bad[i].why) != NULL, "case %zu: error \"%s\", expected \"%s\"", i,
                  err, bad[i].why);
    }
}

Test(proto_parse, oversize_frame)
{
    size_t n = MUS_FRAME_MAX + 1;
    char *big = malloc(n);
    cr_assert(big);
    memset(big, ' ', n);
    memcpy(big, "{\"t\":\"ping\"}", 12);   /* valid JSON followed by spaces */
    mus_frame_t f;
    char err[128];
    cr_expect_eq(mus_frame_parse(big, n, &f, err, sizeof(err)), -1);
    cr_expect(strstr(err, "longer than") != NULL, "%s", err);
    /* exactly at the limit is fine */
    cr_expect_eq(mus_frame_parse(big, n - 1, &f, err, sizeof(err)), 0, "%s", err);
    free(big);
}

Test(proto_parse, not_nul_terminated_input)
{
    /* the parser must honour len, not look for a NUL */
    const char buf[] = {'{', '"', 't', '"', ':', '"', 'p', 'i', 'n', 'g', '"', '}', 'X'};
    mus_frame_t f;
    cr_expect_eq(mus_frame_parse(buf, 12, &f, NULL, 0), 0);
    cr_expect_eq(mus_frame_parse(buf, 13, &f, NULL, 0), -1);
}

/* ---- format -> parse round trips ---- */

static void roundtrip(const mus_frame_t *in, mus_frame_t *out)
{
    char buf[MUS_FRAME_MAX + 2];
    int n = mus_frame_format(in, buf, sizeof(buf));
    cr_assert_gt(n, 0, "format %s failed", mus_frame_type_str(in->type));
    cr_assert_eq(buf[n - 1], '\n');
    cr_assert_null(memchr(buf, '\n', (size_t)n - 1), "newline inside the frame");
    char err[128];
    cr_assert_eq(mus_frame_parse(buf, (size_t)n - 1, out, err, sizeof(err)), 0, "%s: %.*s", err,
                 n, buf);
    cr_assert_eq(out->type, in->type);
}

static void sample_session(mus_frame_t *f)
{
    snprintf(f->session.sid, sizeof(f->session.sid), "sid-1");
    f->session.type = MUS_ID_MACHINE;
    snprintf(f->session.name, sizeof(f->session.name), "PC-42$ \"quoted\" \\ \xc3\xa9");
    snprintf(f->session.domain, sizeof(f->session.domain), "CORP");
    snprintf(f->session.groups, sizeof(f->session.groups), "eng,sales");
    f->session.started = 1763800000;
    snprintf(f->session.client_ip, sizeof(f->session.client_ip), "2001:db8::7");
    snprintf(f->session.tunnel, sizeof(f->session.tunnel), "ipsec");
    f->n_ips = 2;
    inet_pton(AF_INET6, "::ffff:10.1.2.3", f->ips[0].b);
    inet_pton(AF_INET6, "fd00::1:2", f->ips[1].b);
}

Test(proto_format, roundtrip_every_type)
{
    mus_frame_t in, out;

    memset(&in, 0, sizeof(in));
    in.type = MUS_F_HELLO;
    strcpy(in.server_id, "asa-1");
    strcpy(in.epoch, "00112233445566778899aabbccddeeff");
    strcpy(in.kdf_alg, "pbkdf2-sha256");
    in.kdf_iter = 100000;
    for (int i = 0; i < 32; i++)
        in.nonce[i] = (uint8_t)(i * 7);
    in.salt_len = 17;
    memset(in.salt, 0xa5, 17);
    roundtrip(&in, &out);
    cr_expect_str_eq(out.server_id, in.server_id);
    cr_expect_str_eq(out.epoch, in.epoch);
    cr_expect_arr_eq(out.nonce, in.nonce, 32);
    cr_expect_eq(out.salt_len, 17);
    cr_expect_arr_eq(out.salt, in.salt, 17);
    cr_expect_eq(out.kdf_iter, 100000);

    memset(&in, 0, sizeof(in));
    in.type = MUS_F_AUTH;
    strcpy(in.client_id, "proxy-a");
    memset(in.cnonce, 0xff, 32);
    memset(in.mac, 0x01, 32);
    roundtrip(&in, &out);
    cr_expect_str_eq(out.client_id, "proxy-a");
    cr_expect_arr_eq(out.cnonce, in.cnonce, 32);
    cr_expect_arr_eq(out.mac, in.mac, 32);

    memset(&in, 0, sizeof(in));
    in.type = MUS_F_AUTH_OK;
    memset(in.mac, 0x5a, 32);
    roundtrip(&in, &out);
    cr_expect_arr_eq(out.mac, in.mac, 32);

    memset(&in, 0, sizeof(in));
    in.type = MUS_F_SUBSCRIBE;
    roundtrip(&in, &out);
    cr_expect(!out.has_epoch && !out.has_seq);
    in.has_epoch = in.has_seq = true;
    strcpy(in.epoch, "e");
    in.seq = 12345678901234ull;
    roundtrip(&in, &out);
    cr_expect(out.has_epoch && out.has_seq);
    cr_expect_eq(out.seq, in.seq);

    memset(&in, 0, sizeof(in));
    in.type = MUS_F_SNAP_BEGIN;
    strcpy(in.epoch, "e");
    in.seq = 5;
    in.count = 100000;
    roundtrip(&in, &out);
    cr_expect_eq(out.seq, 5);
    cr_expect_eq(out.count, 100000);

    enum mus_frame_type with_session[] = {MUS_F_SNAP, MUS_F_ADD, MUS_F_UPD};
    for (size_t k = 0; k < 3; k++) {
        memset(&in, 0, sizeof(in));
        in.type = with_session[k];
        in.seq = 77;
        sample_session(&in);
        roundtrip(&in, &out);
        if (in.type != MUS_F_SNAP)
            cr_expect_eq(out.seq, 77);
        cr_expect_str_eq(out.session.sid, in.session.sid);
        cr_expect_eq(out.session.type, MUS_ID_MACHINE);
        cr_expect_str_eq(out.session.name, in.session.name);
        cr_expect_str_eq(out.session.domain, "CORP");
        cr_expect_str_eq(out.session.groups, "eng,sales");
        cr_expect_eq(out.session.started, 1763800000);
        cr_expect_str_eq(out.session.client_ip, "2001:db8::7");
        cr_expect_str_eq(out.session.tunnel, "ipsec");
        cr_expect_eq(out.n_ips, 2);
        cr_expect_arr_eq(out.ips, in.ips, sizeof(mus_addr_t) * 2);
    }

    memset(&in, 0, sizeof(in));
    in.type = MUS_F_DEL;
    in.seq = 9;
    strcpy(in.session.sid, "sid-1");
    in.n_ips = 1;
    inet_pton(AF_INET6, "::ffff:10.1.2.3", in.ips[0].b);
    strcpy(in.reason, "idle");
    roundtrip(&in, &out);
    cr_expect_str_eq(out.session.sid, "sid-1");
    cr_expect_eq(out.n_ips, 1);
    cr_expect_arr_eq(out.ips[0].b, in.ips[0].b, 16);
    cr_expect_str_eq(out.reason, "idle");

    enum mus_frame_type simple[] = {MUS_F_SNAP_END, MUS_F_ACK, MUS_F_PING, MUS_F_PONG,
                                    MUS_F_AUTH_FAIL, MUS_F_ERROR};
    for (size_t k = 0; k < sizeof(simple) / sizeof(simple[0]); k++) {
        memset(&in, 0, sizeof(in));
        in.type = simple[k];
        in.seq = 3;
        strcpy(in.message, "unknown frame type \"x\"");
        roundtrip(&in, &out);
        if (in.type == MUS_F_SNAP_END || in.type == MUS_F_ACK)
            cr_expect_eq(out.seq, 3);
        if (in.type == MUS_F_ERROR)
            cr_expect_str_eq(out.message, in.message);
    }
}

Test(proto_format, ipv4_is_written_as_dotted_quad)
{
    mus_frame_t in, out;
    memset(&in, 0, sizeof(in));
    in.type = MUS_F_ADD;
    in.seq = 1;
    sample_session(&in);
    char buf[4096];
    int n = mus_frame_format(&in, buf, sizeof(buf));
    cr_assert_gt(n, 0);
    buf[n] = '\0';
    cr_expect(strstr(buf, "\"ips\":[\"10.1.2.3\",\"fd00::1:2\"]") != NULL, "%s", buf);
    cr_expect(strncmp(buf, "{\"t\":\"add\"", 10) == 0, "t must come first: %s", buf);
    cr_assert_eq(mus_frame_parse(buf, (size_t)n - 1, &out, NULL, 0), 0);
}

Test(proto_format, refuses_small_buffer_and_unknown)
{
    mus_frame_t in;
    memset(&in, 0, sizeof(in));
    in.type = MUS_F_PING;
    char buf[64];
    cr_expect_eq(mus_frame_format(&in, buf, 5), -1);
    cr_expect_eq(mus_frame_format(&in, buf, 12), -1);   /* {"t":"ping"} is 12, plus '\n' */
    cr_expect_eq(mus_frame_format(&in, buf, 13), 13);   /* no NUL is written */
    cr_expect_eq(memcmp(buf, "{\"t\":\"ping\"}\n", 13), 0);
    in.type = MUS_F_UNKNOWN;
    cr_expect_eq(mus_frame_format(&in, buf, sizeof(buf)), -1);
}

/* ---- authentication vectors ----
 * python3:
 *   K = hashlib.pbkdf2_hmac('sha256', b"correct horse battery staple", bytes(range(16)), 10000, 32)
 *   hmac.new(K, b"MUS1-C" + nonce + cnonce + b"asa-1" + b"proxy-a" + cb, 'sha256')
 *   hmac.new(K, b"MUS1-S" + cnonce + nonce + b"asa-1" + b"proxy-a" + cb, 'sha256')
 * with nonce = bytes(range(32)), cnonce = bytes(0x80 + i for i in range(32)), cb = b"\xcc" * 32 */

static const char *const PW = "correct horse battery staple";
static const char *const K_HEX = "d9f95f65c2df9d285d26882300ca5be29e3ed500556663835c4c62e270515022";
static const char *const C_HEX = "199a80c04479ec503c6e511d69a8c5cdf17516b765ea68a41f0711537cf54182";
static const char *const S_HEX = "855aec47015a45594bda723aedb241620b3fb087f835db489e8456e76e5606da";

static void hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

struct vec {
    uint8_t salt[16], nonce[32], cnonce[32], cb[32];
};

static void vec_init(struct vec *v)
{
    for (int i = 0; i < 16; i++)
        v->salt[i] = (uint8_t)i;
    for (int i = 0; i < 32; i++) {
        v->nonce[i] = (uint8_t)i;
        v->cnonce[i] = (uint8_t)(0x80 + i);
        v->cb[i] = 0xcc;
    }
}

Test(proto_auth, fixed_vectors)
{
    struct vec v;
    vec_init(&v);
    uint8_t k[32], mac[32];
    char h[65];
    cr_assert_eq(mus_auth_derive(PW, strlen(PW), v.salt, 16, 10000, k), 0);
    hex(k, 32, h);
    cr_expect_str_eq(h, K_HEX);
    mus_auth_client_mac(k, v.nonce, v.cnonce, "asa-1", "proxy-a", v.cb, mac);
    hex(mac, 32, h);
    cr_expect_str_eq(h, C_HEX);
    mus_auth_server_mac(k, v.nonce, v.cnonce, "asa-1", "proxy-a", v.cb, mac);
    hex(mac, 32, h);
    cr_expect_str_eq(h, S_HEX);
}

Test(proto_auth, wrong_password_or_binding_changes_the_mac)
{
    struct vec v;
    vec_init(&v);
    uint8_t k[32], k2[32], good[32], mac[32], smac[32];
    cr_assert_eq(mus_auth_derive(PW, strlen(PW), v.salt, 16, 10000, k), 0);
    mus_auth_client_mac(k, v.nonce, v.cnonce, "asa-1", "proxy-a", v.cb, good);

    cr_assert_eq(mus_auth_derive("correct horse battery stapler", 29, v.salt, 16, 10000, k2), 0);
    mus_auth_client_mac(k2, v.nonce, v.cnonce, "asa-1", "proxy-a", v.cb, mac);
    cr_expect(!mus_auth_mac_equal(good, mac), "wrong password gives the same MAC");

    uint8_t cb2[32];
    memcpy(cb2, v.cb, 32);
    cb2[31] ^= 1;
    mus_auth_client_mac(k, v.nonce, v.cnonce, "asa-1", "proxy-a", cb2, mac);
    cr_expect(!mus_auth_mac_equal(good, mac), "other channel binding gives the same MAC");

    mus_auth_client_mac(k, v.nonce, v.cnonce, "asa-2", "proxy-a", v.cb, mac);
    cr_expect(!mus_auth_mac_equal(good, mac), "other server_id gives the same MAC");

    mus_auth_server_mac(k, v.nonce, v.cnonce, "asa-1", "proxy-a", v.cb, smac);
    cr_expect(!mus_auth_mac_equal(good, smac), "server MAC equals client MAC");

    mus_auth_client_mac(k, v.nonce, v.cnonce, "asa-1", "proxy-a", v.cb, mac);
    cr_expect(mus_auth_mac_equal(good, mac), "MAC not deterministic");
}

Test(proto_auth, derive_refuses_bad_parameters)
{
    uint8_t salt[4] = {1, 2, 3, 4}, k[32];
    cr_expect_eq(mus_auth_derive("pw", 2, salt, 4, MUS_KDF_ITER_MIN - 1, k), -1);
    cr_expect_eq(mus_auth_derive("pw", 2, salt, 4, MUS_KDF_ITER_MAX + 1, k), -1);
    cr_expect_eq(mus_auth_derive("pw", 2, salt, 0, 10000, k), -1);
}

Test(proto_auth, random_bytes_differ)
{
    uint8_t a[32], b[32];
    cr_assert_eq(mus_random(a, 32), 0);
    cr_assert_eq(mus_random(b, 32), 0);
    cr_expect(memcmp(a, b, 32) != 0);
}

/* ---- password file ---- */

static char tmpdir[64];

static void mk_tmpdir(void)
{
    strcpy(tmpdir, "/tmp/test-proto-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void write_file(const char *path, const char *data, size_t n, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, data, n), (ssize_t)n);
    close(fd);
    cr_assert_eq(chmod(path, mode), 0);
}

Test(proto_password, file_checks, .init = mk_tmpdir)
{
    char path[128], pw[128], err[256];
    snprintf(path, sizeof(path), "%s/pw", tmpdir);

    write_file(path, "s3cret\nsecond line\n", 19, 0600);
    cr_expect_eq(mus_read_password_file(path, pw, sizeof(pw), err, sizeof(err)), 0, "%s", err);
    cr_expect_str_eq(pw, "s3cret");

    write_file(path, "crlf\r\n", 6, 0400);
    cr_expect_eq(mus_read_password_file(path, pw, sizeof(pw), err, sizeof(err)), 0, "%s", err);
    cr_expect_str_eq(pw, "crlf");

    write_file(path, "no-newline", 10, 0600);
    cr_expect_eq(mus_read_password_file(path, pw, sizeof(pw), err, sizeof(err)), 0, "%s", err);
    cr_expect_str_eq(pw, "no-newline");

    write_file(path, "s3cret\n", 7, 0640);
    cr_expect_eq(mus_read_password_file(path, pw, sizeof(pw), err, sizeof(err)), -1);
    cr_expect(strstr(err, "permissions too open") != NULL, "%s", err);

    write_file(path, "s3cret\n", 7, 0604);
    cr_expect_eq(mus_read_password_file(path, pw, sizeof(pw), err, sizeof(err)), -1);
    cr_expect(strstr(err, "permissions too open") != NULL, "%s", err);

    write_file(path, "\nsecond\n", 8, 0600);
    cr_expect_eq(mus_read_password_file(path, pw, sizeof(pw), err, sizeof(err)), -1);
    cr_expect(strstr(err, "empty") != NULL, "%s", err);

    write_file(path, "", 0, 0600);
    cr_expect_eq(mus_read_password_file(path, pw, sizeof(pw), err, sizeof(err)), -1);
    cr_expect(strstr(err, "empty") != NULL, "%s", err);

    write_file(path, "0123456789abcdef\n", 17, 0600);
    cr_expect_eq(mus_read_password_file(path, pw, 8, err, sizeof(err)), -1);
    cr_expect(strstr(err, "too long") != NULL, "%s", err);

    snprintf(path, sizeof(path), "%s/missing", tmpdir);
    cr_expect_eq(mus_read_password_file(path, pw, sizeof(pw), err, sizeof(err)), -1);
    cr_expect(strstr(err, "No such file") != NULL, "%s", err);

    cr_expect_eq(mus_read_password_file(tmpdir, pw, sizeof(pw), err, sizeof(err)), -1);

    snprintf(path, sizeof(path), "%s/pw", tmpdir);
    unlink(path);
    rmdir(tmpdir);
}

Test(proto_parse, long_error_message_is_cut_on_a_character_boundary)
{
    char line[1200];
    int n = snprintf(line, sizeof(line), "{\"t\":\"error\",\"message\":\"");
    for (int i = 0; i < 200; i++)
        n += snprintf(line + n, sizeof(line) - (size_t)n, "\xc3\xa9");   /* 2-byte é */
    snprintf(line + n, sizeof(line) - (size_t)n, "\"}");
    mus_frame_t f, g;
    cr_assert_eq(parse(line, &f, NULL, 0), 0);
    cr_expect_eq(strlen(f.message), 254);   /* 255 would split a character */
    char buf[1024];
    int m = mus_frame_format(&f, buf, sizeof(buf));
    cr_assert_gt(m, 0);
    cr_assert_eq(mus_frame_parse(buf, (size_t)m - 1, &g, NULL, 0), 0);
    cr_expect_str_eq(g.message, f.message);
}

Test(proto_session, parse_and_format)
{
    static const char s[] = SESSION;
    mus_session_t ss, s2;
    mus_addr_t ips[MUS_MAX_IPS], ips2[MUS_MAX_IPS];
    size_t n, n2;
    char err[128];
    cr_assert_eq(mus_session_parse(s, strlen(s), &ss, ips, &n, err, sizeof(err)), 0, "%s", err);
    cr_expect_str_eq(ss.name, "alice@corp.example");
    cr_expect_eq(n, 2);
    char buf[2048];
    int len = mus_session_format(&ss, ips, n, buf, sizeof(buf));
    cr_assert_gt(len, 0);
    cr_expect_eq(buf[len], '\0');
    cr_assert_eq(mus_session_parse(buf, (size_t)len, &s2, ips2, &n2, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(memcmp(&ss, &s2, sizeof(ss)), 0);
    cr_expect_eq(n2, 2);
    cr_expect_eq(mus_session_parse("{\"sid\":\"1\"}", 11, &ss, ips, &n, err, sizeof(err)), -1);
    cr_expect(strstr(err, "missing \"ips\"") != NULL, "%s", err);
    cr_expect_eq(mus_session_parse("[]", 2, &ss, ips, &n, err, sizeof(err)), -1);
}

Test(proto_parse, session_stale_member)
{
    static const char with[] =
        "{\"sid\":\"x\",\"ips\":[\"10.0.0.1\"],\"id\":{\"type\":\"user\",\"name\":\"a\"},\"stale\":true}";
    static const char not_bool[] =
        "{\"sid\":\"x\",\"ips\":[\"10.0.0.1\"],\"id\":{\"type\":\"user\",\"name\":\"a\"},\"stale\":1}";
    mus_session_t s;
    mus_addr_t ips[MUS_MAX_IPS];
    size_t n;
    char err[128], out[1024];
    cr_assert_eq(mus_session_parse(with, strlen(with), &s, ips, &n, err, sizeof(err)), 0, "%s", err);
    cr_expect(s.stale);
    cr_expect_eq(mus_session_parse(not_bool, strlen(not_bool), &s, ips, &n, err, sizeof(err)), -1);
    cr_expect(strstr(err, "stale") != NULL, "%s", err);
    /* formatted only when true: older proxies never see it otherwise */
    cr_assert_eq(mus_session_parse(with, strlen(with), &s, ips, &n, err, sizeof(err)), 0);
    cr_assert_gt(mus_session_format(&s, ips, n, out, sizeof(out)), 0);
    cr_expect(strstr(out, "\"stale\":true") != NULL, "%s", out);
    s.stale = false;
    cr_assert_gt(mus_session_format(&s, ips, n, out, sizeof(out)), 0);
    cr_expect(strstr(out, "stale") == NULL, "%s", out);
}
