/* mqueue.h: POSIX message queues, for systems without one (macOS), as
 * libmqtwin provides them (docs/capi.md). The layout matches glibc's, so the
 * same header also works on Linux.
 *
 *   cc -I capi/include prog.c -L target/debug -lmqtwin
 */
#ifndef MQTWIN_MQUEUE_H
#define MQTWIN_MQUEUE_H

#include <fcntl.h>     /* O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_NONBLOCK */
#include <signal.h>    /* struct sigevent, SIGEV_NONE, SIGEV_SIGNAL, SIGEV_THREAD */
#include <stddef.h>    /* size_t */
#include <sys/types.h> /* ssize_t, mode_t */
#include <time.h>      /* struct timespec */

#ifdef __cplusplus
extern "C" {
#endif

/* A message queue descriptor: a file descriptor of the process. */
typedef int mqd_t;

struct mq_attr {
  long mq_flags;   /* 0 or O_NONBLOCK */
  long mq_maxmsg;  /* capacity in messages */
  long mq_msgsize; /* largest message in bytes */
  long mq_curmsgs; /* messages queued now */
  long __pad[4];   /* reserved */
};

mqd_t mq_open(const char *name, int oflag, ...);
int mq_close(mqd_t mqdes);
int mq_unlink(const char *name);
int mq_send(mqd_t mqdes, const char *msg_ptr, size_t msg_len, unsigned int msg_prio);
int mq_timedsend(mqd_t mqdes, const char *msg_ptr, size_t msg_len, unsigned int msg_prio,
                 const struct timespec *abs_timeout);
ssize_t mq_receive(mqd_t mqdes, char *msg_ptr, size_t msg_len, unsigned int *msg_prio);
ssize_t mq_timedreceive(mqd_t mqdes, char *msg_ptr, size_t msg_len, unsigned int *msg_prio,
                        const struct timespec *abs_timeout);
int mq_getattr(mqd_t mqdes, struct mq_attr *attr);
int mq_setattr(mqd_t mqdes, const struct mq_attr *newattr, struct mq_attr *oldattr);
int mq_notify(mqd_t mqdes, const struct sigevent *sevp);

#ifdef __cplusplus
}
#endif

#endif /* MQTWIN_MQUEUE_H */
