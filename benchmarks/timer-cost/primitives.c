// The timer and wake-up primitives the load generator is built on, timed in wall and thread-CPU
// microseconds (benchmarks/timer-cost/run.sh).
#define _GNU_SOURCE
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <sys/timerfd.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <sched.h>
#include <pthread.h>
static double now(clockid_t c){struct timespec t;clock_gettime(c,&t);return t.tv_sec*1e6+t.tv_nsec/1e3;}
#define T(name, n, ...) { double c0=now(CLOCK_THREAD_CPUTIME_ID), w0=now(CLOCK_MONOTONIC); for(int i=0;i<n;i++){__VA_ARGS__;} double c1=now(CLOCK_THREAD_CPUTIME_ID), w1=now(CLOCK_MONOTONIC); printf("%-40s wall %.2f us cpu %.2f us\n", name, (w1-w0)/n, (c1-c0)/n);}
int p1[2],p2[2];
void* peer(void*a){cpu_set_t s;CPU_ZERO(&s);CPU_SET(0,&s);pthread_setaffinity_np(pthread_self(),sizeof s,&s);char c;for(;;){if(read(p1[0],&c,1)<=0)break;write(p2[1],&c,1);}return 0;}
int main(){
  struct timespec ts; int tfd=timerfd_create(CLOCK_MONOTONIC,0); int ep=epoll_create1(0); struct epoll_event ev;
  T("clock_gettime", 100000, clock_gettime(CLOCK_MONOTONIC,&ts));
  T("getppid syscall", 100000, getppid());
  T("timerfd_settime +10s (re-arm)", 20000, {struct itimerspec it={{0,0},{10,i}}; timerfd_settime(tfd,0,&it,0);});
  T("timerfd_settime +100us then disarm", 20000, {struct itimerspec it={{0,0},{0,100000}}; timerfd_settime(tfd,0,&it,0); struct itimerspec z={0}; timerfd_settime(tfd,0,&z,0);});
  T("epoll_wait timeout 0", 100000, epoll_wait(ep,&ev,1,0));
  T("sched_yield", 100000, sched_yield());
  pipe(p1);pipe(p2); pthread_t th; pthread_create(&th,0,peer,0);
  cpu_set_t s;CPU_ZERO(&s);CPU_SET(1,&s);pthread_setaffinity_np(pthread_self(),sizeof s,&s);
  char c='x';
  T("pipe ping-pong cross-CPU (blocking)", 20000, {write(p1[1],&c,1); read(p2[0],&c,1);});
}
