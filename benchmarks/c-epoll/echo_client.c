// Minimal closed-loop epoll echo client, one thread: CONNS connections each send PAYLOAD bytes,
// wait for the whole echo, and repeat for SECONDS. Prints echoes/s and its own CPU time.
// Usage: echo_client PORT CONNS PAYLOAD SECONDS
#define _GNU_SOURCE
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }

int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: echo_client PORT CONNS PAYLOAD SECONDS\n"); return 2; }
    int port = atoi(argv[1]), conns = atoi(argv[2]), payload = atoi(argv[3]);
    double secs = atof(argv[4]);
    int ep = epoll_create1(0), one = 1;
    int *got = calloc(conns, sizeof(int));
    char *msg = malloc(payload), *buf = malloc(payload);
    memset(msg, 'x', payload);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(0x7f000001)};
    for (int i = 0; i < conns; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&a, sizeof a)) { perror("connect"); return 1; }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = ((unsigned long)i << 32) | (unsigned)fd};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        write(fd, msg, payload);
    }
    long done = 0;
    double start = now(), end = start + secs;
    struct epoll_event evs[256];
    while (now() < end) {
        int n = epoll_wait(ep, evs, 256, 100);
        for (int k = 0; k < n; k++) {
            int fd = (int)(evs[k].data.u64 & 0xffffffff), i = (int)(evs[k].data.u64 >> 32);
            ssize_t r = read(fd, buf, payload - got[i]);
            if (r <= 0) continue;
            got[i] += r;
            if (got[i] == payload) { got[i] = 0; done++; write(fd, msg, payload); }
        }
    }
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    double cpu = u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6;
    printf("%.0f echoes/s, client cpu %.2fs over %.1fs\n", done / (now() - start), cpu, now() - start);
    return 0;
}
