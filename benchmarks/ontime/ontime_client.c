// An on-time open-loop echo client: the reference runbench's open model is measured against.
//
// Request k is due at t0 + k/rate and goes to connection k mod CONNECTIONS (round robin). It is
// never sent early: the loop sends everything due, then waits in one epoll_pwait2 until the next
// due send (nanosecond timeout) or an answer, whichever comes first. Latency runs from the
// intended time (not the send) to when the loop read the answer, so the client's own lateness and
// read delay are in it: a client that is late cannot look faster than it is.
//
// A second mode, `sleep`, is the cheaper on-time client: when the next send is due within 1 ms it
// sleeps (clock_nanosleep to the due instant) through arriving answers and reads them after the
// send, timing each by the kernel's receive stamp (SO_TIMESTAMPNS, moved onto the monotonic clock
// by an offset from the tightest of 5 paired clock reads, measured again every 10 ms): one
// wake-up per request instead of two, as runbench's open model does.
//
// Usage: ontime_client PORT CONNECTIONS PAYLOAD RATE WARMUP_S DURATION_S [epoll|sleep]
// Prints one line of key=value: the window's counts, latency and send-lag percentiles (µs), sends
// more than 1 ms late, the process's CPU (getrusage, whole life) per request sent, and the
// window's requests per batch (a pass of the loop that sent: what was due when it looked, and
// what fell due while it sent that): where a wait costs more than the time between sends, a
// client sends in batches of several (runbench's loadgen_sends_per_batch is the same figure).
//
// ONTIME_EXTRA_NS=N adds N ns of busy work (on the clock) after each send: what a client that
// does more per request (bookkeeping, histograms) would cost, to see how the tail answers it.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define RING 8192 // requests in flight per connection at most
#define LATE_NS 1000000ull
#define DRAIN_NS 1000000000ull
#define SEND_BATCH 1024

static uint64_t mono(void) { return read_clock(CLOCK_MONOTONIC); }

// Realtime minus monotonic, from the tightest of 5 pairs (monotonic, realtime, monotonic), and
// when it was measured.
static int64_t real_minus_mono;
static uint64_t offset_at;
static void measure_offset(void) {
    uint64_t best_gap = UINT64_MAX;
    for (int i = 0; i < 5; i++) {
        uint64_t a = mono(), r = read_clock(CLOCK_REALTIME), b = mono();
        if (b - a < best_gap) {
            best_gap = b - a;
            real_minus_mono = (int64_t)r - (int64_t)(a + (b - a) / 2);
            offset_at = b;
        }
    }
}

struct conn {
    int fd;
    uint64_t intended[RING]; // of the requests written or queued, oldest first
    uint32_t head, tail;     // ring of intended times: [head, tail)
    uint32_t written;        // of them, fully written
    size_t write_pos, recv_pos;
};

static struct hist latency, lag;
static uint64_t window_from, window_end;
static uint64_t scheduled, sent, late, answered, mismatched, unanswered;
static size_t payload;
static char *pattern;
static int sleep_mode;
static uint64_t extra_ns, batches;

static void die(const char *what) {
    perror(what);
    exit(1);
}

// Writes the conn's queued requests while the socket takes them.
static void write_more(struct conn *c) {
    while (c->head + c->written != c->tail) {
        ssize_t w = write(c->fd, pattern + c->write_pos, payload - c->write_pos);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) return;
            die("write");
        }
        if (c->write_pos == 0) {
            uint64_t now = mono(), due = c->intended[(c->head + c->written) % RING];
            if (due >= window_from && due < window_end) {
                sent++;
                late += now - due > LATE_NS;
            }
        }
        c->write_pos += (size_t)w;
        if (c->write_pos == payload) {
            c->write_pos = 0;
            c->written++;
        }
    }
}

static void read_more(struct conn *c, char *buf, size_t cap) {
    for (;;) {
        struct iovec iov = {.iov_base = buf, .iov_len = cap};
        uint64_t control[8];
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
        ssize_t r = recvmsg(c->fd, &msg, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) return;
            die("read");
        }
        if (r == 0) {
            fprintf(stderr, "ontime_client: the server closed a connection\n");
            exit(1);
        }
        uint64_t now = mono();
        if (sleep_mode) {
            // The answer arrived at the kernel's stamp, not when this loop got round to it.
            if (now - offset_at > 10000000ull) measure_offset();
            uint64_t stamp = receive_stamp(&msg);
            int64_t at = (int64_t)stamp - real_minus_mono;
            if (stamp && at > 0 && (uint64_t)at < now) now = (uint64_t)at;
        }
        for (ssize_t pos = 0; pos < r;) {
            size_t take = payload - c->recv_pos;
            if (take > (size_t)(r - pos)) take = (size_t)(r - pos);
            if (memcmp(buf + pos, pattern + c->recv_pos, take)) mismatched++;
            c->recv_pos += take;
            pos += (ssize_t)take;
            if (c->recv_pos == payload) {
                c->recv_pos = 0;
                if (c->written == 0) {
                    fprintf(stderr, "ontime_client: an answer to a request not written\n");
                    exit(1);
                }
                uint64_t due = c->intended[c->head % RING];
                c->head++;
                c->written--;
                if (due >= window_from && due < window_end) {
                    answered++;
                    record(&latency, now > due ? now - due : 0);
                }
            }
        }
        if ((size_t)r < cap) return;
    }
}

int main(int argc, char **argv) {
    if (argc != 7 && argc != 8) {
        fprintf(stderr, "usage: %s PORT CONNECTIONS PAYLOAD RATE WARMUP_S DURATION_S [epoll|sleep]\n", argv[0]);
        return 2;
    }
    sleep_mode = argc == 8 && !strcmp(argv[7], "sleep");
    if (argc == 8 && !sleep_mode && strcmp(argv[7], "epoll")) {
        fprintf(stderr, "ontime_client: the mode is epoll or sleep\n");
        return 2;
    }
    measure_offset();
    const char *extra = getenv("ONTIME_EXTRA_NS");
    if (extra) extra_ns = strtoull(extra, NULL, 10);
    signal(SIGPIPE, SIG_IGN); // a write to a reset connection fails with EPIPE instead
    // Timeouts exact to the nanosecond: the default 50 µs timer slack would make every wait late
    // (runbench's generator sets the same).
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    int port = atoi(argv[1]), nconn = atoi(argv[2]);
    payload = (size_t)atol(argv[3]);
    double rate = atof(argv[4]), warmup = atof(argv[5]), duration = atof(argv[6]);
    if (nconn < 1 || payload < 1 || rate <= 0 || duration <= 0) {
        fprintf(stderr, "ontime_client: connections, payload, rate and duration must be positive\n");
        return 2;
    }
    pattern = malloc(payload);
    for (size_t i = 0; i < payload; i++) pattern[i] = (char)(i * 131 + 7);
    struct conn *conns = calloc((size_t)nconn, sizeof *conns);
    int ep = epoll_create1(0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(0x7f000001)};
    for (int i = 0; i < nconn; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) die("socket");
        if (connect(fd, (struct sockaddr *)&a, sizeof a)) die("connect");
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (sleep_mode && setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one)) die("SO_TIMESTAMPNS");
        if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)) die("fcntl");
        conns[i].fd = fd;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.u32 = (uint32_t)i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)) die("epoll_ctl");
    }
    uint64_t total = (uint64_t)(rate * (warmup + duration));
    uint64_t t0 = mono() + 10000000ull; // 10 ms from now
    window_from = t0 + (uint64_t)(warmup * 1e9);
    window_end = window_from + (uint64_t)(duration * 1e9);
    uint64_t drain_end = t0 + (uint64_t)((warmup + duration) * 1e9) + DRAIN_NS;
    double ns_per = 1e9 / rate;
    struct epoll_event evs[256];
    static char buf[65536];
    uint64_t k = 0, outstanding = 0;
    for (;;) {
        uint64_t now = mono();
        uint64_t due;
        // At most SEND_BATCH sends between two looks at the sockets: a client that fell behind
        // still reads its answers.
        int batch = 0, of_window = 0;
        while (batch < SEND_BATCH && k < total && (due = t0 + (uint64_t)((double)k * ns_per)) <= now) {
            batch++;
            struct conn *c = &conns[k % (uint64_t)nconn];
            if (c->tail - c->head == RING) {
                fprintf(stderr, "ontime_client: %d requests in flight on one connection\n", RING);
                return 1;
            }
            int idle = c->head + c->written == c->tail;
            c->intended[c->tail % RING] = due;
            c->tail++;
            if (due >= window_from && due < window_end) {
                scheduled++;
                of_window = 1;
                record(&lag, now - due);
            }
            if (idle) write_more(c);
            if (extra_ns) {
                uint64_t until = mono() + extra_ns;
                while (mono() < until) {
                }
            }
            k++;
            now = mono();
        }
        batches += (uint64_t)of_window;
        outstanding = 0;
        if (k >= total) {
            for (int i = 0; i < nconn; i++) outstanding += conns[i].tail - conns[i].head;
            if (outstanding == 0 || now >= drain_end) break;
        }
        uint64_t wake = k < total ? t0 + (uint64_t)((double)k * ns_per) : drain_end;
        uint64_t left = wake > now ? wake - now : 0;
        if (sleep_mode && k < total && left > 0 && left <= 1000000ull) {
            // Sleep through answers to the send (they are stamped on arrival), then take them.
            struct timespec at = {.tv_sec = (time_t)(wake / 1000000000ull), .tv_nsec = (long)(wake % 1000000000ull)};
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL) == EINTR) {
            }
            left = 0;
        }
        struct timespec ts = {.tv_sec = (time_t)(left / 1000000000ull), .tv_nsec = (long)(left % 1000000000ull)};
        int n = (int)syscall(SYS_epoll_pwait2, ep, evs, 256, &ts, NULL, (size_t)8);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_pwait2");
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = &conns[evs[i].data.u32];
            if (evs[i].events & EPOLLOUT) write_more(c);
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) read_more(c, buf, sizeof buf);
        }
    }
    for (int i = 0; i < nconn; i++) {
        struct conn *c = &conns[i];
        for (uint32_t j = c->head; j != c->tail; j++) {
            uint64_t due = c->intended[j % RING];
            if (due >= window_from && due < window_end) {
                unanswered++;
                record(&latency, drain_end - due);
            }
        }
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
                 (double)ru.ru_stime.tv_usec / 1e6;
    printf("mode=%s rate=%.0f scheduled=%llu sent=%llu answered=%llu unanswered=%llu mismatched=%llu late_1ms=%llu "
           "p0_us=%.1f p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f "
           "lag_p50_us=%.1f lag_p99_us=%.1f lag_p999_us=%.1f lag_max_us=%.1f "
           "cpu_s=%.3f sent_total=%llu cpu_us_per_request=%.2f batches=%llu per_batch=%.2f extra_ns=%llu\n",
           sleep_mode ? "sleep" : "epoll", rate, (unsigned long long)scheduled, (unsigned long long)sent, (unsigned long long)answered,
           (unsigned long long)unanswered, (unsigned long long)mismatched, (unsigned long long)late,
           pct_us(&latency, 0), pct_us(&latency, 50), pct_us(&latency, 99), pct_us(&latency, 99.9),
           pct_us(&latency, 100), pct_us(&lag, 50), pct_us(&lag, 99), pct_us(&lag, 99.9), pct_us(&lag, 100), cpu,
           (unsigned long long)k, cpu * 1e6 / (double)(k ? k : 1), (unsigned long long)batches,
           (double)scheduled / (double)(batches ? batches : 1), (unsigned long long)extra_ns);
    return 0;
}
