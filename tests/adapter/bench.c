/*
 * bench.c - the adapter's microbenchmark: per backend, in one run, the
 * cost of a first write to a protected page against a plain minor fault,
 * of protecting, and of collecting at 1%, 10% and 100% dirty pages on
 * 64 MiB and 1 GiB, and how collection cost grows with the range asked
 * for.  Prints medians; asserts nothing about speed.
 *
 * usage: wbdev-bench [--quick] [--reps N] [BACKEND...]   (default: kmod uffd)
 * An unavailable backend is reported and skipped.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "wbdev.h"

static size_t ps;
static int reps = 5;
static bool quick;

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

static void touch_all(char *p, size_t len)
{
	for (size_t off = 0; off < len; off += ps)
		((volatile char *)p)[off] = 1;
}

/* Plain anonymous memory, first write per page (a minor fault). */
static double plain_minor_fault_ns(size_t len)
{
	double v[64];

	for (int r = 0; r < reps; r++) {
		char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		double t;

		if (p == MAP_FAILED)
			return -1;
		madvise(p, len, MADV_NOHUGEPAGE);
		t = now_ns();
		touch_all(p, len);
		v[r] = (now_ns() - t) / (len / ps);
		munmap(p, len);
	}
	return median(v, reps);
}

/* Collect everything in [start, len) with re-protect; returns pages. */
static long drain(wbdev_t *w, void *start, size_t len, void **buf, size_t max)
{
	struct wbdev_collect c;
	long n = 0;
	int rc;

	memset(&c, 0, sizeof(c));
	c.start = start;
	c.len = len;
	c.flags = WBDEV_COLLECT_REPROTECT;
	c.pages = buf;
	c.max = max;
	do {
		rc = wbdev_collect(w, &c);
		if (rc < 0)
			return rc;
		n += c.count;
	} while (rc == 1);
	return n;
}

static void bench_backend(enum wbdev_backend_id id, const char *name)
{
	struct wbdev_options o = { .backend = id };
	size_t small = (size_t)64 << 20, big = (size_t)1 << 30;
	size_t bufmax = 65536;
	void **buf = malloc(bufmax * sizeof(void *));
	uint64_t seed = 1;
	wbdev_t *w;
	double v[64], plain, t;
	char *p;
	int rc;

	rc = wbdev_open(&w, &o);
	if (rc) {
		printf("\nbackend %s: not available here (%s)\n", name,
		       wbdev_strerror(rc));
		free(buf);
		return;
	}
	printf("\nbackend %s, page %zu, median of %d runs\n", name, ps, reps);

	/* First writes. */
	plain = plain_minor_fault_ns(small);
	printf("  first write, plain anonymous memory (minor fault): %8.0f ns/page\n",
	       plain);
	for (int r = 0; r < reps; r++) {
		if (wbdev_map(w, NULL, small, (void **)&p))
			goto fail;
		wbdev_protect(w, p, small);
		t = now_ns();
		touch_all(p, small);
		v[r] = (now_ns() - t) / (small / ps);
		wbdev_unmap(w, p, small);
	}
	t = median(v, reps);
	printf("  first write, protected never-touched page:         %8.0f ns/page (%.2fx minor fault)\n",
	       t, t / plain);
	if (wbdev_map(w, NULL, small, (void **)&p))
		goto fail;
	touch_all(p, small);
	for (int r = 0; r < reps; r++) {
		wbdev_protect(w, p, small);
		drain(w, p, small, buf, bufmax);
		t = now_ns();
		touch_all(p, small);
		v[r] = (now_ns() - t) / (small / ps);
	}
	t = median(v, reps);
	printf("  first write, protected present page:               %8.0f ns/page (%.2fx minor fault)\n",
	       t, t / plain);
	{
		double v2[64];

		for (int r = 0; r < reps; r++) {
			touch_all(p, small);
			t = now_ns();
			touch_all(p, small);
			v2[r] = (now_ns() - t) / (small / ps);
		}
		printf("  write to an already written page (no fault):       %8.1f ns/page\n",
		       median(v2, reps));
	}

	/* Protection. */
	for (int r = 0; r < reps; r++) {
		touch_all(p, small);
		t = now_ns();
		wbdev_protect(w, p, small);
		v[r] = (now_ns() - t) / (small / ps);
	}
	printf("  protect 64 MiB range, all pages written:           %8.1f ns/page\n",
	       median(v, reps));
	{
		size_t n = small / ps / 2;
		void **list = malloc(n * sizeof(void *));

		for (size_t i = 0; i < n; i++)
			list[i] = p + 2 * i * ps;
		for (int r = 0; r < reps; r++) {
			touch_all(p, small);
			t = now_ns();
			wbdev_protect_pages(w, list, n);
			v[r] = (now_ns() - t) / n;
		}
		printf("  protect_pages, every 2nd page (%zu pages):      %8.1f ns/page\n",
		       n, median(v, reps));
		free(list);
		/* Ascending consecutive pages coalesce into one range. */
		n = small / ps;
		list = malloc(n * sizeof(void *));
		for (size_t i = 0; i < n; i++)
			list[i] = p + i * ps;
		for (int r = 0; r < reps; r++) {
			touch_all(p, small);
			t = now_ns();
			wbdev_protect_pages(w, list, n);
			v[r] = (now_ns() - t) / n;
		}
		printf("  protect_pages, all pages ascending (%zu):      %8.1f ns/page\n",
		       n, median(v, reps));
		free(list);
	}
	wbdev_unmap(w, p, small);

	/* Collection at 1%, 10%, 100% dirty, 64 MiB and 1 GiB. */
	size_t sizes[2] = { small, big };
	int pct[3] = { 1, 10, 100 };

	printf("  collect + re-protect, random dirty pages:\n");
	printf("    %-7s %5s %10s %14s %16s\n", "mapping", "dirty", "total us",
	       "ns/dirty page", "ns/page scanned");
	for (int s = 0; s < 2; s++) {
		size_t len = sizes[s], np = len / ps;
		int r2 = s ? (reps < 3 ? reps : 3) : reps;

		if (wbdev_map(w, NULL, len, (void **)&p))
			goto fail;
		touch_all(p, len);
		for (int k = 0; k < 3; k++) {
			size_t nd = np * pct[k] / 100;
			long got = 0;

			for (int r = 0; r < r2; r++) {
				drain(w, p, len, buf, bufmax);
				if (pct[k] == 100) {
					touch_all(p, len);
				} else {
					for (size_t i = 0; i < nd; i++)
						p[(rnd(&seed) % np) * ps] = 1;
				}
				t = now_ns();
				got = drain(w, p, len, buf, bufmax);
				v[r] = now_ns() - t;
			}
			t = median(v, r2);
			printf("    %4zu MiB %4d%% %10.0f %14.1f %16.2f   (%ld pages)\n",
			       len >> 20, pct[k], t / 1e3,
			       got > 0 ? t / got : 0.0, t / np, got);
		}
		if (s == 1) {
			/* Scan cost vs the range asked for, 1 GiB mapped. */
			size_t ranges[4] = { (size_t)1 << 20, small,
					     (size_t)256 << 20, big };

			printf("  collect, 64 dirty pages in the first MiB, 1 GiB mapped, by range asked:\n");
			for (int q = 0; q < 4; q++) {
				long got = 0;

				for (int r = 0; r < r2; r++) {
					drain(w, p, len, buf, bufmax);
					for (size_t i = 0; i < 64; i++)
						p[(i * 4) % 256 * ps] = 1;
					t = now_ns();
					got = drain(w, p, ranges[q], buf,
						    bufmax);
					v[r] = now_ns() - t;
				}
				t = median(v, r2);
				printf("    range %5zu MiB: %10.1f us  %8.2f ns/page scanned  (%ld pages)\n",
				       ranges[q] >> 20, t / 1e3,
				       t / (ranges[q] / ps), got);
			}
		}
		wbdev_unmap(w, p, len);
	}
	wbdev_close(w);
	free(buf);
	return;
fail:
	printf("  %s: mapping failed\n", name);
	wbdev_close(w);
	free(buf);
}

int main(int argc, char **argv)
{
	struct utsname u;
	int nb = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	ps = (size_t)sysconf(_SC_PAGESIZE);
	uname(&u);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick")) {
			quick = true;
			reps = 3;
		} else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
			reps = atoi(argv[++i]);
			if (reps < 1 || reps > 64)
				reps = 5;
		}
	}
	printf("wbdev-bench: kernel %s %s\n", u.release, u.machine);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "kmod")) {
			bench_backend(WBDEV_BACKEND_KMOD, "kmod");
			nb++;
		} else if (!strcmp(argv[i], "uffd")) {
			bench_backend(WBDEV_BACKEND_UFFD, "uffd");
			nb++;
		}
	}
	if (!nb) {
		bench_backend(WBDEV_BACKEND_KMOD, "kmod");
		bench_backend(WBDEV_BACKEND_UFFD, "uffd");
	}
	return 0;
}
