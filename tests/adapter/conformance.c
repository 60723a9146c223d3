/*
 * conformance.c - the adapter's conformance suite, written once and run
 * against every backend: the backend is the one WBDEV_BACKEND names (kmod,
 * uffd, auto; see backend_env.h).
 *
 * usage: wbdev-conformance [--expect NAME|unsupported] [--quick] [TEST...]
 *   --expect NAME        fail unless the backend opened is NAME
 *   --expect unsupported assert wbdev_open() refuses with -ENODEV
 *   --quick              fewer fuzzer operations (slow VMs); sizes unchanged
 * Output is TAP-like ("ok N - name", "not ok N - name"); exit 0 when all
 * pass, 1 otherwise.  Environment: WBDEV_FUZZ_OPS (fuzzer operations),
 * WBDEV_FUZZ_SEED.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wbdev.h"
#include "backend_env.h"

static const char *expect;	/* backend name, "unsupported" or NULL */
static bool quick;
static size_t ps;		/* page size */

/* Failure reporting: the first failed check of a test is printed. */
static int test_failed;
#define CHECK(cond, ...) do {						\
	if (!(cond)) {							\
		if (!test_failed) {					\
			printf("#   %s:%d: check failed: %s: ",		\
			       __FILE__, __LINE__, #cond);		\
			printf(__VA_ARGS__);				\
			printf("\n");					\
		}							\
		test_failed = 1;					\
		return;							\
	}								\
} while (0)
#define CHECK_RC(call, want) do {					\
	int rc_ = (call);						\
	CHECK(rc_ == (want), "%s returned %d (%s), want %d",		\
	      #call, rc_, wbdev_strerror(rc_), (want));			\
} while (0)

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
	va_list ap;

	printf("#   ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static uint64_t rnd(uint64_t *s)
{
	/* xorshift64*: reproducible, no global libc state. */
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

static wbdev_t *open_or_fail(void)
{
	wbdev_t *w = NULL;
	int rc = test_wbdev_open(&w);

	if (rc) {
		printf("#   wbdev_open: %d (%s)\n", rc, wbdev_strerror(rc));
		return NULL;
	}
	return w;
}

/*
 * Collect [start, start+len) (NULL/0: everything) with a buffer of max
 * entries until done; mark each page found in seen[] (indexed from base),
 * fail on a page outside [base, base + npages*ps), unaligned, or twice.
 * Returns the number of pages or a negative error; *calls counts calls.
 */
static long collect_all(wbdev_t *w, void *start, size_t len, unsigned flags,
			size_t max, char *base, size_t npages,
			unsigned char *seen, int *bad)
{
	void **buf = calloc(max, sizeof(void *));
	struct wbdev_collect c;
	long total = 0;
	int rc;

	*bad = 0;
	if (!buf)
		return -ENOMEM;
	memset(&c, 0, sizeof(c));
	c.start = start;
	c.len = len;
	c.flags = flags;
	c.pages = buf;
	c.max = max;
	do {
		size_t i;

		rc = wbdev_collect(w, &c);
		if (rc < 0)
			break;
		if (c.count > max)
			*bad = 1;
		for (i = 0; i < c.count && i < max; i++) {
			uintptr_t p = (uintptr_t)buf[i];
			size_t idx;

			if (p % ps || p < (uintptr_t)base ||
			    p >= (uintptr_t)base + npages * ps) {
				*bad = 2;
				continue;
			}
			idx = (p - (uintptr_t)base) / ps;
			if (seen[idx])
				*bad = 3;
			seen[idx] = 1;
			total++;
		}
	} while (rc == 1);
	free(buf);
	return rc < 0 ? rc : total;
}

/* ---------------------------------------------------------------- tests */

static void t_open_close(void)
{
	wbdev_t *w = open_or_fail();
	unsigned caps;

	CHECK(w, "wbdev_open failed");
	note("backend %s, caps 0x%x (kernel writes %s, fork tracking %s)",
	     wbdev_backend_name(w), wbdev_caps(w),
	     wbdev_caps(w) & WBDEV_CAP_KERNEL_WRITES ? "recorded" : "NOT recorded",
	     wbdev_caps(w) & WBDEV_CAP_FORK_TRACKING ? "yes" : "no");
	if (expect)
		CHECK(!strcmp(wbdev_backend_name(w), expect),
		      "backend %s, expected %s", wbdev_backend_name(w), expect);
	CHECK(wbdev_page_size(w) == ps, "page size %zu", wbdev_page_size(w));
	CHECK((wbdev_backend(w) == WBDEV_BACKEND_KMOD &&
	       !strcmp(wbdev_backend_name(w), "kmod")) ||
	      (wbdev_backend(w) == WBDEV_BACKEND_UFFD &&
	       !strcmp(wbdev_backend_name(w), "uffd")), "id/name mismatch");
	caps = wbdev_caps(w);
	CHECK(!(caps & ~(WBDEV_CAP_KERNEL_WRITES | WBDEV_CAP_COLLECT_REPROTECT |
			 WBDEV_CAP_FORK_TRACKING | WBDEV_CAP_UNPROTECT)),
	      "unknown caps 0x%x", caps);
	CHECK_RC(wbdev_close(w), 0);
	/* Double close is caught while the freed handle is not reused. */
	CHECK_RC(wbdev_close(w), -EBADF);
}

static void t_bad_inputs(void)
{
	struct wbdev_options o;
	struct wbdev_collect c;
	struct wbdev_stats stats;
	wbdev_t *w, *w2 = NULL, *out = (wbdev_t *)1;
	char *p, *q, *stackbuf[8];
	void *pages[4], *list[3];
	uint64_t foreign_handle[64];
	char *heap = malloc(4 * ps);
	const char *env = getenv("WBDEV_BACKEND");
	char *saved = env ? strdup(env) : NULL;
	size_t np = 8;
	int rc;

	CHECK(heap, "malloc");
	/* Opening. */
	CHECK_RC(wbdev_open(NULL, NULL), -EINVAL);
	memset(&o, 0, sizeof(o));
	o.backend = (enum wbdev_backend_id)42;
	CHECK_RC(wbdev_open(&out, &o), -EINVAL);
	CHECK(out == NULL, "*out not cleared on failure");
	/* The adapter reads no environment: its caller decides. */
	setenv("WBDEV_BACKEND", "bogus", 1);
	rc = wbdev_open(&out, NULL);
	if (saved)
		setenv("WBDEV_BACKEND", saved, 1);
	else
		unsetenv("WBDEV_BACKEND");
	free(saved);
	CHECK(rc == 0 || rc == -ENODEV,
	      "wbdev_open(auto) read WBDEV_BACKEND=bogus: %d", rc);
	if (rc == 0)
		CHECK_RC(wbdev_close(out), 0);

	/* A NULL handle and a foreign one (not from wbdev_open). */
	memset(foreign_handle, 0xa5, sizeof(foreign_handle));
	wbdev_t *bad[2] = { NULL, (wbdev_t *)foreign_handle };
	for (int i = 0; i < 2; i++) {
		wbdev_t *b = bad[i];
		void *a;

		memset(&c, 0, sizeof(c));
		c.pages = pages;
		c.max = 4;
		CHECK_RC(wbdev_close(b), -EBADF);
		CHECK_RC(wbdev_map(b, NULL, ps, &a), -EBADF);
		CHECK_RC(wbdev_unmap(b, heap, ps), -EBADF);
		CHECK_RC(wbdev_discard(b, heap, ps), -EBADF);
		CHECK_RC(wbdev_protect(b, heap, ps), -EBADF);
		CHECK_RC(wbdev_unprotect(b, heap, ps), -EBADF);
		CHECK_RC(wbdev_protect_pages(b, (void *const *)&heap, 1), -EBADF);
		CHECK_RC(wbdev_collect(b, &c), -EBADF);
		CHECK_RC(wbdev_fork_prepare(b), -EBADF);
		CHECK_RC(wbdev_fork_parent(b), -EBADF);
		CHECK_RC(wbdev_fork_child(b), -EBADF);
		CHECK_RC(wbdev_get_stats(b, &stats), -EBADF);
		CHECK(wbdev_caps(b) == 0 && wbdev_page_size(b) == 0 &&
		      !strcmp(wbdev_backend_name(b), "none"), "getters");
	}

	w = open_or_fail();
	CHECK(w, "open");
	w2 = open_or_fail();
	CHECK(w2, "second open");
	/* Mapping. */
	CHECK_RC(wbdev_map(w, NULL, ps, NULL), -EINVAL);
	CHECK_RC(wbdev_map(w, NULL, 0, (void **)&p), -EINVAL);
	CHECK_RC(wbdev_map(w, NULL, ps + 1, (void **)&p), -EINVAL);
	CHECK_RC(wbdev_map(w, NULL, np * ps, (void **)&p), 0);
	CHECK_RC(wbdev_map(w2, NULL, np * ps, (void **)&q), 0);
	CHECK_RC(wbdev_protect(w, p, np * ps), 0);

	/* Ranges: unaligned, empty, out of range, foreign, wrapping. */
	int (*rangeop[4])(wbdev_t *, void *, size_t) = {
		wbdev_unmap, wbdev_discard, wbdev_protect, wbdev_unprotect };
	for (int i = 0; i < 4; i++) {
		int (*op)(wbdev_t *, void *, size_t) = rangeop[i];

		CHECK_RC(op(w, NULL, ps), -EINVAL);
		CHECK_RC(op(w, p + 1, ps), -EINVAL);
		CHECK_RC(op(w, p, ps - 1), -EINVAL);
		CHECK_RC(op(w, p, 0), -EINVAL);
		CHECK_RC(op(w, p, (np + 1) * ps), -EINVAL);
		CHECK_RC(op(w, p - ps, 2 * ps), -EINVAL);
		CHECK_RC(op(w, p + ps, (size_t)-ps), -EINVAL);
		CHECK_RC(op(w, q, ps), -EINVAL);	/* other handle's */
		CHECK_RC(op(w, heap, ps), -EINVAL);	/* malloc memory */
		CHECK_RC(op(w, (void *)((uintptr_t)stackbuf & ~(ps - 1)), ps),
			 -EINVAL);
	}
	/* protect_pages validates every entry before changing anything. */
	p[2 * ps] = 1;			/* written after protection */
	list[0] = p + 2 * ps + 17;
	list[1] = q;			/* foreign */
	CHECK_RC(wbdev_protect_pages(w, list, 2), -EINVAL);
	list[1] = heap;
	CHECK_RC(wbdev_protect_pages(w, list, 2), -EINVAL);
	list[1] = p + np * ps;		/* just past the mapping */
	CHECK_RC(wbdev_protect_pages(w, list, 2), -EINVAL);
	CHECK_RC(wbdev_protect_pages(w, NULL, 1), -EINVAL);
	CHECK_RC(wbdev_protect_pages(w, NULL, 0), 0);
	{
		unsigned char seen[8] = { 0 };
		int bad;
		long n = collect_all(w, p, np * ps, 0, 8, p, np, seen, &bad);

		CHECK(n >= 1 && seen[2] && !bad,
		      "rejected protect_pages changed state (n %ld seen %d bad %d)",
		      n, seen[2], bad);
	}
	/* Collect arguments. */
	CHECK_RC(wbdev_collect(w, NULL), -EINVAL);
	memset(&c, 0, sizeof(c));
	c.max = 4;
	CHECK_RC(wbdev_collect(w, &c), -EINVAL);		/* NULL buffer */
	c.pages = pages;
	c.max = 0;
	CHECK_RC(wbdev_collect(w, &c), -EINVAL);		/* empty buffer */
	c.max = 4;
	c.flags = 0x80;
	CHECK_RC(wbdev_collect(w, &c), -EINVAL);		/* unknown flag */
	c.flags = 0;
	c.start = p + 1;
	c.len = ps;
	CHECK_RC(wbdev_collect(w, &c), -EINVAL);		/* unaligned */
	c.start = p;
	c.len = ps + 3;
	CHECK_RC(wbdev_collect(w, &c), -EINVAL);
	c.len = ps;
	c.cursor = (uintptr_t)p + 5 * ps;
	CHECK_RC(wbdev_collect(w, &c), -EINVAL);		/* cursor outside */
	/* Collecting untracked memory finds nothing, it is no error. */
	memset(&c, 0, sizeof(c));
	c.pages = pages;
	c.max = 4;
	c.start = q;
	c.len = np * ps;
	CHECK_RC(wbdev_collect(w, &c), 0);
	CHECK(c.count == 0, "pages of another handle reported");
	CHECK_RC(wbdev_get_stats(w, NULL), -EINVAL);
	CHECK_RC(wbdev_get_stats(w, &stats), 0);
	CHECK(stats.mapped_bytes == np * ps, "mapped_bytes %llu",
	      (unsigned long long)stats.mapped_bytes);
	/* fork_parent without fork_prepare is a call-order error. */
	CHECK_RC(wbdev_fork_parent(w), -EINVAL);
	/* Unmap: unknown, twice, then use after close. */
	CHECK_RC(wbdev_unmap(w, p, np * ps), 0);
	CHECK_RC(wbdev_unmap(w, p, np * ps), -EINVAL);
	CHECK_RC(wbdev_protect(w, p, ps), -EINVAL);
	CHECK_RC(wbdev_close(w), 0);
	CHECK_RC(wbdev_close(w), -EBADF);
	CHECK_RC(wbdev_close(w2), 0);
	free(heap);
}

static void t_basic_tracking(void)
{
	size_t np = 256, i;
	unsigned char *seen = calloc(np, 1), *want = calloc(np, 1);
	wbdev_t *w = open_or_fail();
	char *p;
	int bad;
	long n;

	CHECK(w && seen && want, "setup");
	CHECK_RC(wbdev_map(w, NULL, np * ps, (void **)&p), 0);
	for (i = 0; i < np * ps; i += 64)
		CHECK(p[i] == 0, "new memory not zero at %zu", i);
	CHECK_RC(wbdev_protect(w, p, np * ps), 0);
	n = collect_all(w, NULL, 0, WBDEV_COLLECT_REPROTECT, 64, p, np, seen, &bad);
	CHECK(n == 0 && !bad, "%ld pages reported before any write", n);
	/* Writes, reads: only written pages are reported. */
	for (i = 0; i < np; i++) {
		if (i % 3 == 0 || i % 7 == 0) {
			p[i * ps + (i % ps)] = (char)i;
			want[i] = 1;
		} else if (i % 2) {
			(void)*(volatile char *)(p + i * ps);
		}
	}
	memset(seen, 0, np);
	n = collect_all(w, NULL, 0, WBDEV_COLLECT_REPROTECT, 64, p, np, seen, &bad);
	CHECK(n >= 0 && !bad, "collect %ld bad %d", n, bad);
	for (i = 0; i < np; i++) {
		CHECK(!want[i] || seen[i], "written page %zu missing", i);
		CHECK(want[i] || !seen[i], "page %zu reported, not written", i);
	}
	/* Re-protected: nothing more until written again. */
	memset(seen, 0, np);
	n = collect_all(w, NULL, 0, WBDEV_COLLECT_REPROTECT, 64, p, np, seen, &bad);
	CHECK(n == 0, "%ld pages reported again after re-protect", n);
	p[5 * ps] = 1;
	n = collect_all(w, NULL, 0, WBDEV_COLLECT_REPROTECT, 64, p, np, seen, &bad);
	CHECK(n == 1 && seen[5], "rewrite: %ld pages", n);
	/* Data survives tracking. */
	for (i = 0; i < np; i++)
		if (want[i])
			CHECK(p[i * ps + (i % ps)] == (char)i || i == 5,
			      "data lost in page %zu", i);
	CHECK_RC(wbdev_close(w), 0);
	free(seen);
	free(want);
}

static void t_collect_without_reprotect(void)
{
	unsigned char seen[16] = { 0 };
	wbdev_t *w = open_or_fail();
	char *p;
	int bad;
	long n;

	CHECK(w, "open");
	CHECK_RC(wbdev_map(w, NULL, 16 * ps, (void **)&p), 0);
	CHECK_RC(wbdev_protect(w, p, 16 * ps), 0);
	p[3 * ps] = 1;
	n = collect_all(w, NULL, 0, 0, 16, p, 16, seen, &bad);
	CHECK(n == 1 && seen[3] && !bad, "without reprotect: %ld", n);
	/* The page was not protected again: a write to it is fine, and a
	 * re-protecting collection may report it; after that it is clean. */
	p[3 * ps] = 2;
	memset(seen, 0, sizeof(seen));
	n = collect_all(w, NULL, 0, WBDEV_COLLECT_REPROTECT, 16, p, 16, seen, &bad);
	CHECK(n <= 1 && !bad && (n == 0 || seen[3]), "%ld pages", n);
	memset(seen, 0, sizeof(seen));
	n = collect_all(w, NULL, 0, WBDEV_COLLECT_REPROTECT, 16, p, 16, seen, &bad);
	CHECK(n == 0, "%ld pages after re-protecting collection", n);
	p[4 * ps] = 2;
	n = collect_all(w, NULL, 0, WBDEV_COLLECT_REPROTECT, 16, p, 16, seen, &bad);
	CHECK(n == 1 && seen[4], "tracking after: %ld", n);
	CHECK_RC(wbdev_close(w), 0);
}

/* Reports stay per page even where transparent huge pages could form. */
static void t_page_granularity(void)
{
	size_t len = (size_t)8 << 20, np = len / ps;
	unsigned char *seen = calloc(np, 1);
	wbdev_t *w = open_or_fail();
	char *p;
	int bad;
	long n;

	CHECK(w && seen, "setup");
	CHECK_RC(wbdev_map(w, NULL, len, (void **)&p), 0);
	memset(p, 1, len);		/* populate: huge pages if allowed */
	CHECK_RC(wbdev_protect(w, p, len), 0);
	/* Drain: writes before the protection may still be reported. */
	n = collect_all(w, NULL, 0, WBDEV_COLLECT_REPROTECT, 4096, p, np, seen,
			&bad);
	CHECK(n >= 0 && !bad, "drain: %ld", n);
	memset(seen, 0, np);
	p[(2 << 20) + 5] = 2;
	p[(6 << 20) + ps + 7] = 2;
	n = collect_all(w, NULL, 0, WBDEV_COLLECT_REPROTECT, 4096, p, np, seen,
			&bad);
	CHECK(n == 2 && seen[(2 << 20) / ps] && seen[(6 << 20) / ps + 1] && !bad,
	      "%ld pages reported for 2 written", n);
	CHECK_RC(wbdev_close(w), 0);
	free(seen);
}

/* Short buffers and many separate runs (> 512: a PAGEMAP_SCAN corner). */
static void t_short_buffers(void)
{
	size_t np = 8192, i, want = 0;
	unsigned char *seen = calloc(np, 1), *wr = calloc(np, 1);
	size_t maxes[] = { 1, 7, 511, 513, 100000 };
	wbdev_t *w = open_or_fail();
	char *p;
	int bad;
	long n;

	CHECK(w && seen && wr, "setup");
	CHECK_RC(wbdev_map(w, NULL, np * ps, (void **)&p), 0);
	for (size_t m = 0; m < sizeof(maxes) / sizeof(maxes[0]); m++) {
		for (int reprotect = 0; reprotect < 2; reprotect++) {
			unsigned fl = reprotect ? WBDEV_COLLECT_REPROTECT : 0;

			CHECK_RC(wbdev_protect(w, p, np * ps), 0);
			/* Every other page, plus some runs of 3. */
			want = 0;
			memset(wr, 0, np);
			for (i = 0; i < np; i++) {
				if (i % 2 == 0 || i % 64 < 3) {
					p[i * ps] = 1;
					wr[i] = 1;
					want++;
				}
			}
			memset(seen, 0, np);
			n = collect_all(w, NULL, 0, fl, maxes[m], p, np, seen,
					&bad);
			CHECK(!bad, "max %zu: bad page (%d)", maxes[m], bad);
			CHECK(n == (long)want, "max %zu reprotect %d: %ld of %zu",
			      maxes[m], reprotect, n, want);
			for (i = 0; i < np; i++)
				CHECK(seen[i] == wr[i], "max %zu: page %zu",
				      maxes[m], i);
		}
	}
	CHECK_RC(wbdev_close(w), 0);
	free(seen);
	free(wr);
}

/* Sub-ranges, gaps between mappings, splits by partial unmap. */
static void t_ranges_and_unmap(void)
{
	unsigned char seen[64];
	wbdev_t *w = open_or_fail();
	char *a, *b;
	int bad;
	long n;

	CHECK(w, "open");
	CHECK_RC(wbdev_map(w, NULL, 32 * ps, (void **)&a), 0);
	CHECK_RC(wbdev_map(w, NULL, 32 * ps, (void **)&b), 0);
	CHECK_RC(wbdev_protect(w, a, 32 * ps), 0);
	CHECK_RC(wbdev_protect(w, b, 32 * ps), 0);
	a[1 * ps] = a[10 * ps] = a[20 * ps] = 1;
	b[0] = b[31 * ps] = 1;
	/* Only the range asked for is reported and re-protected. */
	memset(seen, 0, sizeof(seen));
	n = collect_all(w, a + 8 * ps, 8 * ps, WBDEV_COLLECT_REPROTECT, 4,
			a, 32, seen, &bad);
	CHECK(n == 1 && seen[10] && !bad, "sub-range: %ld", n);
	memset(seen, 0, sizeof(seen));
	n = collect_all(w, a, 32 * ps, WBDEV_COLLECT_REPROTECT, 4, a, 32, seen,
			&bad);
	CHECK(n == 2 && seen[1] && seen[20] && !bad, "rest of a: %ld", n);
	/* A range covering both mappings and whatever lies between. */
	{
		char *lo = a < b ? a : b, *hi = a < b ? b : a;
		size_t span = (size_t)(hi - lo) + 32 * ps;
		unsigned char *s2 = calloc(span / ps, 1);

		CHECK(s2, "calloc");
		n = collect_all(w, lo, span, WBDEV_COLLECT_REPROTECT, 3, lo,
				span / ps, s2, &bad);
		CHECK(n == 2 && s2[(b - lo) / ps] && s2[(b - lo) / ps + 31] &&
		      !bad, "across mappings: %ld", n);
		free(s2);
	}
	/* Punch a hole in a: the two pieces keep tracking. */
	CHECK_RC(wbdev_unmap(w, a + 8 * ps, 8 * ps), 0);
	CHECK_RC(wbdev_unmap(w, a + 8 * ps, ps), -EINVAL);
	CHECK_RC(wbdev_protect(w, a, 32 * ps), -EINVAL);
	CHECK_RC(wbdev_protect(w, a + 4 * ps, 8 * ps), -EINVAL);
	a[2 * ps] = a[16 * ps] = a[31 * ps] = 3;
	memset(seen, 0, sizeof(seen));
	n = collect_all(w, NULL, 0, WBDEV_COLLECT_REPROTECT, 2, a, 32, seen,
			&bad);
	CHECK(n == 3 && seen[2] && seen[16] && seen[31],
	      "after split: %ld", n);
	/* Unmapping across the hole fails and changes nothing. */
	CHECK_RC(wbdev_unmap(w, a, 32 * ps), -EINVAL);
	CHECK(a[2 * ps] == 3, "memory gone after refused unmap");
	CHECK_RC(wbdev_unmap(w, a, 8 * ps), 0);
	CHECK_RC(wbdev_unmap(w, a + 16 * ps, 16 * ps), 0);
	CHECK_RC(wbdev_close(w), 0);	/* b is unmapped by close */
}

static void t_discard(void)
{
	unsigned char seen[32];
	wbdev_t *w = open_or_fail();
	char *p;
	int bad;
	long n;

	CHECK(w, "open");
	CHECK_RC(wbdev_map(w, NULL, 32 * ps, (void **)&p), 0);
	memset(p, 0x5a, 32 * ps);
	CHECK_RC(wbdev_protect(w, p, 32 * ps), 0);
	p[3 * ps] = 7;
	p[20 * ps] = 7;
	CHECK_RC(wbdev_discard(w, p, 16 * ps), 0);
	for (size_t i = 0; i < 16 * ps; i += 128)
		CHECK(p[i] == 0, "discarded byte %zu reads %d", i, p[i]);
	CHECK(p[16 * ps] == 0x5a, "memory beyond the discard changed");
	memset(seen, 0, sizeof(seen));
	n = collect_all(w, NULL, 0, WBDEV_COLLECT_REPROTECT, 32, p, 32, seen,
			&bad);
	CHECK(seen[3] && seen[20] && !bad,
	      "written before discard: page 3 %d, page 20 %d", seen[3],
	      seen[20]);
	if (n > 2)
		note("discard: %ld pages reported for 2 written (allowed)", n);
	/* Still tracked after a discard. */
	memset(seen, 0, sizeof(seen));
	n = collect_all(w, NULL, 0, WBDEV_COLLECT_REPROTECT, 32, p, 32, seen,
			&bad);
	CHECK(n == 0, "%ld pages reported after re-protect", n);
	p[5 * ps] = 1;
	n = collect_all(w, NULL, 0, WBDEV_COLLECT_REPROTECT, 32, p, 32, seen,
			&bad);
	CHECK(n == 1 && seen[5], "write after discard: %ld", n);
	CHECK(p[5 * ps] == 1 && p[6 * ps] == 0, "contents");
	CHECK_RC(wbdev_close(w), 0);
}

/* Pages named by addresses: any address inside, duplicates, any order. */
static void t_protect_pages(void)
{
	unsigned char seen[32];
	wbdev_t *w = open_or_fail();
	void *list[6];
	char *p;
	int bad;
	long n;

	CHECK(w, "open");
	CHECK_RC(wbdev_map(w, NULL, 32 * ps, (void **)&p), 0);
	memset(p, 1, 32 * ps);
	CHECK_RC(wbdev_protect(w, p, 32 * ps), 0);
	memset(seen, 0, sizeof(seen));
	collect_all(w, NULL, 0, WBDEV_COLLECT_REPROTECT, 32, p, 32, seen, &bad);
	/* Write everything, then protect some pages only. */
	memset(p, 2, 32 * ps);
	list[0] = p + 9 * ps + ps - 1;
	list[1] = p + 2 * ps;
	list[2] = p + 3 * ps + 100;
	list[3] = p + 2 * ps + 5;
	list[4] = p + 10 * ps;
	list[5] = p + 31 * ps;
	CHECK_RC(wbdev_protect_pages(w, list, 6), 0);
	p[3 * ps] = 3;
	memset(seen, 0, sizeof(seen));
	n = collect_all(w, NULL, 0, WBDEV_COLLECT_REPROTECT, 32, p, 32, seen,
			&bad);
	CHECK(n >= 1 && !bad, "collect %ld", n);
	CHECK(seen[3], "written protected page missing");
	/* Written before their protection, never collected: a backend may
	 * still report them (kmod does: as in the 2003 design, only a
	 * collection clears the log); uffd forgets them. */
	if (seen[2] || seen[9] || seen[10] || seen[31])
		note("pages written before protect_pages still reported "
		     "(allowed): %d %d %d %d", seen[2], seen[9], seen[10],
		     seen[31]);
	CHECK(seen[0] && seen[30], "unprotected written pages not reported");
	/* After that collection they are clean whatever the backend. */
	p[9 * ps] = 4;
	memset(seen, 0, sizeof(seen));
	n = collect_all(w, NULL, 0, WBDEV_COLLECT_REPROTECT, 32, p, 32, seen,
			&bad);
	CHECK(n == 1 && seen[9] && !bad, "after collection: %ld pages", n);
	CHECK_RC(wbdev_close(w), 0);
}

static long minor_faults(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

/*
 * wbdev_unprotect: the range is reported whole by the next collection,
 * written or not; writes to its resident pages take no fault; tracking
 * resumes once it is protected again.  A backend that cannot refuses
 * with -ENOTSUP, changes nothing and must not advertise
 * WBDEV_CAP_UNPROTECT (which says the call is cheap, not only possible).
 */
static void t_unprotect(void)
{
	unsigned char seen[32];
	wbdev_t *w = open_or_fail();
	char *p;
	int bad, i, rc;
	long n, faults;

	CHECK(w, "open");
	CHECK_RC(wbdev_map(w, NULL, 32 * ps, (void **)&p), 0);
	memset(p, 1, 16 * ps);		/* pages 0-15 resident, 16-31 not */
	CHECK_RC(wbdev_protect(w, p, 32 * ps), 0);
	memset(seen, 0, sizeof(seen));
	collect_all(w, NULL, 0, WBDEV_COLLECT_REPROTECT, 32, p, 32, seen, &bad);
	/* Pages 8-19: resident and not; nothing written yet. */
	rc = wbdev_unprotect(w, p + 8 * ps, 12 * ps);
	if (rc == -ENOTSUP) {
		CHECK(!(wbdev_caps(w) & WBDEV_CAP_UNPROTECT),
		      "WBDEV_CAP_UNPROTECT advertised but -ENOTSUP");
		p[3 * ps] = 2;
		memset(seen, 0, sizeof(seen));
		n = collect_all(w, NULL, 0, WBDEV_COLLECT_REPROTECT, 32, p, 32,
				seen, &bad);
		CHECK(n == 1 && seen[3] && !bad, "refused unprotect changed "
		      "state: %ld pages", n);
		note("backend %s: no unprotect (checked -ENOTSUP)",
		     wbdev_backend_name(w));
		CHECK_RC(wbdev_close(w), 0);
		return;
	}
	CHECK(rc == 0, "wbdev_unprotect: %d (%s)", rc, wbdev_strerror(rc));
	faults = minor_faults();
	for (i = 8; i < 16; i++)
		p[i * ps + 7] = 3;
	faults = minor_faults() - faults;
	p[2 * ps] = 4;			/* outside: still tracked */
	memset(seen, 0, sizeof(seen));
	n = collect_all(w, NULL, 0, WBDEV_COLLECT_REPROTECT, 32, p, 32, seen,
			&bad);
	CHECK(!bad, "bad collection (%d)", bad);
	for (i = 8; i < 20; i++)
		CHECK(seen[i], "unprotected page %d not reported", i);
	CHECK(seen[2] && n == 13, "%ld pages reported, want 13", n);
	/* 8 first writes to protected pages would take 8 faults. */
	CHECK(faults <= 2, "%ld minor faults writing 8 unprotected pages",
	      faults);
	for (i = 8; i < 16; i++)
		CHECK(p[i * ps + 7] == 3 && p[i * ps] == 1, "contents");
	CHECK(p[17 * ps] == 0, "non-resident page not zero");
	/* Protected again by that collection: only new writes count. */
	p[9 * ps] = 5;
	memset(seen, 0, sizeof(seen));
	n = collect_all(w, NULL, 0, WBDEV_COLLECT_REPROTECT, 32, p, 32, seen,
			&bad);
	CHECK(n == 1 && seen[9] && !bad, "after reprotect: %ld pages", n);
	/* And by wbdev_protect. */
	CHECK_RC(wbdev_unprotect(w, p, 32 * ps), 0);
	CHECK_RC(wbdev_protect(w, p, 32 * ps), 0);
	p[30 * ps] = 6;
	memset(seen, 0, sizeof(seen));
	n = collect_all(w, NULL, 0, WBDEV_COLLECT_REPROTECT, 32, p, 32, seen,
			&bad);
	CHECK(seen[30] && !bad, "write after protect missing (%ld pages)", n);
	note("%s: 8 writes after unprotect took %ld minor faults (cheap "
	     "unprotect: %s)", wbdev_backend_name(w), faults,
	     wbdev_caps(w) & WBDEV_CAP_UNPROTECT ? "yes" : "no");
	CHECK_RC(wbdev_close(w), 0);
}

/* Writes made by the kernel: read(2) into tracked memory. */
static void t_kernel_writes(void)
{
	unsigned char seen[8];
	wbdev_t *w = open_or_fail();
	int fds[2];
	char *p;
	int bad;
	long n;
	ssize_t r;

	CHECK(w, "open");
	CHECK(pipe(fds) == 0, "pipe");
	CHECK_RC(wbdev_map(w, NULL, 8 * ps, (void **)&p), 0);
	p[ps] = 1;			/* page 1 present, page 2 untouched */
	CHECK_RC(wbdev_protect(w, p, 8 * ps), 0);
	CHECK(write(fds[1], "kernel", 6) == 6, "write");
	r = read(fds[0], p + ps + 10, 6);
	CHECK(r == 6, "read(2) into a protected present page: %zd (%s)", r,
	      r < 0 ? strerror(errno) : "");
	CHECK(write(fds[1], "writes", 6) == 6, "write");
	r = read(fds[0], p + 2 * ps + 10, 6);
	CHECK(r == 6, "read(2) into a protected untouched page: %zd", r);
	CHECK(!memcmp(p + ps + 10, "kernel", 6) &&
	      !memcmp(p + 2 * ps + 10, "writes", 6), "data");
	memset(seen, 0, sizeof(seen));
	n = collect_all(w, NULL, 0, WBDEV_COLLECT_REPROTECT, 8, p, 8, seen, &bad);
	if (wbdev_caps(w) & WBDEV_CAP_KERNEL_WRITES) {
		CHECK(n == 2 && seen[1] && seen[2] && !bad,
		      "kernel writes claimed recorded but %ld pages (1:%d 2:%d)",
		      n, seen[1], seen[2]);
	} else {
		note("backend says kernel writes are not recorded (%ld pages)",
		     n);
		CHECK(!seen[1] || !seen[2],
		      "kernel writes recorded but WBDEV_CAP_KERNEL_WRITES unset");
	}
	close(fds[0]);
	close(fds[1]);
	CHECK_RC(wbdev_close(w), 0);
}

/*
 * uffd only: with userfaultfd(2) refused (a seccomp filter, as in some
 * containers) the backend falls back to /dev/userfaultfd, which needs
 * read-write access to it (root on Debian).  Kernel writes must still be
 * recorded.  Runs in a child: the filter cannot be removed.
 */
static int device_fallback_child(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_userfaultfd, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]),
				   .filter = f };
	struct wbdev_options o = { .backend = WBDEV_BACKEND_UFFD };
	bool dev_ok = access("/dev/userfaultfd", R_OK | W_OK) == 0;
	unsigned char seen[4] = { 0 };
	wbdev_t *w;
	int fds[2], rc, bad;
	char *p;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
		return 30;
	if (syscall(SYS_userfaultfd, 1) >= 0 || errno != EPERM)
		return 31;		/* the filter does not work */
	rc = wbdev_open(&w, &o);
	if (!dev_ok) {
		printf("#   no access to /dev/userfaultfd: open gave %d (%s)\n",
		       rc, wbdev_strerror(rc));
		return rc == -EPERM || rc == -ENODEV ? 0 : 32;
	}
	if (rc)
		return 33;
	if (wbdev_map(w, NULL, 4 * ps, (void **)&p) ||
	    wbdev_protect(w, p, 4 * ps) || pipe(fds) ||
	    write(fds[1], "x", 1) != 1 || read(fds[0], p + ps, 1) != 1)
		return 34;
	p[3 * ps] = 1;
	if (collect_all(w, NULL, 0, WBDEV_COLLECT_REPROTECT, 4, p, 4, seen,
			&bad) != 2 || !seen[1] || !seen[3] || bad)
		return 35;
	if (!(wbdev_caps(w) & WBDEV_CAP_KERNEL_WRITES))
		return 36;
	printf("#   via /dev/userfaultfd: user and kernel writes recorded\n");
	return wbdev_close(w) ? 37 : 0;
}

static void t_uffd_device_fallback(void)
{
	wbdev_t *w = open_or_fail();
	int status;
	pid_t pid;

	CHECK(w, "open");
	if (wbdev_backend(w) != WBDEV_BACKEND_UFFD) {
		note("not the uffd backend: nothing to check");
		wbdev_close(w);
		return;
	}
	wbdev_close(w);
	fflush(stdout);
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0)
		_exit(device_fallback_child());
	CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "child status 0x%x (exit %d)", status,
	      WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/* ------------------------------------------------------------- fork */

struct writer_arg {
	char *base;
	size_t np;
	atomic_int stop;
	atomic_uchar *written;		/* oracle: set after each write */
	atomic_ulong writes;
};

static void *fork_writer(void *v)
{
	struct writer_arg *a = v;
	uint64_t s = 0x1234567ull;

	while (!atomic_load(&a->stop)) {
		size_t i = rnd(&s) % a->np;

		a->base[i * ps + 8] = (char)(i + 1);
		atomic_store(&a->written[i], 1);
		atomic_fetch_add(&a->writes, 1);
	}
	return NULL;
}

static void t_fork(void)
{
	size_t np = 256;
	struct writer_arg wa;
	unsigned char seen[256];
	wbdev_t *w = open_or_fail();
	char *a, *b;
	pthread_t th;
	pid_t pid;
	int status, bad, rc;
	long n;

	CHECK(w, "open");
	CHECK_RC(wbdev_map(w, NULL, np * ps, (void **)&a), 0);
	CHECK_RC(wbdev_map(w, NULL, 16 * ps, (void **)&b), 0);
	for (size_t i = 0; i < 16; i++)
		memset(b + i * ps, (int)(i + 1), ps);
	CHECK_RC(wbdev_protect(w, a, np * ps), 0);
	CHECK_RC(wbdev_protect(w, b, 16 * ps), 0);
	b[7 * ps] = 77;			/* dirty in the parent at the fork */

	memset(&wa, 0, sizeof(wa));
	wa.base = a;
	wa.np = np;
	wa.written = calloc(np, sizeof(atomic_uchar));
	CHECK(wa.written, "calloc");
	CHECK(pthread_create(&th, NULL, fork_writer, &wa) == 0, "thread");
	while (atomic_load(&wa.writes) < 1000)
		sched_yield();

	CHECK_RC(wbdev_fork_prepare(w), 0);
	pid = fork();
	if (pid == 0) {
		/* Child: only this thread exists. */
		int code = 0;

		rc = wbdev_fork_child(w);
		if (rc == -ENOTSUP &&
		    !(wbdev_caps(w) & WBDEV_CAP_FORK_TRACKING))
			code = 10;	/* allowed: tracking ends here */
		else if (rc != 0)
			_exit(20);
		for (size_t i = 0; i < 16; i++)
			if (b[i * ps + 1] != (char)(i + 1) ||
			    b[7 * ps] != 77)
				_exit(21);
		if (code)
			_exit(code);
		memset(seen, 0, sizeof(seen));
		/* Drain (conservative reports allowed), then track. */
		n = collect_all(w, NULL, 0, WBDEV_COLLECT_REPROTECT, 64, b, 16,
				seen, &bad);
		if (n < 0)
			_exit(22);
		if (!seen[7])
			_exit(23);	/* dirty at fork: must be reported */
		b[3 * ps] = 9;
		b[7 * ps] = 9;
		memset(seen, 0, sizeof(seen));
		n = collect_all(w, b, 16 * ps, WBDEV_COLLECT_REPROTECT, 64, b,
				16, seen, &bad);
		if (n != 2 || !seen[3] || !seen[7] || bad)
			_exit(24);
		a[5 * ps] = 1;
		n = collect_all(w, a, np * ps, WBDEV_COLLECT_REPROTECT, 64, a,
				np, seen, &bad);
		if (n < 1)
			_exit(25);
		_exit(wbdev_close(w) ? 26 : 0);
	}
	rc = wbdev_fork_parent(w);
	CHECK(pid > 0, "fork: %s", strerror(errno));
	CHECK(rc == 0, "fork_parent %d", rc);
	CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
	CHECK(WIFEXITED(status) &&
	      (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 10),
	      "child failed: status 0x%x (exit %d)", status,
	      WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	if (WEXITSTATUS(status) == 10)
		note("backend cannot track in a fork child (reported)");
	atomic_store(&wa.stop, 1);
	pthread_join(th, NULL);
	/* Parent: its tracking is untouched by the child. */
	memset(seen, 0, sizeof(seen));
	n = collect_all(w, b, 16 * ps, WBDEV_COLLECT_REPROTECT, 64, b, 16,
			seen, &bad);
	CHECK(seen[7] && !bad,
	      "parent's dirty page lost after the child ran: n %ld", n);
	if (n > 1)
		note("parent: %ld of 16 pages reported after the fork for 1 "
		     "written (conservative, allowed)", n);
	CHECK(b[3 * ps + 1] == 4 && b[7 * ps] == 77, "child wrote parent memory");
	memset(seen, 0, sizeof(seen));
	n = collect_all(w, a, np * ps, WBDEV_COLLECT_REPROTECT, 64, a, np,
			seen, &bad);
	CHECK(n >= 0 && !bad, "collect a");
	for (size_t i = 0; i < np; i++)
		CHECK(!atomic_load(&wa.written[i]) || seen[i],
		      "writer thread's page %zu missing in the parent", i);
	note("writer thread made %lu writes across the fork",
	     atomic_load(&wa.writes));
	free(wa.written);
	CHECK_RC(wbdev_close(w), 0);
}

/* ------------------------------------------------------- 1 GiB random */

static void t_big_random(void)
{
	size_t len = (size_t)1024 << 20, np = len / ps, i;
	size_t *order = malloc(np * sizeof(size_t));
	unsigned char *seen = calloc(np, 1);
	uint64_t s = 42;
	wbdev_t *w = open_or_fail();
	char *p;
	int bad;
	long n;

	CHECK(w && order && seen, "setup");
	CHECK_RC(wbdev_map(w, NULL, len, (void **)&p), 0);
	CHECK_RC(wbdev_protect(w, p, len), 0);
	for (i = 0; i < np; i++)
		order[i] = i;
	for (i = np - 1; i > 0; i--) {
		size_t j = rnd(&s) % (i + 1), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	for (i = 0; i < np; i++)
		p[order[i] * ps + (order[i] % 512)] = 1;
	n = collect_all(w, NULL, 0, WBDEV_COLLECT_REPROTECT, 65536, p, np, seen,
			&bad);
	CHECK(n == (long)np && !bad, "%ld of %zu pages reported (bad %d)", n,
	      np, bad);
	memset(seen, 0, np);
	n = collect_all(w, NULL, 0, WBDEV_COLLECT_REPROTECT, 65536, p, np, seen,
			&bad);
	CHECK(n == 0, "%ld pages after re-protect", n);
	/* Half again, random: exactly those. */
	for (i = 0; i < np / 2; i++)
		p[order[i] * ps] = 2;
	n = collect_all(w, NULL, 0, WBDEV_COLLECT_REPROTECT, 4096, p, np, seen,
			&bad);
	CHECK(n == (long)np / 2 && !bad, "second round %ld", n);
	for (i = 0; i < np / 2; i++)
		CHECK(seen[order[i]], "page %zu missing", order[i]);
	note("%zu MiB, %zu pages written at random, all reported once",
	     len >> 20, np);
	CHECK_RC(wbdev_close(w), 0);
	free(order);
	free(seen);
}

/* What the adapter replaces: mprotect tracking of the same pattern needs
 * one VMA per protection change and runs out (vm.max_map_count). */
static void t_mprotect_vma_limit(void)
{
	size_t len = (size_t)1 << 30, np = len / ps, i;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	long maxmap = 0;
	FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
	int err = 0;

	if (f) {
		if (fscanf(f, "%ld", &maxmap) != 1)
			maxmap = 0;
		fclose(f);
	}
	CHECK(p != MAP_FAILED, "mmap");
	/* Unprotect every other page, as writes would (random order not
	 * needed to fragment). */
	mprotect(p, len, PROT_READ);
	for (i = 0; i < np; i += 2) {
		if (mprotect(p + i * ps, ps, PROT_READ | PROT_WRITE)) {
			err = errno;
			break;
		}
	}
	munmap(p, len);
	if (maxmap && (size_t)maxmap < np) {
		CHECK(err == ENOMEM, "mprotect did not run out (max_map_count %ld)",
		      maxmap);
		note("mprotect tracking of 1 GiB ran out of VMAs after %zu pages "
		     "(vm.max_map_count %ld); the adapter needs one mapping",
		     i / 2, maxmap);
	}
}

/* ------------------------------------------------------------ fuzzer */

/*
 * Oracle.  Per page: started (writes begun), done (writes finished), and
 * covered: the started count at the end of the last operation that made
 * the page clean (protect, or a re-protecting collection reporting it).
 * A write that began after that operation ended is numbered above
 * covered, so done > covered proves a write the backend must report.
 * Writes begun before or during the operation may or may not count.
 */
#define FZ_SLOTS 6
#define FZ_SLOT_PAGES 384

struct fz_page {
	atomic_uint started, done;
	unsigned int covered;
	bool tracked;	/* protected since mapped (else nothing required) */
	bool discarded;	/* since covered: reports of it are expected */
};

struct fz_slot {
	char *base;	/* NULL when unmapped */
	size_t lo, hi;	/* mapped pages [lo, hi) */
	struct fz_page pg[FZ_SLOT_PAGES];
};

struct fz {
	wbdev_t *w;
	pthread_rwlock_t maplock;	/* writers read, (un)map writes */
	struct fz_slot slot[FZ_SLOTS];
	atomic_int stop;
	unsigned long missing, false_pos, reported, required, ops;
	int error;
};

static void *fz_writer(void *v)
{
	struct fz *f = v;
	uint64_t s = (uint64_t)(uintptr_t)&s | 1;

	while (!atomic_load(&f->stop)) {
		pthread_rwlock_rdlock(&f->maplock);
		for (int k = 0; k < 32; k++) {
			struct fz_slot *sl = &f->slot[rnd(&s) % FZ_SLOTS];
			size_t i;

			if (!sl->base || sl->hi <= sl->lo)
				continue;
			i = sl->lo + rnd(&s) % (sl->hi - sl->lo);
			atomic_fetch_add(&sl->pg[i].started, 1);
			((volatile char *)sl->base)[i * ps + rnd(&s) % ps] = 1;
			atomic_fetch_add(&sl->pg[i].done, 1);
		}
		pthread_rwlock_unlock(&f->maplock);
	}
	return NULL;
}

static struct fz_slot *fz_find(struct fz *f, uintptr_t p, size_t *idx)
{
	for (int i = 0; i < FZ_SLOTS; i++) {
		struct fz_slot *sl = &f->slot[i];
		uintptr_t b = (uintptr_t)sl->base;

		if (sl->base && p >= b + sl->lo * ps && p < b + sl->hi * ps) {
			*idx = (p - b) / ps;
			return sl;
		}
	}
	return NULL;
}

static void fz_cover(struct fz_slot *sl, size_t i)
{
	sl->pg[i].covered = atomic_load(&sl->pg[i].started);
	sl->pg[i].tracked = true;
	sl->pg[i].discarded = false;
}

static void fz_collect(struct fz *f, uint64_t *s, bool final)
{
	struct fz_slot *sl = &f->slot[rnd(s) % FZ_SLOTS];
	bool all = final || rnd(s) % 3 == 0;
	bool reprotect = final || rnd(s) % 4 != 0;
	size_t max = 1 + rnd(s) % (rnd(s) % 2 ? 8 : 700);
	void **buf = malloc(max * sizeof(void *));
	struct wbdev_collect c;
	size_t lo = 0, hi = 0;
	static unsigned char rep[FZ_SLOTS][FZ_SLOT_PAGES];
	static unsigned int before[FZ_SLOTS][FZ_SLOT_PAGES];
	int rc;

	if (!buf)
		return;
	if (!all) {
		if (!sl->base || sl->hi <= sl->lo) {
			free(buf);
			return;
		}
		lo = sl->lo + rnd(s) % (sl->hi - sl->lo);
		hi = lo + 1 + rnd(s) % (sl->hi - lo);
	}
	memset(rep, 0, sizeof(rep));
	for (int k = 0; k < FZ_SLOTS; k++)
		for (size_t i = 0; i < FZ_SLOT_PAGES; i++)
			before[k][i] = atomic_load(&f->slot[k].pg[i].done);
	memset(&c, 0, sizeof(c));
	if (!all) {
		c.start = sl->base + lo * ps;
		c.len = (hi - lo) * ps;
	}
	c.flags = reprotect ? WBDEV_COLLECT_REPROTECT : 0;
	c.pages = buf;
	c.max = max;
	do {
		rc = wbdev_collect(f->w, &c);
		if (rc < 0) {
			printf("#   fuzz: collect: %d (%s)\n", rc,
			       wbdev_strerror(rc));
			f->error = 1;
			break;
		}
		for (size_t j = 0; j < c.count; j++) {
			size_t i;
			struct fz_slot *s2 = fz_find(f, (uintptr_t)buf[j], &i);

			if (!s2 || (uintptr_t)buf[j] % ps) {
				printf("#   fuzz: foreign page %p\n", buf[j]);
				f->error = 1;
				continue;
			}
			if (!all && (s2 != sl || i < lo || i >= hi)) {
				printf("#   fuzz: page outside the range\n");
				f->error = 1;
			}
			if (rep[s2 - f->slot][i]) {
				printf("#   fuzz: page reported twice\n");
				f->error = 1;
			}
			rep[s2 - f->slot][i] = 1;
			f->reported++;
		}
	} while (rc == 1);
	free(buf);
	/* Judge, then update coverage. */
	for (int k = 0; k < FZ_SLOTS; k++) {
		struct fz_slot *x = &f->slot[k];

		if (!x->base || (!all && x != sl))
			continue;
		for (size_t i = all ? x->lo : lo; i < (all ? x->hi : hi); i++) {
			struct fz_page *pg = &x->pg[i];

			if (pg->tracked && before[k][i] > pg->covered) {
				f->required++;
				if (!rep[k][i])
					f->missing++;
			}
			if (rep[k][i] && pg->tracked && !pg->discarded &&
			    atomic_load(&pg->started) == pg->covered)
				f->false_pos++;
			if (rep[k][i]) {
				if (reprotect)
					fz_cover(x, i);
				else
					pg->tracked = false;
			}
		}
	}
}

static void fz_op(struct fz *f, uint64_t *s)
{
	int k = (int)(rnd(s) % FZ_SLOTS);
	struct fz_slot *sl = &f->slot[k];
	unsigned op = (unsigned)(rnd(s) % 100);
	int rc;

	f->ops++;
	if (op < 45) {
		fz_collect(f, s, false);
		return;
	}
	if (!sl->base) {
		void *p;

		pthread_rwlock_wrlock(&f->maplock);
		rc = wbdev_map(f->w, NULL, FZ_SLOT_PAGES * ps, &p);
		if (rc == 0) {
			memset(sl->pg, 0, sizeof(sl->pg));
			sl->base = p;
			sl->lo = 0;
			sl->hi = FZ_SLOT_PAGES;
		} else {
			f->error = 1;
		}
		pthread_rwlock_unlock(&f->maplock);
		return;
	}
	if (sl->hi <= sl->lo)
		return;
	size_t lo = sl->lo + rnd(s) % (sl->hi - sl->lo);
	size_t hi = lo + 1 + rnd(s) % (sl->hi - lo);

	if (op < 70) {
		rc = wbdev_protect(f->w, sl->base + lo * ps, (hi - lo) * ps);
		if (rc) {
			f->error = 1;
			return;
		}
		for (size_t i = lo; i < hi; i++)
			fz_cover(sl, i);
	} else if (op < 85) {
		void *list[16];
		size_t n = 1 + rnd(s) % 16;

		for (size_t j = 0; j < n; j++)
			list[j] = sl->base + (lo + rnd(s) % (hi - lo)) * ps +
				  rnd(s) % ps;
		rc = wbdev_protect_pages(f->w, list, n);
		if (rc) {
			f->error = 1;
			return;
		}
		for (size_t j = 0; j < n; j++)
			fz_cover(sl, ((char *)list[j] - sl->base) / ps);
	} else if (op < 93) {
		/* Discard: what was written stays required. */
		if (wbdev_discard(f->w, sl->base + lo * ps, (hi - lo) * ps))
			f->error = 1;
		for (size_t i = lo; i < hi; i++)
			sl->pg[i].discarded = true;
	} else {
		/* Unmap a head, a tail, or the whole slot. */
		pthread_rwlock_wrlock(&f->maplock);
		if (op < 96)
			hi = sl->hi;
		else if (op < 99)
			lo = sl->lo;
		else {
			lo = sl->lo;
			hi = sl->hi;
		}
		rc = wbdev_unmap(f->w, sl->base + lo * ps, (hi - lo) * ps);
		if (rc)
			f->error = 1;
		else if (lo == sl->lo && hi == sl->hi)
			sl->base = NULL;
		else if (lo == sl->lo)
			sl->lo = hi;
		else
			sl->hi = lo;
		pthread_rwlock_unlock(&f->maplock);
	}
}

static void t_fuzz(void)
{
	const char *env = getenv("WBDEV_FUZZ_OPS");
	long nops = env ? atol(env) : (quick ? 2000 : 6000);
	int nthreads = 2;
	pthread_t th[2];
	struct fz *f = calloc(1, sizeof(*f));
	const char *seed = getenv("WBDEV_FUZZ_SEED");
	uint64_t s = seed ? strtoull(seed, NULL, 0) | 1 : 777;

	CHECK(f, "calloc");
	note("fuzz seed %llu (WBDEV_FUZZ_SEED)", (unsigned long long)s);
	f->w = open_or_fail();
	CHECK(f->w, "open");
	{
		/* glibc prefers readers by default: the busy writers would
		 * starve (un)map forever. */
		pthread_rwlockattr_t ra;

		pthread_rwlockattr_init(&ra);
		pthread_rwlockattr_setkind_np(&ra,
			PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
		pthread_rwlock_init(&f->maplock, &ra);
		pthread_rwlockattr_destroy(&ra);
	}
	for (int t = 0; t < nthreads; t++)
		CHECK(pthread_create(&th[t], NULL, fz_writer, f) == 0, "thread");
	for (long i = 0; i < nops && !f->error; i++)
		fz_op(f, &s);
	/* Final: protect nothing new, collect everything. */
	atomic_store(&f->stop, 1);
	for (int t = 0; t < nthreads; t++)
		pthread_join(th[t], NULL);
	/* With the writers stopped, a full collection must find the rest. */
	if (!f->error)
		fz_collect(f, &s, true);
	note("fuzz: %lu ops, %lu pages reported, %lu required, %lu missing, "
	     "%lu reported with no write begun since protected (false positives, upper bound; discarded pages not counted)", f->ops, f->reported, f->required,
	     f->missing, f->false_pos);
	CHECK(!f->error, "an operation failed");
	CHECK(f->missing == 0, "%lu written pages missing", f->missing);
	CHECK(f->required > 100, "oracle required only %lu pages", f->required);
	CHECK_RC(wbdev_close(f->w), 0);
	pthread_rwlock_destroy(&f->maplock);
	free(f);
}

/* ------------------------------------------------------------- main */

struct test {
	const char *name;
	void (*fn)(void);
};

static const struct test tests[] = {
	{ "open_close", t_open_close },
	{ "bad_inputs", t_bad_inputs },
	{ "basic_tracking", t_basic_tracking },
	{ "collect_without_reprotect", t_collect_without_reprotect },
	{ "page_granularity", t_page_granularity },
	{ "short_buffers", t_short_buffers },
	{ "ranges_and_unmap", t_ranges_and_unmap },
	{ "discard", t_discard },
	{ "protect_pages", t_protect_pages },
	{ "unprotect", t_unprotect },
	{ "kernel_writes", t_kernel_writes },
	{ "uffd_device_fallback", t_uffd_device_fallback },
	{ "fork", t_fork },
	{ "big_random", t_big_random },
	{ "mprotect_vma_limit", t_mprotect_vma_limit },
	{ "fuzz", t_fuzz },
};

int main(int argc, char **argv)
{
	const char *env = getenv("WBDEV_BACKEND");
	size_t ntests = sizeof(tests) / sizeof(tests[0]);
	int failed = 0, nrun = 0, i;
	bool selected[sizeof(tests) / sizeof(tests[0])];
	bool any = false;

	setvbuf(stdout, NULL, _IOLBF, 0);
	ps = (size_t)sysconf(_SC_PAGESIZE);
	memset(selected, 0, sizeof(selected));
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--expect") && i + 1 < argc) {
			expect = argv[++i];
		} else if (!strcmp(argv[i], "--quick")) {
			quick = true;
		} else {
			size_t t;

			for (t = 0; t < ntests; t++)
				if (!strcmp(argv[i], tests[t].name))
					break;
			if (t == ntests) {
				fprintf(stderr, "unknown test or option: %s\n",
					argv[i]);
				return 2;
			}
			selected[t] = any = true;
		}
	}
	printf("# wbdev conformance, WBDEV_BACKEND=%s\n", env ? env : "(unset)");
	if (expect && !strcmp(expect, "unsupported")) {
		wbdev_t *w = (wbdev_t *)1;
		int rc = test_wbdev_open(&w);

		printf("1..1\n");
		if (rc == -ENODEV && w == NULL) {
			printf("ok 1 - %s unsupported: wbdev_open returned -ENODEV (%s)\n",
			       env ? env : "auto", wbdev_strerror(rc));
			return 0;
		}
		printf("not ok 1 - expected -ENODEV, got %d (%s)\n", rc,
		       wbdev_strerror(rc));
		if (rc == 0)
			wbdev_close(w);
		return 1;
	}
	{
		size_t nsel = 0;

		for (size_t t = 0; t < ntests; t++)
			nsel += !any || selected[t];
		printf("1..%zu\n", nsel);
	}
	for (size_t t = 0; t < ntests; t++) {
		if (any && !selected[t])
			continue;
		test_failed = 0;
		tests[t].fn();
		nrun++;
		printf("%s %d - %s\n", test_failed ? "not ok" : "ok", nrun,
		       tests[t].name);
		failed += test_failed;
	}
	printf("# %d of %d failed\n", failed, nrun);
	return failed ? 1 : 0;
}
