/*
 * common/threadcaps.c: see threadcaps.h. The capset(2) system call on the
 * calling thread with empty sets; it does not touch the bounding set or
 * other threads.
 */
#include <linux/capability.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "threadcaps.h"

int
threadcaps_drop_unless_root(void)
{
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };   /* 0 = this thread */
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

    if (getuid() == 0)
        return 0;
    memset(data, 0, sizeof(data));
    return (int)syscall(SYS_capset, &hdr, data);
}
