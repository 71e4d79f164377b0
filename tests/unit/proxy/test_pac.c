/*
 * tests/unit/proxy/test_pac.c: the proxy auto-config writer (proxy/pac.c):
 * which proxy each location is told, the DIRECT rules written for domains
 * and prefixes, the probe host and the proxy itself, the fallback, a buffer
 * too small, and the two file names. tests/e2e/pac.sh evaluates the files
 * with pacparser and Chromium.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "../../../common/cidr.h"
#include "../../../proxy/pac.h"

static config_pac_t p;

static void
setup(void)
{
    memset(&p, 0, sizeof(p));
    p.enabled = true;
    p.max_age = 300000;
    strcpy(p.direct_domains[0], "intranet.example");
    p.n_direct_domains = 1;
    cr_assert_eq(cidr_parse("10.9.0.0/16", &p.direct_cidrs[0]), 0);
    cr_assert_eq(cidr_parse("fd00::/8", &p.direct_cidrs[1]), 0);
    p.n_direct_cidrs = 2;
}

TestSuite(pac, .init = setup);

Test(pac, local_and_remote_proxies)
{
    char out[PAC_MAX];
    size_t n = pac_write(out, sizeof(out), &p, "mus.cisco.com", false, "192.0.2.1:3128");

    cr_assert_gt(n, 0);
    cr_expect_eq(strlen(out), n);
    cr_expect(strstr(out, "var proxy = \"PROXY 192.0.2.1:3128\";") != NULL, "%s", out);
    cr_expect(strstr(out, "local clients") != NULL);
    /* remote without remote_proxy: the same address */
    pac_write(out, sizeof(out), &p, "mus.cisco.com", true, "192.0.2.1:3128");
    cr_expect(strstr(out, "PROXY 192.0.2.1:3128\"") != NULL);
    strcpy(p.proxy, "proxy.corp.example:8080");
    strcpy(p.remote_proxy, "10.10.20.1:3128");
    pac_write(out, sizeof(out), &p, "mus.cisco.com", false, "192.0.2.1:3128");
    cr_expect(strstr(out, "PROXY proxy.corp.example:8080\"") != NULL, "%s", out);
    cr_expect(strstr(out, "if (host == \"proxy.corp.example\") return \"DIRECT\";") != NULL);
    pac_write(out, sizeof(out), &p, "mus.cisco.com", true, "192.0.2.1:3128");
    cr_expect(strstr(out, "PROXY 10.10.20.1:3128\"") != NULL, "%s", out);
    cr_expect(strstr(out, "remote (VPN) clients") != NULL);
    cr_expect(strstr(out, "if (host == \"10.10.20.1\") return \"DIRECT\";") != NULL);
}

Test(pac, rules)
{
    char out[PAC_MAX];

    cr_assert_gt(pac_write(out, sizeof(out), &p, "mus.example", false, "[2001:db8::1]:3128"), 0);
    cr_expect(strstr(out, "if (host == \"mus.example\") return proxy;") != NULL, "%s", out);
    cr_expect(strstr(out, "if (host == \"2001:db8::1\") return \"DIRECT\";") != NULL, "%s", out);
    cr_expect(strstr(out, "if (host == \"intranet.example\" || dnsDomainIs(host, \".intranet.example\")) "
                          "return \"DIRECT\";") != NULL);
    cr_expect(strstr(out, "isInNet(host, \"10.9.0.0\", \"255.255.0.0\")") != NULL);
    cr_expect(strstr(out, "isInNetEx(host, \"fd00::/8\")") != NULL);
    /* the probe comes before every DIRECT rule */
    cr_expect_lt(strstr(out, "mus.example") - out, strstr(out, "intranet.example") - out);
    cr_expect(strstr(out, "; DIRECT") == NULL, "fails closed by default");
    p.fallback_direct = true;
    pac_write(out, sizeof(out), &p, "mus.example", false, "192.0.2.1:3128");
    cr_expect(strstr(out, "\"PROXY 192.0.2.1:3128; DIRECT\"") != NULL);
    p.n_direct_cidrs = 0;
    pac_write(out, sizeof(out), &p, "mus.example", false, "192.0.2.1:3128");
    cr_expect(strstr(out, "isInNet") == NULL, "no prefixes, no address tests");
}

Test(pac, too_small_and_paths)
{
    char out[64];

    cr_expect_eq(pac_write(out, sizeof(out), &p, "mus.cisco.com", false, "192.0.2.1:3128"), 0);
    cr_expect(pac_path("/proxy.pac", 10));
    cr_expect(pac_path("/wpad.dat", 9));
    cr_expect(!pac_path("/proxy.pa", 9));
    cr_expect(!pac_path("/wpad.dat/", 10));
    cr_expect(!pac_path("/PROXY.PAC", 10));
}
