// N sleeps of D microseconds (mode 0 nanosleep, 1 epoll_wait timeout, 2 timerfd + epoll_wait),
// with the thread's timer slack at SLACK ns if given (runbench's generator and the on-time C
// client set 1; the default is 50 µs): wall time and thread CPU per sleep
// (benchmarks/timer-cost/run.sh).  Usage: sleep N D [MODE [SLACK]]
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <sys/timerfd.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <sys/prctl.h>
static double now(clockid_t c){struct timespec t;clock_gettime(c,&t);return t.tv_sec*1e6+t.tv_nsec/1e3;}
int main(int argc,char**argv){
  int n=atoi(argv[1]); long us=atol(argv[2]); int mode=argc>3?atoi(argv[3]):0;
  if(argc>4) prctl(PR_SET_TIMERSLACK,strtoul(argv[4],0,10),0UL,0UL,0UL);
  double c0=now(CLOCK_THREAD_CPUTIME_ID), w0=now(CLOCK_MONOTONIC);
  int ep=epoll_create1(0), tfd=timerfd_create(CLOCK_MONOTONIC,0);
  struct epoll_event ev={.events=EPOLLIN}; epoll_ctl(ep,EPOLL_CTL_ADD,tfd,&ev);
  for(int i=0;i<n;i++){
    if(mode==0){struct timespec t={0,us*1000}; nanosleep(&t,0);}
    else if(mode==1){ epoll_wait(ep,&ev,1,(us+999)/1000);} 
    else { struct itimerspec it={{0,0},{0,us*1000}}; timerfd_settime(tfd,0,&it,0); epoll_wait(ep,&ev,1,-1); unsigned long x; read(tfd,&x,8);}
  }
  double c1=now(CLOCK_THREAD_CPUTIME_ID), w1=now(CLOCK_MONOTONIC);
  printf("mode %d sleep %ld us%s: wall/iter %.1f us, cpu/iter %.1f us\n",mode,us,argc>4?" (timer slack set)":"",(w1-w0)/n,(c1-c0)/n);
}
