/*
 * benchrun - run a command and print what it cost, the same way on the
 * host and inside the test VM (the VM has only busybox, hence a static
 * helper rather than /usr/bin/time).
 *
 * usage: benchrun [--tag TAG] -- COMMAND [ARG]...
 * The command's own output passes through unchanged; when it exits one
 * line is printed on stdout:
 *   RUN tag=TAG wall_ms=... user_ms=... sys_ms=... maxrss_kb=...
 *       minflt=... majflt=... nvcsw=... nivcsw=... status=N
 * status is the exit code, or 128+signal.  benchrun exits with it too.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double ms(struct timeval tv)
{
	return tv.tv_sec * 1e3 + tv.tv_usec / 1e3;
}

int main(int argc, char **argv)
{
	const char *tag = "-";
	struct timespec t0, t1;
	struct rusage ru;
	int i = 1, st, status;
	pid_t pid;

	if (i + 1 < argc && strcmp(argv[i], "--tag") == 0) {
		tag = argv[i + 1];
		i += 2;
	}
	if (i < argc && strcmp(argv[i], "--") == 0)
		i++;
	if (i >= argc) {
		fprintf(stderr, "usage: benchrun [--tag TAG] -- COMMAND...\n");
		return 64;
	}
	fflush(stdout);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid = fork();
	if (pid < 0) {
		perror("benchrun: fork");
		return 71;
	}
	if (pid == 0) {
		execvp(argv[i], argv + i);
		fprintf(stderr, "benchrun: %s: %s\n", argv[i],
			strerror(errno));
		_exit(127);
	}
	while (wait4(pid, &st, 0, &ru) < 0) {
		if (errno != EINTR) {
			perror("benchrun: wait4");
			return 71;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	printf("RUN tag=%s wall_ms=%.3f user_ms=%.3f sys_ms=%.3f "
	       "maxrss_kb=%ld minflt=%ld majflt=%ld nvcsw=%ld nivcsw=%ld "
	       "status=%d\n", tag,
	       (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6,
	       ms(ru.ru_utime), ms(ru.ru_stime), ru.ru_maxrss, ru.ru_minflt,
	       ru.ru_majflt, ru.ru_nvcsw, ru.ru_nivcsw, status);
	fflush(stdout);
	return status;
}
