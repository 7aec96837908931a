// Steps CLOCK_REALTIME back by D µs and, 50 ms later, forward by as much, every 100 ms, for N
// cycles (net drift: the few hundred ns between each read and set). Root only. The fixture for
// the load generator's handling of a time agent that steps the clock (src/loadgen/arrival.rs).
// Usage: stepper D_US CYCLES
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int shift(long long ns)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    long long v = t.tv_sec * 1000000000LL + t.tv_nsec + ns;
    t.tv_sec = v / 1000000000LL;
    t.tv_nsec = v % 1000000000LL;
    if (clock_settime(CLOCK_REALTIME, &t) != 0) {
        perror("clock_settime");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s D_US CYCLES\n", argv[0]);
        return 2;
    }
    long long d = atoll(argv[1]) * 1000;
    int cycles = atoi(argv[2]);
    struct timespec half = {0, 50000000};
    for (int i = 0; i < cycles; i++) {
        if (shift(-d) != 0)
            return 1;
        nanosleep(&half, 0);
        if (shift(d) != 0)
            return 1;
        nanosleep(&half, 0);
    }
    return 0;
}
