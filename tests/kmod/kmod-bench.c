/*
 * kmod-bench.c - costs of the wbdev module, printed (not a timed test).
 * Every figure is the median of ROUNDS runs in the same boot.
 *
 *   fault:   first write to a write-protected wbdev page vs a plain minor
 *            fault (write to a resident shmem page with no PTE) and an
 *            anonymous first touch, per page;
 *   protect: WBDEV_IOC_PROTECT of a resident range and write(2) of a
 *            pointer list, per page;
 *   unprotect: WBDEV_IOC_UNPROTECT per page of write-protected resident
 *            pages, of pages already writable and of non-resident ones
 *            (only logged), and a write to each page afterwards (no fault);
 *   collect: read(2) and collect+reprotect with 1% of the pages dirty,
 *            per dirty page, for 64 MiB, 256 MiB and 1 GiB mappings.
 */
#include "kmod-util.h"

#define ROUNDS 5
#define FAULT_PAGES 8192

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return v[n / 2];
}

static void touch(char *p, size_t pages)
{
	for (size_t i = 0; i < pages; i++)
		p[i * PAGE] = 1;
}

/* ns per page of a write to each page */
static double time_writes(char *p, size_t pages)
{
	double t = now_sec();

	touch(p, pages);
	return (now_sec() - t) * 1e9 / pages;
}

static void bench_fault(void)
{
	double anon[ROUNDS], minor[ROUNDS], wb[ROUNDS], wbfresh[ROUNDS];
	size_t len = FAULT_PAGES * PAGE;
	int fd = dev_open();

	for (int r = 0; r < ROUNDS; r++) {
		char *a = mmap(NULL, len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		int mfd = memfd_create("bench", 0);
		char *m, *w;

		anon[r] = time_writes(a, FAULT_PAGES);
		munmap(a, len);

		CHECK(ftruncate(mfd, len) == 0, "ftruncate");
		m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, mfd,
			 0);
		touch(m, FAULT_PAGES);
		madvise(m, len, MADV_DONTNEED);	/* resident, no PTE */
		minor[r] = time_writes(m, FAULT_PAGES);
		munmap(m, len);
		close(mfd);

		w = dev_map(fd, len);
		wbfresh[r] = time_writes(w, FAULT_PAGES); /* allocate+log */
		dev_protect_range(fd, w, len);
		wb[r] = time_writes(w, FAULT_PAGES);	/* protected: log */
		munmap(w, len);
		while (read(fd, &(uint64_t){ 0 }, 8) > 0)
			;
	}
	double mn = median(minor, ROUNDS), w = median(wb, ROUNDS);

	printf("fault: anon_first_touch_ns=%.0f shmem_minor_fault_ns=%.0f "
	       "wbdev_fresh_page_ns=%.0f wbdev_protected_write_ns=%.0f "
	       "ratio_vs_minor=%.2f (goal <= 1.2)\n",
	       median(anon, ROUNDS), mn, median(wbfresh, ROUNDS), w, w / mn);
	close(fd);
}

static void bench_protect(void)
{
	double range[ROUNDS], list[ROUNDS];
	size_t pages = 16384, len = pages * PAGE;
	uint64_t *ptrs = malloc(pages * sizeof(*ptrs));
	int fd = dev_open();
	char *w = dev_map(fd, len);

	touch(w, pages);
	for (size_t i = 0; i < pages; i++)
		ptrs[i] = (uintptr_t)w + i * PAGE;
	for (int r = 0; r < ROUNDS; r++) {
		double t;

		touch(w, pages);	/* writable PTEs again */
		t = now_sec();
		dev_protect_range(fd, w, len);
		range[r] = (now_sec() - t) * 1e9 / pages;
		touch(w, pages);
		t = now_sec();
		CHECK(dev_protect_list(fd, ptrs, pages) == (long)pages,
		      "list");
		list[r] = (now_sec() - t) * 1e9 / pages;
	}
	printf("protect: range_ioctl_ns_per_page=%.0f write_list_ns_per_page"
	       "=%.0f (%zu resident, written pages)\n", median(range, ROUNDS),
	       median(list, ROUNDS), pages);
	munmap(w, len);
	close(fd);
	free(ptrs);
}

/* ns per page of UNPROTECT of [p, p + len) */
static double time_unprotect(int fd, char *p, size_t len)
{
	double t = now_sec();

	CHECK(dev_unprotect(fd, p, len) == 0, "unprotect");
	return (now_sec() - t) * 1e9 / (len / PAGE);
}

static void bench_unprotect(void)
{
	double prot[ROUNDS], wr[ROUNDS], fresh[ROUNDS], after[ROUNDS];
	size_t pages = 16384, len = pages * PAGE;
	int fd = dev_open();

	for (int r = 0; r < ROUNDS; r++) {
		char *w = dev_map(fd, len);

		/* not in memory: only logged, nothing allocated */
		fresh[r] = time_unprotect(fd, w, len);
		time_writes(w, pages);		/* first touch allocates */
		dev_protect_range(fd, w, len);
		prot[r] = time_unprotect(fd, w, len);
		after[r] = time_writes(w, pages);
		/* read: writable and not logged, the slow case */
		while (read(fd, &(uint64_t){ 0 }, 8) > 0)
			;
		wr[r] = time_unprotect(fd, w, len);
		munmap(w, len);
		while (read(fd, &(uint64_t){ 0 }, 8) > 0)
			;
	}
	printf("unprotect: protected_ns_per_page=%.0f writable_ns_per_page="
	       "%.0f nonresident_ns_per_page=%.0f write_after_ns_per_page="
	       "%.0f (%zu pages; a protected write costs "
	       "wbdev_protected_write_ns)\n", median(prot, ROUNDS),
	       median(wr, ROUNDS), median(fresh, ROUNDS),
	       median(after, ROUNDS), pages);
	close(fd);
}

static void bench_collect(size_t mib)
{
	double rd[ROUNDS], rp[ROUNDS], empty[ROUNDS];
	size_t len = mib << 20, pages = len / PAGE, dirty = 0;
	int fd = dev_open();
	char *w = dev_map(fd, len);
	uint64_t *buf = malloc(pages / 50 * sizeof(*buf));

	for (int r = 0; r < ROUNDS; r++) {
		for (int reprotect = 0; reprotect < 2; reprotect++) {
			double t;
			size_t n;

			dirty = 0;
			for (size_t i = r; i < pages; i += 100, dirty++)
				w[i * PAGE] = 1;
			t = now_sec();
			n = reprotect ?
			    dev_collect(fd, buf, pages / 50,
					WBDEV_IOC_COLLECT_REPROTECT) :
			    dev_read_all(fd, buf, pages / 50);
			t = now_sec() - t;
			CHECK(n == dirty, "collected %zu of %zu", n, dirty);
			(reprotect ? rp : rd)[r] = t * 1e9 / n;
			/* leave all protected for the next round */
			if (!reprotect)
				dev_protect_range(fd, w, len);
		}
		/* the fixed cost of a collection: an empty log */
		double t = now_sec();

		dev_read_all(fd, buf, pages / 50);
		empty[r] = (now_sec() - t) * 1e9;
	}
	double e = median(empty, ROUNDS), r = median(rd, ROUNDS);

	printf("collect: mapping=%zuMiB dirty=%zu (1%%) read_ns_per_dirty=%.1f "
	       "(%.1f without the empty-read cost %.0f ns) "
	       "collect_reprotect_ns_per_dirty=%.1f (goal read <= 100)\n",
	       mib, dirty, r, r - e / dirty, e, median(rp, ROUNDS));
	munmap(w, len);
	close(fd);
	free(buf);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	test_name = "bench";
	bench_fault();
	bench_protect();
	bench_unprotect();
	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			bench_collect(strtoul(argv[i], NULL, 0));
	} else {
		bench_collect(64);
		bench_collect(256);
		bench_collect(1024);
	}
	return 0;
}
