/*
 * kmod-harden.c - hardening tests of /dev/wbdev (issue 10): what a local
 * user or a kernel path can do to the module beyond the documented use.
 * Usage: kmod-harden TEST [ARG]    (one test per guest command, so that
 * the VM log names the one that failed)
 *
 *   stub-remap        a fork child cannot reach the parent's memory
 *                     through its stub (remap_file_pages, mprotect)
 *   self-remap        remap_file_pages cannot alias tracked memory
 *   thp MODE          with shmem_enabled=MODE (advise, always, force)
 *                     every write to a fresh 2 MiB block is reported
 *   huge-map          absurd mapping sizes fail with ENOMEM, no WARN
 *   memcg-map         the bitmap is charged: ENOMEM under memory.max
 *   claim-race        FORK_CLAIM failing while another thread maps the
 *                     claimed copy (a use-after-free before)
 *   pinned ITER       writes through GUP pins (process_vm_writev) racing
 *                     collect+reprotect are not lost
 *   odirect ITER      the same with O_DIRECT reads from a loop device
 *                     (needs loop.ko; GUP references before 6.5)
 *   stub-release      stubs do not keep the parent's memory alive
 *   fork-sparse       fork of huge sparse mappings (no soft lockup)
 *   memcg-mremap      a moving mremap failing under memory.max loses no
 *                     data
 *   race ITER         a second thread: every ioctl against mmap, munmap,
 *                     mremap, mprotect and fork of the same memory; only
 *                     the documented errnos, no kernel report
 * The VM harness fails the run on any oops, WARN or KFENCE report too.
 */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <linux/loop.h>
#include <linux/userfaultfd.h>

#include "kmod-util.h"

#define MIB (1UL << 20)
#define HPAGE (2 * MIB)
#define TIB (1UL << 40)
/* The module's per-mapping size limit (wbdev(4)). */
#define MAX_MAP TIB

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

static uint64_t logbuf[1 << 16];

/* Is addr among the n log entries? */
static int logged(const uint64_t *log, size_t n, const void *addr)
{
	for (size_t i = 0; i < n; i++)
		if (log[i] == (uintptr_t)addr)
			return 1;
	return 0;
}

static void write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY);

	CHECK(fd >= 0, "open %s", path);
	CHECK(write(fd, s, strlen(s)) == (ssize_t)strlen(s), "write %s to %s",
	      s, path);
	close(fd);
}

static long meminfo_kb(const char *field)
{
	char line[256];
	long v = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	CHECK(f, "meminfo");
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, strlen(field)) &&
		    line[strlen(field)] == ':')
			v = atol(line + strlen(field) + 1);
	fclose(f);
	CHECK(v >= 0, "no %s in meminfo", field);
	return v;
}

/* ---- item 2: stubs and remap_file_pages ---- */

static void t_stub_remap(void)
{
	int fd = dev_open();
	char *a = dev_map(fd, 4 * PAGE);

	a[0] = 42;
	pid_t pid = fork();

	if (!pid) {
		/* 10: remap worked, 11: it gave read access, 12: write */
		if (syscall(SYS_remap_file_pages, a, 4 * PAGE, 0, 0, 0))
			_exit(0);
		if (mprotect(a, 4 * PAGE, PROT_READ | PROT_WRITE))
			_exit(10);
		*(volatile char *)a = 99;
		_exit(12);
	}
	int st;

	CHECK(waitpid(pid, &st, 0) == pid, "wait");
	CHECK(a[0] == 42, "the child changed the parent's page (%d)", a[0]);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "remap_file_pages on a fork stub worked (status %#x)", st);
	munmap(a, 4 * PAGE);
	close(fd);
}

static void t_self_remap(void)
{
	int fd = dev_open();
	char *a = dev_map(fd, 4 * PAGE);

	a[PAGE] = 5;
	dev_collect(fd, logbuf, 1 << 16, 0);	/* that write's entry */
	CHECK(syscall(SYS_remap_file_pages, a, PAGE, 0, 1, 0) != 0,
	      "remap_file_pages aliased page 1 of a tracked mapping");
	/* Page 0 may be gone (6.1 unmaps before mmap fails); the rest is
	 * intact and still tracked. */
	CHECK(a[PAGE] == 5, "data of page 1");
	dev_protect_range(fd, a + PAGE, 3 * PAGE);
	a[2 * PAGE] = 1;
	size_t n = dev_collect(fd, logbuf, 1 << 16, 0);

	CHECK(n == 1 && logbuf[0] == (uintptr_t)a + 2 * PAGE, "n=%zu", n);
	munmap(a, 4 * PAGE);
	close(fd);
}

/* ---- item 5: huge pages ---- */

/* A 2 MiB-aligned mapping of len bytes (pgoff 0 at an aligned address). */
static char *map_aligned(int fd, size_t len)
{
	char *r = mmap(NULL, len + HPAGE, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	CHECK(r != MAP_FAILED, "reserve");
	char *a = (char *)(((uintptr_t)r + HPAGE - 1) & ~(HPAGE - 1));
	char *p = mmap(a, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
		       fd, 0);

	CHECK(p == a, "map at %p", a);
	return a;
}

static long smaps_kb(const char *field)
{
	char line[256];
	long v = 0;
	FILE *f = fopen("/proc/self/smaps_rollup", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, strlen(field)))
			v += atol(line + strlen(field) + 1);
	fclose(f);
	return v;
}

/* Write the pages of pg[] of block b, collect+reprotect: all reported. */
static void thp_round(int fd, char *b, const int *pg, int n, const char *what)
{
	for (int i = 0; i < n; i++)
		b[pg[i] * PAGE + 8] = 1 + i;
	size_t got = dev_collect(fd, logbuf, 1 << 16,
				 WBDEV_IOC_COLLECT_REPROTECT);

	for (int i = 0; i < n; i++)
		CHECK(logged(logbuf, got, b + pg[i] * PAGE),
		      "%s: write to page %d not reported (%zu reported)", what,
		      pg[i], got);
	printf("  %s: %zu reported for %d written\n", what, got, n);
}

static void t_thp(const char *mode)
{
	static const char knob[] =
		"/sys/kernel/mm/transparent_hugepage/shmem_enabled";
	static const int w1[] = { 1, 5, 300, 511 }, w2[] = { 2, 6, 301, 510 };
	int fd = dev_open();
	char *a;

	CHECK(mode, "usage: thp advise|always|force");
	write_file(knob, mode);
	a = map_aligned(fd, 3 * HPAGE);
	madvise(a, 3 * HPAGE, MADV_HUGEPAGE);	/* may be refused */
	dev_protect_range(fd, a, 3 * HPAGE);
	/* block 0: first touch is a write fault on an empty PMD */
	thp_round(fd, a, w1, 4, "fresh block");
	thp_round(fd, a, w2, 4, "after reprotect");
	/* block 1: read first, then write */
	CHECK(a[HPAGE] == 0, "zero");
	thp_round(fd, a + HPAGE, w1, 4, "read-faulted block");
	/* block 2: a block collapsed into a huge page, then unmapped from
	 * the page tables and written again */
	for (int i = 0; i < 512; i++)
		a[2 * HPAGE + i * PAGE] = 1;
	dev_collect(fd, logbuf, 1 << 16, WBDEV_IOC_COLLECT_REPROTECT);
	if (madvise(a + 2 * HPAGE, HPAGE, MADV_COLLAPSE))
		printf("  MADV_COLLAPSE: %s\n", strerror(errno));
	madvise(a + 2 * HPAGE, HPAGE, MADV_DONTNEED);
	thp_round(fd, a + 2 * HPAGE, w1, 4, "collapsed block");
	thp_round(fd, a + 2 * HPAGE, w2, 4, "collapsed, reprotected");
	printf("  ShmemPmdMapped %ld kB\n", smaps_kb("ShmemPmdMapped:"));
	munmap(a, 3 * HPAGE);
	close(fd);
	write_file(knob, "never");
}

/* ---- item 6: bitmap size ---- */

static void t_huge_map(void)
{
	int fd = dev_open();
	static const size_t bad[] = { MAX_MAP + PAGE, 64 * TIB, 100 * TIB };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_ERRNO(mmap(NULL, bad[i], PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_NORESERVE, fd, 0), ENOMEM);
	char *a = mmap(NULL, MAX_MAP, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_NORESERVE, fd, 0);

	CHECK(a != MAP_FAILED, "the largest mapping");
	a[MAX_MAP - 1] = 1;
	CHECK(dev_collect(fd, logbuf, 8, 0) == 1, "logged");
	munmap(a, MAX_MAP);
	close(fd);
}

/* Move the calling process into a fresh cgroup v2 group with memory.max. */
static void enter_memcg(const char *name, const char *max)
{
	char path[128], pid[32];

	mkdir("/sys/fs/cgroup", 0755);
	if (access("/sys/fs/cgroup/cgroup.controllers", F_OK))
		CHECK(system("mount -t cgroup2 none /sys/fs/cgroup") == 0,
		      "mount cgroup2");
	write_file("/sys/fs/cgroup/cgroup.subtree_control", "+memory");
	snprintf(path, sizeof(path), "/sys/fs/cgroup/%s", name);
	CHECK(mkdir(path, 0755) == 0 || errno == EEXIST, "mkdir %s", path);
	snprintf(path, sizeof(path), "/sys/fs/cgroup/%s/memory.max", name);
	write_file(path, max);
	snprintf(path, sizeof(path), "/sys/fs/cgroup/%s/cgroup.procs", name);
	snprintf(pid, sizeof(pid), "%d", getpid());
	write_file(path, pid);
}

static void t_memcg_map(void)
{
	enter_memcg("wbdev-map", "16M");
	int fd = dev_open();

	/* a 32 MiB bitmap does not fit in 16 MiB */
	CHECK_ERRNO(mmap(NULL, MAX_MAP, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_NORESERVE, fd, 0), ENOMEM);
	char *a = dev_map(fd, 64 * PAGE);

	a[0] = 1;
	munmap(a, 64 * PAGE);
	close(fd);
}

/* ---- item 1: FORK_CLAIM against an mmap of the claimed copy ---- */

struct claim_race {
	int uffd, newfd;
	char *stub, *ranges;
	size_t len;
};

/*
 * The claim's copy of the ranges to user space faults on a missing page:
 * meanwhile map the new context over the stub (taking the claimed copy),
 * then unmap the ranges buffer and wake the fault, so that the claim fails
 * with EFAULT and gives its claims back.
 */
static void *claim_handler(void *p)
{
	struct claim_race *r = p;
	struct pollfd pfd = { r->uffd, POLLIN, 0 };
	struct uffd_msg msg;

	CHECK(poll(&pfd, 1, 10000) == 1, "no userfault");
	CHECK(read(r->uffd, &msg, sizeof(msg)) == sizeof(msg), "read uffd");
	CHECK(mmap(r->stub, r->len, PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_FIXED, r->newfd, 0) == r->stub,
	      "map over the stub");
	CHECK(munmap(r->ranges, PAGE) == 0, "unmap ranges");
	struct uffdio_range wake = { (uintptr_t)r->ranges, PAGE };

	CHECK(ioctl(r->uffd, UFFDIO_WAKE, &wake) == 0, "wake");
	return NULL;
}

static void claim_child(int oldfd, char *a, size_t len)
{
	struct claim_race r = { .stub = a, .len = len };
	struct uffdio_api api = { .api = UFFD_API };

	r.newfd = dev_open();
	r.uffd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	CHECK(r.uffd >= 0, "userfaultfd");
	CHECK(ioctl(r.uffd, UFFDIO_API, &api) == 0, "UFFDIO_API");
	r.ranges = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(r.ranges != MAP_FAILED, "ranges");
	struct uffdio_register reg = {
		.range = { (uintptr_t)r.ranges, PAGE },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};

	CHECK(ioctl(r.uffd, UFFDIO_REGISTER, &reg) == 0, "register");
	pthread_t t;

	CHECK(pthread_create(&t, NULL, claim_handler, &r) == 0, "thread");
	struct wbdev_fork_claim c = { .fd = oldfd,
				      .ranges = (uintptr_t)r.ranges, .max = 4 };

	CHECK_ERRNO(ioctl(r.newfd, WBDEV_IOC_FORK_CLAIM, &c), EFAULT);
	pthread_join(t, NULL);
	/* the new mapping is the copy or fresh memory, never the parent's */
	CHECK(a[0] == 7 || a[0] == 0, "child sees %d", a[0]);
	a[0] = 9;
	close(r.newfd);
	_exit(0);
}

static void t_claim_race(const char *arg)
{
	int iters = arg ? atoi(arg) : 20;

	for (int iter = 0; iter < iters; iter++) {
		int fd = dev_open();
		size_t len = 8 * PAGE;
		char *a = dev_map(fd, len);

		a[0] = 7;
		CHECK(ioctl(fd, WBDEV_IOC_SET_FORK_MODE, WBDEV_FORK_COPY) == 0,
		      "fork mode");
		pid_t pid = fork();

		if (!pid)
			claim_child(fd, a, len);
		int st;

		CHECK(waitpid(pid, &st, 0) == pid, "wait");
		CHECK(WIFEXITED(st) && !WEXITSTATUS(st), "child %#x", st);
		CHECK(a[0] == 7, "parent data");
		munmap(a, len);
		close(fd);
	}
}

/* ---- item 3: writes through GUP pins ---- */

#define PIN_PAGES 1024		/* one process_vm_writev pin batch */

struct pin_race {
	int fd;
	uint64_t *mem;
	uint64_t seen[PIN_PAGES];	/* content when last reported */
	atomic_int stop;
	long rounds;
};

/*
 * Collect+reprotect, and remember what each reported page holds just
 * after: a later change must be reported by a later collection.
 */
static size_t pin_collect(struct pin_race *r)
{
	size_t n = dev_collect(r->fd, logbuf, PIN_PAGES,
			       WBDEV_IOC_COLLECT_REPROTECT);

	for (size_t i = 0; i < n; i++) {
		size_t pg = (logbuf[i] - (uintptr_t)r->mem) / PAGE;

		CHECK(pg < PIN_PAGES, "entry");
		r->seen[pg] = __atomic_load_n(&r->mem[pg * PAGE / 8],
					      __ATOMIC_RELAXED);
	}
	return n;
}

static void *pin_scanner(void *p)
{
	struct pin_race *r = p;

	while (!atomic_load(&r->stop)) {
		pin_collect(r);
		r->rounds++;
	}
	return NULL;
}

/* How one pinned-write test writes src into the tracked pages. */
typedef void pin_writer_fn(void *dst, const void *src, size_t len);

static void write_vm_writev(void *dst, const void *src, size_t len)
{
	struct iovec l = { (void *)src, len }, rem = { dst, len };

	/* the kernel pins all pages (a write fault each), then copies */
	CHECK(syscall(SYS_process_vm_writev, getpid(), &l, 1, &rem, 1,
		      0) == (long)len, "process_vm_writev");
}

static int odirect_fd = -1, odirect_backing = -1;

/*
 * An O_DIRECT read from a loop device backed by a file in tmpfs: the
 * block layer takes the user pages (FOLL_GET before 6.5, FOLL_PIN
 * after) and the loop worker thread copies into them later, through the
 * kernel's mapping, without a fault.
 */
static void write_odirect(void *dst, const void *src, size_t len)
{
	CHECK(pwrite(odirect_backing, src, len, 0) == (ssize_t)len,
	      "write the loop device's backing file");
	CHECK(pread(odirect_fd, dst, len, 0) == (ssize_t)len,
	      "O_DIRECT read from the loop device");
}

static void odirect_setup(size_t len)
{
	char path[64];
	int ctl = open("/dev/loop-control", O_RDWR), n;

	CHECK(ctl >= 0, "open /dev/loop-control (loop.ko loaded?)");
	n = ioctl(ctl, LOOP_CTL_GET_FREE);
	CHECK(n >= 0, "LOOP_CTL_GET_FREE");
	close(ctl);
	odirect_backing = open("/tmp/odirect-backing", O_RDWR | O_CREAT |
			       O_TRUNC, 0600);
	CHECK(odirect_backing >= 0, "create the backing file");
	CHECK(ftruncate(odirect_backing, len) == 0, "size the backing file");
	snprintf(path, sizeof(path), "/dev/loop%d", n);
	int loop = open(path, O_RDWR);

	CHECK(loop >= 0, "open %s", path);
	CHECK(ioctl(loop, LOOP_SET_FD, odirect_backing) == 0, "LOOP_SET_FD");
	odirect_fd = open(path, O_RDONLY | O_DIRECT);
	CHECK(odirect_fd >= 0, "open %s O_DIRECT", path);
	close(loop);
}

/*
 * Writes through GUP references racing a scanner that collects and
 * re-protects the pages: a change of content must be reported by a
 * collection after it.
 */
static void pin_test(int iters, pin_writer_fn *write_pages)
{
	static struct pin_race r;
	static uint64_t src[PIN_PAGES * PAGE / 8];
	size_t len = PIN_PAGES * PAGE;
	long lost = 0;

	r.fd = dev_open();
	r.mem = (uint64_t *)dev_map(r.fd, len);
	for (int it = 1; it <= iters; it++) {
		pthread_t t;

		pin_collect(&r);
		for (size_t pg = 0; pg < PIN_PAGES; pg++) {
			src[pg * PAGE / 8] = (uint64_t)it << 32 | pg;
			r.seen[pg] = r.mem[pg * PAGE / 8];
		}
		dev_protect_range(r.fd, r.mem, len);
		atomic_store(&r.stop, 0);
		CHECK(pthread_create(&t, NULL, pin_scanner, &r) == 0, "thread");
		write_pages(r.mem, src, len);
		atomic_store(&r.stop, 1);
		pthread_join(t, NULL);
		pin_collect(&r);
		for (size_t pg = 0; pg < PIN_PAGES; pg++)
			if (r.seen[pg] != r.mem[pg * PAGE / 8])
				lost++;
	}
	printf("  %d iterations, %ld scanner rounds, %ld writes lost\n", iters,
	       r.rounds, lost);
	CHECK(!lost, "%ld writes through GUP references never reported", lost);
	munmap(r.mem, len);
	close(r.fd);
}

static void t_pinned(const char *arg)
{
	pin_test(arg ? atoi(arg) : 20, write_vm_writev);
}

static void t_odirect(const char *arg)
{
	odirect_setup(PIN_PAGES * PAGE);
	pin_test(arg ? atoi(arg) : 20, write_odirect);
}

/* ---- item 8: stubs and the parent's memory ---- */

static void t_stub_release(void)
{
	size_t len = 64 * MIB;
	int go[2], ready[2];

	CHECK(pipe(go) == 0 && pipe(ready) == 0, "pipes");
	long before = meminfo_kb("Shmem");
	pid_t mid = fork();

	if (!mid) {
		/* maps, fills, forks a stub holder, then exits */
		int fd = dev_open();
		char *a = dev_map(fd, len);

		/* a stub, not WBDEV_FORK_AUTO's copy (the child's own) */
		CHECK(ioctl(fd, WBDEV_IOC_SET_FORK_MODE, WBDEV_FORK_STUB) == 0,
		      "stub mode");
		memset(a, 1, len);
		if (!fork()) {
			char c;

			close(ready[0]);
			close(ready[1]);
			read(go[0], &c, 1);	/* holds its stubs till told */
			_exit(0);
		}
		_exit(0);
	}
	CHECK(waitpid(mid, NULL, 0) == mid, "wait");
	close(ready[1]);
	usleep(200000);
	long after = meminfo_kb("Shmem");

	write(go[1], "x", 1);
	close(go[1]);
	printf("  Shmem %ld kB before, %ld kB after the owner exited\n", before,
	       after);
	CHECK(after - before < (long)(len / 1024 / 4),
	      "a fork stub keeps %ld kB of its exited parent's memory",
	      after - before);
	/* the same for munmap in a live parent */
	int fd = dev_open();
	char *a = dev_map(fd, len);

	CHECK(ioctl(fd, WBDEV_IOC_SET_FORK_MODE, WBDEV_FORK_STUB) == 0,
	      "stub mode");
	memset(a, 1, len);
	pid_t holder = fork();

	if (!holder) {
		pause();
		_exit(0);
	}
	CHECK(munmap(a, len) == 0, "munmap");
	after = meminfo_kb("Shmem");
	kill(holder, SIGKILL);
	waitpid(holder, NULL, 0);
	close(fd);
	CHECK(after - before < (long)(len / 1024 / 4),
	      "a fork stub keeps %ld kB of unmapped memory", after - before);
}

/* ---- item 7: fork copy of huge sparse mappings ---- */

static void t_fork_sparse(void)
{
	enum { N = 4 };
	int fd = dev_open();
	char *a[N];
	double t;

	for (int i = 0; i < N; i++) {
		a[i] = mmap(NULL, MAX_MAP, PROT_READ | PROT_WRITE,
			    MAP_SHARED | MAP_NORESERVE, fd, 0);
		CHECK(a[i] != MAP_FAILED, "map %d", i);
		a[i][MAX_MAP / 2] = 1 + i;
	}
	CHECK(ioctl(fd, WBDEV_IOC_SET_FORK_MODE, WBDEV_FORK_COPY) == 0, "mode");
	t = now_sec();
	pid_t pid = fork();

	if (!pid)
		_exit(0);
	printf("  fork of %d x %lu GiB sparse: %.2f s\n", N, MAX_MAP >> 30,
	       now_sec() - t);
	int st;

	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st), "child");
	for (int i = 0; i < N; i++)
		munmap(a[i], MAX_MAP);
	close(fd);
}

/* ---- item 4: failed VMA operations ---- */

/*
 * Fill a mapping, then try to move it with mremap under a memory.max at
 * what is charged (a margin of 0 pages; raise the loop's bound for more):
 * the move needs new page tables, which cannot all be charged (a partial
 * move, ENOMEM).
 * Whatever mremap does, no byte of the data may change.  The process is
 * not killable by the memcg OOM killer, so the charge fails instead.
 */
static void t_memcg_mremap(void)
{
	/* more new page tables than a memcg's per-CPU charge stock holds */
	size_t len = 256 * MIB;
	char cur[64], max[64];
	int fd = dev_open(), enomem = 0;

	write_file("/proc/self/oom_score_adj", "-1000");
	enter_memcg("wbdev-mremap", "max");
	char *dst = mmap(NULL, len + HPAGE, PROT_NONE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(dst != MAP_FAILED, "reserve");
	/* opened once: at the limit, opening it could not be charged */
	int mfd = open("/sys/fs/cgroup/wbdev-mremap/memory.max", O_WRONLY);

	CHECK(mfd >= 0, "memory.max");
	for (int margin = 0; margin < 32; margin += 32) {
		char *a = dev_map(fd, len);

		for (size_t i = 0; i < len; i += PAGE)
			a[i] = (char)(1 + (i / PAGE) % 200);
		int cfd = open("/sys/fs/cgroup/wbdev-mremap/memory.current",
			       O_RDONLY);

		CHECK(cfd >= 0 && read(cfd, cur, sizeof(cur) - 1) > 0, "cur");
		close(cfd);
		snprintf(max, sizeof(max), "%lld",
			 atoll(cur) + margin * (long long)PAGE);
		CHECK(pwrite(mfd, max, strlen(max), 0) > 0, "set max");
		/* misaligned by a page: page tables cannot move whole */
		void *r = mremap(a, len, len, MREMAP_MAYMOVE | MREMAP_FIXED,
				 dst + PAGE);
		int e = errno;

		CHECK(pwrite(mfd, "max", 3, 0) == 3, "lift max");
		enomem += r == MAP_FAILED && e == ENOMEM;
		char *b = r == MAP_FAILED ? a : r;

		for (size_t i = 0; i < len; i += PAGE)
			CHECK(b[i] == (char)(1 + (i / PAGE) % 200),
			      "margin %d: mremap %s: page %zu lost", margin,
			      r == MAP_FAILED ? strerror(e) : "ok", i / PAGE);
		munmap(b, len);
	}
	printf("  %d moves failed with ENOMEM\n", enomem);
	CHECK(enomem > 0, "no move failed with ENOMEM: the path is not tested");
	close(fd);
}

/* ---- a second thread: ioctls against VMA changes ---- */

#define RACE_SLOTS 8
#define RACE_SLOT (16 * PAGE)

struct race {
	int fd;
	char *region;		/* RACE_SLOTS slots, each mapped or not */
	atomic_int stop;
	long calls, refused;
};

static uint32_t race_rand(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* A random page-aligned sub-range of the region (may span slots). */
static struct wbdev_range race_range(struct race *r, uint32_t *s)
{
	size_t first = race_rand(s) % (RACE_SLOTS * RACE_SLOT / PAGE);
	size_t n = 1 + race_rand(s) % 24;
	struct wbdev_range rg = { (uintptr_t)r->region + first * PAGE,
				  n * PAGE };

	return rg;
}

/* Thread 1: ioctls, read and write on whatever is mapped right now. */
static void *race_ioctls(void *p)
{
	struct race *r = p;
	uint32_t s = 12345;
	uint64_t buf[64];

	while (!atomic_load(&r->stop)) {
		struct wbdev_range rg = race_range(r, &s);
		struct wbdev_collect_arg c = {
			.start = rg.start, .len = rg.len, .buf = (uintptr_t)buf,
			.max = 64, .flags = WBDEV_IOC_COLLECT_REPROTECT,
		};
		uint64_t addr = rg.start;
		struct wbdev_info info;
		int ret = 0;

		switch (race_rand(&s) % 7) {
		case 0:
			ret = ioctl(r->fd, WBDEV_IOC_PROTECT, &rg);
			break;
		case 1:
			ret = ioctl(r->fd, WBDEV_IOC_COLLECT, &c);
			break;
		case 2:
			ret = ioctl(r->fd, WBDEV_IOC_UNPROTECT, &rg);
			break;
		case 3:
			ret = ioctl(r->fd, WBDEV_IOC_DISCARD, &rg);
			break;
		case 4:
			ret = ioctl(r->fd, WBDEV_IOC_INFO, &info);
			break;
		case 5:
			ret = write(r->fd, &addr, 8) == 8 ? 0 : -1;
			break;
		case 6:
			ret = read(r->fd, buf, sizeof(buf)) >= 0 ? 0 : -1;
			break;
		}
		r->calls++;
		if (ret) {
			/* not (all) mapped, or mprotect'ed read-only */
			CHECK(errno == EFAULT || errno == EACCES ||
			      errno == ENOMEM, "unexpected errno");
			r->refused++;
		}
	}
	return NULL;
}

/* Thread 2 (main): change the VMAs under it. */
static void t_race(const char *arg)
{
	long iters = arg ? atol(arg) * 50 : 1000;
	struct race r = { 0 };
	uint32_t s = 777;
	pthread_t t;
	long forks = 0;

	r.fd = dev_open();
	r.region = mmap(NULL, RACE_SLOTS * RACE_SLOT, PROT_NONE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(r.region != MAP_FAILED, "region");
	CHECK(ioctl(r.fd, WBDEV_IOC_SET_FORK_MODE, WBDEV_FORK_COPY) == 0,
	      "fork mode");
	CHECK(pthread_create(&t, NULL, race_ioctls, &r) == 0, "thread");
	for (long i = 0; i < iters; i++) {
		char *slot = r.region + (race_rand(&s) % RACE_SLOTS) * RACE_SLOT;
		size_t off = (race_rand(&s) % 16) * PAGE;
		pid_t pid;

		switch (race_rand(&s) % 7) {
		case 0:
		case 1:	/* map a slot afresh, and write to it */
			if (mmap(slot, RACE_SLOT, PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_FIXED, r.fd, 0) == slot)
				memset(slot, 1, RACE_SLOT);
			break;
		case 2:	/* unmap a part (or a hole: harmless) */
			mmap(slot + off, PAGE, PROT_NONE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
			break;
		case 3:	/* a move, refused; a shrink */
			mremap(slot, RACE_SLOT, RACE_SLOT,
			       MREMAP_MAYMOVE | MREMAP_FIXED,
			       r.region + ((race_rand(&s) % RACE_SLOTS) *
					   RACE_SLOT));
			mremap(slot, RACE_SLOT, RACE_SLOT - PAGE, 0);
			break;
		case 4:
			mprotect(slot + off, PAGE, PROT_READ);
			break;
		case 5:	/* punch a page (fails where not ours) */
			madvise(slot + off, PAGE, MADV_REMOVE);
			break;
		case 6:
			if (race_rand(&s) % 8)
				break;
			pid = fork();
			if (!pid)
				_exit(0);
			CHECK(pid > 0 && waitpid(pid, NULL, 0) == pid, "fork");
			forks++;
			break;
		}
	}
	atomic_store(&r.stop, 1);
	pthread_join(t, NULL);
	printf("  %ld VMA changes, %ld forks, %ld ioctls (%ld refused)\n",
	       iters, forks, r.calls, r.refused);
	munmap(r.region, RACE_SLOTS * RACE_SLOT);
	close(r.fd);
}

struct test {
	const char *name;
	void (*fn)(void);
	void (*fn_arg)(const char *);
};

static const struct test tests[] = {
	{ "stub-remap", t_stub_remap, NULL },
	{ "self-remap", t_self_remap, NULL },
	{ "thp", NULL, t_thp },
	{ "huge-map", t_huge_map, NULL },
	{ "memcg-map", t_memcg_map, NULL },
	{ "claim-race", NULL, t_claim_race },
	{ "pinned", NULL, t_pinned },
	{ "odirect", NULL, t_odirect },
	{ "stub-release", t_stub_release, NULL },
	{ "fork-sparse", t_fork_sparse, NULL },
	{ "memcg-mremap", t_memcg_mremap, NULL },
	{ "race", NULL, t_race },
};

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	CHECK(argc >= 2, "usage: kmod-harden TEST [ARG]");
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		if (strcmp(argv[1], tests[i].name))
			continue;
		test_name = tests[i].name;
		double t = now_sec();

		if (tests[i].fn)
			tests[i].fn();
		else
			tests[i].fn_arg(argc > 2 ? argv[2] : NULL);
		printf("PASS %s (%.2f s)\n", tests[i].name, now_sec() - t);
		return 0;
	}
	CHECK(0, "no test %s", argv[1]);
	return 1;
}
