/* mqtest: the mq_* C API, case by case, with a normalized result log.
 *
 * The same source runs on glibc + the kernel (-lrt) and on libmqtwin
 * (linked, or LD_PRELOAD); capi/tests/c_api.rs builds it, runs every
 * variant and compares the logs line by line (documented differences
 * only). Each line is "case: what happened"; errno values are printed by
 * name. Queue names are unique (pid) and always unlinked.
 *
 *   mqtest [CASE...]   runs the named cases (all without arguments)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SI_MESGQ
#define SI_MESGQ (-3)
#endif

static const char *current = "?";
static char names[64][64];
static int n_names;

static void out(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("%s: ", current);
  vprintf(fmt, ap);
  printf("\n");
  fflush(stdout);
  va_end(ap);
}

static const char *en(int e) {
  switch (e) {
  case 0: return "0";
  case EINVAL: return "EINVAL";
  case ENOENT: return "ENOENT";
  case EACCES: return "EACCES";
  case EEXIST: return "EEXIST";
  case ENAMETOOLONG: return "ENAMETOOLONG";
  case EBADF: return "EBADF";
  case EMSGSIZE: return "EMSGSIZE";
  case EAGAIN: return "EAGAIN";
  case ETIMEDOUT: return "ETIMEDOUT";
  case EINTR: return "EINTR";
  case EBUSY: return "EBUSY";
  case EFAULT: return "EFAULT";
  case EMFILE: return "EMFILE";
  case ENOSPC: return "ENOSPC";
  case ENOTRECOVERABLE: return "ENOTRECOVERABLE";
  case ENOSYS: return "ENOSYS";
  case EIO: return "EIO";
  default: {
    static char buf[32];
    snprintf(buf, sizeof buf, "errno%d", e);
    return buf;
  }
  }
}

/* "ok" or "-1 ERRNO" for a call's result. */
#define R(call) res((long)(call))
static const char *res(long r) {
  static char buf[8][48];
  static int i;
  char *b = buf[i++ % 8];
  if (r == -1)
    snprintf(b, 48, "-1 %s", en(errno));
  else
    snprintf(b, 48, "%ld", r);
  return b;
}

static const char *qname(const char *tag) {
  char *n = names[n_names++ % 64];
  snprintf(n, 64, "/mqtest-%d-%s", (int)getpid(), tag);
  return n;
}

static void cleanup(void) {
  for (int i = 0; i < n_names && i < 64; i++)
    mq_unlink(names[i]);
}

static mqd_t mk(const char *name, int flags, long maxmsg, long msgsize) {
  struct mq_attr a = {0};
  a.mq_maxmsg = maxmsg;
  a.mq_msgsize = msgsize;
  mqd_t q = mq_open(name, O_CREAT | flags, 0600, &a);
  if (q == (mqd_t)-1) {
    out("FATAL mq_open %s: %s", name, en(errno));
    cleanup();
    exit(2);
  }
  return q;
}

static struct timespec in_ms(long ms) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  t.tv_sec += ms / 1000;
  t.tv_nsec += (ms % 1000) * 1000000L;
  if (t.tv_nsec >= 1000000000L) {
    t.tv_sec++;
    t.tv_nsec -= 1000000000L;
  }
  return t;
}

static void sleep_ms(long ms) {
  struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&t, &t) == -1 && errno == EINTR) {
  }
}

static long curmsgs(mqd_t q) {
  struct mq_attr a;
  if (mq_getattr(q, &a) == -1)
    return -1;
  return a.mq_curmsgs;
}

/* ------------------------------------------------------------- cases -- */

static void case_open(void) {
  const char *n = qname("open");
  out("noslash %s", R(mq_open("noslash", O_RDONLY)));
  out("slash only %s", R(mq_open("/", O_RDONLY)));
  out("inner slash %s", R(mq_open("/a/b", O_RDONLY)));
  out("dot %s", R(mq_open("/.", O_RDONLY)));
  out("dotdot %s", R(mq_open("/..", O_RDONLY)));
  char longname[300];
  longname[0] = '/';
  memset(longname + 1, 'x', 256);
  longname[257] = 0;
  out("256 bytes %s", R(mq_open(longname, O_RDONLY | O_CREAT, 0600, NULL)));
  out("missing %s", R(mq_open(n, O_RDONLY)));
  struct mq_attr a = {0};
  a.mq_maxmsg = 0;
  a.mq_msgsize = 16;
  out("maxmsg 0 %s", R(mq_open(n, O_RDWR | O_CREAT, 0600, &a)));
  a.mq_maxmsg = 4;
  a.mq_msgsize = -1;
  out("msgsize -1 %s", R(mq_open(n, O_RDWR | O_CREAT, 0600, &a)));
  a.mq_maxmsg = 11;
  a.mq_msgsize = 16;
  out("maxmsg over msg_max %s", R(mq_open(n, O_RDWR | O_CREAT, 0600, &a)));
  a.mq_maxmsg = 4;
  a.mq_msgsize = 8193;
  out("msgsize over msgsize_max %s", R(mq_open(n, O_RDWR | O_CREAT, 0600, &a)));
  mqd_t q = mq_open(n, O_RDWR | O_CREAT, 0600, NULL);
  out("created with defaults %s", q == (mqd_t)-1 ? res(-1) : "ok");
  struct mq_attr g;
  mq_getattr(q, &g);
  out("defaults maxmsg %ld msgsize %ld curmsgs %ld flags %ld", g.mq_maxmsg, g.mq_msgsize,
      g.mq_curmsgs, g.mq_flags);
  out("excl on existing %s", R(mq_open(n, O_RDWR | O_CREAT | O_EXCL, 0600, NULL)));
  a.mq_maxmsg = -5;
  mqd_t q2 = mq_open(n, O_RDWR | O_CREAT, 0600, &a);
  out("bad attr on existing ignored %s", q2 == (mqd_t)-1 ? res(-1) : "ok");
  mq_getattr(q2, &g);
  out("existing keeps maxmsg %ld", g.mq_maxmsg);
  out("mode 3 on existing %s", R(mq_open(n, O_WRONLY | O_RDWR)));
  out("mode 3 creat on existing %s", R(mq_open(n, O_WRONLY | O_RDWR | O_CREAT, 0600, NULL)));
  const char *n3 = qname("mode3");
  mqd_t q3 = mq_open(n3, O_WRONLY | O_RDWR | O_CREAT, 0600, NULL);
  out("mode 3 new %s", q3 == (mqd_t)-1 ? res(-1) : "ok");
  char buf[8192];
  out("mode 3 send %s", R(mq_send(q3, "x", 1, 0)));
  out("mode 3 receive %s", R(mq_receive(q3, buf, sizeof buf, NULL)));
  out("mode 3 getattr %s", R(mq_getattr(q3, &g)));
  out("nonblock at open flags %s", R(0));
  mqd_t q4 = mq_open(n, O_RDONLY | O_NONBLOCK);
  mq_getattr(q4, &g);
  out("O_NONBLOCK at open: nonblocking %d", (g.mq_flags & O_NONBLOCK) != 0);
  mq_close(q);
  mq_close(q2);
  mq_close(q3);
  mq_close(q4);
  out("unlink %s", R(mq_unlink(n)));
  out("unlink again %s", R(mq_unlink(n)));
  out("unlink noslash %s", R(mq_unlink("noslash")));
  out("unlink slash only %s", R(mq_unlink("/")));
  out("unlink mode3 %s", R(mq_unlink(n3)));
}

static void case_send_receive(void) {
  const char *n = qname("sr");
  mqd_t q = mk(n, O_RDWR, 8, 16);
  out("send A,1 %s", R(mq_send(q, "A", 1, 1)));
  out("send B,5 %s", R(mq_send(q, "B", 1, 5)));
  out("send C,1 %s", R(mq_send(q, "C", 1, 1)));
  out("send D,5 %s", R(mq_send(q, "D", 1, 5)));
  out("send E,0 %s", R(mq_send(q, "E", 1, 0)));
  out("send F,32767 %s", R(mq_send(q, "F", 1, 32767)));
  out("send empty %s", R(mq_send(q, "", 0, 0)));
  out("send NULL len 0 %s", R(mq_send(q, NULL, 0, 0)));
  out("curmsgs %ld", curmsgs(q));
  out("send 17 bytes %s", R(mq_send(q, "0123456789abcdefg", 17, 0)));
  out("send prio 32768 %s", R(mq_send(q, "x", 1, 32768)));
  char buf[64];
  out("receive small buffer %s", R(mq_receive(q, buf, 15, NULL)));
  for (int i = 0; i < 8; i++) {
    unsigned prio = 99;
    memset(buf, '.', sizeof buf);
    ssize_t r = mq_receive(q, buf, sizeof buf, &prio);
    if (r < 0)
      out("receive %d %s", i, res(-1));
    else
      out("receive %d len %zd prio %u '%.*s' next byte '%c'", i, r, prio, (int)r, buf, buf[r]);
  }
  out("curmsgs %ld", curmsgs(q));
  out("send then receive NULL prio ptr %s", R(mq_send(q, "z", 1, 3)));
  out("receive NULL prio %s", R(mq_receive(q, buf, sizeof buf, NULL)));
  out("send bad fd %s", R(mq_send(-1, "x", 1, 0)));
  out("receive bad fd %s", R(mq_receive(9999, buf, sizeof buf, NULL)));
  int p[2];
  if (pipe(p) == 0) {
    out("send on pipe %s", R(mq_send(p[1], "x", 1, 0)));
    out("getattr on pipe %s", R(mq_getattr(p[0], NULL)));
    out("mq_close on pipe %s", R(mq_close(p[0])));
    close(p[1]);
  }
  mqd_t ro = mq_open(n, O_RDONLY);
  mqd_t wo = mq_open(n, O_WRONLY);
  out("send on O_RDONLY %s", R(mq_send(ro, "x", 1, 0)));
  out("send 17 on O_RDONLY %s", R(mq_send(ro, "0123456789abcdefg", 17, 0)));
  out("receive on O_WRONLY %s", R(mq_receive(wo, buf, sizeof buf, NULL)));
  out("send on O_WRONLY %s", R(mq_send(wo, "w", 1, 0)));
  out("receive on O_RDONLY %s", R(mq_receive(ro, buf, sizeof buf, NULL)));
  out("send NULL len 1 %s", R(mq_send(q, NULL, 1, 0)));
  out("curmsgs %ld", curmsgs(q));
  mq_send(q, "lost", 4, 0);
  out("receive into NULL %s", R(mq_receive(q, NULL, 64, NULL)));
  out("curmsgs after NULL receive %ld", curmsgs(q));
  out("getattr NULL %s", R(mq_getattr(q, NULL)));
  mq_close(ro);
  mq_close(wo);
  mq_close(q);
  mq_unlink(n);
}

static void case_nonblock(void) {
  const char *n = qname("nb");
  mqd_t q = mk(n, O_RDWR | O_NONBLOCK, 2, 16);
  char buf[16];
  out("receive empty %s", R(mq_receive(q, buf, sizeof buf, NULL)));
  out("send 1 %s", R(mq_send(q, "1", 1, 0)));
  out("send 2 %s", R(mq_send(q, "2", 1, 0)));
  out("send full %s", R(mq_send(q, "3", 1, 0)));
  struct timespec past = {0, 0};
  out("timedsend full past %s", R(mq_timedsend(q, "3", 1, 0, &past)));
  struct mq_attr na = {0}, old;
  na.mq_flags = 0;
  na.mq_maxmsg = 1000;
  na.mq_msgsize = 1;
  na.mq_curmsgs = 77;
  out("setattr clear %s", R(mq_setattr(q, &na, &old)));
  out("old nonblocking %d maxmsg %ld msgsize %ld curmsgs %ld", (old.mq_flags & O_NONBLOCK) != 0,
      old.mq_maxmsg, old.mq_msgsize, old.mq_curmsgs);
  struct mq_attr g;
  mq_getattr(q, &g);
  out("now nonblocking %d maxmsg %ld msgsize %ld", (g.mq_flags & O_NONBLOCK) != 0, g.mq_maxmsg,
      g.mq_msgsize);
  struct timespec soon = in_ms(30);
  out("timedsend full blocking %s", R(mq_timedsend(q, "3", 1, 0, &soon)));
  mqd_t d = dup(q);
  na.mq_flags = O_NONBLOCK;
  out("setattr via dup %s", R(mq_setattr(d, &na, NULL)));
  mq_getattr(q, &g);
  out("original sees nonblocking %d", (g.mq_flags & O_NONBLOCK) != 0);
  mqd_t other = mq_open(n, O_RDWR);
  mq_getattr(other, &g);
  out("separate open nonblocking %d", (g.mq_flags & O_NONBLOCK) != 0);
  na.mq_flags = 1;
  out("setattr flags 1 %s", R(mq_setattr(q, &na, NULL)));
  out("setattr flags 1 bad fd %s", R(mq_setattr(-1, &na, NULL)));
  na.mq_flags = 0;
  out("setattr flags 0 bad fd %s", R(mq_setattr(-1, &na, NULL)));
  out("setattr NULL NULL %s", R(mq_setattr(q, NULL, NULL)));
  out("getattr bad fd %s", R(mq_getattr(-1, &g)));
  out("dup receive %s", R(mq_receive(d, buf, sizeof buf, NULL)));
  out("close dup %s", R(mq_close(d)));
  out("original still works %s", R(mq_receive(q, buf, sizeof buf, NULL)));
  out("close %s", R(mq_close(q)));
  out("close again %s", R(mq_close(q)));
  out("close -1 %s", R(mq_close(-1)));
  mq_close(other);
  mq_unlink(n);
}

static void case_timed(void) {
  const char *n = qname("timed");
  mqd_t q = mk(n, O_RDWR, 1, 16);
  char buf[16];
  struct timespec bad1 = {0, 1000000000L}, bad2 = {-1, 0}, bad3 = {0, -1};
  struct timespec past = {0, 0}, edge = {0, 999999999L};
  out("timedsend nsec 1e9 %s", R(mq_timedsend(q, "x", 1, 0, &bad1)));
  out("timedsend sec -1 %s", R(mq_timedsend(q, "x", 1, 0, &bad2)));
  out("timedsend nsec -1 %s", R(mq_timedsend(q, "x", 1, 0, &bad3)));
  out("timedsend bad ts bad fd %s", R(mq_timedsend(-1, "x", 1, 0, &bad1)));
  out("timedsend bad ts bad prio %s", R(mq_timedsend(q, "x", 1, 40000, &bad1)));
  out("curmsgs %ld", curmsgs(q));
  out("timedreceive empty past %s", R(mq_timedreceive(q, buf, sizeof buf, NULL, &past)));
  out("timedreceive empty edge %s", R(mq_timedreceive(q, buf, sizeof buf, NULL, &edge)));
  struct timespec soon = in_ms(50);
  out("timedreceive empty 50ms %s", R(mq_timedreceive(q, buf, sizeof buf, NULL, &soon)));
  out("timedsend NULL timeout %s", R(mq_timedsend(q, "a", 1, 0, NULL)));
  out("timedreceive bad ts nonempty %s", R(mq_timedreceive(q, buf, sizeof buf, NULL, &bad1)));
  out("curmsgs %ld", curmsgs(q));
  out("timedsend full past %s", R(mq_timedsend(q, "b", 1, 0, &past)));
  soon = in_ms(50);
  out("timedsend full 50ms %s", R(mq_timedsend(q, "b", 1, 0, &soon)));
  struct timespec far = {0x7fffffffL, 0};
  out("timedreceive far %s", R(mq_timedreceive(q, buf, sizeof buf, NULL, &far)));
  out("timedreceive bad fd %s", R(mq_timedreceive(-1, buf, sizeof buf, NULL, &past)));
  mq_close(q);
  mq_unlink(n);
}

/* --- threads */

struct rx {
  mqd_t q;
  long ms; /* < 0: no timeout */
  ssize_t r;
  int err;
  volatile int done;
  char buf[64];
};

static void *receiver(void *arg) {
  struct rx *x = arg;
  if (x->ms < 0) {
    x->r = mq_receive(x->q, x->buf, sizeof x->buf, NULL);
  } else {
    struct timespec t = in_ms(x->ms);
    x->r = mq_timedreceive(x->q, x->buf, sizeof x->buf, NULL, &t);
  }
  x->err = x->r < 0 ? errno : 0;
  __atomic_store_n(&x->done, 1, __ATOMIC_SEQ_CST);
  return NULL;
}

static void *sender(void *arg) {
  struct rx *x = arg;
  x->r = mq_send(x->q, x->buf, strlen(x->buf), 0);
  x->err = x->r < 0 ? errno : 0;
  __atomic_store_n(&x->done, 1, __ATOMIC_SEQ_CST);
  return NULL;
}

/* Signals t until its call returned: a signal that comes before the call
   blocks is handled and the call still blocks, so one is not enough on a
   loaded machine. Bounded: 10 s. */
static void kill_until_done(pthread_t t, struct rx *x) {
  for (int i = 0; i < 500 && !__atomic_load_n(&x->done, __ATOMIC_SEQ_CST); i++) {
    pthread_kill(t, SIGUSR1);
    sleep_ms(20);
  }
}

struct many {
  mqd_t q;
  int id;
};

static void *many_sender(void *arg) {
  struct many *m = arg;
  char msg[16];
  for (int i = 0; i < 200; i++) {
    snprintf(msg, sizeof msg, "%d:%d", m->id, i);
    if (mq_send(m->q, msg, strlen(msg), (unsigned)(i % 3)) != 0)
      return (void *)1;
  }
  return NULL;
}

static void case_threads(void) {
  const char *n = qname("thr");
  mqd_t q = mk(n, O_RDWR, 4, 64);
  struct rx x = {.q = q, .ms = -1};
  pthread_t t;
  pthread_create(&t, NULL, receiver, &x);
  sleep_ms(100);
  out("send to blocked receiver %s", R(mq_send(q, "hand", 4, 7)));
  pthread_join(t, NULL);
  out("receiver got %zd '%.*s' %s", x.r, (int)(x.r > 0 ? x.r : 0), x.buf, en(x.err));
  out("curmsgs after handoff %ld", curmsgs(q));
  struct rx y = {.q = q, .ms = 3000};
  pthread_create(&t, NULL, receiver, &y);
  sleep_ms(50);
  mq_send(q, "late", 4, 0);
  pthread_join(t, NULL);
  out("timed receiver got %zd %s", y.r, en(y.err));
  /* A full queue: a blocked sender, let in by a receive. */
  for (int i = 0; i < 4; i++)
    mq_send(q, "f", 1, 0);
  struct rx s = {.q = q};
  strcpy(s.buf, "waiting");
  pthread_create(&t, NULL, sender, &s);
  sleep_ms(100);
  char buf[64];
  out("receive from full %s", R(mq_receive(q, buf, sizeof buf, NULL)));
  pthread_join(t, NULL);
  out("blocked sender %s, curmsgs %ld", en(s.err), curmsgs(q));
  while (curmsgs(q) > 0)
    mq_receive(q, buf, sizeof buf, NULL);
  /* 4 senders x 200 messages, one receiver: nothing lost or doubled. */
  pthread_t ts[4];
  struct many m[4];
  for (int i = 0; i < 4; i++) {
    m[i].q = q;
    m[i].id = i;
    pthread_create(&ts[i], NULL, many_sender, &m[i]);
  }
  int seen[4][200];
  memset(seen, 0, sizeof seen);
  int got = 0, bad = 0;
  char big[128];
  for (int k = 0; k < 800; k++) {
    struct timespec tmo = in_ms(5000);
    ssize_t r = mq_timedreceive(q, big, sizeof big - 1, NULL, &tmo);
    if (r < 0) {
      bad++;
      break;
    }
    big[r] = 0;
    int id, i;
    if (sscanf(big, "%d:%d", &id, &i) == 2 && id >= 0 && id < 4 && i >= 0 && i < 200)
      seen[id][i]++, got++;
    else
      bad++;
  }
  int fails = 0;
  for (int i = 0; i < 4; i++) {
    void *rv;
    pthread_join(ts[i], &rv);
    fails += rv != NULL;
  }
  int dup = 0, missing = 0;
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 200; j++)
      dup += seen[i][j] > 1, missing += seen[i][j] == 0;
  out("800 messages from 4 threads: got %d bad %d missing %d duplicated %d sender failures %d",
      got, bad, missing, dup, fails);
  mq_close(q);
  mq_unlink(n);
}

/* --- signals */

static volatile sig_atomic_t handled;
static volatile sig_atomic_t info_code, info_value, info_pid_ok, info_uid_ok, info_signo;

static void on_signal(int sig) {
  (void)sig;
  handled++;
}

static void on_info(int sig, siginfo_t *si, void *ctx) {
  (void)ctx;
  info_signo = sig;
  info_code = si->si_code;
  info_value = si->si_value.sival_int;
  info_pid_ok = si->si_pid == getpid();
  info_uid_ok = si->si_uid == getuid();
  handled++;
}

static void install(int sig, int flags) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = flags;
  sigemptyset(&sa.sa_mask);
  sigaction(sig, &sa, NULL);
}

static int wait_handled(int n) {
  for (int i = 0; i < 400 && handled < n; i++)
    sleep_ms(5);
  return handled >= n;
}

static void case_eintr(void) {
  const char *n = qname("intr");
  mqd_t q = mk(n, O_RDWR, 1, 64);
  pthread_t t;
  /* Without SA_RESTART: EINTR, nothing consumed. */
  install(SIGUSR1, 0);
  handled = 0;
  struct rx x = {.q = q, .ms = -1};
  pthread_create(&t, NULL, receiver, &x);
  sleep_ms(50);
  kill_until_done(t, &x);
  pthread_join(t, NULL);
  out("receive, handler without SA_RESTART: %zd %s (handled %d)", x.r, en(x.err), handled > 0);
  /* Timed receive too. */
  handled = 0;
  struct rx xt = {.q = q, .ms = 5000};
  pthread_create(&t, NULL, receiver, &xt);
  sleep_ms(50);
  kill_until_done(t, &xt);
  pthread_join(t, NULL);
  out("timedreceive, handler without SA_RESTART: %zd %s", xt.r, en(xt.err));
  /* A blocked send on a full queue: EINTR, nothing queued. */
  mq_send(q, "full", 4, 0);
  handled = 0;
  struct rx s = {.q = q};
  strcpy(s.buf, "blocked");
  pthread_create(&t, NULL, sender, &s);
  sleep_ms(50);
  kill_until_done(t, &s);
  pthread_join(t, NULL);
  out("send, handler without SA_RESTART: %zd %s, curmsgs %ld", s.r, en(s.err), curmsgs(q));
  char buf[64];
  mq_receive(q, buf, sizeof buf, NULL);
  /* With SA_RESTART: the call goes on and gets the message. */
  install(SIGUSR1, SA_RESTART);
  handled = 0;
  struct rx y = {.q = q, .ms = -1};
  pthread_create(&t, NULL, receiver, &y);
  sleep_ms(100);
  pthread_kill(t, SIGUSR1);
  int ok = wait_handled(1);
  sleep_ms(50);
  mq_send(q, "after", 5, 0);
  pthread_join(t, NULL);
  out("receive, SA_RESTART: handled %d, got %zd '%.*s' %s", ok, y.r, (int)(y.r > 0 ? y.r : 0),
      y.buf, en(y.err));
  /* SIGEV_SIGNAL: si_code SI_MESGQ, the value, the sender's pid and uid. */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_info;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR2, &sa, NULL);
  handled = 0;
  struct sigevent ev;
  memset(&ev, 0, sizeof ev);
  ev.sigev_notify = SIGEV_SIGNAL;
  ev.sigev_signo = SIGUSR2;
  ev.sigev_value.sival_int = 42;
  out("notify signal %s", R(mq_notify(q, &ev)));
  out("notify again %s", R(mq_notify(q, &ev)));
  out("send %s", R(mq_send(q, "n", 1, 0)));
  ok = wait_handled(1);
  out("signal %d: signo ok %d code SI_MESGQ %d value %d pid ok %d uid ok %d", ok,
      info_signo == SIGUSR2, info_code == SI_MESGQ, (int)info_value, (int)info_pid_ok,
      (int)info_uid_ok);
  out("registration consumed: notify %s", R(mq_notify(q, &ev)));
  mq_receive(q, buf, sizeof buf, NULL);
  out("cancel %s", R(mq_notify(q, NULL)));
  out("cancel again %s", R(mq_notify(q, NULL)));
  /* Fires only on empty -> non-empty. */
  mq_send(q, "x", 1, 0);
  handled = 0;
  mq_notify(q, &ev);
  mq_receive(q, buf, sizeof buf, NULL);
  out("registered on non-empty, no signal yet: handled %d", (int)handled);
  mq_send(q, "y", 1, 0);
  ok = wait_handled(1);
  out("then empty -> non-empty: signal %d", ok);
  mq_receive(q, buf, sizeof buf, NULL);
  /* Close of another descriptor drops the registration. */
  mqd_t other = mq_open(n, O_RDONLY);
  out("notify %s", R(mq_notify(q, &ev)));
  mq_close(other);
  out("after closing another descriptor, notify %s", R(mq_notify(q, &ev)));
  mq_notify(q, NULL);
  mq_close(q);
  mq_unlink(n);
  signal(SIGUSR1, SIG_DFL);
  signal(SIGUSR2, SIG_DFL);
}

static void case_notify_errors(void) {
  const char *n = qname("nerr");
  mqd_t q = mk(n, O_RDWR, 2, 16);
  struct sigevent ev;
  memset(&ev, 0, sizeof ev);
  ev.sigev_notify = 99;
  out("sigev_notify 99 %s", R(mq_notify(q, &ev)));
  out("sigev_notify 99 bad fd %s", R(mq_notify(-1, &ev)));
  ev.sigev_notify = SIGEV_SIGNAL;
  ev.sigev_signo = 65;
  out("signo 65 %s", R(mq_notify(q, &ev)));
  out("signo 65 bad fd %s", R(mq_notify(-1, &ev)));
  ev.sigev_signo = -1;
  out("signo -1 %s", R(mq_notify(q, &ev)));
  ev.sigev_signo = 0;
  out("signo 0 %s", R(mq_notify(q, &ev)));
  out("busy %s", R(mq_notify(q, &ev)));
  mq_notify(q, NULL);
  ev.sigev_notify = SIGEV_NONE;
  out("none bad fd %s", R(mq_notify(-1, &ev)));
  out("NULL bad fd %s", R(mq_notify(-1, NULL)));
  out("none %s", R(mq_notify(q, &ev)));
  mq_send(q, "a", 1, 0);
  out("none consumed by arrival: notify %s", R(mq_notify(q, &ev)));
  mqd_t wo = mq_open(n, O_WRONLY);
  mq_notify(q, NULL);
  out("notify via O_WRONLY %s", R(mq_notify(wo, &ev)));
  mq_notify(wo, NULL);
  mq_close(wo);
  mq_close(q);
  mq_unlink(n);
}

static pthread_mutex_t tmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t tcv = PTHREAD_COND_INITIALIZER;
static int thread_value = -1, thread_other = -1;
static pthread_t main_thread;

static void on_thread(union sigval v) {
  pthread_mutex_lock(&tmu);
  thread_value = v.sival_int;
  thread_other = !pthread_equal(pthread_self(), main_thread);
  pthread_cond_signal(&tcv);
  pthread_mutex_unlock(&tmu);
}

static int wait_thread(void) {
  struct timespec t = in_ms(3000);
  pthread_mutex_lock(&tmu);
  while (thread_value < 0)
    if (pthread_cond_timedwait(&tcv, &tmu, &t) != 0)
      break;
  int v = thread_value;
  thread_value = -1;
  pthread_mutex_unlock(&tmu);
  return v;
}

static void case_sigev_thread(void) {
  const char *n = qname("thread");
  mqd_t q = mk(n, O_RDWR, 2, 16);
  main_thread = pthread_self();
  struct sigevent ev;
  memset(&ev, 0, sizeof ev);
  ev.sigev_notify = SIGEV_THREAD;
  ev.sigev_notify_function = on_thread;
  ev.sigev_value.sival_int = 7;
  out("notify thread %s", R(mq_notify(q, &ev)));
  out("busy %s", R(mq_notify(q, &ev)));
  mq_send(q, "t", 1, 0);
  int v = wait_thread();
  out("function ran with value %d on another thread %d", v, thread_other);
  char buf[16];
  mq_receive(q, buf, sizeof buf, NULL);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  ev.sigev_notify_attributes = &attr;
  ev.sigev_value.sival_int = 8;
  out("notify thread with attributes %s", R(mq_notify(q, &ev)));
  pthread_attr_destroy(&attr); /* glibc copied them */
  mq_send(q, "u", 1, 0);
  v = wait_thread();
  out("function ran with value %d", v);
  mq_close(q);
  mq_unlink(n);
}

static void case_poll(void) {
  const char *n = qname("poll");
  mqd_t q = mk(n, O_RDWR, 2, 16);
  mqd_t other = mq_open(n, O_RDONLY);
  struct pollfd p[2] = {{.fd = q, .events = POLLIN}, {.fd = other, .events = POLLIN}};
  int r = poll(p, 2, 0);
  out("empty: ready %d in %d %d", r, (p[0].revents & POLLIN) != 0, (p[1].revents & POLLIN) != 0);
  mq_send(q, "p", 1, 0);
  r = poll(p, 2, 0);
  out("one message: ready %d in %d %d", r, (p[0].revents & POLLIN) != 0,
      (p[1].revents & POLLIN) != 0);
  struct pollfd w = {.fd = q, .events = POLLOUT};
  r = poll(&w, 1, 0);
  out("one message: writable %d", (w.revents & POLLOUT) != 0);
  char buf[16];
  mq_receive(other, buf, sizeof buf, NULL);
  p[0].revents = p[1].revents = 0;
  r = poll(p, 2, 0);
  out("drained: ready %d in %d %d", r, (p[0].revents & POLLIN) != 0, (p[1].revents & POLLIN) != 0);
  /* A poll that waits is woken by a send from another thread. */
  struct rx s = {.q = q};
  strcpy(s.buf, "wake");
  pthread_t t;
  pthread_create(&t, NULL, sender, &s);
  struct pollfd one = {.fd = other, .events = POLLIN};
  r = poll(&one, 1, 3000);
  out("waiting poll woken: %d in %d", r, (one.revents & POLLIN) != 0);
  pthread_join(t, NULL);
  mq_close(other);
  mq_close(q);
  mq_unlink(n);
}

static void case_fork(void) {
  const char *n = qname("fork");
  mqd_t q = mk(n, O_RDWR | O_NONBLOCK, 4, 16);
  mq_send(q, "p", 1, 0);
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    int r = mq_send(q, "c", 1, 0);
    int e = errno;
    printf("%s: child send %s\n", current, r == 0 ? "0" : en(e));
    r = mq_send(q, "c", 1, 0);
    e = errno;
    printf("%s: child second send %s\n", current, r == 0 ? "0" : en(e));
    fflush(stdout);
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  out("child exited %d", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  out("parent still works: send %s", R(mq_send(q, "q", 1, 0) == 0 ? 0 : -1));
  mq_close(q);
  mq_unlink(n);
}

struct entry {
  const char *name;
  void (*run)(void);
};

static const struct entry cases[] = {
    {"open", case_open},           {"send_receive", case_send_receive},
    {"nonblock", case_nonblock},   {"timed", case_timed},
    {"threads", case_threads},     {"eintr", case_eintr},
    {"notify_errors", case_notify_errors}, {"sigev_thread", case_sigev_thread},
    {"poll", case_poll},           {"fork", case_fork},
};

static void on_alarm(int sig) {
  (void)sig;
  static const char msg[] = "mqtest: watchdog: a case took over 30 s\n";
  ssize_t ignored = write(2, msg, sizeof msg - 1);
  (void)ignored;
  cleanup();
  _exit(3);
}

int main(int argc, char **argv) {
  signal(SIGALRM, on_alarm);
  atexit(cleanup);
  int ran = 0;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int want = argc == 1;
    for (int a = 1; a < argc; a++)
      want |= strcmp(argv[a], cases[i].name) == 0;
    if (!want)
      continue;
    current = cases[i].name;
    alarm(30);
    cases[i].run();
    ran++;
  }
  current = "done";
  out("%d cases", ran);
  return 0;
}
