// SPDX-License-Identifier: GPL-2.0
/* getppidloop N [RATE]: getppid() N times, through syscall(2) so that no C
 * library can cache it; at most RATE calls a second if RATE is given (by
 * spinning on the clock every 64 calls, so that the offered load is the
 * same whatever the transport costs the caller). Prints the mean
 * nanoseconds per call on stdout. The load of `krsi bench pipeline`'s
 * ring/perf comparison: bench/bpf/ringperf.bpf.c sends a record for each
 * call made by a child of the bench. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(int argc, char **argv) {
	if (argc != 2 && argc != 3) { fprintf(stderr, "usage: getppidloop N [RATE]\n"); return 2; }
	long n = atol(argv[1]);
	double rate = argc == 3 ? atof(argv[2]) : 0;
	double start = now_ns();
	for (long i = 0; i < n; i++) {
		if (rate > 0 && (i & 63) == 0)
			while (now_ns() - start < i * 1e9 / rate)
				;
		syscall(SYS_getppid);
	}
	printf("%.0f\n", (now_ns() - start) / n);
	return 0;
}
