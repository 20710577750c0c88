/* mqtwin.h: libmqtwin's extensions beyond POSIX (docs/capi.md). */
#ifndef MQTWIN_H
#define MQTWIN_H

#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* With MQTWIN_VIRTUAL_TIME=1: advance the virtual clock by *by, waking the
   calls whose deadline it reaches. 0, or -1 with errno EINVAL (bad timespec,
   no virtual time) or EFAULT (NULL). */
int mqtwin_advance(const struct timespec *by);

/* With MQTWIN_VIRTUAL_TIME=1: advance the virtual clock to the earliest
   deadline a blocked call waits for. 1 if it moved, 0 if none waits with a
   deadline, -1 with errno EINVAL without virtual time. */
int mqtwin_advance_to_next_deadline(void);

/* Callers blocked in a send or receive right now. */
long mqtwin_blocked(void);

#ifdef __cplusplus
}
#endif

#endif /* MQTWIN_H */
