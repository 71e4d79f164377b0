/*
 * tests/unit/mus/test_radius.c: mus/radius.c against packets written here
 * octet by octet per RFC 2866 (the authenticators computed independently,
 * with Python's hashlib): parsing every attribute we use, the Request
 * Authenticator with the right and wrong secret and after a flipped bit,
 * the Response Authenticator, every truncation, hostile attribute lengths
 * of every type, Length fields that lie, the builder, User-Name forms and
 * Cisco AVPairs.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "../../../mus/radius.h"

#define SECRET "testing123"
#define SLEN (sizeof(SECRET) - 1)

/* Accounting-Request, identifier 0x2a, Length 109, secret "testing123". */
static const uint8_t start_pkt[] = {
    0x04, 0x2a, 0x00, 0x6d,                         /* Code 4, Identifier, Length 109 */
    0x0b, 0xb5, 0xb5, 0x47, 0x96, 0x38, 0xf9, 0x57, /* Request Authenticator */
    0xab, 0xe9, 0xbf, 0x2f, 0xb9, 0x86, 0xd8, 0x4a,
    0x28, 0x06, 0x00, 0x00, 0x00, 0x01,             /* Acct-Status-Type = Start */
    0x01, 0x0c, 'C', 'O', 'R', 'P', '\\', 'a', 'l', 'i', 'c', 'e', /* User-Name */
    0x08, 0x06, 0x0a, 0x14, 0x00, 0x05,             /* Framed-IP-Address 10.20.0.5 */
    0x2c, 0x0b, 's', 'e', 's', 's', '-', '0', '0', '0', '1', /* Acct-Session-Id */
    0x04, 0x06, 0xc0, 0x00, 0x02, 0x01,             /* NAS-IP-Address 192.0.2.1 */
    0x1f, 0x0e, '1', '9', '8', '.', '5', '1', '.', '1', '0', '0', '.', '7', /* Calling-Station-Id */
    0x19, 0x09, 'O', 'U', '=', 'e', 'n', 'g', ';',  /* Class */
    0x1a, 0x13, 0x00, 0x00, 0x00, 0x09,             /* Vendor-Specific, Cisco */
    0x01, 0x0d, 'g', 'r', 'o', 'u', 'p', '=', 's', 'a', 'l', 'e', 's', /* Cisco-AVPair */
    0x55, 0x06, 0x00, 0x00, 0x00, 0x3c,             /* Acct-Interim-Interval 60 */
};

/* MD5(05 2a 00 14 | Request Authenticator | "testing123") */
static const uint8_t start_resp_auth[16] = {
    0x44, 0x70, 0x4b, 0xe6, 0x98, 0xaf, 0x56, 0x92,
    0xf0, 0x0a, 0xba, 0x0d, 0xdd, 0xdb, 0x36, 0xda,
};

Test(radius, parses_every_attribute_of_a_start)
{
    radius_acct_t a;
    cr_assert_eq(sizeof(start_pkt), 109);
    cr_assert_eq(radius_parse(start_pkt, sizeof(start_pkt), &a), RADIUS_OK);
    cr_expect_eq(a.code, 4);
    cr_expect_eq(a.identifier, 0x2a);
    cr_expect_eq(a.length, 109);
    cr_expect_eq(a.status, RADIUS_ST_START);
    cr_expect_str_eq(a.user_name, "CORP\\alice");
    cr_expect_str_eq(a.session_id, "sess-0001");
    cr_expect_str_eq(a.calling_station, "198.51.100.7");
    cr_expect(a.has_framed_ip);
    cr_expect_arr_eq(a.framed_ip, ((uint8_t[]){10, 20, 0, 5}), 4);
    cr_expect(a.has_nas_ip);
    cr_expect_arr_eq(a.nas_ip, ((uint8_t[]){192, 0, 2, 1}), 4);
    cr_expect(!a.has_framed_ipv6);
    cr_expect(!a.has_framed_prefix);
    cr_expect_eq(a.n_classes, 1);
    cr_expect_str_eq(a.classes[0], "OU=eng;");
    cr_expect_eq(a.n_avpairs, 1);
    cr_expect_str_eq(a.avpairs[0], "group=sales");
    cr_expect(a.has_interim);
    cr_expect_eq(a.interim_interval, 60);
    cr_expect_eq(a.n_attrs, 9);
    cr_expect_eq(a.n_skipped, 0);
    cr_expect_str_eq(a.nas_identifier, "");
}

Test(radius, request_authenticator_right_and_wrong_secret)
{
    const uint8_t right[] = SECRET, wrong[] = "testing124";
    cr_expect(radius_verify_request(start_pkt, sizeof(start_pkt), right, SLEN));
    cr_expect(!radius_verify_request(start_pkt, sizeof(start_pkt), wrong, SLEN));
    cr_expect(!radius_verify_request(start_pkt, sizeof(start_pkt), right, SLEN - 1));
    cr_expect(!radius_verify_request(start_pkt, sizeof(start_pkt), (const uint8_t *)"", 0));
    /* every flipped bit of the packet breaks it */
    uint8_t p[sizeof(start_pkt)];
    for (size_t i = 0; i < sizeof(p) * 8; i++) {
        memcpy(p, start_pkt, sizeof(p));
        p[i / 8] ^= (uint8_t)(1u << (i % 8));
        cr_expect(!radius_verify_request(p, sizeof(p), right, SLEN), "bit %zu", i);
    }
    /* padding past Length is not covered */
    uint8_t padded[sizeof(start_pkt) + 3];
    memcpy(padded, start_pkt, sizeof(start_pkt));
    memcpy(padded + sizeof(start_pkt), "\xff\xff\xff", 3);
    cr_expect(radius_verify_request(padded, sizeof(padded), right, SLEN));
    /* a datagram shorter than its Length */
    cr_expect(!radius_verify_request(start_pkt, sizeof(start_pkt) - 1, right, SLEN));
}

Test(radius, response_authenticator)
{
    uint8_t out[64];
    const uint8_t *req_auth = start_pkt + 4;
    cr_assert_eq(radius_build_response(0x2a, req_auth, (const uint8_t *)SECRET, SLEN, out,
                                       sizeof(out)), 20);
    cr_expect_eq(out[0], 5);
    cr_expect_eq(out[1], 0x2a);
    cr_expect_eq(out[2], 0);
    cr_expect_eq(out[3], 20);
    cr_expect_arr_eq(out + 4, start_resp_auth, 16);
    cr_expect(radius_verify_response(out, 20, req_auth, (const uint8_t *)SECRET, SLEN));
    cr_expect(!radius_verify_response(out, 20, req_auth, (const uint8_t *)"x", 1));
    out[1] ^= 1;
    cr_expect(!radius_verify_response(out, 20, req_auth, (const uint8_t *)SECRET, SLEN));
    cr_expect_eq(radius_build_response(1, req_auth, (const uint8_t *)SECRET, SLEN, out, 19), -1);
}

Test(radius, every_truncation_is_refused)
{
    radius_acct_t a;
    for (size_t n = 0; n < sizeof(start_pkt); n++)
        cr_expect_eq(radius_parse(start_pkt, n, &a), RADIUS_E_SHORT, "len %zu", n < 20 ? n : n);
    /* the Length field shortened into the middle of an attribute */
    uint8_t p[sizeof(start_pkt)];
    for (size_t l = 21; l < sizeof(start_pkt); l++) {
        memcpy(p, start_pkt, sizeof(p));
        p[2] = (uint8_t)(l >> 8);
        p[3] = (uint8_t)l;
        enum radius_err e = radius_parse(p, sizeof(p), &a);
        /* cut at an attribute boundary it parses (maybe without the status) */
        cr_expect(e == RADIUS_E_ATTR_LEN || e == RADIUS_OK, "Length %zu: %s", l, radius_err_str(e));
    }
}

Test(radius, length_field_lies)
{
    radius_acct_t a;
    uint8_t p[sizeof(start_pkt)];
    const uint16_t bad[] = {0, 1, 19, 4097, 0xffff};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memcpy(p, start_pkt, sizeof(p));
        p[2] = (uint8_t)(bad[i] >> 8);
        p[3] = (uint8_t)bad[i];
        cr_expect_eq(radius_parse(p, sizeof(p), &a), RADIUS_E_LENGTH, "Length %u", bad[i]);
    }
    memcpy(p, start_pkt, sizeof(p));
    p[3] = (uint8_t)(sizeof(start_pkt) + 1);
    cr_expect_eq(radius_parse(p, sizeof(p), &a), RADIUS_E_SHORT);
    /* a header only: no Acct-Status-Type */
    uint8_t hdr[20] = {4, 1, 0, 20};
    cr_expect_eq(radius_parse(hdr, sizeof(hdr), &a), RADIUS_E_NO_STATUS);
    hdr[0] = 1;   /* Access-Request */
    cr_expect_eq(radius_parse(hdr, sizeof(hdr), &a), RADIUS_E_CODE);
}

/* A header plus one attribute (type, declared length, value bytes). */
static enum radius_err one_attr(uint8_t type, uint8_t alen, const uint8_t *v, size_t vn)
{
    uint8_t p[300] = {4, 7, 0, 0};
    size_t n = 20;
    memcpy(p + n, "\x28\x06\x00\x00\x00\x03", 6);   /* Interim-Update */
    n += 6;
    p[n++] = type;
    p[n++] = alen;
    memcpy(p + n, v, vn);
    n += vn;
    p[2] = (uint8_t)(n >> 8);
    p[3] = (uint8_t)n;
    radius_acct_t a;
    return radius_parse(p, n, &a);
}

Test(radius, hostile_attribute_lengths)
{
    uint8_t v[32];
    memset(v, 'a', sizeof(v));
    /* length 0 and 1 never fit; a length past the end */
    cr_expect_eq(one_attr(RADIUS_A_USER_NAME, 0, v, 4), RADIUS_E_ATTR_LEN);
    cr_expect_eq(one_attr(RADIUS_A_USER_NAME, 1, v, 4), RADIUS_E_ATTR_LEN);
    cr_expect_eq(one_attr(RADIUS_A_USER_NAME, 7, v, 4), RADIUS_E_ATTR_LEN);
    cr_expect_eq(one_attr(RADIUS_A_USER_NAME, 6, v, 4), RADIUS_OK);
    /* a lone type octet at the end */
    cr_expect_eq(one_attr(200, 2, v, 0), RADIUS_OK);
    /* fixed-size types with every wrong size */
    const struct { uint8_t type; size_t size; } fixed[] = {
        {RADIUS_A_ACCT_STATUS_TYPE, 4}, {RADIUS_A_ACCT_INTERIM_INTERVAL, 4},
        {RADIUS_A_NAS_IP_ADDRESS, 4}, {RADIUS_A_FRAMED_IP_ADDRESS, 4},
        {RADIUS_A_NAS_IPV6_ADDRESS, 16}, {RADIUS_A_FRAMED_IPV6_ADDRESS, 16},
    };
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        for (size_t s = 0; s <= 20; s++)
            cr_expect_eq(one_attr(fixed[i].type, (uint8_t)(s + 2), v, s),
                         s == fixed[i].size ? RADIUS_OK : RADIUS_E_ATTR_VALUE, "type %u size %zu",
                         fixed[i].type, s);
    /* empty User-Name / Acct-Session-Id; a NUL inside text */
    cr_expect_eq(one_attr(RADIUS_A_USER_NAME, 2, v, 0), RADIUS_E_ATTR_VALUE);
    cr_expect_eq(one_attr(RADIUS_A_ACCT_SESSION_ID, 2, v, 0), RADIUS_E_ATTR_VALUE);
    cr_expect_eq(one_attr(RADIUS_A_USER_NAME, 5, (const uint8_t *)"a\0b", 3), RADIUS_E_ATTR_VALUE);
    cr_expect_eq(one_attr(RADIUS_A_CLASS, 5, (const uint8_t *)"a\0b", 3), RADIUS_E_ATTR_VALUE);
    cr_expect_eq(one_attr(RADIUS_A_FILTER_ID, 5, (const uint8_t *)"ab\0", 3), RADIUS_E_ATTR_VALUE);
    /* IPv6 prefix: too short, prefix length > 128, fewer octets than the length needs */
    cr_expect_eq(one_attr(RADIUS_A_FRAMED_IPV6_PREFIX, 3, (const uint8_t *)"\0", 1),
                 RADIUS_E_ATTR_VALUE);
    cr_expect_eq(one_attr(RADIUS_A_FRAMED_IPV6_PREFIX, 4, (const uint8_t *)"\0\x81", 2),
                 RADIUS_E_ATTR_VALUE);
    cr_expect_eq(one_attr(RADIUS_A_FRAMED_IPV6_PREFIX, 11,
                          (const uint8_t *)"\0\x40\xfd\0\0\0\0\0\0", 9), RADIUS_E_ATTR_VALUE);
    cr_expect_eq(one_attr(RADIUS_A_FRAMED_IPV6_PREFIX, 12,
                          (const uint8_t *)"\0\x40\xfd\0\0\0\0\0\0\x01", 10), RADIUS_OK);
    cr_expect_eq(one_attr(RADIUS_A_FRAMED_IPV6_PREFIX, 21, v, 19), RADIUS_E_ATTR_VALUE);
}

Test(radius, hostile_vendor_specific)
{
    /* shorter than a vendor id + one octet */
    cr_expect_eq(one_attr(RADIUS_A_VENDOR_SPECIFIC, 6, (const uint8_t *)"\0\0\0\x09", 4),
                 RADIUS_E_ATTR_VALUE);
    /* another vendor: skipped whatever follows */
    cr_expect_eq(one_attr(RADIUS_A_VENDOR_SPECIFIC, 7, (const uint8_t *)"\0\0\x01\x37\xff", 5),
                 RADIUS_OK);
    /* Cisco: a sub-attribute of length 0, 1, past the end, a dangling octet */
    cr_expect_eq(one_attr(RADIUS_A_VENDOR_SPECIFIC, 9, (const uint8_t *)"\0\0\0\x09\x01\x00" "a", 7),
                 RADIUS_E_VSA);
    cr_expect_eq(one_attr(RADIUS_A_VENDOR_SPECIFIC, 9, (const uint8_t *)"\0\0\0\x09\x01\x01" "a", 7),
                 RADIUS_E_VSA);
    cr_expect_eq(one_attr(RADIUS_A_VENDOR_SPECIFIC, 9, (const uint8_t *)"\0\0\0\x09\x01\x04" "a", 7),
                 RADIUS_E_VSA);
    cr_expect_eq(one_attr(RADIUS_A_VENDOR_SPECIFIC, 10,
                          (const uint8_t *)"\0\0\0\x09\x01\x03" "a\x01", 8), RADIUS_E_VSA);
    cr_expect_eq(one_attr(RADIUS_A_VENDOR_SPECIFIC, 9, (const uint8_t *)"\0\0\0\x09\x01\x03" "a", 7),
                 RADIUS_OK);
    /* a NUL in an AVPair */
    cr_expect_eq(one_attr(RADIUS_A_VENDOR_SPECIFIC, 10,
                          (const uint8_t *)"\0\0\0\x09\x01\x04\0a", 8), RADIUS_E_VSA);
}

Test(radius, ipv6_attributes_and_repeats)
{
    uint8_t p[512] = {4, 9, 0, 0};
    size_t n = 20;
    const uint8_t attrs[] = {
        0x28, 0x06, 0, 0, 0, 2,                         /* Stop */
        0xa8, 0x12, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x05, /* Framed-IPv6-Address */
        0x61, 0x0c, 0x00, 0x30, 0xfd, 0, 0, 1, 0, 0, 0, 0x07,    /* Framed-IPv6-Prefix /48, host bits set */
        0x5f, 0x12, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, /* NAS-IPv6-Address */
        0x20, 0x05, 'a', 's', 'a',                      /* NAS-Identifier */
        0x0b, 0x05, 'f', '-', '1',                      /* Filter-Id */
        0x0b, 0x05, 'f', '-', '2',
        0x19, 0x03, 0x01,                               /* Class, binary */
    };
    memcpy(p + n, attrs, sizeof(attrs));
    n += sizeof(attrs);
    p[3] = (uint8_t)n;
    radius_acct_t a;
    cr_assert_eq(radius_parse(p, n, &a), RADIUS_OK);
    cr_expect_eq(a.status, RADIUS_ST_STOP);
    cr_expect(a.has_framed_ipv6);
    cr_expect_eq(a.framed_ipv6[0], 0xfd);
    cr_expect_eq(a.framed_ipv6[15], 5);
    cr_expect(a.has_framed_prefix);
    cr_expect_eq(a.framed_prefix_len, 48);
    cr_expect_arr_eq(a.framed_prefix, ((uint8_t[16]){0xfd, 0, 0, 1}), 16);
    cr_expect(a.has_nas_ipv6);
    cr_expect_eq(a.nas_ipv6[1], 0x01);
    cr_expect_str_eq(a.nas_identifier, "asa");
    cr_expect_eq(a.n_filter_ids, 2);
    cr_expect_str_eq(a.filter_ids[1], "f-2");
    cr_expect_eq(a.n_classes, 1);
    cr_expect_eq((uint8_t)a.classes[0][0], 1);
}

Test(radius, multi_attributes_beyond_the_limit_are_skipped)
{
    radius_builder_t b;
    radius_build_begin(&b, RADIUS_CODE_ACCT_REQUEST, 3);
    radius_build_u32(&b, RADIUS_A_ACCT_STATUS_TYPE, RADIUS_ST_START);
    for (int i = 0; i < RADIUS_MULTI_MAX + 3; i++)
        radius_build_str(&b, RADIUS_A_CLASS, "c");
    int n = radius_build_finish(&b, (const uint8_t *)"s", 1);
    cr_assert_gt(n, 0);
    radius_acct_t a;
    cr_assert_eq(radius_parse(b.buf, (size_t)n, &a), RADIUS_OK);
    cr_expect_eq(a.n_classes, RADIUS_MULTI_MAX);
    cr_expect_eq(a.n_skipped, 3);
}

Test(radius, builder_reproduces_the_hand_written_packet)
{
    radius_builder_t b;
    radius_build_begin(&b, RADIUS_CODE_ACCT_REQUEST, 0x2a);
    radius_build_u32(&b, RADIUS_A_ACCT_STATUS_TYPE, RADIUS_ST_START);
    radius_build_str(&b, RADIUS_A_USER_NAME, "CORP\\alice");
    radius_build_attr(&b, RADIUS_A_FRAMED_IP_ADDRESS, "\x0a\x14\x00\x05", 4);
    radius_build_str(&b, RADIUS_A_ACCT_SESSION_ID, "sess-0001");
    radius_build_attr(&b, RADIUS_A_NAS_IP_ADDRESS, "\xc0\x00\x02\x01", 4);
    radius_build_str(&b, RADIUS_A_CALLING_STATION_ID, "198.51.100.7");
    radius_build_str(&b, RADIUS_A_CLASS, "OU=eng;");
    radius_build_cisco_avpair(&b, "group=sales");
    radius_build_u32(&b, RADIUS_A_ACCT_INTERIM_INTERVAL, 60);
    cr_assert_eq(radius_build_finish(&b, (const uint8_t *)SECRET, SLEN), (int)sizeof(start_pkt));
    cr_expect_arr_eq(b.buf, start_pkt, sizeof(start_pkt));
    /* an attribute over 253 octets makes the packet unbuildable */
    char big[300];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    radius_build_str(&b, RADIUS_A_USER_NAME, big);
    cr_expect_eq(radius_build_finish(&b, (const uint8_t *)SECRET, SLEN), -1);
}

Test(radius, user_name_forms)
{
    char n[64], d[32];
    cr_assert_eq(radius_user_split("alice", n, sizeof(n), d, sizeof(d)), 0);
    cr_expect_str_eq(n, "alice");
    cr_expect_str_eq(d, "");
    cr_assert_eq(radius_user_split("CORP\\bob", n, sizeof(n), d, sizeof(d)), 0);
    cr_expect_str_eq(n, "bob");
    cr_expect_str_eq(d, "CORP");
    cr_assert_eq(radius_user_split("carol@corp.example", n, sizeof(n), d, sizeof(d)), 0);
    cr_expect_str_eq(n, "carol");
    cr_expect_str_eq(d, "corp.example");
    /* the last '@' separates the realm; a backslash form wins over '@' */
    cr_assert_eq(radius_user_split("a@b@realm", n, sizeof(n), d, sizeof(d)), 0);
    cr_expect_str_eq(n, "a@b");
    cr_expect_str_eq(d, "realm");
    cr_assert_eq(radius_user_split("CORP\\dave@x", n, sizeof(n), d, sizeof(d)), 0);
    cr_expect_str_eq(n, "dave@x");
    cr_expect_str_eq(d, "CORP");
    const char *bad[] = {"", "\\user", "CORP\\", "@realm", "user@"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect_eq(radius_user_split(bad[i], n, sizeof(n), d, sizeof(d)), -1, "\"%s\"", bad[i]);
        cr_expect_str_eq(d, "", "\"%s\"", bad[i]);
    }
    /* parts that do not fit */
    cr_expect_eq(radius_user_split("abcdefgh", n, 8, d, sizeof(d)), -1);
    cr_expect_eq(radius_user_split("abcdefgh", n, 9, d, sizeof(d)), 0);
    cr_expect_eq(radius_user_split("DOMAINLONG\\u", n, sizeof(n), d, 10), -1);
    cr_expect_eq(radius_user_split("DOMAINLON\\u", n, sizeof(n), d, 10), 0);
}

Test(radius, avpairs)
{
    char k[16], v[32];
    cr_assert_eq(radius_avpair_split("group=eng", k, sizeof(k), v, sizeof(v)), 0);
    cr_expect_str_eq(k, "group");
    cr_expect_str_eq(v, "eng");
    cr_assert_eq(radius_avpair_split("ip:addr-pool*pool1", k, sizeof(k), v, sizeof(v)), 0);
    cr_expect_str_eq(k, "ip:addr-pool");
    cr_expect_str_eq(v, "pool1");
    cr_assert_eq(radius_avpair_split("a=b=c", k, sizeof(k), v, sizeof(v)), 0);
    cr_expect_str_eq(k, "a");
    cr_expect_str_eq(v, "b=c");
    cr_assert_eq(radius_avpair_split("empty=", k, sizeof(k), v, sizeof(v)), 0);
    cr_expect_str_eq(v, "");
    const char *bad[] = {"", "novalue", "=x", "bad key=x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect_eq(radius_avpair_split(bad[i], k, sizeof(k), v, sizeof(v)), -1, "%s", bad[i]);
    cr_expect_eq(radius_avpair_split("0123456789abcdef=x", k, sizeof(k), v, sizeof(v)), -1);
    cr_expect_eq(radius_avpair_split("k=0123456789012345678901234567890123", k, sizeof(k), v,
                                     sizeof(v)), -1);
}

Test(radius, status_names)
{
    cr_expect_str_eq(radius_status_str(1), "start");
    cr_expect_str_eq(radius_status_str(2), "stop");
    cr_expect_str_eq(radius_status_str(3), "interim-update");
    cr_expect_str_eq(radius_status_str(7), "accounting-on");
    cr_expect_str_eq(radius_status_str(8), "accounting-off");
    cr_expect_str_eq(radius_status_str(15), "other");
}
