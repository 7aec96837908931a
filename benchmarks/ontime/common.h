// What the on-time client and its echo server share: a clock read, the kernel's receive stamp
// of a read, and the histogram.
#pragma once
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static uint64_t read_clock(clockid_t id) {
    struct timespec t;
    clock_gettime(id, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

// The SO_TIMESTAMPNS stamp (CLOCK_REALTIME, ns) a recvmsg put in `msg`'s control data, or 0.
static uint64_t receive_stamp(struct msghdr *msg) {
    for (struct cmsghdr *m = CMSG_FIRSTHDR(msg); m; m = CMSG_NXTHDR(msg, m)) {
        if (m->cmsg_level == SOL_SOCKET && m->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec ts;
            memcpy(&ts, CMSG_DATA(m), sizeof ts);
            return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
        }
    }
    return 0;
}

// Log-bucketed histogram of nanoseconds: exact below 64, then 64 buckets per power of two
// (within 1.6%). A value reads back as its bucket's highest value, like HdrHistogram.
#define SUB 64
#define BUCKETS (SUB + 58 * SUB)
struct hist {
    uint64_t n[BUCKETS];
    uint64_t total;
};
static int bucket(uint64_t v) {
    if (v < SUB) return (int)v;
    int e = 63 - __builtin_clzll(v); // >= 6
    uint64_t m = v >> (e - 6);       // 64..127
    return SUB + (e - 6) * SUB + (int)(m - SUB);
}
static uint64_t bucket_top(int i) {
    if (i < SUB) return (uint64_t)i;
    int e = (i - SUB) / SUB + 6;
    uint64_t m = (uint64_t)((i - SUB) % SUB + SUB);
    return ((m + 1) << (e - 6)) - 1;
}
static void record(struct hist *h, uint64_t v) {
    h->n[bucket(v)]++;
    h->total++;
}
static double pct_us(const struct hist *h, double p) {
    if (h->total == 0) return 0;
    uint64_t want = (uint64_t)(p / 100.0 * (double)h->total + 0.999999);
    if (want == 0) want = 1;
    uint64_t seen = 0;
    for (int i = 0; i < BUCKETS; i++) {
        seen += h->n[i];
        if (seen >= want) return (double)bucket_top(i) / 1000.0;
    }
    return 0;
}
