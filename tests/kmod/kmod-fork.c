/*
 * kmod-fork.c - fork with WBDEV_FORK_COPY while a parent thread keeps
 * writing.  The child claims the copy and checks that it is exactly the
 * parent's memory at one instant; afterwards neither process may see the
 * other's writes.
 *
 * test_auto: a plain fork() (no fork mode, no claim) gives the child its
 * heap.
 *
 * Usage: kmod-fork                 correctness tests (several forks)
 *        kmod-fork auto            only the plain fork test
 *        kmod-fork latency MIB...  print fork latency for resident heaps
 */
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include "kmod-util.h"

#define LAT_ROUNDS 3
#define MARK (1ULL << 63)	/* child's writes carry this bit */

static uint64_t logbuf[1 << 16];

struct heap {
	int fd;
	uint64_t *mem;
	size_t pages;
	volatile int stop;
	volatile uint64_t last;	/* last value the writer stored */
};

/* Store k = 1, 2, 3... into word 0 of page k % pages, forever. */
static void *writer(void *p)
{
	struct heap *h = p;
	size_t stride = PAGE / sizeof(uint64_t);

	for (uint64_t k = 1; !h->stop; k++) {
		h->mem[(k % h->pages) * stride] = k;
		h->last = k;
	}
	return NULL;
}

/* Open a context, claim the copies of the inherited fd and map them. */
static int child_adopt(struct heap *h)
{
	int fd = dev_open();
	struct wbdev_range r[4];
	struct wbdev_fork_claim c = { .fd = h->fd, .ranges = (uintptr_t)r,
				      .max = 0 };

	CHECK_ERRNO(ioctl(fd, WBDEV_IOC_FORK_CLAIM, &c), ENOSPC);
	CHECK(c.count == 1, "claimable %llu", (unsigned long long)c.count);
	/* A buffer the kernel cannot write: EFAULT, nothing claimed. */
	struct wbdev_range *ro = mmap(NULL, PAGE, PROT_READ,
				      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	/* Never touched: storing into it faults (once a self-deadlock on
	 * the mmap lock the ioctl held). */
	struct wbdev_range *fresh = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
					 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(ro != MAP_FAILED && fresh != MAP_FAILED, "mmap buffers");
	c.max = 4;
	c.ranges = (uintptr_t)ro;
	CHECK_ERRNO(ioctl(fd, WBDEV_IOC_FORK_CLAIM, &c), EFAULT);
	c.ranges = (uintptr_t)fresh;
	CHECK(ioctl(fd, WBDEV_IOC_FORK_CLAIM, &c) == 0 && c.count == 1 &&
	      fresh[0].start == (uintptr_t)h->mem &&
	      fresh[0].len == h->pages * PAGE, "claim");
	c.ranges = (uintptr_t)r;
	CHECK(ioctl(fd, WBDEV_IOC_FORK_CLAIM, &c) == 0 && c.count == 0,
	      "claimed twice");
	void *p = mmap(h->mem, h->pages * PAGE, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_FIXED, fd, 0);

	CHECK(p == h->mem, "remap copy");
	close(h->fd);
	return fd;
}

/* In the child: the copy is the state after one store K of the writer. */
static void child_check(struct heap *h, int fd)
{
	size_t stride = PAGE / sizeof(uint64_t), n = h->pages;
	uint64_t k = 0;

	for (size_t j = 0; j < n; j++)
		if (h->mem[j * stride] > k)
			k = h->mem[j * stride];
	CHECK(k >= n, "writer had not wrapped (K=%llu)",
	      (unsigned long long)k);
	for (size_t j = 0; j < n; j++) {
		uint64_t want = k - (k - j) % n;

		CHECK(h->mem[j * stride] == want, "page %zu holds %llu, want "
		      "%llu (K=%llu): not one instant", j,
		      (unsigned long long)h->mem[j * stride],
		      (unsigned long long)want, (unsigned long long)k);
	}
	/* every copied page is in the new context's log */
	uint64_t *log = malloc(n * sizeof(*log));
	size_t got = dev_collect(fd, log, n, WBDEV_IOC_COLLECT_REPROTECT);

	CHECK(got == n, "child log has %zu of %zu pages", got, n);
	/* tracking works in the child */
	h->mem[3 * stride + 1] = 5;
	got = dev_collect(fd, log, n, 0);
	CHECK(got == 1 && log[0] == (uintptr_t)h->mem + 3 * PAGE,
	      "child tracking: %zu entries", got);
	free(log);
	/* the child's writes, then watch for the parent's */
	for (size_t j = 0; j < n; j++)
		h->mem[j * stride] = MARK | j;
	usleep(100000);
	for (size_t j = 0; j < n; j++)
		CHECK(h->mem[j * stride] == (MARK | j),
		      "parent write visible in child at page %zu", j);
}

static void fork_round(struct heap *h, int round)
{
	size_t stride = PAGE / sizeof(uint64_t);
	uint64_t before;

	/* let the writer wrap the heap at least once */
	while (h->last < 2 * h->pages)
		usleep(1000);
	CHECK(ioctl(h->fd, WBDEV_IOC_SET_FORK_MODE, WBDEV_FORK_COPY) == 0,
	      "arm");
	pid_t pid = fork();

	CHECK(pid >= 0, "fork");
	if (!pid) {
		int fd = child_adopt(h);

		child_check(h, fd);
		_exit(0);
	}
	CHECK(ioctl(h->fd, WBDEV_IOC_SET_FORK_MODE, WBDEV_FORK_STUB) == 0,
	      "disarm");
	before = h->last;
	int st;

	CHECK(waitpid(pid, &st, 0) == pid, "wait");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
	CHECK(h->last > before, "parent writer stalled");
	for (size_t j = 0; j < h->pages; j++)
		CHECK(!(h->mem[j * stride] & MARK),
		      "child write visible in parent at page %zu", j);
	printf("fork round %d: writer at %llu, child ok\n", round,
	       (unsigned long long)h->last);
}

static void test_fork(void)
{
	struct heap h = { .pages = 1024 };
	pthread_t t;

	test_name = "fork-copy";
	h.fd = dev_open();
	h.mem = (uint64_t *)dev_map(h.fd, h.pages * PAGE);
	pthread_create(&t, NULL, writer, &h);
	for (int i = 0; i < 5; i++)
		fork_round(&h, i);
	h.stop = 1;
	pthread_join(t, NULL);
	/* the module counted the copies */
	struct wbdev_info info;

	CHECK(ioctl(h.fd, WBDEV_IOC_INFO, &info) == 0 &&
	      info.fork_copies == 5, "fork_copies %llu",
	      (unsigned long long)info.fork_copies);
	printf("PASS fork-copy\n");
}

/* Fork latency for a fully resident heap of each size (MiB). */
static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median3(double *v)
{
	qsort(v, LAT_ROUNDS, sizeof(*v), cmp_double);
	return v[LAT_ROUNDS / 2];
}

/* fork() latency in the parent of a process with a resident anonymous
 * heap of len bytes (stock fork: page tables copied, COW). */
static double anon_fork_latency(size_t len)
{
	char *anon = mmap(NULL, len, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	double v[LAT_ROUNDS];

	CHECK(anon != MAP_FAILED, "anon heap");
	memset(anon, 1, len);
	for (int r = 0; r < LAT_ROUNDS; r++) {
		double t0 = now_sec();
		pid_t pid = fork();

		if (!pid)
			_exit(anon[len - 1] != 1);
		v[r] = now_sec() - t0;
		waitpid(pid, NULL, 0);
	}
	munmap(anon, len);
	return median3(v);
}

/*
 * Per heap size: fork() latency in the parent for a stock anonymous heap
 * and for a wbdev heap in each fork mode, and the child's time until its
 * heap is usable (COPY: the claim protocol; AUTO: its first access maps
 * the copy).  Medians of LAT_ROUNDS runs.
 */
static void test_latency(int argc, char **argv)
{
	static const int modes[] = { WBDEV_FORK_STUB, WBDEV_FORK_COPY,
				     WBDEV_FORK_AUTO };
	static const char *const names[] = { "stub", "copy", "auto" };

	test_name = "fork-latency";
	for (int i = 0; i < argc; i++) {
		size_t mib = strtoul(argv[i], NULL, 0), len = mib << 20;
		double stock = anon_fork_latency(len);
		int fd = dev_open();
		char *mem = dev_map(fd, len);
		double par[3][LAT_ROUNDS], ready[3][LAT_ROUNDS];

		memset(mem, 1, len);
		for (int r = 0; r < LAT_ROUNDS; r++) {
			int p[2];

			CHECK(pipe(p) == 0, "pipe");
			for (int m = 0; m < 3; m++) {
				CHECK(ioctl(fd, WBDEV_IOC_SET_FORK_MODE,
					    modes[m]) == 0, "mode");
				double t0 = now_sec();
				pid_t pid = fork();

				if (!pid) {
					double t1 = now_sec(), t2;

					if (modes[m] == WBDEV_FORK_COPY) {
						struct heap h = { .fd = fd,
							.mem = (void *)mem,
							.pages = len / PAGE };

						child_adopt(&h);
					}
					if (modes[m] != WBDEV_FORK_STUB &&
					    mem[len - 1] != 1)
						_exit(1);
					t2 = now_sec();
					write(p[1], &t1, sizeof(t1));
					write(p[1], &t2, sizeof(t2));
					_exit(0);
				}
				double t_parent = now_sec() - t0, t1, t2;
				int st;

				CHECK(read(p[0], &t1, sizeof(t1)) == 8 &&
				      read(p[0], &t2, sizeof(t2)) == 8, "pipe");
				waitpid(pid, &st, 0);
				CHECK(WIFEXITED(st) && !WEXITSTATUS(st),
				      "child");
				par[m][r] = t_parent;
				ready[m][r] = t2 - t1;
			}
			close(p[0]);
			close(p[1]);
		}
		printf("fork-latency heap=%zuMiB stock_anon_ms=%.3f", mib,
		       stock * 1e3);
		for (int m = 0; m < 3; m++)
			printf(" fork_%s_ms=%.3f", names[m],
			       median3(par[m]) * 1e3);
		printf(" child_ready_copy_ms=%.3f child_ready_auto_ms=%.3f "
		       "auto_vs_stock=%.1fx (median of %d)\n",
		       median3(ready[1]) * 1e3, median3(ready[2]) * 1e3,
		       median3(par[2]) / stock, LAT_ROUNDS);
		munmap(mem, len);
		close(fd);
	}
}

/*
 * Plain fork(), as a new user would: no fork mode, no claim.  The child
 * must see the parent's memory of the fork instant in its own private
 * copy (its first access, by itself or by the kernel, maps it), keep
 * being tracked through the inherited fd (its own log: every copied page
 * reported once, then its own writes), and neither process may see the
 * other's writes afterwards.
 */
static void test_auto(void)
{
	size_t pages = 64, len = pages * PAGE;
	int fd = dev_open(), p[2], q[2], st;
	char *a = dev_map(fd, len);
	struct wbdev_info info;
	pid_t pid;

	for (size_t i = 0; i < pages; i += 2)	/* half resident */
		a[i * PAGE] = (char)(i + 1);
	CHECK(dev_collect(fd, logbuf, pages, WBDEV_IOC_COLLECT_REPROTECT) ==
	      pages / 2, "parent log before fork");
	CHECK(pipe(p) == 0 && pipe(q) == 0, "pipes");
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		char c = 0;
		size_t n;

		/* the kernel writes first: read(2) into the heap */
		CHECK(write(q[1], "k", 1) == 1, "poke");
		CHECK(read(q[0], a + 3 * PAGE, 1) == 1, "read into heap");
		CHECK(a[3 * PAGE] == 'k', "kernel write seen");
		for (size_t i = 0; i < pages; i += 2)
			CHECK(a[i * PAGE] == (char)(i + 1), "child sees %zu", i);
		/* the parent writes now: the child must not see it */
		CHECK(write(p[1], "w", 1) == 1 && read(q[0], &c, 1) == 1,
		      "sync");
		CHECK(a[0] == 1, "parent's write after fork leaked");
		/* its own log: the copied pages plus page 3 */
		n = dev_collect(fd, logbuf, 1 << 16,
				WBDEV_IOC_COLLECT_REPROTECT);
		CHECK(n == pages / 2 + 1, "child log n=%zu", n);
		for (size_t i = 0; i < n; i++)
			CHECK(logbuf[i] >= (uintptr_t)a &&
			      logbuf[i] < (uintptr_t)a + len, "in heap");
		a[5 * PAGE] = 9;
		n = dev_collect(fd, logbuf, 1 << 16,
				WBDEV_IOC_COLLECT_REPROTECT);
		CHECK(n == 1 && logbuf[0] == (uintptr_t)a + 5 * PAGE,
		      "child's own write n=%zu", n);
		CHECK(ioctl(fd, WBDEV_IOC_INFO, &info) == 0 &&
		      info.mappings == 1 && info.mapped_pages == pages,
		      "child's context: %llu mappings",
		      (unsigned long long)info.mappings);
		memset(a, 7, len);	/* must not reach the parent */
		_exit(0);
	}
	char c;

	close(p[1]);	/* a child that dies gives EOF */
	CHECK(read(p[0], &c, 1) == 1, "wait for child");
	a[0] = 42;
	CHECK(write(q[1], "g", 1) == 1, "go");
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
	      WEXITSTATUS(st) == 0, "child failed (status %#x)", st);
	CHECK(a[0] == 42 && a[2 * PAGE] == 3 && a[5 * PAGE] == 0,
	      "child's writes reached the parent");
	/* the parent's log: only its own write after the fork */
	size_t n = dev_collect(fd, logbuf, 1 << 16,
			       WBDEV_IOC_COLLECT_REPROTECT);
	CHECK(n == 1 && logbuf[0] == (uintptr_t)a, "parent log n=%zu", n);
	/* a child whose first act is a call through the fd, then a fork */
	pid = fork();
	CHECK(pid >= 0, "fork 2");
	if (pid == 0) {
		n = dev_collect(fd, logbuf, 1 << 16,
				WBDEV_IOC_COLLECT_REPROTECT);
		/* every resident page: the even ones and page 5, which
		 * the parent's check above read in */
		if (n != pages / 2 + 1 || a[0] != 42 || a[2 * PAGE] != 3)
			_exit(2);
		a[PAGE] = 1;
		pid = fork();	/* the grandchild gets its copy too */
		if (pid == 0)
			_exit(a[PAGE] == 1 && a[0] == 42 ? 0 : 3);
		if (pid < 0 || waitpid(pid, &st, 0) != pid || st)
			_exit(4);
		_exit(0);
	}
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
	      WEXITSTATUS(st) == 0, "second child failed (status %#x)", st);
	CHECK(a[PAGE] == 0, "second child's write reached the parent");
	munmap(a, len);
	close(fd);
	close(p[0]);
	close(q[0]);
	close(q[1]);
	printf("kmod-fork: plain fork gives the child its heap: ok\n");
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1 && !strcmp(argv[1], "latency"))
		test_latency(argc - 2, argv + 2);
	else if (argc > 1 && !strcmp(argv[1], "auto"))
		test_auto();
	else {
		test_auto();
		test_fork();
	}
	return 0;
}
