/*
 * proxy/sdnotify.h: telling systemd (Type=notify) where the daemon is:
 * ready to serve, reloading its configuration, stopping. Through
 * libsystemd's sd_notify when musproxy was built with it, to the socket in
 * $NOTIFY_SOCKET; without libsystemd, or outside systemd, these do nothing.
 */
#ifndef MUS_PROXY_SDNOTIFY_H
#define MUS_PROXY_SDNOTIFY_H

/* READY=1 (and again after a reload, with the reload's outcome in STATUS). */
void sdnotify_ready(const char *status);
/* RELOADING=1 with MONOTONIC_USEC (systemd 253's notify-reload wants it). */
void sdnotify_reloading(void);
/* STOPPING=1 */
void sdnotify_stopping(void);

#endif
