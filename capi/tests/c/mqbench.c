/* mqbench: rough timings of the mq_* API (docs/capi.md, "Speed").
 *   pair:      one thread, send then receive, N times (never waits)
 *   pingpong:  two threads, each message answered through a second queue
 *              (every receive waits for the other thread)
 * Prints "NAME ns/op" lines. Build like mqtest (-lrt, or -lmqtwin). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <mqueue.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

static mqd_t a, b;
static int rounds;

static void *echo(void *arg) {
  (void)arg;
  char buf[64];
  for (int i = 0; i < rounds; i++) {
    ssize_t n = mq_receive(a, buf, sizeof buf, NULL);
    if (n < 0 || mq_send(b, buf, (size_t)n, 0) != 0)
      exit(2);
  }
  return NULL;
}

int main(int argc, char **argv) {
  rounds = argc > 1 ? atoi(argv[1]) : 20000;
  char na[64], nb[64];
  snprintf(na, sizeof na, "/mqbench-%d-a", (int)getpid());
  snprintf(nb, sizeof nb, "/mqbench-%d-b", (int)getpid());
  struct mq_attr attr = {0};
  attr.mq_maxmsg = 8;
  attr.mq_msgsize = 64;
  a = mq_open(na, O_RDWR | O_CREAT, 0600, &attr);
  b = mq_open(nb, O_RDWR | O_CREAT, 0600, &attr);
  if (a == (mqd_t)-1 || b == (mqd_t)-1) {
    perror("mq_open");
    return 1;
  }
  char buf[64] = "ping";
  double t0 = now_ns();
  for (int i = 0; i < rounds; i++) {
    if (mq_send(a, buf, 4, 1) != 0 || mq_receive(a, buf, sizeof buf, NULL) != 4)
      return 2;
  }
  printf("pair %.0f ns/op\n", (now_ns() - t0) / rounds);
  pthread_t t;
  pthread_create(&t, NULL, echo, NULL);
  t0 = now_ns();
  for (int i = 0; i < rounds; i++) {
    if (mq_send(a, buf, 4, 1) != 0 || mq_receive(b, buf, sizeof buf, NULL) != 4)
      return 2;
  }
  printf("pingpong %.0f ns/op\n", (now_ns() - t0) / rounds);
  pthread_join(t, NULL);
  mq_close(a);
  mq_close(b);
  mq_unlink(na);
  mq_unlink(nb);
  return 0;
}
