/*
 * flood: drop UDP datagrams on loopback as fast as this machine can.
 *
 *   flood [-t THREADS] [-d SECONDS] [-p PORT] [-b BATCH] [-s SIZE] [-c COMM] [-a]
 *
 * THREADS threads each send batches of BATCH datagrams with sendmmsg() to
 * 127.0.0.1:PORT for SECONDS seconds, then the total is printed as
 * "sent N seconds S". What drops them is the caller's business:
 *   - an nftables rule on the *input* hook (NETFILTER_DROP; the cheapest path).
 *     A drop on the output hook would fail sendmmsg() with EPERM at the first
 *     datagram, so the input side is the only way to flood through a rule;
 *   - nothing listening on PORT (NO_SOCKET; each drop also builds an ICMP
 *     port-unreachable, because loopback is exempt from the ICMP rate limit).
 * With -a thread i is pinned to CPU i % ncpu, which steadies the numbers.
 * The comm (-c, default "dtbench_flood") is set before the threads start so
 * every thread reports it, which is what lets the harness count only our drops.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_BATCH 1024

static int g_port = 9998, g_batch = 64, g_size = 32, g_pin;
static double g_seconds = 3.0;
static atomic_int g_stop;

struct worker {
	pthread_t tid;
	int index;
	unsigned long long sent;
	unsigned long long errors;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *run(void *arg)
{
	struct worker *w = arg;
	static char payload[65536];
	struct mmsghdr msgs[MAX_BATCH];
	struct iovec iov;
	struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(g_port)};
	int fd;

	if (g_pin) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(w->index % sysconf(_SC_NPROCESSORS_ONLN), &set);
		pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	}
	inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) {
		perror("socket");
		return NULL;
	}
	iov.iov_base = payload;
	iov.iov_len = g_size;
	memset(msgs, 0, sizeof(msgs));
	for (int i = 0; i < g_batch; i++) {
		msgs[i].msg_hdr.msg_name = &dst;
		msgs[i].msg_hdr.msg_namelen = sizeof(dst);
		msgs[i].msg_hdr.msg_iov = &iov;
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
		int n = sendmmsg(fd, msgs, g_batch, 0);
		if (n > 0) {
			w->sent += n;
		} else {
			/* ECONNREFUSED: a previous datagram's ICMP error reached us. */
			w->errors++;
			if (errno != ECONNREFUSED && errno != ENOBUFS && errno != EAGAIN &&
			    w->errors > 1000000) {
				perror("sendmmsg");
				break;
			}
		}
	}
	close(fd);
	return NULL;
}

int main(int argc, char **argv)
{
	int threads = 2, opt;
	const char *comm = "dtbench_flood";

	while ((opt = getopt(argc, argv, "t:d:p:b:s:c:a")) != -1) {
		switch (opt) {
		case 't': threads = atoi(optarg); break;
		case 'd': g_seconds = atof(optarg); break;
		case 'p': g_port = atoi(optarg); break;
		case 'b': g_batch = atoi(optarg); break;
		case 's': g_size = atoi(optarg); break;
		case 'c': comm = optarg; break;
		case 'a': g_pin = 1; break;
		default:
			fprintf(stderr, "usage: %s [-t threads] [-d seconds] [-p port] "
					"[-b batch] [-s size] [-c comm] [-a]\n", argv[0]);
			return 2;
		}
	}
	if (threads < 1 || threads > 256 || g_batch < 1 || g_batch > MAX_BATCH ||
	    g_size < 0 || g_size > 65000) {
		fprintf(stderr, "flood: bad arguments\n");
		return 2;
	}
	prctl(PR_SET_NAME, comm, 0, 0, 0);

	struct worker *ws = calloc(threads, sizeof(*ws));
	double t0 = now();
	for (int i = 0; i < threads; i++) {
		ws[i].index = i;
		pthread_create(&ws[i].tid, NULL, run, &ws[i]);
	}
	struct timespec ts = {(time_t)g_seconds, (long)((g_seconds - (time_t)g_seconds) * 1e9)};
	nanosleep(&ts, NULL);
	atomic_store(&g_stop, 1);
	unsigned long long sent = 0, errors = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join(ws[i].tid, NULL);
		sent += ws[i].sent;
		errors += ws[i].errors;
	}
	double took = now() - t0;
	printf("sent %llu seconds %.6f errors %llu\n", sent, took, errors);
	free(ws);
	return 0;
}
