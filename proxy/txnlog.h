/*
 * proxy/txnlog.h: writes a finished transaction (common/txn.h) to the two
 * logs: the Squid-format access line (through proxy/accesslog.h) and the
 * extended log's JSON object (what the Squid format cannot carry: location,
 * identity profile, access policy, rule, category, decision, user source,
 * identity type, headend). Formatting only: it decides nothing, keeps no
 * state, and never writes a cut JSON line (too long: dropped and said so).
 */
#ifndef MUS_PROXY_TXNLOG_H
#define MUS_PROXY_TXNLOG_H

#include <stddef.h>

#include "../common/txn.h"
#include "accesslog.h"

/* The Squid line (no-op when the log is off). */
void txnlog_squid(alog_t *a, const txn_record_t *r);

/* The JSON line, '\n' included, into buf; its length, or 0 if it does not
 * fit in cap (nothing usable is left in buf then). */
size_t txnlog_json(char *buf, size_t cap, const txn_record_t *r);

/* The JSON line into the extended log (no-op when it is off). */
void txnlog_extended(alog_t *x, const txn_record_t *r);

#endif
