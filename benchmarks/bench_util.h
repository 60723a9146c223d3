/*
 * bench_util.h - small helpers shared by the benchmark programs: a
 * monotonic clock in milliseconds and strict integer option parsing.
 */
#ifndef WBDEV_BENCH_UTIL_H
#define WBDEV_BENCH_UTIL_H

#include <errno.h>
#include <stdlib.h>
#include <time.h>

static inline double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Parse a decimal integer in [lo, hi]; 0 on success, -1 otherwise. */
static inline int parse_int(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *s == '\0' || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

#endif /* WBDEV_BENCH_UTIL_H */
