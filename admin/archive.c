/*
 * admin/archive.c: a scheduled report's file as a download (see
 * admin_int.h): the name is checked by db/repsched.h (only
 * "daily|weekly|monthly/LABEL-REPORT.csv" of the archive in force: no
 * other path, no "..", no link followed), the file read whole and sent as
 * text/csv with Content-Disposition. It lists nothing (views_ops.c does).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../db/repsched.h"
#include "admin_int.h"
#include "views.h"

#define ARCHIVE_FILE_MAX  (64u << 20)   /* bytes of a file sent (1000-row tables are far smaller) */

enum MHD_Result
admin_archive_download(struct MHD_Connection *c, bool api, const struct view_env *env,
                       const char *name, const who_t *who)
{
    char dir[4096], disp[REPSCHED_NAME_MAX + 64], *body, *slash;
    uint64_t size = 0;
    size_t got = 0;
    int fd;

    views_archive_dir(env, dir, sizeof(dir));
    if (dir[0] == '\0')
        return admin_send_error(c, api, 404, "no scheduled reports (reports.archive is off)", who,
                                NULL, NULL);
    fd = repsched_open(dir, name, &size);
    if (fd == -2)
        return admin_send_error(c, api, 400, "not the name of a scheduled report "
                                "(daily|weekly|monthly/PERIOD-REPORT.csv)", who, NULL, NULL);
    if (fd < 0)
        return admin_send_error(c, api, errno == ENOENT ? 404 : 500,
                                errno == ENOENT ? "no such scheduled report" : strerror(errno),
                                who, NULL, NULL);
    if (size > ARCHIVE_FILE_MAX || (body = malloc(size + 1)) == NULL) {
        close(fd);
        return admin_send_error(c, api, 500, "the file is too large", who, NULL, NULL);
    }
    while (got < size) {
        ssize_t n = read(fd, body + got, size - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    /* the name passed repsched's check: letters, digits, '-', one '/' */
    snprintf(disp, sizeof(disp), "attachment; filename=\"musproxy-%s\"", name);
    slash = strchr(disp, '/');
    if (slash != NULL)
        *slash = '-';
    return admin_send_body(c, 200, body, got, "text/csv; charset=utf-8", "Content-Disposition",
                           disp);
}
