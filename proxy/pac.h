/*
 * proxy/pac.h: the proxy auto-config file (/proxy.pac, /wpad.dat), written
 * from the configuration for one client: which proxy it should use (the
 * remote-side address for VPN clients, which the appliance cannot do), the
 * hosts that go DIRECT, the probe host always through the proxy (the proxy
 * answers it) and the proxy's own address never through itself. Pure: no
 * I/O; proxy/conn_local.c serves what it writes.
 */
#ifndef MUS_PROXY_PAC_H
#define MUS_PROXY_PAC_H

#include <stdbool.h>
#include <stddef.h>

#include "../policy/config.h"

#define PAC_CONTENT_TYPE "application/x-ns-proxy-autoconfig"
#define PAC_MAX          (96u << 10)   /* bytes of a generated file at most */

/* True if an origin-form path is one of the PAC file's names. */
bool pac_path(const char *path, size_t len);

/* Writes the file for a client (remote: a VPN user) into out (cap bytes,
 * NUL-terminated). default_proxy ("host:port") is used when the
 * configuration names none. Returns the length, or 0 if it does not fit. */
size_t pac_write(char *out, size_t cap, const config_pac_t *p, const char *probe_host, bool remote,
                 const char *default_proxy);

#endif
