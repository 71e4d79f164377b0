/*
 * common/path.h: file-system path helpers shared by the files a daemon
 * creates (logs, the store, sockets). It opens nothing itself.
 */
#ifndef MUS_COMMON_PATH_H
#define MUS_COMMON_PATH_H

/* Creates every missing directory above path's last '/' (mode 0750).
 * 0, or -1 with errno. */
int path_mkdir_parent(const char *path);

#endif
