/* The C side of libmqtwin: what Rust cannot (or should not) express.
 *
 * - mq_open is variadic. On Apple arm64 variadic arguments are passed on the
 *   stack, so a fixed-arity Rust definition would read garbage there; this
 *   C definition reads them with va_arg and forwards to the fixed-arity
 *   mqtwin_capi_open (Rust).
 * - struct sigevent differs between platforms (SIGEV_* values, where the
 *   thread function and attributes live): read it here, with the system's
 *   own definition.
 * - SIGEV_THREAD callbacks run on a thread created here, entirely in C
 *   frames (a callback may call pthread_exit), with the caller's
 *   pthread_attr_t copied at registration, as glibc copies it.
 * - A SIGEV_SIGNAL notification is raised with the siginfo the kernel would
 *   fill (si_code SI_MESGQ, si_value, si_pid, si_uid).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/syscall.h>
#endif

/* The header's struct mq_attr (capi/include/mqueue.h and glibc's agree). */
struct mq_attr;

int mqtwin_capi_open(const char *name, int oflag, unsigned int mode,
                     const struct mq_attr *attr);

int mq_open(const char *name, int oflag, ...) {
  unsigned int mode = 0;
  const struct mq_attr *attr = NULL;
  if (oflag & O_CREAT) {
    va_list ap;
    va_start(ap, oflag);
    /* mode_t is unsigned int on Linux and promoted from uint16_t to int
       on macOS: unsigned int reads both. */
    mode = va_arg(ap, unsigned int);
    attr = va_arg(ap, const struct mq_attr *);
    va_end(ap);
  }
  return mqtwin_capi_open(name, oflag, mode, attr);
}

#if defined(__linux__)
/* glibc's _FORTIFY_SOURCE mq_open with two arguments calls this. */
int __mq_open_2(const char *name, int oflag) {
  if (oflag & O_CREAT) {
    static const char msg[] =
        "*** invalid mq_open call: O_CREAT without mode and attr ***\n";
    ssize_t ignored = write(2, msg, sizeof msg - 1);
    (void)ignored;
    abort();
  }
  return mqtwin_capi_open(name, oflag, 0, NULL);
}
#endif

/* The notification kinds, the same numbers on every platform. */
#define MQTWIN_SIGEV_NONE 0
#define MQTWIN_SIGEV_SIGNAL 1
#define MQTWIN_SIGEV_THREAD 2
#define MQTWIN_SIGEV_OTHER 3

/* Reads a sigevent: its kind (above), signal, value, and for SIGEV_THREAD
   the function and attributes. */
void mqtwin_capi_sigevent(const struct sigevent *sev, int *kind, int *signo,
                          void **value, void (**function)(union sigval),
                          const pthread_attr_t **attributes) {
  switch (sev->sigev_notify) {
  case SIGEV_NONE:
    *kind = MQTWIN_SIGEV_NONE;
    break;
  case SIGEV_SIGNAL:
    *kind = MQTWIN_SIGEV_SIGNAL;
    break;
  case SIGEV_THREAD:
    *kind = MQTWIN_SIGEV_THREAD;
    break;
  default:
    *kind = MQTWIN_SIGEV_OTHER;
    break;
  }
  *signo = sev->sigev_signo;
  *value = sev->sigev_value.sival_ptr;
  *function = sev->sigev_notify_function;
  *attributes = sev->sigev_notify_attributes;
}

/* A copy of a pthread_attr_t, by its portable getters (the fields POSIX
   names). NULL when attr is NULL or memory is short. */
pthread_attr_t *mqtwin_capi_attr_clone(const pthread_attr_t *attr) {
  if (attr == NULL)
    return NULL;
  pthread_attr_t *copy = malloc(sizeof *copy);
  if (copy == NULL)
    return NULL;
  if (pthread_attr_init(copy) != 0) {
    free(copy);
    return NULL;
  }
  size_t size;
  int value;
  struct sched_param param;
  if (pthread_attr_getstacksize(attr, &size) == 0)
    (void)pthread_attr_setstacksize(copy, size);
  if (pthread_attr_getguardsize(attr, &size) == 0)
    (void)pthread_attr_setguardsize(copy, size);
  if (pthread_attr_getinheritsched(attr, &value) == 0)
    (void)pthread_attr_setinheritsched(copy, value);
  if (pthread_attr_getschedpolicy(attr, &value) == 0)
    (void)pthread_attr_setschedpolicy(copy, value);
  if (pthread_attr_getschedparam(attr, &param) == 0)
    (void)pthread_attr_setschedparam(copy, &param);
  if (pthread_attr_getscope(attr, &value) == 0)
    (void)pthread_attr_setscope(copy, value);
  return copy;
}

void mqtwin_capi_attr_free(pthread_attr_t *attr) {
  if (attr != NULL) {
    pthread_attr_destroy(attr);
    free(attr);
  }
}

struct thread_start {
  void (*function)(union sigval);
  union sigval value;
};

static void *notify_thread(void *arg) {
  struct thread_start start = *(struct thread_start *)arg;
  free(arg);
  if (start.function != NULL) /* glibc's helper would crash; skip instead */
    start.function(start.value);
  return NULL;
}

/* Runs function(value) on a new detached thread made with attr (a copy
   from mqtwin_capi_attr_clone, or NULL for the defaults). Returns 0, or the errno when no thread could be made (the
   notification is then lost, as in C). */
int mqtwin_capi_spawn_notify(void (*function)(union sigval), void *value,
                             pthread_attr_t *attr) {
  struct thread_start *start = malloc(sizeof *start);
  if (start == NULL)
    return ENOMEM;
  start->function = function;
  start->value.sival_ptr = value;
  pthread_attr_t local;
  pthread_attr_t *use = attr;
  if (use == NULL) {
    if (pthread_attr_init(&local) != 0) {
      free(start);
      return ENOMEM;
    }
    use = &local;
  }
  /* glibc runs SIGEV_THREAD functions detached whatever attr says. */
  (void)pthread_attr_setdetachstate(use, PTHREAD_CREATE_DETACHED);
  pthread_t thread;
  int rc = pthread_create(&thread, use, notify_thread, start);
  if (use == &local)
    pthread_attr_destroy(&local);
  if (rc != 0)
    free(start);
  return rc;
}

/* Raises signo in this process as the kernel's notification does. Linux:
   rt_sigqueueinfo to the own process with si_code SI_MESGQ, the value and
   the sender's pid and uid (the kernel allows any negative si_code but
   SI_TKILL). Elsewhere there is no sigqueue with a chosen siginfo: a plain
   kill (si_code SI_USER, no value). Returns 0 or -1 with errno. */
int mqtwin_capi_raise(int signo, void *value, int pid, unsigned int uid) {
#if defined(__linux__)
  siginfo_t info;
  memset(&info, 0, sizeof info);
  info.si_signo = signo;
  info.si_code = SI_MESGQ;
  info.si_value.sival_ptr = value;
  info.si_pid = (pid_t)pid;
  info.si_uid = (uid_t)uid;
  return (int)syscall(SYS_rt_sigqueueinfo, getpid(), signo, &info);
#else
  (void)value;
  (void)pid;
  (void)uid;
  return kill(getpid(), signo);
#endif
}
