/*
 * The C half of bench/net_echo.py, two programs in one binary:
 *
 *   _echo_c PORT SIZE CONNS WARMUP DURATION SERVER_PID DEADLINE
 *       the plain-TCP ping-pong load, in C so that the client is not the
 *       bottleneck (the Python/uvloop client in _echo_client.py costs about as
 *       much CPU per message as the fastest servers it measures);
 *   _echo_c serve
 *       a minimal epoll echo server: the kernel's floor, against which the
 *       Python servers' own cost per message is read.
 *
 * Client: every connection (to 127.0.0.1 only) sends SIZE bytes, waits for
 * the whole echo, repeats. After WARMUP seconds the completed round trips are
 * counted for DURATION seconds together with this process's and the server's
 * CPU time (from /proc); then the echoes in flight are let back in and the
 * connections closed. Prints one JSON object like _echo_client.py's. The run
 * is bounded by DEADLINE seconds overall.
 *
 * Server: listens on 127.0.0.1 (port from the OS), prints "PORT n", echoes
 * until its standard input reaches end of file, like _echo_servers.py.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
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

struct conn {
    int fd;
    size_t got;
    long count;
    int checked;
};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double self_cpu(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static double proc_cpu(int pid) {
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p) return -1;
    unsigned long utime = 0, stime = 0;
    /* after ") " come: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2) return -1;
    return (double)(utime + stime) / sysconf(_SC_CLK_TCK);
}

static void fail(const char *what) {
    printf("{\"errors\": [\"%s: %s\"]}\n", what, strerror(errno));
    exit(2);
}

static int send_all(int fd, const char *msg, size_t size) {
    size_t off = 0;
    while (off < size) {
        ssize_t n = send(fd, msg + off, size - off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                /* ping-pong never fills a socket buffer; spin briefly if it does */
                continue;
            }
            return -1;
        }
        off += (size_t)n;
    }
    return 0;
}

static int serve(void) {
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (lfd < 0) fail("socket");
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0) fail("bind");
    if (listen(lfd, 4096) < 0) fail("listen");
    if (getsockname(lfd, (struct sockaddr *)&addr, &len) < 0) fail("getsockname");
    int ep = epoll_create1(0);
    if (ep < 0) fail("epoll_create1");
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    ev.data.fd = 0; /* standard input: end of file stops the server */
    epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);
    printf("PORT %d\n", ntohs(addr.sin_port));
    fflush(stdout);
    static char buf[65536];
    struct epoll_event events[256];
    for (;;) {
        int n = epoll_wait(ep, events, 256, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            fail("epoll_wait");
        }
        for (int k = 0; k < n; k++) {
            int fd = events[k].data.fd;
            if (fd == 0) {
                ssize_t r = read(0, buf, sizeof buf);
                if (r <= 0) return 0;
                continue;
            }
            if (fd == lfd) {
                for (int a = 0; a < 128; a++) {
                    int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
                    if (c < 0) break;
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
                }
                continue;
            }
            ssize_t r = recv(fd, buf, sizeof buf, 0);
            if (r <= 0) {
                if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
                close(fd); /* also leaves the epoll set */
                continue;
            }
            /* ping-pong never fills the send buffer; a blocking-style loop keeps this minimal */
            for (ssize_t off = 0; off < r;) {
                ssize_t w = send(fd, buf + off, (size_t)(r - off), MSG_NOSIGNAL);
                if (w < 0) {
                    if (errno == EAGAIN || errno == EINTR) continue;
                    break;
                }
                off += w;
            }
        }
    }
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "serve") == 0) return serve();
    if (argc != 8) {
        fprintf(stderr, "usage: %s PORT SIZE CONNS WARMUP DURATION SERVER_PID DEADLINE | %s serve\n", argv[0],
                argv[0]);
        return 64;
    }
    int port = atoi(argv[1]);
    size_t size = (size_t)atol(argv[2]);
    int nconns = atoi(argv[3]);
    double warmup = atof(argv[4]), duration = atof(argv[5]);
    int server_pid = atoi(argv[6]);
    double deadline = now() + atof(argv[7]);
    if (size < 1 || size > (1 << 24) || nconns < 1 || nconns > 10000) {
        fprintf(stderr, "bad arguments\n");
        return 64;
    }
    char *msg = malloc(size), *buf = malloc(size + 65536), *first = malloc(size);
    for (size_t i = 0; i < size; i++) msg[i] = "0123456789abcdef"[i % 16];
    struct conn *conns = calloc((size_t)nconns, sizeof *conns);
    int ep = epoll_create1(0);
    if (ep < 0) fail("epoll_create1");
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < nconns; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) fail("socket");
        if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) fail("connect");
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        /* blocking sends (they never block in ping-pong), non-blocking receives */
        conns[i].fd = fd;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) fail("epoll_ctl");
    }
    for (int i = 0; i < nconns; i++)
        if (send_all(conns[i].fd, msg, size) < 0) fail("send");

    struct epoll_event events[1024];
    double start = now(), t0 = 0, t1 = 0, c0 = 0, c1 = 0, s0 = 0, s1 = 0;
    long n0 = 0, n1 = 0, total = 0;
    int phase = 0; /* 0 warm-up, 1 counting, 2 draining (no new sends) */
    int in_flight = nconns;
    double drain_deadline = 0;
    char errors[512] = "";
    for (;;) {
        double t = now();
        if (t > deadline) {
            snprintf(errors, sizeof errors, "client deadline exceeded");
            break;
        }
        if (phase == 0 && t - start >= warmup) {
            phase = 1;
            t0 = t, n0 = total, c0 = self_cpu(), s0 = server_pid ? proc_cpu(server_pid) : 0;
        } else if (phase == 1 && t - t0 >= duration) {
            t1 = t, n1 = total, c1 = self_cpu(), s1 = server_pid ? proc_cpu(server_pid) : 0;
            /* Let the echoes in flight come back, so that no unread data turns our close into a reset. */
            phase = 2;
            drain_deadline = t + 2.0;
        }
        if (phase == 2 && (in_flight == 0 || t > drain_deadline)) break;
        int n = epoll_wait(ep, events, 1024, 100);
        if (n < 0) {
            if (errno == EINTR) continue;
            fail("epoll_wait");
        }
        for (int k = 0; k < n; k++) {
            struct conn *c = &conns[events[k].data.u32];
            ssize_t r = recv(c->fd, buf, size + 65536, MSG_DONTWAIT);
            if (r < 0) {
                if (errno == EAGAIN || errno == EINTR) continue;
                snprintf(errors, sizeof errors, "recv: %s", strerror(errno));
                goto done;
            }
            if (r == 0) {
                snprintf(errors, sizeof errors, "server closed a connection during the run");
                goto done;
            }
            if (!c->checked) memcpy(first + c->got, buf, (size_t)r < size - c->got ? (size_t)r : size - c->got);
            c->got += (size_t)r;
            if (c->got < size) continue;
            if (c->got > size) {
                snprintf(errors, sizeof errors, "echo overran the message");
                goto done;
            }
            if (!c->checked) {
                if (memcmp(first, msg, size) != 0) {
                    snprintf(errors, sizeof errors, "echo differs from the message");
                    goto done;
                }
                c->checked = 1;
            }
            c->got = 0;
            c->count++;
            total++;
            if (phase == 2) {
                in_flight--;
                continue;
            }
            if (send_all(c->fd, msg, size) < 0) {
                snprintf(errors, sizeof errors, "send: %s", strerror(errno));
                goto done;
            }
        }
    }
done:
    for (int i = 0; i < nconns; i++) close(conns[i].fd);
    if (errors[0]) {
        printf("{\"errors\": [\"%s\"]}\n", errors);
        return 2;
    }
    double seconds = t1 - t0;
    long messages = n1 - n0;
    if (messages <= 0) {
        printf("{\"errors\": [\"no echo came back during the run\"]}\n");
        return 2;
    }
    printf("{\"messages\": %ld, \"total\": %ld, \"seconds\": %.6f, \"rate\": %.3f, \"client_cpu\": %.4f, "
           "\"errors\": []", messages, total, seconds, messages / seconds, (c1 - c0) / seconds);
    if (server_pid)
        printf(", \"server_cpu\": %.4f, \"server_us_per_msg\": %.4f", (s1 - s0) / seconds,
               (s1 - s0) / (messages > 0 ? messages : 1) * 1e6);
    printf("}\n");
    return 0;
}
