// The echo server both on-time clients are measured against: one thread, edge-triggered epoll,
// TCP_NODELAY, every byte echoed in order. A write the socket does not take in full keeps the
// rest and stops reading that connection until EPOLLOUT (no spinning on EAGAIN).
// Usage: echo_server PORT   (binds 127.0.0.1:PORT; prints "ready" once listening)
//
// Its own witness of how long requests waited for it: every read's age, from the kernel's receive
// stamp of the bytes (SO_TIMESTAMPNS: when the client's write put them in this socket) to the
// read, which holds the server's wake-up and the requests served before it in the same batch.
// When the last connection of a run closes it prints one line, "run reads=N wait_p50_us=..
// wait_p99_us=.. wait_p999_us=..", over that run's reads (warmup included), and starts again:
// the same figure under every client, taken by the side the clients do not control.
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define MAX_FD 65536
#define BUF 65536

struct pend {
    char *data; // bytes read but not yet written back
    size_t len, off;
};
static struct pend pending[MAX_FD];

// This run's reads' ages, and the connections open.
static struct hist waited;
static int open_conns;

// Reads like read(2) and records the age of what it read (the stamp is CLOCK_REALTIME).
static ssize_t read_stamped(int fd, char *buf, size_t cap) {
    struct iovec iov = {.iov_base = buf, .iov_len = cap};
    uint64_t control[8];
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
    ssize_t r = recvmsg(fd, &msg, 0);
    if (r <= 0) return r;
    uint64_t now = read_clock(CLOCK_REALTIME), at = receive_stamp(&msg);
    if (at) record(&waited, now > at ? now - at : 0);
    return r;
}

static void drop(int ep, int fd) {
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    free(pending[fd].data);
    pending[fd] = (struct pend){0};
    if (--open_conns == 0 && waited.total > 0) {
        printf("run reads=%llu wait_p50_us=%.1f wait_p99_us=%.1f wait_p999_us=%.1f\n", (unsigned long long)waited.total,
               pct_us(&waited, 50), pct_us(&waited, 99), pct_us(&waited, 99.9));
        fflush(stdout);
        memset(&waited, 0, sizeof waited);
    }
}

// Writes what is pending on fd; 1 when all of it went out, 0 when the socket is full, -1 on error.
static int flush(int fd) {
    struct pend *p = &pending[fd];
    while (p->off < p->len) {
        ssize_t w = write(fd, p->data + p->off, p->len - p->off);
        if (w > 0) {
            p->off += (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && errno == EAGAIN) {
            return 0;
        } else {
            return -1;
        }
    }
    p->len = p->off = 0;
    return 1;
}

int main(int argc, char **argv) {
    // A client that leaves with answers outstanding resets its connection: a write then fails
    // with EPIPE (the connection is dropped), not a signal that ends the server.
    signal(SIGPIPE, SIG_IGN);
    int port = argc > 1 ? atoi(argv[1]) : 7000;
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(0x7f000001)};
    if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 4096)) {
        perror("echo_server: bind/listen");
        return 1;
    }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls}, evs[256];
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    printf("ready\n");
    fflush(stdout);
    static char buf[BUF];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        if (n < 0 && errno == EINTR) continue;
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == ls) {
                int c;
                while ((c = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    if (c >= MAX_FD) {
                        close(c);
                        continue;
                    }
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    setsockopt(c, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
                    open_conns++;
                    struct epoll_event ce = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
                }
                continue;
            }
            if (pending[fd].len > 0) {
                int f = flush(fd);
                if (f < 0) {
                    drop(ep, fd);
                    continue;
                }
                if (f == 0) continue; // still full: EPOLLOUT resumes, reading waits
            }
            for (;;) {
                ssize_t r = read_stamped(fd, buf, sizeof buf);
                if (r > 0) {
                    ssize_t off = 0;
                    while (off < r) {
                        ssize_t w = write(fd, buf + off, (size_t)(r - off));
                        if (w > 0) {
                            off += w;
                        } else if (w < 0 && errno == EINTR) {
                            continue;
                        } else {
                            break;
                        }
                    }
                    if (off < r) {
                        if (errno != EAGAIN) {
                            drop(ep, fd);
                            break;
                        }
                        struct pend *p = &pending[fd];
                        p->data = realloc(p->data, (size_t)(r - off));
                        memcpy(p->data, buf + off, (size_t)(r - off));
                        p->len = (size_t)(r - off);
                        p->off = 0;
                        break; // EPOLLOUT (edge) resumes
                    }
                    continue;
                }
                if (r < 0 && errno == EINTR) continue;
                if (r == 0 || errno != EAGAIN) drop(ep, fd);
                break;
            }
        }
    }
}
