/*
 * micro - cost of the write-barrier primitives, per backend.
 *
 * Backends: "kmod" and "uffd" through the wbdev adapter (os_dep/wbdev.h)
 * and "mprotect", a baseline of our own doing what stock bdwgc does:
 * mprotect(PROT_READ) the heap, a SIGSEGV handler records the page in a
 * bitmap and makes it writable again, "collect" scans the bitmap and
 * re-protects the whole range with one call.
 *
 * Measured (median of --reps runs, with min and max):
 *   minor_fault   first write to fresh anonymous memory (plain minor fault)
 *   first_touch   first write to fresh tracked memory (not yet protected)
 *   first_write   first write to a populated, protected page (the barrier)
 *   protect       protecting a populated range with one call, per page
 *   protect_list  wbdev_protect_pages() with one address per page
 *   collect       collect-and-reprotect, per dirty page, at 1/10/100% dirty
 *   collect_clean collect-and-reprotect with nothing dirty, per MiB scanned
 *                 (timed on a second collect; the first is only checked)
 *   fork          fork() latency in the parent, and until the child has
 *                 re-armed tracking (wbdev_fork_child), vs heap size
 * Output: a Markdown table on stdout, one row per measurement, and
 * machine-readable "MICRO key=value..." lines with --raw.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "wbdev.h"

#define MIB (1024UL * 1024UL)
#define MAX_REPS 32
#define COLLECT_BUF 65536

static size_t page_size;
static int raw_output;
static int populate_by_touch;	/* --populate touch: no MADV_POPULATE_WRITE */

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Print one measurement: median, min and max over the repetitions. */
static void report(const char *backend, const char *metric, size_t size,
		   int dirty_pct, const double *v, int n, const char *unit)
{
	double s[MAX_REPS];
	char dirty[16] = "-";

	if (n <= 0) {
		printf("| %s | %s | %zu | - | n/a | | %s |\n", backend, metric,
		       size / MIB, unit);
		return;
	}
	memcpy(s, v, sizeof(double) * (size_t)n);
	qsort(s, (size_t)n, sizeof(double), cmp_double);
	if (dirty_pct >= 0)
		snprintf(dirty, sizeof(dirty), "%d", dirty_pct);
	printf("| %s | %s | %zu | %s | %.3f | %.3f–%.3f | %s |\n", backend,
	       metric, size / MIB, dirty, s[n / 2], s[0], s[n - 1], unit);
	if (raw_output)
		printf("MICRO backend=%s metric=%s size_mib=%zu dirty_pct=%d "
		       "median=%.4f min=%.4f max=%.4f unit=%s n=%d\n", backend,
		       metric, size / MIB, dirty_pct, s[n / 2], s[0],
		       s[n - 1], unit, n);
	fflush(stdout);
}

static void note(const char *backend, const char *metric, size_t size,
		 const char *why)
{
	printf("| %s | %s | %zu | - | skipped: %s | | |\n", backend, metric,
	       size / MIB, why);
	fflush(stdout);
}

/* Page stride giving the wanted share of dirty pages (1, 10 or 100%). */
static size_t dirty_stride(int pct)
{
	return pct >= 100 ? 1 : (size_t)(100 / pct);
}

/* Write one byte to every stride-th page; returns ns per page written. */
static double write_pages(char *base, size_t npages, size_t stride,
			  size_t *written)
{
	double t0 = now_ns();
	size_t i, n = 0;

	for (i = 0; i < npages; i += stride, n++)
		((volatile char *)base)[i * page_size] = (char)(i | 1);
	*written = n;
	return (now_ns() - t0) / (double)n;
}

static void populate(char *base, size_t len)
{
#ifdef MADV_POPULATE_WRITE
	if (!populate_by_touch &&
	    madvise(base, len, MADV_POPULATE_WRITE) == 0)
		return;
#endif
	for (size_t off = 0; off < len; off += page_size)
		((volatile char *)base)[off] = 0;
}

/* ---- the mprotect + SIGSEGV baseline ---- */

static char *mp_base;
static size_t mp_len;
static uint8_t *mp_dirty;	/* one byte per page: simplest for a handler */
static volatile sig_atomic_t mp_failed;

static void mp_handler(int sig, siginfo_t *si, void *ctx)
{
	uintptr_t a = (uintptr_t)si->si_addr & ~(uintptr_t)(page_size - 1);

	(void)ctx;
	if (a < (uintptr_t)mp_base || a >= (uintptr_t)mp_base + mp_len ||
	    mprotect((void *)a, page_size, PROT_READ | PROT_WRITE) != 0) {
		/* Not ours, or mprotect ran out of VMAs: die loudly. */
		mp_failed = 1;
		signal(sig, SIG_DFL);
		return;
	}
	mp_dirty[(a - (uintptr_t)mp_base) / page_size] = 1;
}

static long max_map_count(void)
{
	FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
	long v = 65530;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = 65530;
		fclose(f);
	}
	return v;
}

/* One interface over both kinds of tracking so each test is written once. */
struct tracker {
	const char *name;
	wbdev_t *w;		/* NULL for the mprotect baseline */
	void **buf;
};

static int t_map(struct tracker *t, size_t len, char **out)
{
	void *p;

	if (t->w) {
		int rc = wbdev_map(t->w, NULL, len, &p);

		if (rc < 0) {
			fprintf(stderr, "micro: wbdev_map(%zu MiB): %s\n",
				len / MIB, wbdev_strerror(rc));
			return rc;
		}
	} else {
		p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED)
			return -errno;
		mp_dirty = calloc(len / page_size, 1);
		if (!mp_dirty) {
			munmap(p, len);
			return -ENOMEM;
		}
		mp_base = p;
		mp_len = len;
	}
	/* Huge pages would report 512 pages per write: track 4 KiB pages. */
	madvise(p, len, MADV_NOHUGEPAGE);
	*out = p;
	return 0;
}

static void t_unmap(struct tracker *t, char *p, size_t len)
{
	if (t->w) {
		wbdev_unmap(t->w, p, len);
	} else {
		munmap(p, len);
		free(mp_dirty);
		mp_dirty = NULL;
		mp_base = NULL;
		mp_len = 0;
	}
}

static int t_protect(struct tracker *t, char *p, size_t len)
{
	if (t->w)
		return wbdev_protect(t->w, p, len);
	return mprotect(p, len, PROT_READ) ? -errno : 0;
}

/* Collect and re-protect everything written; returns pages found. */
static long t_collect(struct tracker *t, char *p, size_t len)
{
	if (t->w) {
		struct wbdev_collect c = {
			.start = p, .len = len,
			.flags = WBDEV_COLLECT_REPROTECT,
			.pages = t->buf, .max = COLLECT_BUF,
		};
		long found = 0;
		int rc;

		do {
			rc = wbdev_collect(t->w, &c);
			if (rc < 0)
				return rc;
			found += (long)c.count;
		} while (rc == 1);
		return found;
	}
	/* What stock bdwgc does: read the handler's table, clear it,
	 * protect the whole heap again with one call. */
	long found = 0;
	size_t n = len / page_size;

	for (size_t i = 0; i < n; i++) {
		if (mp_dirty[i]) {
			found++;
			mp_dirty[i] = 0;
		}
	}
	if (mprotect(p, len, PROT_READ))
		return -errno;
	return found;
}

static int failures;

static void test_faults(struct tracker *t, size_t len, int reps)
{
	double touch[MAX_REPS], first[MAX_REPS], prot[MAX_REPS];
	double plist[MAX_REPS];
	size_t npages = len / page_size, n;
	int r, nlist = 0;

	for (r = 0; r < reps; r++) {
		char *p;
		double t0;

		if (t_map(t, len, &p) < 0)
			return;
		touch[r] = write_pages(p, npages, 1, &n);
		t0 = now_ns();
		if (t_protect(t, p, len) < 0) {
			fprintf(stderr, "micro: protect failed\n");
			failures++;
		}
		prot[r] = (now_ns() - t0) / (double)npages;
		first[r] = write_pages(p, npages, 1, &n);
		if (t->w) {
			void **addrs = malloc(npages * sizeof(void *));

			for (size_t i = 0; i < npages && addrs; i++)
				addrs[i] = p + i * page_size;
			t0 = now_ns();
			if (addrs &&
			    wbdev_protect_pages(t->w, addrs, npages) == 0)
				plist[nlist++] = (now_ns() - t0) /
						 (double)npages;
			free(addrs);
		}
		t_unmap(t, p, len);
		if (mp_failed) {
			fprintf(stderr, "micro: mprotect baseline failed\n");
			failures++;
			mp_failed = 0;
		}
	}
	report(t->name, t->w ? "first_touch" : "minor_fault", len, -1, touch,
	       reps, "ns/page");
	report(t->name, "first_write", len, -1, first, reps, "ns/page");
	report(t->name, "protect", len, -1, prot, reps, "ns/page");
	if (t->w)
		report(t->name, "protect_list", len, -1, plist, nlist,
		       "ns/page");
}

static void test_collect(struct tracker *t, size_t len, int reps)
{
	static const int pcts[] = { 1, 10, 100 };
	size_t npages = len / page_size;
	double clean[MAX_REPS];
	double per[3][MAX_REPS];
	int r, k;

	if (!t->w) {
		/* Scattered writes split the VMA: 2 maps per dirty page. */
		size_t worst = npages / dirty_stride(10) * 2 + 1000;

		if ((long)worst > max_map_count()) {
			note(t->name, "collect", len,
			     "more VMAs than vm.max_map_count");
			return;
		}
	}
	for (r = 0; r < reps; r++) {
		char *p;
		double t0;
		long found;

		if (t_map(t, len, &p) < 0)
			return;
		populate(p, len);
		if (t_protect(t, p, len) < 0)
			failures++;
		/* Nothing was written since protect, but wbdev.h lets a
		 * backend report the writes made before it (kmod keeps them
		 * in its log): the first collect may report up to every
		 * populated page, never more.  The second collect must
		 * report nothing, and it is the one timed as a clean scan. */
		found = t_collect(t, p, len);
		if (found < 0 || (size_t)found > npages) {
			fprintf(stderr, "micro: %s: %ld pages reported dirty "
				"in a clean range of %zu pages\n", t->name,
				found, npages);
			failures++;
		}
		t0 = now_ns();
		found = t_collect(t, p, len);
		clean[r] = (now_ns() - t0) / (double)(len / MIB);
		if (found != 0) {
			fprintf(stderr, "micro: %s: %ld pages reported dirty "
				"by a second collect of a clean range\n",
				t->name, found);
			failures++;
		}
		for (k = 0; k < 3; k++) {
			size_t written;

			write_pages(p, npages, dirty_stride(pcts[k]),
				    &written);
			t0 = now_ns();
			found = t_collect(t, p, len);
			per[k][r] = (now_ns() - t0) / (double)written;
			if (found != (long)written) {
				fprintf(stderr, "micro: %s: %ld pages "
					"reported, %zu written\n", t->name,
					found, written);
				failures++;
			}
		}
		t_unmap(t, p, len);
	}
	report(t->name, "collect_clean", len, 0, clean, reps, "ns/MiB");
	for (k = 0; k < 3; k++)
		report(t->name, "collect", len, pcts[k], per[k], reps,
		       "ns/dirty page");
}

static void test_fork(struct tracker *t, size_t len, int reps)
{
	double parent[MAX_REPS], child[MAX_REPS];
	int r, nchild = 0;

	for (r = 0; r < reps; r++) {
		char *p;
		int pfd[2];
		double t0, t_child = 0;
		pid_t pid;
		int st;

		if (t_map(t, len, &p) < 0)
			return;
		populate(p, len);
		if (t_protect(t, p, len) < 0)
			failures++;
		if (pipe(pfd))
			return;
		t0 = now_ns();
		if (t->w)
			wbdev_fork_prepare(t->w);
		pid = fork();
		if (pid == 0) {
			int ok = 1;

			if (t->w && wbdev_fork_child(t->w) < 0)
				ok = 0;
			t_child = now_ns();
			if (!ok)
				t_child = -1;
			if (write(pfd[1], &t_child, sizeof(t_child)) < 0)
				_exit(1);
			_exit(0);
		}
		if (t->w)
			wbdev_fork_parent(t->w);
		parent[r] = (now_ns() - t0) / 1e6;
		if (pid < 0) {
			failures++;
			return;
		}
		if (read(pfd[0], &t_child, sizeof(t_child)) ==
		    sizeof(t_child) && t_child > 0)
			child[nchild++] = (t_child - t0) / 1e6;
		waitpid(pid, &st, 0);
		close(pfd[0]);
		close(pfd[1]);
		t_unmap(t, p, len);
	}
	report(t->name, "fork_parent", len, -1, parent, reps, "ms");
	report(t->name, "fork_child_ready", len, -1, child, nchild, "ms");
}

/* "64M,1G,4G" -> byte sizes. */
static int parse_sizes(const char *s, size_t *out, int max)
{
	int n = 0;

	while (*s && n < max) {
		char *end;
		unsigned long v = strtoul(s, &end, 10);

		if (end == s)
			return -1;
		if (*end == 'G' || *end == 'g')
			v *= 1024, end++;
		else if (*end == 'M' || *end == 'm')
			end++;
		out[n++] = v * MIB;
		if (*end == ',')
			end++;
		else if (*end)
			return -1;
		s = end;
	}
	return n;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: micro [--backends LIST] [--sizes LIST] "
		"[--fork-sizes LIST] [--fault-size SIZE] [--reps N] [--raw]\n"
		"  --backends  comma list of mprotect,uffd,kmod "
		"(default mprotect,uffd,kmod; unavailable ones are noted)\n"
		"  --sizes     collect sizes (default 64M,1G,4G)\n"
		"  --fork-sizes fork heap sizes (default 16M,256M,1G)\n"
		"  --fault-size size for the fault and protect tests "
		"(default 64M)\n"
		"  --reps      repetitions per measurement (default 3)\n"
		"  --raw       also print MICRO key=value lines\n"
		"  --populate  madvise (MADV_POPULATE_WRITE, default) or "
		"touch (one write per page)\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "backends", required_argument, NULL, 'b' },
		{ "sizes", required_argument, NULL, 's' },
		{ "fork-sizes", required_argument, NULL, 'f' },
		{ "fault-size", required_argument, NULL, 'F' },
		{ "reps", required_argument, NULL, 'r' },
		{ "raw", no_argument, NULL, 'R' },
		{ "populate", required_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	char backends[256] = "mprotect,uffd,kmod";
	size_t sizes[8], fork_sizes[8], fault_size = 64 * MIB;
	int nsizes, nfork, reps = 3, c;

	nsizes = parse_sizes("64M,1G,4G", sizes, 8);
	nfork = parse_sizes("16M,256M,1G", fork_sizes, 8);
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			snprintf(backends, sizeof(backends), "%s", optarg);
			break;
		case 's':
			nsizes = parse_sizes(optarg, sizes, 8);
			break;
		case 'f':
			nfork = parse_sizes(optarg, fork_sizes, 8);
			break;
		case 'F':
			if (parse_sizes(optarg, &fault_size, 1) != 1)
				nsizes = -1;
			break;
		case 'r':
			reps = atoi(optarg);
			break;
		case 'R':
			raw_output = 1;
			break;
		case 'P':
			populate_by_touch = strcmp(optarg, "touch") == 0;
			if (!populate_by_touch && strcmp(optarg, "madvise"))
				nsizes = -1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 64;
		}
	}
	if (nsizes < 0 || nfork < 0 || reps < 1 || reps > MAX_REPS ||
	    optind != argc) {
		usage(stderr);
		return 64;
	}
	page_size = (size_t)sysconf(_SC_PAGESIZE);

	struct sigaction sa = { .sa_sigaction = mp_handler,
				.sa_flags = SA_SIGINFO | SA_RESTART };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);

	printf("| backend | metric | size MiB | dirty %% | median | min–max "
	       "| unit |\n|---|---|---|---|---|---|---|\n");
	for (char *save = NULL, *name = strtok_r(backends, ",", &save); name;
	     name = strtok_r(NULL, ",", &save)) {
		struct tracker t = { .name = name };
		int i;

		if (strcmp(name, "mprotect") != 0) {
			struct wbdev_options o = { 0 };

			if (strcmp(name, "kmod") == 0)
				o.backend = WBDEV_BACKEND_KMOD;
			else if (strcmp(name, "uffd") == 0)
				o.backend = WBDEV_BACKEND_UFFD;
			else {
				fprintf(stderr, "micro: unknown backend %s\n",
					name);
				return 64;
			}
			int rc = wbdev_open(&t.w, &o);

			if (rc < 0) {
				note(name, "all", 0, wbdev_strerror(rc));
				continue;
			}
			t.buf = malloc(COLLECT_BUF * sizeof(void *));
			if (!t.buf)
				return 2;
		}
		test_faults(&t, fault_size, reps);
		for (i = 0; i < nsizes; i++)
			test_collect(&t, sizes[i], reps);
		for (i = 0; i < nfork; i++)
			test_fork(&t, fork_sizes[i], reps);
		if (t.w) {
			wbdev_close(t.w);
			free(t.buf);
		}
	}
	if (failures)
		fprintf(stderr, "micro: %d check(s) failed\n", failures);
	return failures ? 1 : 0;
}
