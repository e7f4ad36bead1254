#include "smsclink.h"
#include "err.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

int smsclink_connect(const settings *s) {
    char port[8];
    snprintf(port, sizeof(port), "%d", s->smpp_port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(s->smpp_host, port, &hints, &res);
    if (rc != 0) {
        err_set("SMSC %s: %s", s->smpp_host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        /* Set before connect, which it also bounds on Linux: a host that drops packets must not block the thread
         * (and a stop) for minutes; nor may a stalled SMSC with a full socket buffer later. */
        struct timeval tv = {s->smpp_response_ms / 1000, (s->smpp_response_ms % 1000) * 1000};
        int nodelay = 1;
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0 ||
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, sizeof(nodelay)) != 0 ||
            connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            err_set("SMSC %s:%s: %s", s->smpp_host, port, strerror(errno));
            if (fd >= 0) close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

int smsclink_write(int fd, const uint8_t *pdu, size_t len) {
    while (len > 0) {
        ssize_t n = send(fd, pdu, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            err_set("SMSC write: %s", n < 0 ? strerror(errno) : "closed");
            return -1;
        }
        pdu += n, len -= (size_t)n;
    }
    return 0;
}
