// A competing process that takes one CPU in bursts: pinned to CPU, at real-time priority 2 (above
// a generator run at priority 1), it busy-spins BURST_US of every PERIOD_US for SECONDS.
// Usage: hog CPU BURST_US PERIOD_US SECONDS   (root or CAP_SYS_NICE)
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long long now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s CPU BURST_US PERIOD_US SECONDS\n", argv[0]);
        return 2;
    }
    int cpu = atoi(argv[1]);
    long long burst = atoll(argv[2]) * 1000, period = atoll(argv[3]) * 1000;
    long long end = now() + atoll(argv[4]) * 1000000000LL;
    if (burst <= 0 || period <= burst) {
        fprintf(stderr, "hog: 0 < BURST_US < PERIOD_US\n");
        return 2;
    }
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    struct sched_param p = {.sched_priority = 2};
    if (sched_setaffinity(0, sizeof set, &set) || sched_setscheduler(0, SCHED_FIFO, &p)) {
        perror("hog: pin to the CPU at real-time priority 2");
        return 1;
    }
    while (now() < end) {
        long long until = now() + burst;
        while (now() < until) {
        }
        struct timespec rest = {.tv_sec = (period - burst) / 1000000000LL, .tv_nsec = (period - burst) % 1000000000LL};
        nanosleep(&rest, NULL);
    }
    return 0;
}
