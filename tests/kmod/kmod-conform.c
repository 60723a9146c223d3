/*
 * kmod-conform.c - conformance and bad-input tests of /dev/wbdev.
 * Usage: kmod-conform [TEST...]   (no argument: all tests)
 * Each test asserts exact results and errnos; the VM harness additionally
 * fails the run on any kernel oops or WARNING.
 */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "kmod-util.h"

static uint64_t logbuf[1 << 16];
/* an address that is never mapped (the compiler must not know) */
static void *volatile bad_ptr = (void *)8;

/* mmap gives fresh zero memory; MAP_PRIVATE and offsets are refused. */
static void t_mmap(void)
{
	int fd = dev_open();
	char *a = dev_map(fd, 16 * PAGE), *b = dev_map(fd, 16 * PAGE);

	for (size_t i = 0; i < 16 * PAGE; i += 512)
		CHECK(a[i] == 0 && b[i] == 0, "zero at %zu", i);
	a[0] = 1;
	CHECK(b[0] == 0, "two mmaps share memory");
	CHECK_ERRNO(mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd,
			 0), EINVAL);
	CHECK_ERRNO(mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			 PAGE), EINVAL);
	int fd2 = dev_open();
	char *c = dev_map(fd2, PAGE);

	CHECK(c[0] == 0, "other context sees memory");
	munmap(a, 16 * PAGE);
	munmap(b, 16 * PAGE);
	munmap(c, PAGE);
	close(fd);
	close(fd2);
}

/* Writes are logged once; read returns ascending page addresses. */
static void t_log_basic(void)
{
	int fd = dev_open();
	char *a = dev_map(fd, 32 * PAGE);
	uint64_t one;

	CHECK(read(fd, logbuf, sizeof(logbuf)) == 0, "fresh log not empty");
	a[5 * PAGE + 7] = 1;
	a[2 * PAGE] = 1;
	a[2 * PAGE + 100] = 2;
	size_t n = dev_read_all(fd, logbuf, 1 << 16);

	CHECK(n == 2, "n=%zu", n);
	CHECK(logbuf[0] == (uintptr_t)a + 2 * PAGE &&
	      logbuf[1] == (uintptr_t)a + 5 * PAGE, "addresses");
	CHECK(read(fd, logbuf, sizeof(logbuf)) == 0, "log not consumed");
	/* pages stay writable after read(2): further writes not recorded */
	a[2 * PAGE] = 3;
	CHECK(read(fd, &one, 8) == 0, "write to unprotected page recorded");
	/* protect with write(2): an unaligned pointer names its page */
	uint64_t p = (uintptr_t)a + 2 * PAGE + 123;

	CHECK(write(fd, &p, 8) == 8, "protect");
	CHECK(a[2 * PAGE] == 3, "data kept");
	CHECK(read(fd, &one, 8) == 0, "protect logged something");
	a[2 * PAGE + 1] = 4;
	CHECK(read(fd, &one, 8) == 8 && one == (uintptr_t)a + 2 * PAGE,
	      "protected write not logged");
	close(fd);
	munmap(a, 32 * PAGE);
}

/* A short buffer returns a prefix; the rest comes later; nothing lost. */
static void t_short_read(void)
{
	int fd = dev_open();
	char *a = dev_map(fd, 64 * PAGE);
	uint64_t got[64], one;
	size_t n = 0;

	for (int i = 0; i < 64; i += 3)
		a[i * PAGE] = 1;
	while (read(fd, &one, 8) == 8)
		got[n++] = one;
	CHECK(n == 22, "n=%zu", n);
	for (size_t i = 0; i < n; i++)
		CHECK(got[i] == (uintptr_t)a + i * 3 * PAGE, "entry %zu", i);
	CHECK_ERRNO(read(fd, &one, 4), EINVAL);
	CHECK_ERRNO(read(fd, logbuf, 12), EINVAL);
	munmap(a, 64 * PAGE);
	close(fd);
}

static int pipe_fill(int *pfd, size_t len, char v)
{
	char buf[PAGE];

	memset(buf, v, sizeof(buf));
	CHECK(pipe(pfd) == 0, "pipe");
	CHECK(write(pfd[1], buf, len) == (ssize_t)len, "pipe write");
	return pfd[0];
}

/* Writes made by the kernel for the process (read(2)) are recorded. */
static void t_kernel_write(void)
{
	int fd = dev_open(), pfd[2];
	char *a = dev_map(fd, 8 * PAGE);
	uint64_t one;

	a[3 * PAGE] = 1;
	dev_protect_range(fd, a, 8 * PAGE);
	CHECK(dev_read_all(fd, logbuf, 16) == 1, "first write");
	dev_protect_range(fd, a, 8 * PAGE);
	pipe_fill(pfd, 100, 'k');
	CHECK(read(pfd[0], a + 3 * PAGE + 10, 100) == 100, "read into page");
	CHECK(a[3 * PAGE + 10] == 'k' && a[3 * PAGE + 109] == 'k', "data");
	CHECK(read(fd, &one, 8) == 8 && one == (uintptr_t)a + 3 * PAGE,
	      "kernel write not recorded");
	/* and into a page that was never touched */
	write(pfd[1], "zz", 2);
	CHECK(read(pfd[0], a + 6 * PAGE, 2) == 2, "read into fresh page");
	CHECK(read(fd, &one, 8) == 8 && one == (uintptr_t)a + 6 * PAGE,
	      "kernel write to fresh page not recorded");
	close(pfd[0]);
	close(pfd[1]);
	munmap(a, 8 * PAGE);
	close(fd);
}

/* COLLECT: ranges, short buffers with resume, re-protection. */
static void t_collect(void)
{
	int fd = dev_open();
	char *a = dev_map(fd, 100 * PAGE);
	struct wbdev_collect_arg c = { 0 };
	uint64_t buf[8];

	for (int i = 0; i < 100; i += 2)
		a[i * PAGE] = 1;
	/* range [10, 30) pages, 8 at a time, re-protecting */
	c.start = (uintptr_t)a + 10 * PAGE;
	c.len = 20 * PAGE;
	c.buf = (uintptr_t)buf;
	c.max = 8;
	c.flags = WBDEV_IOC_COLLECT_REPROTECT;
	CHECK(ioctl(fd, WBDEV_IOC_COLLECT, &c) == 0, "collect");
	CHECK(c.count == 8 && c.next == (uintptr_t)a + 26 * PAGE,
	      "count %llu next %llx", (unsigned long long)c.count,
	      (unsigned long long)c.next);
	for (int i = 0; i < 8; i++)
		CHECK(buf[i] == (uintptr_t)a + (10 + 2 * i) * PAGE, "e%d", i);
	c.start = c.next;
	c.len = (uintptr_t)a + 30 * PAGE - c.start;
	CHECK(ioctl(fd, WBDEV_IOC_COLLECT, &c) == 0, "collect 2");
	CHECK(c.count == 2 && c.next == 0, "count %llu",
	      (unsigned long long)c.count);
	/* re-protected: a new write is recorded */
	a[12 * PAGE] = 2;
	/* the rest: 50 - 10 = 40 outside the range, plus page 12 */
	size_t n = dev_collect(fd, logbuf, 1 << 16, 0);

	CHECK(n == 41, "n=%zu", n);
	for (size_t i = 1; i < n; i++)
		CHECK(logbuf[i] > logbuf[i - 1], "ascending");
	/* bad arguments */
	c.flags = 0x80;
	CHECK_ERRNO(ioctl(fd, WBDEV_IOC_COLLECT, &c), EINVAL);
	c.flags = 0;
	c.pad = 1;
	CHECK_ERRNO(ioctl(fd, WBDEV_IOC_COLLECT, &c), EINVAL);
	CHECK_ERRNO(ioctl(fd, WBDEV_IOC_COLLECT, (void *)8), EFAULT);
	CHECK_ERRNO(ioctl(fd, _IO(WBDEV_IOC_MAGIC, 99)), ENOTTY);
	munmap(a, 100 * PAGE);
	close(fd);
}

static void t_poll_info(void)
{
	int fd = dev_open();
	char *a = dev_map(fd, 4 * PAGE);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	struct wbdev_info info;

	CHECK(poll(&p, 1, 0) == 0, "readable when empty");
	a[PAGE] = 1;
	CHECK(poll(&p, 1, 0) == 1 && (p.revents & POLLIN), "not readable");
	CHECK(ioctl(fd, WBDEV_IOC_INFO, &info) == 0, "info");
	CHECK(info.version == WBDEV_VERSION && info.mappings == 1 &&
	      info.mapped_pages == 4 && info.dirty_pages == 1 &&
	      (info.features & WBDEV_FEAT_KERNEL_WRITES), "info fields");
	dev_read_all(fd, logbuf, 16);
	CHECK(poll(&p, 1, 0) == 0, "readable after read");
	CHECK_ERRNO(ioctl(fd, WBDEV_IOC_INFO, NULL), EFAULT);
	munmap(a, 4 * PAGE);
	close(fd);
}

/* MADV_REMOVE and WBDEV_IOC_DISCARD free memory that reads back zero. */
static void t_discard(void)
{
	int fd = dev_open();
	char *a = dev_map(fd, 8 * PAGE);
	struct wbdev_range r = { (uintptr_t)a + 2 * PAGE, 2 * PAGE };

	memset(a, 0x5a, 8 * PAGE);
	CHECK(madvise(a, 2 * PAGE, MADV_REMOVE) == 0, "MADV_REMOVE");
	CHECK(ioctl(fd, WBDEV_IOC_DISCARD, &r) == 0, "DISCARD");
	for (size_t i = 0; i < 8 * PAGE; i += 64)
		CHECK(a[i] == (i < 4 * PAGE ? 0 : 0x5a), "byte %zu", i);
	/* pages written before the discard are still reported */
	CHECK(dev_read_all(fd, logbuf, 64) == 8, "log after discard");
	/* a write to a discarded page is recorded (no writable PTE left) */
	a[PAGE] = 1;
	CHECK(dev_read_all(fd, logbuf, 64) == 1 &&
	      logbuf[0] == (uintptr_t)a + PAGE, "write after discard");
	r.start++;
	CHECK_ERRNO(ioctl(fd, WBDEV_IOC_DISCARD, &r), EINVAL);
	r.start = (uintptr_t)a + 6 * PAGE;
	r.len = 4 * PAGE;
	CHECK_ERRNO(ioctl(fd, WBDEV_IOC_DISCARD, &r), EFAULT);
	munmap(a, 8 * PAGE);
	close(fd);
}

/* Partial munmap, mprotect splits, mremap refusals. */
static void t_vma_ops(void)
{
	int fd = dev_open();
	char *a = dev_map(fd, 16 * PAGE);

	memset(a, 1, 16 * PAGE);
	CHECK(munmap(a + 4 * PAGE, 4 * PAGE) == 0, "partial munmap");
	size_t n = dev_read_all(fd, logbuf, 64);

	CHECK(n == 12, "log after partial munmap n=%zu", n);
	for (size_t i = 0; i < n; i++)
		CHECK(logbuf[i] < (uintptr_t)a + 4 * PAGE ||
		      logbuf[i] >= (uintptr_t)a + 8 * PAGE, "unmapped logged");
	dev_protect_range(fd, a, 4 * PAGE);
	dev_protect_range(fd, a + 8 * PAGE, 8 * PAGE);
	struct wbdev_range r = { (uintptr_t)a, 16 * PAGE };

	CHECK_ERRNO(ioctl(fd, WBDEV_IOC_PROTECT, &r), EFAULT);
	CHECK(mprotect(a + 9 * PAGE, PAGE, PROT_READ) == 0, "mprotect");
	CHECK(mprotect(a + 9 * PAGE, PAGE, PROT_READ | PROT_WRITE) == 0,
	      "mprotect back");
	a[9 * PAGE] = 2;
	a[PAGE] = 2;
	CHECK(dev_read_all(fd, logbuf, 64) == 2, "after mprotect split");
	munmap(a, 16 * PAGE);
	/* moving and growing are refused, shrinking works */
	a = dev_map(fd, 8 * PAGE);
	a[PAGE] = 2;
	CHECK_ERRNO(mremap(a, 8 * PAGE, 8 * PAGE,
			   MREMAP_MAYMOVE | MREMAP_FIXED, a + 64 * PAGE),
		    EINVAL);
	CHECK(a[PAGE] == 2, "data after refused mremap");
	CHECK_ERRNO(mremap(a, 8 * PAGE, 10 * PAGE, 0), EFAULT);
	CHECK_ERRNO(mremap(a, 8 * PAGE, 10 * PAGE, MREMAP_MAYMOVE), EFAULT);
	CHECK(mremap(a, 8 * PAGE, 4 * PAGE, 0) == a, "shrink");
	CHECK(a[PAGE] == 2, "data after shrink");
	dev_read_all(fd, logbuf, 64);
	dev_protect_range(fd, a, 4 * PAGE);
	a[3 * PAGE] = 3;
	CHECK(dev_read_all(fd, logbuf, 64) == 1 &&
	      logbuf[0] == (uintptr_t)a + 3 * PAGE, "after shrink");
	struct wbdev_info info;

	CHECK(ioctl(fd, WBDEV_IOC_INFO, &info) == 0 && info.mappings == 1,
	      "mappings %llu", (unsigned long long)info.mappings);
	munmap(a, 4 * PAGE);
	CHECK(ioctl(fd, WBDEV_IOC_INFO, &info) == 0 && info.mappings == 0,
	      "mappings %llu", (unsigned long long)info.mappings);
	close(fd);
}

/* write(2) lists: prefix semantics and every kind of bad pointer. */
static void t_bad_write(void)
{
	int fd = dev_open(), fd2 = dev_open();
	char *a = dev_map(fd, 4 * PAGE), *other = dev_map(fd2, PAGE);
	char *anon = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t good = (uintptr_t)a + 5;
	const uint64_t bad[] = {
		0,				/* NULL */
		(uintptr_t)anon,		/* not a wbdev mapping */
		(uintptr_t)other,		/* another context's */
		(uintptr_t)a + 4 * PAGE + 1,	/* just past the end */
		0xffffffff81000000ULL,		/* kernel */
		0x0000800000000000ULL,		/* non-canonical */
		(1ULL << 62) | (uintptr_t)a,	/* tagged */
		(1ULL << 57) | (uintptr_t)a,	/* LAM-style tag */
		~0ULL,
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t list[3] = { good, bad[i], good };

		CHECK_ERRNO(write(fd, &bad[i], 8), EFAULT);
		CHECK(write(fd, list, sizeof(list)) == 8, "prefix, bad %zu",
		      i);
	}
	CHECK_ERRNO(write(fd, &good, 7), EINVAL);
	CHECK_ERRNO(write(fd, logbuf, 12), EINVAL);
	CHECK(write(fd, &good, 0) == 0, "empty list");
	CHECK_ERRNO(write(fd, bad_ptr, 8), EFAULT);
	CHECK_ERRNO(write(fd, (void *)0xffffffff81000000ULL, 8), EFAULT);
	/* another process's fd: a WBDEV_FORK_STUB child has no context */
	CHECK(ioctl(fd, WBDEV_IOC_SET_FORK_MODE, WBDEV_FORK_STUB) == 0,
	      "stub mode");
	pid_t pid = fork();

	if (!pid) {
		uint64_t x;

		if (write(fd, &good, 8) != -1 || errno != EPERM)
			_exit(2);
		if (read(fd, &x, 8) != -1 || errno != EPERM)
			_exit(3);
		if (mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			 0) != MAP_FAILED || errno != EPERM)
			_exit(4);
		_exit(0);
	}
	int st;

	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
	      WEXITSTATUS(st) == 0, "child status %#x", st);
	munmap(a, 4 * PAGE);
	munmap(other, PAGE);
	munmap(anon, PAGE);
	close(fd);
	close(fd2);
}

/* A list of 10^6 pointers is applied and the call stays interruptible. */
static void t_big_list(void)
{
	enum { N = 1000000, PAGES = 256 };
	int fd = dev_open();
	char *a = dev_map(fd, PAGES * PAGE);
	uint64_t *list = malloc(N * sizeof(*list));

	memset(a, 1, PAGES * PAGE);
	for (size_t i = 0; i < N; i++)
		list[i] = (uintptr_t)a + (i % PAGES) * PAGE;
	double t = now_sec();

	CHECK(write(fd, list, N * sizeof(*list)) == N * 8, "big list");
	printf("big list: %d entries in %.3f s\n", N, now_sec() - t);
	/* killed in the middle: the process dies promptly */
	pid_t pid = fork();

	if (!pid) {
		int cfd = dev_open();
		char *c = dev_map(cfd, PAGES * PAGE);

		memset(c, 1, PAGES * PAGE);
		for (size_t i = 0; i < N; i++)
			list[i] = (uintptr_t)c + (i % PAGES) * PAGE;
		for (;;)
			write(cfd, list, N * sizeof(*list));
	}
	usleep(300000);
	t = now_sec();
	kill(pid, SIGKILL);
	int st;

	CHECK(waitpid(pid, &st, 0) == pid && WIFSIGNALED(st), "killed");
	printf("big list: killed writer reaped in %.3f s\n", now_sec() - t);
	CHECK(now_sec() - t < 5, "kill took too long");
	free(list);
	munmap(a, PAGES * PAGE);
	close(fd);
}

/* read into unmapped / read-only memory: EFAULT and nothing lost. */
static void t_bad_read(void)
{
	int fd = dev_open();
	char *a = dev_map(fd, 8 * PAGE);
	char *ro = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS,
			-1, 0);
	struct wbdev_collect_arg c = { 0 };

	for (int i = 0; i < 8; i++)
		a[i * PAGE] = 1;
	CHECK_ERRNO(read(fd, bad_ptr, 64), EFAULT);
	CHECK_ERRNO(read(fd, ro, 64), EFAULT);
	c.buf = (uintptr_t)ro;
	c.max = 8;
	c.flags = WBDEV_IOC_COLLECT_REPROTECT;
	CHECK_ERRNO(ioctl(fd, WBDEV_IOC_COLLECT, &c), EFAULT);
	CHECK(dev_read_all(fd, logbuf, 64) == 8, "entries lost");
	munmap(ro, PAGE);
	munmap(a, 8 * PAGE);
	close(fd);
}

/* The mapping outlives the fd; munmap of protected memory is clean. */
static void t_close_mapped(void)
{
	int fd = dev_open();
	char *a = dev_map(fd, 8 * PAGE);

	a[0] = 1;
	dev_protect_range(fd, a, 8 * PAGE);
	close(fd);
	a[PAGE] = 2;
	CHECK(a[0] == 1 && a[PAGE] == 2, "data after close");
	CHECK(munmap(a, 8 * PAGE) == 0, "munmap");
	fd = dev_open();
	a = dev_map(fd, 8 * PAGE);
	dev_protect_range(fd, a, 8 * PAGE);
	CHECK(munmap(a, 8 * PAGE) == 0, "munmap protected");
	CHECK(read(fd, logbuf, 64) == 0, "log of unmapped memory");
	close(fd);
}

/* Fork without WBDEV_FORK_COPY: the child's mapping is a SIGBUS stub. */
static void t_fork_stub(void)
{
	int fd = dev_open();
	char *a = dev_map(fd, 4 * PAGE);

	/* not the default (WBDEV_FORK_AUTO, see kmod-fork auto) */
	CHECK(ioctl(fd, WBDEV_IOC_SET_FORK_MODE, WBDEV_FORK_STUB) == 0,
	      "stub mode");
	a[0] = 42;
	for (int mode = 0; mode < 4; mode++) {
		pid_t pid = fork();

		if (!pid) {
			switch (mode) {
			case 0:
				return (void)_exit(a[0]);	/* read */
			case 1:
				a[PAGE] = 1;			/* write */
				_exit(0);
			case 2:
				/* cannot be made writable or punched */
				if (madvise(a, PAGE, MADV_REMOVE) == 0)
					_exit(1);
				if (mprotect(a, PAGE, PROT_READ | PROT_WRITE)
				    == 0)
					_exit(2);
				if (munmap(a, PAGE) == 0)
					_exit(3);	/* split refused */
				_exit(0);
			case 3:
				/* unmapping the stub is fine */
				_exit(munmap(a, 4 * PAGE) ? 4 : 0);
			}
		}
		int st;

		CHECK(waitpid(pid, &st, 0) == pid, "wait");
		/* a read faults with SIGBUS, a write (no VM_WRITE) SIGSEGV */
		if (mode < 2)
			CHECK(WIFSIGNALED(st) &&
			      WTERMSIG(st) == (mode ? SIGSEGV : SIGBUS),
			      "mode %d status %#x", mode, st);
		else
			CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
			      "mode %d status %#x", mode, st);
	}
	CHECK(a[0] == 42, "parent data");
	a[PAGE] = 7;
	CHECK(a[PAGE] == 7, "parent write");
	/* the parent exits first: the child must still die cleanly */
	pid_t mid = fork();

	if (!mid) {
		pid_t grand = fork();

		if (!grand) {
			usleep(100000);
			a[0] = 1;	/* SIGBUS, after its parent left */
			_exit(0);
		}
		_exit(0);
	}
	waitpid(mid, NULL, 0);
	usleep(300000);
	munmap(a, 4 * PAGE);
	close(fd);
}

static long minflt(void)
{
	struct rusage ru;

	CHECK(getrusage(RUSAGE_SELF, &ru) == 0, "getrusage");
	return ru.ru_minflt;
}

/* Pages [lo, hi) of a mapping as a bit mask (64 pages at most). */
static uint64_t pages_mask(int lo, int hi)
{
	return (hi >= 64 ? ~0ULL : (1ULL << hi) - 1) & ~((1ULL << lo) - 1);
}

/* The log entries of the pages of base as a mask; ascending, aligned. */
static uint64_t log_mask(const uint64_t *log, size_t n, const char *base)
{
	uint64_t m = 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t pg = (log[i] - (uintptr_t)base) / PAGE;

		CHECK(log[i] % PAGE == 0 && log[i] >= (uintptr_t)base &&
		      pg < 64, "entry %#llx", (unsigned long long)log[i]);
		CHECK(!i || log[i] > log[i - 1], "not ascending");
		m |= 1ULL << pg;
	}
	return m;
}

/* The whole log, read(2), as a mask of the pages of base. */
static uint64_t read_mask(int fd, const char *base)
{
	return log_mask(logbuf, dev_read_all(fd, logbuf, 64), base);
}

/*
 * WBDEV_IOC_UNPROTECT: the whole range is logged (written or not, resident
 * or not, protected or already writable), writes to it take no fault, the
 * contents are kept, and tracking resumes once it is protected again.
 */
static void t_unprotect(void)
{
	int fd = dev_open();
	char *a = dev_map(fd, 32 * PAGE);
	unsigned char vec[32];
	struct wbdev_info info;
	uint64_t m;
	long f;

	for (int i = 0; i < 16; i++)
		a[i * PAGE] = (char)(i + 1);	/* 0-15 resident, 16-31 not */
	dev_protect_range(fd, a, 32 * PAGE);
	CHECK(read_mask(fd, a) == pages_mask(0, 16), "first writes");
	a[4 * PAGE + 1] = 1;
	/* page 4 is now writable and, once read, not in the log */
	CHECK(read_mask(fd, a) == 1ULL << 4, "page 4");
	CHECK(dev_unprotect(fd, a + 2 * PAGE, 18 * PAGE) == 0, "unprotect");
	CHECK(mincore(a, 32 * PAGE, vec) == 0, "mincore");
	/* pages 16-19 are logged, not allocated */
	for (int i = 0; i < 32; i++)
		CHECK((vec[i] & 1) == (i < 16), "page %d resident: %d", i,
		      vec[i]);
	CHECK(ioctl(fd, WBDEV_IOC_INFO, &info) == 0 &&
	      info.dirty_pages == 18, "dirty_pages %llu",
	      (unsigned long long)info.dirty_pages);
	/* Writes to its resident pages take no fault. */
	f = minflt();
	for (int i = 2; i < 16; i++)
		a[i * PAGE + 7] = 'w';
	f = minflt() - f;
	CHECK(f == 0, "%ld minor faults writing 14 unprotected pages", f);
	a[16 * PAGE + 7] = 'w';		/* first touch: allocated now */
	a[17 * PAGE + 7] = 'w';
	/* read(2) reports all of it, pages 18-19 unwritten */
	m = read_mask(fd, a);
	CHECK(m == pages_mask(2, 20), "reported %#llx", (unsigned long long)m);
	for (int i = 0; i < 32; i++)
		CHECK(a[i * PAGE] == (i < 16 ? i + 1 : 0) &&
		      a[i * PAGE + 7] == (i >= 2 && i < 18 ? 'w' : 0),
		      "contents of page %d", i);
	CHECK(a[4 * PAGE + 1] == 1, "contents of page 4");
	/* read(2) leaves the pages writable: nothing new until protected */
	a[3 * PAGE] = 9;
	CHECK(read(fd, logbuf, 8) == 0, "unprotected write logged");

	/* COLLECT reports it; COLLECT_REPROTECT resumes tracking. */
	CHECK(dev_unprotect(fd, a, 32 * PAGE) == 0, "unprotect all");
	m = log_mask(logbuf, dev_collect(fd, logbuf, 64,
					 WBDEV_IOC_COLLECT_REPROTECT), a);
	CHECK(m == pages_mask(0, 32), "collected %#llx",
	      (unsigned long long)m);
	f = minflt();
	a[5 * PAGE] = 10;
	a[25 * PAGE] = 11;
	f = minflt() - f;
	CHECK(f >= 2, "protected pages written with %ld faults", f);
	CHECK(read_mask(fd, a) == (1ULL << 5 | 1ULL << 25), "after reprotect");
	printf("unprotect: 14 writes after unprotect: 0 faults; 2 after "
	       "re-protection: %ld\n", f);

	/* WBDEV_IOC_PROTECT keeps the entries and resumes tracking. */
	CHECK(dev_unprotect(fd, a + 8 * PAGE, 8 * PAGE) == 0, "unprotect");
	dev_protect_range(fd, a, 32 * PAGE);
	CHECK(read_mask(fd, a) == pages_mask(8, 16), "after protect");
	a[9 * PAGE] = 12;
	a[30 * PAGE] = 13;
	CHECK(read_mask(fd, a) == (1ULL << 9 | 1ULL << 30), "tracking");
	/* so does write(2) */
	uint64_t p1 = (uintptr_t)a + PAGE + 99;

	CHECK(dev_unprotect(fd, a, 4 * PAGE) == 0, "unprotect");
	CHECK(write(fd, &p1, 8) == 8, "protect page 1");
	CHECK(read_mask(fd, a) == pages_mask(0, 4), "after write(2)");
	a[PAGE] = 14;
	a[2 * PAGE] = 15;		/* still writable, already read */
	CHECK(read_mask(fd, a) == 1ULL << 1, "after write(2) protect");

	/* Discarded after unprotect: zero, still logged, tracked. */
	CHECK(dev_unprotect(fd, a + 20 * PAGE, 2 * PAGE) == 0, "unprotect");
	struct wbdev_range r = { (uintptr_t)a + 20 * PAGE, 2 * PAGE };

	CHECK(ioctl(fd, WBDEV_IOC_DISCARD, &r) == 0, "discard");
	CHECK(read_mask(fd, a) == pages_mask(20, 22), "after discard");
	CHECK(a[20 * PAGE + 7] == 0, "discarded page not zero");
	a[21 * PAGE] = 16;
	CHECK(read_mask(fd, a) == 1ULL << 21, "write after discard");
	/* pages not in the range were never touched by it */
	CHECK(a[0] == 1 && a[3 * PAGE] == 9 && a[5 * PAGE] == 10 &&
	      a[25 * PAGE] == 11 && a[31 * PAGE] == 0, "contents");
	munmap(a, 32 * PAGE);
	close(fd);
}

/* Every refusal changes nothing; errnos as wbdev(4) documents. */
static void t_unprotect_bad(void)
{
	int fd = dev_open(), fd2 = dev_open();
	/* a mapping between two pages that are not the context's */
	char *g = mmap(NULL, 10 * PAGE, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *a = mmap(g + PAGE, 8 * PAGE, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_FIXED, fd, 0);
	char *hole = dev_map(fd, 8 * PAGE), *other = dev_map(fd2, 4 * PAGE);
	char *heap = malloc(16 * PAGE);
	char *heap_page = (char *)(((uintptr_t)heap + PAGE - 1) & -PAGE);
	const struct {
		uint64_t start, len;
		int err;
	} bad[] = {
		{ (uintptr_t)a + 1, PAGE, EINVAL },		/* unaligned */
		{ (uintptr_t)a, PAGE - 1, EINVAL },
		{ (uintptr_t)a, PAGE + 1, EINVAL },
		{ (uintptr_t)a, 0, EINVAL },			/* empty */
		{ (uintptr_t)a + PAGE, -PAGE, EINVAL },	/* wraps */
		{ (uintptr_t)a + PAGE, -2 * PAGE, EINVAL },
		{ 0xffffffff81000000ULL, PAGE, EINVAL },	/* kernel */
		{ (uintptr_t)a + 6 * PAGE, 4 * PAGE, EFAULT },	/* past end */
		{ (uintptr_t)a - PAGE, 2 * PAGE, EFAULT },	/* before */
		{ (uintptr_t)a - PAGE, 10 * PAGE, EFAULT },	/* around */
		{ (uintptr_t)other, PAGE, EFAULT },		/* foreign */
		{ (uintptr_t)heap_page, PAGE, EFAULT },	/* malloc */
		{ 0, PAGE, EFAULT },				/* NULL */
		{ (uintptr_t)hole, 8 * PAGE, EFAULT },	/* a hole */
		{ (uintptr_t)hole + 4 * PAGE, 4 * PAGE, 0 },	/* fine */
	};

	CHECK(g != MAP_FAILED && a == g + PAGE, "guarded mapping");
	CHECK(munmap(hole + 3 * PAGE, PAGE) == 0, "punch a hole");
	dev_protect_range(fd, a, 8 * PAGE);
	dev_protect_range(fd, hole, 3 * PAGE);
	dev_protect_range(fd, hole + 4 * PAGE, 4 * PAGE);
	dev_protect_range(fd2, other, 4 * PAGE);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct wbdev_range r = { bad[i].start, bad[i].len };

		errno = 0;
		CHECK((ioctl(fd, WBDEV_IOC_UNPROTECT, &r) ? errno : 0) ==
		      bad[i].err, "case %zu: want %d", i, bad[i].err);
		/* nothing changed: nothing logged */
		CHECK(read(fd, logbuf, sizeof(logbuf)) ==
		      (bad[i].err ? 0 : 4 * 8), "case %zu logged", i);
	}
	CHECK(read(fd2, logbuf, 8) == 0, "other context logged");
	CHECK_ERRNO(ioctl(fd, WBDEV_IOC_UNPROTECT, bad_ptr), EFAULT);
	CHECK_ERRNO(ioctl(fd, WBDEV_IOC_UNPROTECT, NULL), EFAULT);
	/* Mapped without write permission: EACCES, nothing changed. */
	CHECK(mprotect(a + 5 * PAGE, PAGE, PROT_READ) == 0, "mprotect");
	CHECK(dev_unprotect(fd, a, 8 * PAGE) == -EACCES, "read-only");
	CHECK(mprotect(a + 5 * PAGE, PAGE, PROT_NONE) == 0, "mprotect");
	CHECK(dev_unprotect(fd, a + 5 * PAGE, PAGE) == -EACCES, "PROT_NONE");
	CHECK(mprotect(a + 5 * PAGE, PAGE, PROT_READ | PROT_WRITE) == 0,
	      "mprotect");
	CHECK(read(fd, logbuf, 8) == 0, "refused unprotect logged");
	/* still protected: each write is recorded */
	a[0] = 1;
	a[5 * PAGE] = 1;
	hole[PAGE] = 1;
	CHECK(dev_read_all(fd, logbuf, 64) == 3, "protection lost");
	/* two adjacent mappings of the context are one range */
	char *lo = mmap(g, PAGE, PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_FIXED, fd, 0);

	CHECK(lo == g, "adjacent mapping");
	CHECK(dev_unprotect(fd, lo, 9 * PAGE) == 0, "across two mappings");
	CHECK(dev_read_all(fd, logbuf, 64) == 9, "across two mappings");

	/* A WBDEV_FORK_STUB or _COPY fork child: the inherited fd is the
	 * parent's (EPERM); the stubs are no context's memory (EFAULT); a
	 * claimed copy is its new context's. */
	char *f = dev_map(fd, 4 * PAGE);

	f[0] = 7;
	for (int copy = 0; copy < 2; copy++) {
		CHECK(ioctl(fd, WBDEV_IOC_SET_FORK_MODE,
			    copy ? WBDEV_FORK_COPY : WBDEV_FORK_STUB) == 0,
		      "arm");
		pid_t pid = fork();

		if (!pid) {
			int nfd = dev_open();
			struct wbdev_range cr[16];
			struct wbdev_fork_claim c = { .fd = fd,
				.ranges = (uintptr_t)cr, .max = 16 };

			if (dev_unprotect(fd, f, 4 * PAGE) != -EPERM)
				_exit(1);
			if (dev_unprotect(nfd, f, 4 * PAGE) != -EFAULT)
				_exit(2);
			if (!copy)
				_exit(0);
			if (ioctl(nfd, WBDEV_IOC_FORK_CLAIM, &c) || !c.count)
				_exit(3);
			/* claimed, not mapped yet: still a stub */
			if (dev_unprotect(nfd, f, 4 * PAGE) != -EFAULT)
				_exit(4);
			for (uint64_t i = 0; i < c.count; i++)
				if (mmap((void *)(uintptr_t)cr[i].start,
					 cr[i].len, PROT_READ | PROT_WRITE,
					 MAP_SHARED | MAP_FIXED, nfd, 0) ==
				    MAP_FAILED)
					_exit(5);
			dev_read_all(nfd, logbuf, 64);	/* the copied pages */
			if (dev_unprotect(nfd, f, 4 * PAGE) ||
			    read(nfd, logbuf, sizeof(logbuf)) != 4 * 8 ||
			    f[0] != 7)
				_exit(6);
			_exit(0);
		}
		int st;

		CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
		      WEXITSTATUS(st) == 0, "child (copy %d) status %#x",
		      copy, st);
		CHECK(ioctl(fd, WBDEV_IOC_SET_FORK_MODE, WBDEV_FORK_STUB) == 0,
		      "disarm");
	}
	munmap(f, 4 * PAGE);
	munmap(g, 10 * PAGE);
	munmap(hole, 8 * PAGE);
	munmap(other, 4 * PAGE);
	free(heap);
	close(fd);
	close(fd2);
}

struct ur_arg {
	int fd, stop;
	char *a;
	size_t pages;
	long ok, efault, remaps;
};

static int ur_stopped(struct ur_arg *u)
{
	return __atomic_load_n(&u->stop, __ATOMIC_ACQUIRE);
}

static void *ur_unprotect(void *p)
{
	struct ur_arg *u = p;

	while (!ur_stopped(u)) {
		int r = dev_unprotect(u->fd, u->a, u->pages * PAGE);

		/* EFAULT while the tail is unmapped */
		CHECK(r == 0 || r == -EFAULT, "unprotect: %d", r);
		if (r)
			u->efault++;
		else
			u->ok++;
	}
	return NULL;
}

/* Punching holes makes concurrent faults wait without the mmap lock. */
static void *ur_discard(void *p)
{
	struct ur_arg *u = p;
	unsigned int seed = 1;

	while (!ur_stopped(u)) {
		size_t first = rand_r(&seed) % u->pages;
		struct wbdev_range r = {
			(uintptr_t)u->a + first * PAGE,
			(1 + rand_r(&seed) % (u->pages - first)) * PAGE
		};

		CHECK(ioctl(u->fd, WBDEV_IOC_DISCARD, &r) == 0 ||
		      errno == EFAULT, "discard");
	}
	return NULL;
}

static void *ur_remap(void *p)
{
	struct ur_arg *u = p;
	char *tail = u->a + (u->pages - 4) * PAGE;

	while (!ur_stopped(u)) {
		CHECK(munmap(tail, 4 * PAGE) == 0, "munmap tail");
		CHECK(mmap(tail, 4 * PAGE, PROT_READ | PROT_WRITE,
			   MAP_SHARED | MAP_FIXED_NOREPLACE, u->fd, 0) == tail,
		      "remap tail");
		u->remaps++;
		usleep(1000);	/* mostly mapped: let unprotects finish */
	}
	return NULL;
}

static void *ur_write(void *p)
{
	struct ur_arg *u = p;
	unsigned int seed = 2;

	while (!ur_stopped(u))
		u->a[(rand_r(&seed) % (u->pages - 4)) * PAGE] = 1;
	return NULL;
}

static void *ur_collect(void *p)
{
	struct ur_arg *u = p;
	uint64_t buf[64];

	while (!ur_stopped(u)) {
		struct wbdev_collect_arg c = {
			.start = (uintptr_t)u->a, .len = u->pages * PAGE,
			.buf = (uintptr_t)buf, .max = 64,
			.flags = WBDEV_IOC_COLLECT_REPROTECT,
		};

		CHECK(ioctl(u->fd, WBDEV_IOC_COLLECT, &c) == 0, "collect");
	}
	return NULL;
}

/*
 * UNPROTECT racing with writes, collections, discards (faults then retry
 * with the mmap lock dropped) and munmap/mmap of part of its range; then
 * tracking must be intact.
 */
static void t_unprotect_race(void)
{
	void *(*fn[])(void *) = { ur_unprotect, ur_unprotect, ur_discard,
				  ur_remap, ur_write, ur_collect };
	enum { NT = sizeof(fn) / sizeof(fn[0]) };
	struct ur_arg u = { .fd = dev_open(), .pages = 256 };
	pthread_t t[NT];
	size_t n;

	u.a = dev_map(u.fd, u.pages * PAGE);
	for (int i = 0; i < NT; i++)
		pthread_create(&t[i], NULL, fn[i], &u);
	usleep(2000000);
	__atomic_store_n(&u.stop, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < NT; i++)
		pthread_join(t[i], NULL);
	printf("unprotect-race: %ld unprotects done, %ld refused (EFAULT) "
	       "during %ld remaps\n", u.ok, u.efault, u.remaps);
	CHECK(u.ok > 0 && u.remaps > 0, "no progress");
	dev_collect(u.fd, logbuf, 1 << 16, WBDEV_IOC_COLLECT_REPROTECT);
	for (size_t i = 0; i < u.pages; i++)
		u.a[i * PAGE] = 2;
	n = dev_collect(u.fd, logbuf, 1 << 16, 0);
	CHECK(n == u.pages, "%zu of %zu writes recorded", n, u.pages);
	munmap(u.a, u.pages * PAGE);
	close(u.fd);
}

/*
 * A long UNPROTECT (a write fault on each of 64k resident, protected
 * pages) dies promptly when killed.  The
 * child raises a shared flag around the ioctl; still raised after its
 * death, it was killed inside (tried a few times).
 */
static void t_unprotect_kill(void)
{
	enum { PAGES = 65536 };
	volatile int *flag = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
				  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int st, inside = 0, tries;
	double t, reap = 0;

	CHECK(flag != MAP_FAILED, "flag");
	for (tries = 1; !inside && tries <= 10; tries++) {
		*flag = 0;
		pid_t pid = fork();

		if (!pid) {
			int fd = dev_open();
			char *a = dev_map(fd, PAGES * PAGE);

			/* resident: pages not in memory are only logged */
			memset(a, 1, PAGES * PAGE);
			for (;;) {
				dev_protect_range(fd, a, PAGES * PAGE);
				*flag = 1;
				dev_unprotect(fd, a, PAGES * PAGE);
				*flag = 2;
			}
		}
		for (t = now_sec(); *flag != 1 && now_sec() - t < 10;)
			usleep(1000);
		usleep(10000 * tries);
		while (*flag != 1 && now_sec() - t < 20)
			;
		t = now_sec();
		kill(pid, SIGKILL);
		CHECK(waitpid(pid, &st, 0) == pid && WIFSIGNALED(st), "killed");
		reap = now_sec() - t;
		CHECK(reap < 5, "kill took %.1f s", reap);
		inside = *flag == 1;
	}
	printf("unprotect-kill: killed inside the ioctl (try %d), reaped in "
	       "%.3f s\n", tries - 1, reap);
	CHECK(inside, "never killed inside WBDEV_IOC_UNPROTECT");
	munmap((void *)flag, PAGE);
}

struct mt_arg {
	char *base;
	int id, nthreads, pages, rounds;
};

static void *mt_writer(void *p)
{
	struct mt_arg *m = p;

	for (int r = 0; r < m->rounds; r++)
		for (int i = m->id; i < m->pages; i += m->nthreads)
			m->base[(size_t)i * PAGE + r % PAGE] = (char)r;
	return NULL;
}

struct mt_reader {
	int fd, stop;
	uint64_t buf[256];
	size_t got;
};

static void *mt_read(void *p)
{
	struct mt_reader *r = p;

	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		struct wbdev_collect_arg c = {
			.buf = (uintptr_t)r->buf, .max = 256,
			.flags = WBDEV_IOC_COLLECT_REPROTECT,
		};

		CHECK(ioctl(r->fd, WBDEV_IOC_COLLECT, &c) == 0, "collect");
		r->got += c.count;
	}
	return NULL;
}

/* Many writer threads and two collecting threads at once. */
/*
 * Collect with re-protection protects nearby dirty pages with one
 * page-table walk: they must really be protected again, also after an
 * mprotect() round trip (which makes a dirty read-only PTE of a shared
 * mapping writable without a fault), and a page that read(2) left
 * writable stays writable even between two dirty pages of one walk.
 */
static void t_span_protect(void)
{
	int fd = dev_open();
	char *a = dev_map(fd, 64 * PAGE);
	uint64_t two[2] = { (uintptr_t)a, (uintptr_t)a + 8 * PAGE };
	size_t n;

	memset(a, 1, 64 * PAGE);
	n = dev_collect(fd, logbuf, 1 << 16, WBDEV_IOC_COLLECT_REPROTECT);
	CHECK(n == 64, "first collect n=%zu", n);
	for (int round = 0; round < 2; round++) {
		CHECK(mprotect(a, 64 * PAGE, PROT_READ) == 0 &&
		      mprotect(a, 64 * PAGE, PROT_READ | PROT_WRITE) == 0,
		      "mprotect round trip");
		for (int i = 0; i < 64; i += 3)
			a[i * PAGE] = 2;
		n = dev_collect(fd, logbuf, 1 << 16,
				WBDEV_IOC_COLLECT_REPROTECT);
		CHECK(n == 22, "round %d: after mprotect n=%zu", round, n);
	}
	memset(a, 3, 64 * PAGE);
	n = dev_read_all(fd, logbuf, 64);
	CHECK(n == 64, "read n=%zu", n);
	CHECK(dev_protect_list(fd, two, 2) == 2, "protect 2");
	a[0] = 4;
	a[8 * PAGE] = 4;
	n = dev_collect(fd, logbuf, 1 << 16, WBDEV_IOC_COLLECT_REPROTECT);
	CHECK(n == 2, "two protected pages n=%zu", n);
	a[4 * PAGE] = 4;	/* left writable by read(2): not logged */
	n = dev_collect(fd, logbuf, 1 << 16, WBDEV_IOC_COLLECT_REPROTECT);
	CHECK(n == 0, "a page read(2) returned was protected n=%zu", n);
	a[0] = 5;
	n = dev_collect(fd, logbuf, 1 << 16, WBDEV_IOC_COLLECT_REPROTECT);
	CHECK(n == 1 && logbuf[0] == (uintptr_t)a, "page 0 again n=%zu", n);
	munmap(a, 64 * PAGE);
	close(fd);
}

static void t_threads(void)
{
	enum { T = 6, PAGES = 512 };
	int fd = dev_open();
	char *a = dev_map(fd, PAGES * PAGE);
	pthread_t w[T], rd[2];
	struct mt_arg args[T];
	struct mt_reader r[2] = { { .fd = fd }, { .fd = fd } };

	for (int i = 0; i < 2; i++)
		pthread_create(&rd[i], NULL, mt_read, &r[i]);
	for (int i = 0; i < T; i++) {
		args[i] = (struct mt_arg){ a, i, T, PAGES, 200 };
		pthread_create(&w[i], NULL, mt_writer, &args[i]);
	}
	for (int i = 0; i < T; i++)
		pthread_join(w[i], NULL);
	for (int i = 0; i < 2; i++) {
		__atomic_store_n(&r[i].stop, 1, __ATOMIC_RELEASE);
		pthread_join(rd[i], NULL);
	}
	/* every page was written after its last collection or is logged */
	dev_collect(fd, logbuf, 1 << 16, WBDEV_IOC_COLLECT_REPROTECT);
	for (int i = 0; i < PAGES; i++)
		a[(size_t)i * PAGE] = 9;
	size_t n = dev_collect(fd, logbuf, 1 << 16, 0);

	CHECK(n == PAGES, "final n=%zu", n);
	printf("threads: collected %zu+%zu entries concurrently\n", r[0].got,
	       r[1].got);
	munmap(a, PAGES * PAGE);
	close(fd);
}

static long meminfo(const char *key)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	long v = -1;

	CHECK(f, "meminfo");
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)))
			v = atol(line + strlen(key));
	fclose(f);
	return v;
}

/* Thousands of open/mmap/close cycles leak neither memory nor slab. */
static void t_leak(void)
{
	enum { CYCLES = 3000 };
	long avail0, slab0, avail1, slab1;

	for (int pass = 0; pass < 2; pass++) {
		avail0 = meminfo("MemAvailable:");
		slab0 = meminfo("Slab:");
		for (int i = 0; i < CYCLES; i++) {
			int fd = dev_open();
			char *a = dev_map(fd, 16 * PAGE);

			memset(a, 1, 16 * PAGE);
			dev_protect_range(fd, a, 16 * PAGE);
			a[PAGE] = 2;
			if (i % 2) {
				close(fd);
				munmap(a, 16 * PAGE);
			} else {
				munmap(a + 4 * PAGE, 4 * PAGE);
				munmap(a, 16 * PAGE);
				close(fd);
			}
		}
		avail1 = meminfo("MemAvailable:");
		slab1 = meminfo("Slab:");
		printf("leak pass %d: MemAvailable %ld -> %ld kB, Slab %ld -> "
		       "%ld kB\n", pass, avail0, avail1, slab0, slab1);
	}
	/* 3000 cycles of 64 KiB: a leak would lose ~190 MiB */
	CHECK(avail0 - avail1 < 8192, "MemAvailable fell by %ld kB",
	      avail0 - avail1);
	CHECK(slab1 - slab0 < 4096, "Slab grew by %ld kB", slab1 - slab0);
}

static int module_loaded(void)
{
	FILE *f = fopen("/proc/modules", "r");
	char line[256];
	int found = 0;

	CHECK(f, "/proc/modules");
	while (fgets(line, sizeof(line), f))
		found |= !strncmp(line, "wbdev ", 6);
	fclose(f);
	return found;
}

/*
 * Run last: the module cannot be unloaded while a mapping (fd closed) or
 * a fork stub exists, and unloads once none does.
 */
static void t_unload(void)
{
	int p[2];
	pid_t gpid;

	CHECK(module_loaded(), "module not loaded");
	CHECK(pipe(p) == 0, "pipe");
	pid_t pid = fork();

	if (!pid) {
		int fd = dev_open();
		char *a = dev_map(fd, 4 * PAGE);

		a[0] = 1;
		close(fd);
		gpid = fork();
		if (!gpid)
			pause();	/* holds a fork stub only */
		write(p[1], &gpid, sizeof(gpid));
		pause();		/* holds a mapping, no fd */
	}
	CHECK(read(p[0], &gpid, sizeof(gpid)) == sizeof(gpid), "child ready");
	CHECK(system("rmmod wbdev 2>/dev/null") != 0, "unloaded while mapped");
	CHECK(module_loaded(), "module gone while mapped");
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	CHECK(system("rmmod wbdev 2>/dev/null") != 0,
	      "unloaded while a fork stub exists");
	kill(gpid, SIGKILL);
	for (int i = 0; i < 50; i++) {
		if (system("rmmod wbdev 2>/dev/null") == 0)
			break;
		usleep(100000);	/* the reparented grandchild is reaped */
	}
	CHECK(!module_loaded(), "module cannot be unloaded when unused");
}

struct test {
	const char *name;
	void (*fn)(void);
};

static const struct test tests[] = {
	{ "mmap", t_mmap },
	{ "log-basic", t_log_basic },
	{ "short-read", t_short_read },
	{ "kernel-write", t_kernel_write },
	{ "collect", t_collect },
	{ "poll-info", t_poll_info },
	{ "discard", t_discard },
	{ "vma-ops", t_vma_ops },
	{ "bad-write", t_bad_write },
	{ "big-list", t_big_list },
	{ "bad-read", t_bad_read },
	{ "close-mapped", t_close_mapped },
	{ "fork-stub", t_fork_stub },
	{ "unprotect", t_unprotect },
	{ "unprotect-bad", t_unprotect_bad },
	{ "unprotect-race", t_unprotect_race },
	{ "unprotect-kill", t_unprotect_kill },
	{ "span-protect", t_span_protect },
	{ "threads", t_threads },
	{ "leak", t_leak },
	{ "unload", t_unload },	/* only when named */
};

int main(int argc, char **argv)
{
	int ran = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		int want = argc < 2 && tests[i].fn != t_unload;

		for (int j = 1; j < argc; j++)
			want |= !strcmp(argv[j], tests[i].name);
		if (!want)
			continue;
		test_name = tests[i].name;
		double t = now_sec();

		tests[i].fn();
		printf("PASS %s (%.2f s)\n", tests[i].name, now_sec() - t);
		ran++;
	}
	CHECK(ran > 0, "no such test");
	return 0;
}
