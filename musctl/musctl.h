/*
 * musctl/musctl.h: the subcommands of musctl, one function each, called by the
 * dispatcher in musctl.c with argv[0] being the subcommand's name. They
 * return the process exit status.
 */
#ifndef MUS_MUSCTL_MUSCTL_H
#define MUS_MUSCTL_MUSCTL_H

#define MUSCTL_DEFAULT_SOCKET "var/musproxy.sock"
#define MUSCTL_TIMEOUT_MS 3000

/* musctl status [--socket PATH] [--json]: headend sessions like musstatus. */
int musctl_cmd_status(int argc, char **argv);
/* musctl map [--socket PATH] [--user NAME | --ip ADDR] [--json]: the map. */
int musctl_cmd_map(int argc, char **argv);
/* musctl categories import DIR [--db PATH] | counts [--db PATH]: the category database. */
int musctl_cmd_categories(int argc, char **argv);
/* musctl passwd USER [--file PATH]: sets USER's hash in the Basic password file. */
int musctl_cmd_passwd(int argc, char **argv);
/* musctl trace --ip ADDR --url URL [--user-agent UA] [--port P] [--method M]
 * [--socket PATH] [--json]: the policy decision, without sending traffic. */
int musctl_cmd_trace(int argc, char **argv);
/* musctl wccp [--socket PATH] [--json]: the WCCP service groups (routers, caches,
 * designated cache, our buckets, packets, last error). */
int musctl_cmd_wccp(int argc, char **argv);

/* musctl report NAME [--from TIME] [--to TIME] [--location remote|local|all]
 * [--format json|csv] [--table T] [--db PATH | --config FILE] [...]: a report
 * from the transaction store file, as the admin UI's /api/NAME gives it. */
int musctl_cmd_report(int argc, char **argv);
/* musctl report archive [--config FILE | --db PATH --dir DIR] [--schedule ...] [--now TIME]:
 * the scheduled reports' missing files (db/repsched.h). */
int musctl_cmd_report_archive(int argc, char **argv);

#endif
