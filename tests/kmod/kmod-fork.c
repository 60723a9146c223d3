/*
 * kmod-fork.c - fork with WBDEV_FORK_COPY while a parent thread keeps
 * writing.  The child claims the copy and checks that it is exactly the
 * parent's memory at one instant; afterwards neither process may see the
 * other's writes.
 *
 * Usage: kmod-fork                 correctness test (several forks)
 *        kmod-fork latency MIB...  print fork latency for resident heaps
 */
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include "kmod-util.h"

#define MARK (1ULL << 63)	/* child's writes carry this bit */

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
static void test_latency(int argc, char **argv)
{
	test_name = "fork-latency";
	for (int i = 0; i < argc; i++) {
		size_t mib = strtoul(argv[i], NULL, 0), len = mib << 20;
		int fd = dev_open();
		char *mem = dev_map(fd, len);
		double best_plain = 1e9, best_copy = 1e9, best_adopt = 1e9;

		memset(mem, 1, len);
		for (int r = 0; r < 3; r++) {
			int p[2];

			CHECK(pipe(p) == 0, "pipe");
			for (int copy = 0; copy < 2; copy++) {
				ioctl(fd, WBDEV_IOC_SET_FORK_MODE,
				      copy ? WBDEV_FORK_COPY : WBDEV_FORK_STUB);
				double t0 = now_sec();
				pid_t pid = fork();

				if (!pid) {
					double t1 = now_sec(), t2;

					if (copy) {
						struct heap h = { .fd = fd,
							.mem = (void *)mem,
							.pages = len / PAGE };
						int nfd = child_adopt(&h);

						(void)nfd;
						if (mem[len - 1] != 1)
							_exit(1);
					}
					t2 = now_sec();
					write(p[1], &t1, sizeof(t1));
					write(p[1], &t2, sizeof(t2));
					_exit(0);
				}
				double t_parent = now_sec() - t0, t1, t2;
				int st;

				ioctl(fd, WBDEV_IOC_SET_FORK_MODE,
				      WBDEV_FORK_STUB);
				CHECK(read(p[0], &t1, sizeof(t1)) == 8 &&
				      read(p[0], &t2, sizeof(t2)) == 8, "pipe");
				waitpid(pid, &st, 0);
				CHECK(WIFEXITED(st) && !WEXITSTATUS(st),
				      "child");
				if (!copy) {
					if (t_parent < best_plain)
						best_plain = t_parent;
				} else {
					if (t_parent < best_copy)
						best_copy = t_parent;
					if (t2 - t1 < best_adopt)
						best_adopt = t2 - t1;
				}
			}
			close(p[0]);
			close(p[1]);
		}
		printf("fork-latency heap=%zuMiB fork_stub_ms=%.3f "
		       "fork_copy_ms=%.3f child_adopt_ms=%.3f (best of 3)\n",
		       mib, best_plain * 1e3, best_copy * 1e3,
		       best_adopt * 1e3);
		munmap(mem, len);
		close(fd);
	}
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1 && !strcmp(argv[1], "latency"))
		test_latency(argc - 2, argv + 2);
	else
		test_fork();
	return 0;
}
