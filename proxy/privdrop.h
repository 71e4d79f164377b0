/*
 * proxy/privdrop.h: who the daemon runs as. Started as root with run.user
 * set, it switches to that user and group once the listeners are bound and
 * the store and logs are open, keeping only the capabilities the
 * configuration still needs; started unprivileged (systemd User= with
 * AmbientCapabilities=), it only lowers its capabilities to that same set.
 * Either way it then checks that the result is what it asked for, in every
 * thread, and refuses to go on otherwise. It opens no sockets and starts
 * nothing; files written later (logs reopened on SIGUSR1, the store, the
 * control socket) must be in directories that user can write.
 *
 * Linux capabilities are per thread: call it before starting the threads
 * that need them (the workers). Threads started earlier (the store writer)
 * get the new uid and gid from glibc, which applies set*id to every thread,
 * and lose every capability (setuid from root clears them where
 * PR_SET_KEEPCAPS is not set).
 */
#ifndef MUS_PROXY_PRIVDROP_H
#define MUS_PROXY_PRIVDROP_H

#include <stddef.h>

#include "../policy/config.h"

#define PRIVDROP_ERR_MAX 512

/* The CONFIG_CAP_* bits cfg needs after the start: cfg->run.keep_caps, or
 * with keep_capabilities: auto, net_admin + net_raw for a tproxy listener
 * (IP_TRANSPARENT on the sockets a reload or spoof_client_address opens)
 * and net_bind_service for a listener on a port below 1024. */
unsigned privdrop_needed(const config_t *cfg);

/* Applies cfg->run as described above. 0, or -1 with a message in err
 * (PRIVDROP_ERR_MAX bytes): an unknown user or group, run.user set while
 * not root and not already that user, a call that failed, or a check
 * that found more privilege than asked for. */
int privdrop_apply(const config_t *cfg, char *err, size_t errlen);

#endif
