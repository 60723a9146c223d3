/*
 * kmod-util.h - helpers shared by the wbdev module tests (tests/kmod).
 * Static binaries run in the qemu guest with the module loaded.
 */
#ifndef KMOD_UTIL_H
#define KMOD_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/wbdev.h>

#define PAGE 4096UL

static const char *test_name = "?";

#define CHECK(cond, ...)						\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "FAIL %s:%d [%s] %s: ",		\
				__FILE__, __LINE__, test_name, #cond);	\
			fprintf(stderr, __VA_ARGS__);			\
			fprintf(stderr, " (errno %d %s)\n", errno,	\
				strerror(errno));			\
			exit(1);					\
		}							\
	} while (0)

/* A system call that must fail with errno e. */
#define CHECK_ERRNO(call, e)						\
	do {								\
		errno = 0;						\
		long r_ = (long)(call);					\
		CHECK(r_ == -1 && errno == (e), "%s returned %ld, "	\
		      "want errno %d", #call, r_, (e));			\
	} while (0)

static inline int dev_open(void)
{
	int fd = open("/dev/wbdev", O_RDWR | O_CLOEXEC);

	CHECK(fd >= 0, "open /dev/wbdev");
	return fd;
}

static inline char *dev_map(int fd, size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	CHECK(p != MAP_FAILED, "mmap %zu", len);
	return p;
}

/* Protect the pages holding n addresses with write(2); returns entries. */
static inline long dev_protect_list(int fd, const uint64_t *a, size_t n)
{
	ssize_t r = write(fd, a, n * sizeof(*a));

	return r < 0 ? -errno : r / (ssize_t)sizeof(*a);
}

static inline void dev_protect_range(int fd, void *p, size_t len)
{
	struct wbdev_range r = { (uintptr_t)p, len };

	CHECK(ioctl(fd, WBDEV_IOC_PROTECT, &r) == 0, "protect %p+%zu", p, len);
}

/* WBDEV_IOC_UNPROTECT of a range; returns 0 or -errno. */
static inline int dev_unprotect(int fd, const void *p, size_t len)
{
	struct wbdev_range r = { (uintptr_t)p, len };

	return ioctl(fd, WBDEV_IOC_UNPROTECT, &r) ? -errno : 0;
}

/* Read the whole log (read(2), no re-protection) into out; returns n. */
static inline size_t dev_read_all(int fd, uint64_t *out, size_t max)
{
	size_t n = 0;

	for (;;) {
		ssize_t r = read(fd, out + n, (max - n) * sizeof(*out));

		CHECK(r >= 0 && r % 8 == 0, "read log");
		if (r == 0)
			break;
		n += r / 8;
		if (n == max)
			break;
	}
	return n;
}

/* Collect with the ioctl over all memory; returns n. */
static inline size_t dev_collect(int fd, uint64_t *out, size_t max,
				 unsigned int flags)
{
	struct wbdev_collect_arg a = { 0 };
	size_t n = 0;

	do {
		a.buf = (uintptr_t)(out + n);
		a.max = max - n;
		a.flags = flags;
		CHECK(ioctl(fd, WBDEV_IOC_COLLECT, &a) == 0, "collect");
		n += a.count;
		a.start = a.next;
	} while (a.next && n < max);
	return n;
}

static inline double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static inline int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

#endif /* KMOD_UTIL_H */
