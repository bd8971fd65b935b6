/* error.c -- per-thread last-error message and status names. */
#include "frig_internal.h"

#include <stdarg.h>
#include <stdio.h>

#if defined(_MSC_VER)
#  define FRIG_THREAD_LOCAL __declspec(thread)
#else
#  define FRIG_THREAD_LOCAL _Thread_local
#endif

/* Thread-local so concurrent loads on different threads keep their own message,
 * and so reporting an error never allocates. */
static FRIG_THREAD_LOCAL char g_last_error[320];

int frig_fail(int status, const char *format, ...)
{
    va_list args;
    int n;
    va_start(args, format);
    n = snprintf(g_last_error, sizeof g_last_error, "%s: ", frig_status_name(status));
    if (n < 0 || (size_t)n >= sizeof g_last_error)
        n = 0;
    vsnprintf(g_last_error + n, sizeof g_last_error - (size_t)n, format, args);
    va_end(args);
    return status;
}

const char *frig_last_error(void)
{
    return g_last_error;
}

const char *frig_status_name(int status)
{
    switch (status) {
    case FRIG_OK: return "ok";
    case FRIG_ERROR_INVALID_ARGUMENT: return "invalid argument";
    case FRIG_ERROR_IO: return "i/o error";
    case FRIG_ERROR_TRUNCATED: return "truncated rig file";
    case FRIG_ERROR_BAD_MAGIC: return "not a rig file";
    case FRIG_ERROR_BAD_VERSION: return "unsupported rig file version";
    case FRIG_ERROR_BAD_CHECKSUM: return "rig file checksum mismatch";
    case FRIG_ERROR_CORRUPT: return "corrupt rig file";
    case FRIG_ERROR_OUT_OF_MEMORY: return "out of memory";
    case FRIG_ERROR_UNSUPPORTED: return "unsupported";
    default: return "unknown status";
    }
}
