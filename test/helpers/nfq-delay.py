#!/usr/bin/env python3
"""Adds latency to the packets of one netfilter queue (tests only: a stand-in for `tc netem delay`
on kernels without sch_netem).

Run inside a network namespace whose firewall sends packets to queue QUEUE (iptables `-j NFQUEUE
--queue-num QUEUE --queue-bypass`); every packet is held DELAY_MS milliseconds, then accepted in
arrival order. It speaks nfnetlink_queue directly over a netlink socket (no library), asks for
packet metadata only (no payload copies), and prints `ready` once bound. Stops on SIGTERM; the
rule's --queue-bypass lets packets through unchanged once it is gone.

usage: nfq-delay.py QUEUE DELAY_MS
"""
import collections
import os
import select
import signal
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
SOL_NETLINK = 270
NETLINK_NO_ENOBUFS = 5
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_CONFIG, NFQNL_MSG_VERDICT_BATCH = 0, 2, 3
NFQA_CFG_CMD, NFQA_CFG_PARAMS, NFQA_CFG_QUEUE_MAXLEN = 1, 2, 3
NFQA_PACKET_HDR, NFQA_VERDICT_HDR = 1, 2
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_META = 1
NF_ACCEPT = 1
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2


def attr(kind, payload):
    n = 4 + len(payload)
    return struct.pack('=HH', n, kind) + payload + b'\0' * ((4 - n % 4) % 4)


def message(queue, msg, attrs, flags=NLM_F_REQUEST):
    body = struct.pack('=BBH', socket.AF_UNSPEC, 0, socket.htons(queue)) + b''.join(attrs)
    return struct.pack('=IHHII', 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | msg, flags, 0, 0) + body


def configure(sock, queue, attrs):
    sock.send(message(queue, NFQNL_MSG_CONFIG, attrs, NLM_F_REQUEST | NLM_F_ACK))
    data = sock.recv(65536)
    length, kind = struct.unpack_from('=IH', data)
    if kind == NLMSG_ERROR:
        (err,) = struct.unpack_from('=i', data, 16)
        if err:
            raise OSError(-err, f'nfqueue config: {os.strerror(-err)}')


def packet_ids(data):
    """The packet ids of the queue messages in one netlink read."""
    off = 0
    while off + 16 <= len(data):
        length, kind = struct.unpack_from('=IH', data, off)
        if length < 16:
            break
        if kind & 0xFF == NFQNL_MSG_PACKET and kind >> 8 == NFNL_SUBSYS_QUEUE:
            a = off + 20  # nlmsghdr + nfgenmsg
            while a + 4 <= off + length:
                alen, akind = struct.unpack_from('=HH', data, a)
                if alen < 4:
                    break
                if akind & 0x7FFF == NFQA_PACKET_HDR:
                    yield struct.unpack_from('>I', data, a + 4)[0]
                a += (alen + 3) & ~3
        off += (length + 3) & ~3


def main():
    queue, delay = int(sys.argv[1]), float(sys.argv[2]) / 1000.0
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sock.bind((0, 0))
    sock.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE (root)
    sock.setsockopt(SOL_NETLINK, NETLINK_NO_ENOBUFS, 1)
    configure(sock, queue, [attr(NFQA_CFG_CMD, struct.pack('=BBH', NFQNL_CFG_CMD_BIND, 0, socket.htons(socket.AF_INET)))])
    configure(sock, queue, [attr(NFQA_CFG_PARAMS, struct.pack('>IB', 0, NFQNL_COPY_META))])
    configure(sock, queue, [attr(NFQA_CFG_QUEUE_MAXLEN, struct.pack('>I', 1 << 16))])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print('ready', flush=True)
    held = collections.deque()  # (release time, packet id), in arrival order
    while True:
        timeout = max(0.0, held[0][0] - time.monotonic()) if held else None
        ready, _, _ = select.select([sock], [], [], timeout)
        if ready:
            now = time.monotonic()
            for pid in packet_ids(sock.recv(1 << 20)):
                held.append((now + delay, pid))
        now = time.monotonic()
        last = None
        while held and held[0][0] <= now:
            last = held.popleft()[1]
        if last is not None:
            # Accepts every packet of the queue up to `last` (ids rise in arrival order).
            sock.send(message(queue, NFQNL_MSG_VERDICT_BATCH, [attr(NFQA_VERDICT_HDR, struct.pack('>II', NF_ACCEPT, last))]))


if __name__ == '__main__':
    main()
