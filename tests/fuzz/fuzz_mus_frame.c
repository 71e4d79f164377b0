/*
 * tests/fuzz/fuzz_mus_frame.c: libFuzzer target for mus_frame_parse(). Any
 * input must be parsed or refused without a crash, leak or over-read; a frame
 * that parses (other than an unknown type, which cannot be formatted) must
 * format, and the formatted line must parse again to the same main fields.
 * Seed corpus: tests/fuzz/corpus/mus_frame/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../mus/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char out[MUS_FRAME_MAX + 2];

static void same_session(const mus_frame_t *a, const mus_frame_t *b)
{
    if (strcmp(a->session.sid, b->session.sid) != 0 || a->session.type != b->session.type ||
        strcmp(a->session.name, b->session.name) != 0 ||
        strcmp(a->session.domain, b->session.domain) != 0 ||
        strcmp(a->session.groups, b->session.groups) != 0 ||
        a->session.started != b->session.started ||
        strcmp(a->session.client_ip, b->session.client_ip) != 0 ||
        strcmp(a->session.tunnel, b->session.tunnel) != 0)
        abort();
}

static void same_frame(const mus_frame_t *a, const mus_frame_t *b)
{
    if (a->type != b->type || a->has_seq != b->has_seq || a->seq != b->seq ||
        a->n_ips != b->n_ips || memcmp(a->ips, b->ips, a->n_ips * sizeof(a->ips[0])) != 0)
        abort();
    switch (a->type) {
    case MUS_F_HELLO:
        if (strcmp(a->server_id, b->server_id) || strcmp(a->epoch, b->epoch) ||
            memcmp(a->nonce, b->nonce, MUS_NONCE_LEN) || strcmp(a->kdf_alg, b->kdf_alg) ||
            a->kdf_iter != b->kdf_iter || a->salt_len != b->salt_len ||
            memcmp(a->salt, b->salt, a->salt_len))
            abort();
        break;
    case MUS_F_AUTH:
        if (strcmp(a->client_id, b->client_id) || memcmp(a->cnonce, b->cnonce, MUS_NONCE_LEN) ||
            memcmp(a->mac, b->mac, MUS_MAC_LEN))
            abort();
        break;
    case MUS_F_AUTH_OK:
        if (memcmp(a->mac, b->mac, MUS_MAC_LEN))
            abort();
        break;
    case MUS_F_SUBSCRIBE:
    case MUS_F_SNAP_BEGIN:
        if (a->has_epoch != b->has_epoch || strcmp(a->epoch, b->epoch) || a->count != b->count)
            abort();
        break;
    case MUS_F_SNAP:
    case MUS_F_ADD:
    case MUS_F_UPD:
        same_session(a, b);
        break;
    case MUS_F_DEL:
        if (strcmp(a->session.sid, b->session.sid) || strcmp(a->reason, b->reason))
            abort();
        break;
    case MUS_F_ERROR:
        if (strcmp(a->message, b->message))
            abort();
        break;
    default:
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mus_frame_t f, g;
    char err[256];
    if (mus_frame_parse((const char *)data, size, &f, err, sizeof(err)) != 0)
        return 0;
    if (f.type == MUS_F_UNKNOWN)
        return 0;
    int n = mus_frame_format(&f, out, sizeof(out));
    if (n < 1 || out[n - 1] != '\n' || memchr(out, '\n', (size_t)n - 1))
        abort();
    if (mus_frame_parse(out, (size_t)n - 1, &g, err, sizeof(err)) != 0)
        abort();
    same_frame(&f, &g);
    return 0;
}
