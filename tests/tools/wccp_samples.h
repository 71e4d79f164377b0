/*
 * tests/tools/wccp_samples.h: one sample of every WCCPv2 message form that
 * proxy/wccp_pkt.c builds (each message type, hash and mask forms, the
 * optional components), shared by the unit tests, the pcap writer for the
 * tshark test and the fuzz corpus. Test code only.
 */
#ifndef MUS_TESTS_WCCP_SAMPLES_H
#define MUS_TESTS_WCCP_SAMPLES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WCCP_SAMPLE_PASSWORD "s3cret"
#define WCCP_SAMPLES 8

typedef struct wccp_sample_info {
    const char *name;       /* short, file-name safe */
    uint32_t type;          /* enum wccp_msg_type */
    unsigned service_id;    /* its service id */
} wccp_sample_info_t;

/* Builds sample i (0..WCCP_SAMPLES-1), with MD5 when md5. Returns the
 * builder's result (length or WCCP_E_*); *info describes it. */
int wccp_sample(int i, bool md5, uint8_t *buf, size_t cap, wccp_sample_info_t *info);

#endif
