/*
 * common/path.c: file-system path helpers (see path.h).
 */
#include "path.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#define PATH_MAX_BYTES 4096

int
path_mkdir_parent(const char *path)
{
    char dir[PATH_MAX_BYTES];
    char *slash;

    if (strlen(path) >= sizeof(dir)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(dir, path);
    slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(dir, 0750) < 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    if (mkdir(dir, 0750) < 0 && errno != EEXIST)
        return -1;
    return 0;
}
