/*
 * common/txn.c: names of the transaction record's enums and the bounded
 * field copy (see txn.h). Nothing else.
 */
#include "txn.h"

#include <string.h>

const char *
txn_result_str(enum txn_result r)
{
    switch (r) {
    case TXN_NONE_NONE: return "NONE_NONE";
    case TXN_TCP_MISS: return "TCP_MISS";
    case TXN_TCP_TUNNEL: return "TCP_TUNNEL";
    case TXN_TCP_DENIED: return "TCP_DENIED";
    case TXN_TCP_MISS_ABORTED: return "TCP_MISS_ABORTED";
    }
    return "NONE_NONE";
}

const char *
txn_hier_str(enum txn_hier h)
{
    switch (h) {
    case TXN_HIER_NONE: return "HIER_NONE";
    case TXN_HIER_DIRECT: return "HIER_DIRECT";
    }
    return "HIER_NONE";
}

const char *
txn_decision_str(enum txn_decision d)
{
    switch (d) {
    case TXN_DECISION_NONE: return "none";
    case TXN_DECISION_ALLOW: return "allow";
    case TXN_DECISION_MONITOR: return "monitor";
    case TXN_DECISION_BLOCK: return "block";
    case TXN_DECISION_AUTH: return "auth";
    case TXN_DECISION_REFUSE_UNIDENTIFIED: return "refuse_unidentified";
    }
    return "none";
}

const char *
txn_mode_str(enum txn_mode m)
{
    return m == TXN_MODE_TRANSPARENT ? "transparent" : "explicit";
}

size_t
txn_copy(char *dst, size_t cap, const char *src, size_t n)
{
    if (cap == 0)
        return 0;
    if (src == NULL)
        n = 0;
    if (n > cap - 1)
        n = cap - 1;
    if (n > 0)
        memcpy(dst, src, n);
    dst[n] = '\0';
    return n;
}

size_t
txn_copy_str(char *dst, size_t cap, const char *src)
{
    return txn_copy(dst, cap, src, src ? strlen(src) : 0);
}
