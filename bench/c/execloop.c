/* execloop N PROGRAM: fork, execve PROGRAM, wait, N times; prints the mean
 * nanoseconds per fork+exec+wait on stdout. The environment is passed on, so
 * that LD_PRELOAD set by the caller reaches the exec'd program's execve. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv) {
	if (argc < 3) { fprintf(stderr, "usage: execloop N PROGRAM [ARGS...]\n"); return 2; }
	long n = atol(argv[1]);
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid < 0) { perror("fork"); return 1; }
		if (pid == 0) { execve(argv[2], argv + 2, environ); _exit(127); }
		int st;
		if (waitpid(pid, &st, 0) < 0) { perror("waitpid"); return 1; }
		if (!WIFEXITED(st) || (WEXITSTATUS(st) != 0 && WEXITSTATUS(st) != 126)) {
			fprintf(stderr, "execloop: child status %d\n", st);
			return 1;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
	printf("%.0f\n", ns / n);
	return 0;
}
