/*
 * common/threadcaps.h: a thread giving up every Linux capability it holds
 * (permitted, effective, inheritable, hence ambient), for the helper
 * threads that never need one (the store writer) and may be started before
 * the daemon lowers its own (proxy/privdrop.h: capabilities are per
 * thread). Only the calling thread changes; its uid is untouched. No libcap.
 */
#ifndef MUS_COMMON_THREADCAPS_H
#define MUS_COMMON_THREADCAPS_H

/* Drops them all unless the process runs as root (uid 0): a root process
 * loses them at its switch of user (glibc's setuid reaches every thread),
 * and a root thread without them could no longer write files it does not
 * own. 0, or -1 with errno (the thread keeps what it had). */
int threadcaps_drop_unless_root(void);

#endif
