/* reactwait PROGRAM [TIMEOUT_MS]: runs PROGRAM once (the signal: it must be
 * allowed), then execs it again and again until an exec fails with EPERM (the
 * mitigation in force). Prints the nanoseconds from just before the first exec
 * to the first denied exec; exits 1 on timeout. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

/* 0: ran, 1: EPERM, -1: other failure */
static int run(const char *path) {
	pid_t pid = fork();
	if (pid < 0) return -1;
	if (pid == 0) {
		char *argv[] = { (char *)path, NULL };
		char *envp[] = { NULL };
		execve(path, argv, envp);
		_exit(errno == EPERM ? 100 : 101);
	}
	int st;
	if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st)) return -1;
	if (WEXITSTATUS(st) == 0) return 0;
	return WEXITSTATUS(st) == 100 ? 1 : -1;
}

int main(int argc, char **argv) {
	if (argc < 2) { fprintf(stderr, "usage: reactwait PROGRAM [TIMEOUT_MS]\n"); return 2; }
	double timeout = (argc > 2 ? atof(argv[2]) : 10000) * 1e6;
	double t0 = now();
	if (run(argv[1]) != 0) { fprintf(stderr, "reactwait: the signal exec did not run\n"); return 1; }
	for (;;) {
		int r = run(argv[1]);
		if (r == 1) break;
		if (r < 0) { fprintf(stderr, "reactwait: exec failed otherwise\n"); return 1; }
		if (now() - t0 > timeout) { fprintf(stderr, "reactwait: no mitigation within the timeout\n"); return 1; }
	}
	printf("%.0f\n", now() - t0);
	return 0;
}
