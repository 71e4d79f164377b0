/*
 * tests/tools/wccp_pcap.c: writes every sample WCCPv2 message
 * (wccp_samples.c), without and with MD5, as IPv4/UDP port 2048 datagrams in
 * a pcap file (LINKTYPE_RAW, correct IP and UDP checksums) for
 * tests/e2e/wccp_tshark.sh to decode with tshark. Prints one line per packet:
 * "<frame> <type> <service id> <md5 0|1> <name>".
 *
 *   wccp-pcap OUT.pcap          the capture
 *   wccp-pcap --corpus DIR      the raw messages, one file each (fuzz seeds)
 *
 * Test code only: it does not send anything.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../../proxy/wccp_pkt.h"
#include "../../proxy/wccp_pkt_int.h"
#include "wccp_samples.h"

#define LINKTYPE_RAW 101
#define IP_ROUTER  0xc0a80a01u   /* the samples' router and first cache */
#define IP_CACHE   0x0a000009u

#define be16 wccp_set16   /* the codec's own big-endian helpers */
#define be32 wccp_set32

/* ones' complement sum of p[0..n), folded into sum */
static uint32_t
csum_add(uint32_t sum, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i += 2)
        sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (n & 1)
        sum += (uint32_t)p[n - 1] << 8;
    return sum;
}

static uint16_t
csum_fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

/* IPv4 + UDP around payload[0..n) into pkt; returns the packet length */
static size_t
datagram(uint8_t *pkt, uint32_t src, uint32_t dst, const uint8_t *payload, size_t n, uint16_t id)
{
    uint8_t *ip = pkt, *udp = pkt + 20;
    size_t total = 20 + 8 + n;

    memset(pkt, 0, 28);
    ip[0] = 0x45;
    be16(ip + 2, (uint16_t)total);
    be16(ip + 4, id);
    be16(ip + 6, 0x4000);             /* DF */
    ip[8] = 64;
    ip[9] = 17;                       /* UDP */
    be32(ip + 12, src);
    be32(ip + 16, dst);
    be16(ip + 10, csum_fold(csum_add(0, ip, 20)));

    be16(udp, WCCP_PORT);
    be16(udp + 2, WCCP_PORT);
    be16(udp + 4, (uint16_t)(8 + n));
    memcpy(udp + 8, payload, n);
    uint8_t pseudo[12];
    memcpy(pseudo, ip + 12, 8);
    pseudo[8] = 0;
    pseudo[9] = 17;
    be16(pseudo + 10, (uint16_t)(8 + n));
    uint16_t c = csum_fold(csum_add(csum_add(0, pseudo, 12), udp, 8 + n));
    be16(udp + 6, c == 0 ? 0xffff : c);
    return total;
}

static int
write_all(FILE *f, const void *p, size_t n)
{
    return fwrite(p, 1, n, f) == n ? 0 : -1;
}

static int
corpus(const char *dir)
{
    uint8_t msg[WCCP_MSG_MAX];
    wccp_sample_info_t info;
    char path[4096];

    for (int i = 0; i < WCCP_SAMPLES; i++) {
        for (int md5 = 0; md5 < 2; md5++) {
            int n = wccp_sample(i, md5, msg, sizeof(msg), &info);
            if (n < 0)
                return fprintf(stderr, "sample %d: %s\n", i, wccp_strerror(n)), 1;
            snprintf(path, sizeof(path), "%s/valid-%s%s", dir, info.name, md5 ? "-md5" : "");
            FILE *f = fopen(path, "wb");
            if (f == NULL || write_all(f, msg, (size_t)n) != 0 || fclose(f) != 0)
                return fprintf(stderr, "%s: %s\n", path, strerror(errno)), 1;
        }
    }
    return 0;
}

int
main(int argc, char **argv)
{
    static uint8_t msg[WCCP_MSG_MAX], pkt[WCCP_MSG_MAX + 28];
    wccp_sample_info_t info;

    if (argc == 3 && strcmp(argv[1], "--corpus") == 0)
        return corpus(argv[2]);
    if (argc != 2)
        return fprintf(stderr, "usage: wccp-pcap OUT.pcap | --corpus DIR\n"), 2;

    FILE *f = fopen(argv[1], "wb");
    if (f == NULL)
        return fprintf(stderr, "%s: %s\n", argv[1], strerror(errno)), 1;
    uint8_t gh[24] = {0};
    uint32_t magic = 0xa1b2c3d4, snap = 65535, link = LINKTYPE_RAW;
    uint16_t major = 2, minor = 4;
    memcpy(gh, &magic, 4);            /* host order: readers detect it */
    memcpy(gh + 4, &major, 2);
    memcpy(gh + 6, &minor, 2);
    memcpy(gh + 16, &snap, 4);
    memcpy(gh + 20, &link, 4);
    if (write_all(f, gh, sizeof(gh)) != 0)
        return perror(argv[1]), 1;

    int frame = 0;
    for (int md5 = 0; md5 < 2; md5++) {
        for (int i = 0; i < WCCP_SAMPLES; i++) {
            int n = wccp_sample(i, md5, msg, sizeof(msg), &info);
            if (n < 0)
                return fprintf(stderr, "sample %d: %s\n", i, wccp_strerror(n)), 1;
            bool from_cache = info.type == WCCP_HERE_I_AM || info.type == WCCP_REDIRECT_ASSIGN;
            size_t len = datagram(pkt, from_cache ? IP_CACHE : IP_ROUTER,
                                  from_cache ? IP_ROUTER : IP_CACHE, msg, (size_t)n,
                                  (uint16_t)(frame + 1));
            uint32_t ph[4] = {1700000000u + (uint32_t)frame, 0, (uint32_t)len, (uint32_t)len};
            if (write_all(f, ph, sizeof(ph)) != 0 || write_all(f, pkt, len) != 0)
                return perror(argv[1]), 1;
            frame++;
            printf("%d %u %u %d %s\n", frame, info.type, info.service_id, md5, info.name);
        }
    }
    if (fclose(f) != 0)
        return perror(argv[1]), 1;
    return 0;
}
