/* SPDX-License-Identifier: MIT */
/*
 * wbdev.c - adapter core: backend selection, argument checking, the
 * handle's list of tracked mappings, locking.  System calls live in the
 * backends (wbdev_uffd.c, wbdev_kmod.c).
 *
 * Self-contained on purpose (no config.h): bdwgc compiles these sources
 * straight into the collector, with its own flags.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "wbdev_backend.h"

void wbdev_log(const wbdev_t *w, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (!w || !w->log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	w->log(w->log_arg, msg);
}

/* A handle the caller may use: not NULL, not closed (best effort). */
static int handle_ok(const wbdev_t *w)
{
	return w && w->magic == WBDEV_MAGIC;
}

/* Index of the first mapping whose end is above addr (binary search). */
static size_t first_map_ending_above(const wbdev_t *w, uintptr_t addr)
{
	size_t lo = 0, hi = w->nmaps;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (w->maps[mid].start + w->maps[mid].len <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int wbdev_range_tracked(const wbdev_t *w, uintptr_t start, size_t len)
{
	uintptr_t end = start + len, pos = start;
	size_t i;

	if (len == 0 || end < start)
		return 0;
	/* Walk consecutive mappings; any gap means "not tracked". */
	for (i = first_map_ending_above(w, start); i < w->nmaps; i++) {
		const struct wbdev_mapping *m = &w->maps[i];

		if (m->start > pos)
			return 0;
		pos = m->start + m->len;
		if (pos >= end)
			return 1;
	}
	return 0;
}

int wbdev_next_tracked_run(const wbdev_t *w, uintptr_t from, uintptr_t end,
			   uintptr_t *run_start, uintptr_t *run_end)
{
	size_t i = first_map_ending_above(w, from);
	uintptr_t s, e;

	if (from >= end || i >= w->nmaps || w->maps[i].start >= end)
		return -ENOENT;
	s = w->maps[i].start > from ? w->maps[i].start : from;
	e = w->maps[i].start + w->maps[i].len;
	/* Coalesce adjacent mappings: one system call covers them all. */
	while (++i < w->nmaps && w->maps[i].start == e && e < end)
		e += w->maps[i].len;
	*run_start = s;
	*run_end = e < end ? e : end;
	return 0;
}

static int aligned(const wbdev_t *w, uintptr_t v)
{
	return (v & (w->page_size - 1)) == 0;
}

/* Common checks for a page-aligned range of tracked memory. */
static int check_range(const wbdev_t *w, const void *addr, size_t len)
{
	uintptr_t a = (uintptr_t)addr;

	if (!addr || len == 0 || !aligned(w, a) || !aligned(w, len) ||
	    a + len < a)
		return -EINVAL;
	if (!wbdev_range_tracked(w, a, len))
		return -EINVAL;
	return 0;
}

/*
 * The mapping table grows by mmap, not realloc: a collector maps heap
 * memory while its world is stopped, and a stopped thread may hold the
 * malloc arena lock.
 */
/* WBDEV_TEST_FAIL_COLLECT=N (N >= 1): a testing aid, see wbdev.h. */
static unsigned long test_fail_collect_env(void)
{
	const char *s = getenv("WBDEV_TEST_FAIL_COLLECT");
	char *end;
	unsigned long n;

	if (!s || !*s)
		return 0;
	n = strtoul(s, &end, 10);
	return *end ? 0 : n;
}

static int reserve_maps(wbdev_t *w, size_t extra)
{
	struct wbdev_mapping *m;
	size_t cap;

	if (w->nmaps + extra <= w->maps_cap)
		return 0;
	cap = w->maps_cap ? w->maps_cap * 2 : 16;
	while (cap < w->nmaps + extra)
		cap *= 2;
	m = mmap(NULL, cap * sizeof(*m), PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return -ENOMEM;
	if (w->maps) {
		memcpy(m, w->maps, w->nmaps * sizeof(*m));
		munmap(w->maps, w->maps_cap * sizeof(*m));
	}
	w->maps = m;
	w->maps_cap = cap;
	return 0;
}

static void insert_map(wbdev_t *w, uintptr_t start, size_t len)
{
	size_t i = first_map_ending_above(w, start);

	memmove(&w->maps[i + 1], &w->maps[i],
		(w->nmaps - i) * sizeof(w->maps[0]));
	w->maps[i].start = start;
	w->maps[i].len = len;
	w->nmaps++;
	w->stats.mapped_bytes += len;
}

/* Forget [start, end): the caller checked it is tracked. */
static void remove_range(wbdev_t *w, uintptr_t start, uintptr_t end)
{
	size_t i = first_map_ending_above(w, start);

	while (i < w->nmaps && w->maps[i].start < end) {
		struct wbdev_mapping *m = &w->maps[i];
		uintptr_t ms = m->start, me = m->start + m->len;
		uintptr_t cs = ms > start ? ms : start;
		uintptr_t ce = me < end ? me : end;

		w->stats.mapped_bytes -= ce - cs;
		if (cs == ms && ce == me) {
			memmove(m, m + 1, (w->nmaps - i - 1) * sizeof(*m));
			w->nmaps--;
			continue;
		}
		if (cs == ms) {
			m->start = ce;
			m->len = me - ce;
		} else if (ce == me) {
			m->len = cs - ms;
		} else {
			/* Hole in the middle: split (room was reserved). */
			memmove(m + 2, m + 1,
				(w->nmaps - i - 1) * sizeof(*m));
			m[1].start = ce;
			m[1].len = me - ce;
			m->len = cs - ms;
			w->nmaps++;
			i++;
		}
		i++;
	}
}

static int try_backend(wbdev_t *w, const struct wbdev_backend_ops *ops)
{
	int err;

	w->ops = ops;
	w->priv = NULL;
	err = ops->open(w);
	if (err)
		w->ops = NULL;
	return err;
}

int wbdev_open(wbdev_t **out, const struct wbdev_options *opts)
{
	enum wbdev_backend_id id = WBDEV_BACKEND_AUTO;
	pthread_mutexattr_t attr;
	wbdev_t *w;
	long ps;
	int err;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (opts)
		id = opts->backend;
	if (id != WBDEV_BACKEND_AUTO && id != WBDEV_BACKEND_KMOD &&
	    id != WBDEV_BACKEND_UFFD)
		return -EINVAL;
	ps = sysconf(_SC_PAGESIZE);
	if (ps <= 0)
		return -EINVAL;

	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->page_size = (size_t)ps;
	w->fail_collect_at = test_fail_collect_env();
	if (opts) {
		w->log = opts->log;
		w->log_arg = opts->log_arg;
	}
	/*
	 * Error-checking mutex: a wrong call order (fork_parent without
	 * fork_prepare, a call from inside the fork window) fails instead
	 * of deadlocking.
	 */
	if (pthread_mutexattr_init(&attr)) {
		free(w);
		return -ENOMEM;
	}
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK);
	err = pthread_mutex_init(&w->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	if (err) {
		free(w);
		return -err;
	}

	switch (id) {
	case WBDEV_BACKEND_KMOD:
		err = try_backend(w, &wbdev_kmod_ops);
		break;
	case WBDEV_BACKEND_UFFD:
		err = try_backend(w, &wbdev_uffd_ops);
		break;
	default:
		err = try_backend(w, &wbdev_kmod_ops);
		if (err) {
			wbdev_log(w, "auto: kmod refused (%s), trying uffd",
				  wbdev_strerror(err));
			err = try_backend(w, &wbdev_uffd_ops);
		}
		if (err) {
			wbdev_log(w, "auto: no backend works here (%s)",
				  wbdev_strerror(err));
			err = -ENODEV;
		}
		break;
	}
	if (err) {
		pthread_mutex_destroy(&w->lock);
		free(w);
		return err;
	}
	w->magic = WBDEV_MAGIC;
	*out = w;
	return 0;
}

int wbdev_close(wbdev_t *w)
{
	int err = 0;

	if (!handle_ok(w))
		return -EBADF;
	pthread_mutex_lock(&w->lock);
	/* Unmap from the top so the list shrinks from its end. */
	while (w->nmaps) {
		struct wbdev_mapping *m = &w->maps[w->nmaps - 1];
		int e = w->ops->unmap(w, (void *)m->start, m->len);

		if (e && !err)
			err = e;
		w->stats.mapped_bytes -= m->len;
		w->nmaps--;
	}
	w->ops->close(w);
	w->magic = WBDEV_MAGIC_CLOSED;
	pthread_mutex_unlock(&w->lock);
	pthread_mutex_destroy(&w->lock);
	if (w->maps)
		munmap(w->maps, w->maps_cap * sizeof(w->maps[0]));
	free(w);
	return err;
}

const char *wbdev_backend_name(const wbdev_t *w)
{
	return handle_ok(w) ? w->ops->name : "none";
}

enum wbdev_backend_id wbdev_backend(const wbdev_t *w)
{
	return handle_ok(w) ? w->ops->id : WBDEV_BACKEND_AUTO;
}

unsigned int wbdev_caps(const wbdev_t *w)
{
	return handle_ok(w) ? w->ops->caps(w) : 0;
}

size_t wbdev_page_size(const wbdev_t *w)
{
	return handle_ok(w) ? w->page_size : 0;
}

/* Take the handle's lock; -EBADF for a NULL or closed handle. */
static int lock_handle(wbdev_t *w)
{
	int err;

	if (!handle_ok(w))
		return -EBADF;
	err = pthread_mutex_lock(&w->lock);
	return err ? -err : 0;
}

int wbdev_map(wbdev_t *w, void *hint, size_t len, void **addr)
{
	void *a = NULL;
	int err = lock_handle(w);

	if (err)
		return err;
	if (!addr || len == 0 || !aligned(w, len)) {
		err = -EINVAL;
		goto out;
	}
	*addr = NULL;
	err = reserve_maps(w, 1);
	if (err)
		goto out;
	err = w->ops->map(w, hint, len, &a);
	if (err)
		goto out;
	insert_map(w, (uintptr_t)a, len);
	*addr = a;
out:
	pthread_mutex_unlock(&w->lock);
	return err;
}

int wbdev_unmap(wbdev_t *w, void *addr, size_t len)
{
	int err = lock_handle(w);

	if (err)
		return err;
	err = check_range(w, addr, len);
	if (!err)
		err = reserve_maps(w, 1);	/* a split needs one more */
	if (!err)
		err = w->ops->unmap(w, addr, len);
	if (!err)
		remove_range(w, (uintptr_t)addr, (uintptr_t)addr + len);
	pthread_mutex_unlock(&w->lock);
	return err;
}

static int backend_discard(wbdev_t *w, void *addr, size_t len)
{
	return w->ops->discard(w, addr, len);
}

static int backend_protect(wbdev_t *w, void *addr, size_t len)
{
	return w->ops->protect(w, addr, len);
}

/*
 * Run op on a checked range of tracked memory, under the lock.  op reaches
 * the backend only after the handle has been found valid.
 */
static int range_op(wbdev_t *w, void *addr, size_t len,
		    int (*op)(wbdev_t *, void *, size_t))
{
	int err = lock_handle(w);

	if (err)
		return err;
	err = check_range(w, addr, len);
	if (!err)
		err = op(w, addr, len);
	pthread_mutex_unlock(&w->lock);
	return err;
}

int wbdev_discard(wbdev_t *w, void *addr, size_t len)
{
	return range_op(w, addr, len, backend_discard);
}

int wbdev_protect(wbdev_t *w, void *addr, size_t len)
{
	return range_op(w, addr, len, backend_protect);
}

static int backend_unprotect(wbdev_t *w, void *addr, size_t len)
{
	return w->ops->unprotect ? w->ops->unprotect(w, addr, len) : -ENOTSUP;
}

int wbdev_unprotect(wbdev_t *w, void *addr, size_t len)
{
	return range_op(w, addr, len, backend_unprotect);
}

int wbdev_protect_pages(wbdev_t *w, void *const *addrs, size_t n)
{
	size_t i;
	int err = lock_handle(w);

	if (err)
		return err;
	if (n == 0)
		goto out;
	if (!addrs) {
		err = -EINVAL;
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (!wbdev_range_tracked(w, (uintptr_t)addrs[i], 1)) {
			err = -EINVAL;
			goto out;
		}
	}
	err = w->ops->protect_pages(w, addrs, n);
out:
	pthread_mutex_unlock(&w->lock);
	return err;
}

int wbdev_collect(wbdev_t *w, struct wbdev_collect *c)
{
	struct wbdev_collect n;
	uintptr_t start, end;
	int err;

	if (!c)
		return handle_ok(w) ? -EINVAL : -EBADF;
	c->count = 0;
	err = lock_handle(w);
	if (err)
		return err;
	err = -EINVAL;
	if (!c->pages || c->max == 0 ||
	    (c->flags & ~WBDEV_COLLECT_REPROTECT))
		goto out;
	if (!c->start && c->len == 0) {
		/* All tracked memory, as it is now. */
		if (w->nmaps == 0) {
			c->cursor = 0;
			err = 0;
			goto out;
		}
		start = w->maps[0].start;
		end = w->maps[w->nmaps - 1].start +
		      w->maps[w->nmaps - 1].len;
	} else {
		start = (uintptr_t)c->start;
		end = start + c->len;
		if (c->len == 0 || !aligned(w, start) || !aligned(w, c->len) ||
		    end < start)
			goto out;
	}
	n = *c;
	n.start = (void *)start;
	n.len = end - start;
	if (n.cursor == 0)
		n.cursor = start;
	if (n.cursor < start || n.cursor > end)
		goto out;
	if (++w->collects == w->fail_collect_at) {
		wbdev_log(w, "WBDEV_TEST_FAIL_COLLECT: collect #%lu fails",
			  w->collects);
		err = -EIO;
		goto out;
	}
	err = w->ops->collect(w, &n);
	if (err >= 0) {
		c->count = n.count;
		c->cursor = n.cursor;
		w->stats.pages_reported += n.count;
	}
out:
	pthread_mutex_unlock(&w->lock);
	return err;
}

int wbdev_fork_prepare(wbdev_t *w)
{
	int err = lock_handle(w);

	if (err)
		return err;
	/* The lock stays held across fork() so no call is half done. */
	if (w->ops->fork_prepare) {
		err = w->ops->fork_prepare(w);
		if (err)
			pthread_mutex_unlock(&w->lock);
	}
	return err;
}

int wbdev_fork_parent(wbdev_t *w)
{
	int err = 0, uerr;

	if (!handle_ok(w))
		return -EBADF;
	if (w->ops->fork_parent)
		err = w->ops->fork_parent(w);
	uerr = pthread_mutex_unlock(&w->lock);
	if (!err && uerr)
		err = uerr == EPERM ? -EINVAL : -uerr;
	return err;
}

int wbdev_fork_child(wbdev_t *w)
{
	pthread_mutexattr_t attr;
	int err;

	if (!handle_ok(w))
		return -EBADF;
	/*
	 * Only the forking thread exists in the child: make a fresh lock
	 * whether or not wbdev_fork_prepare() held the old one.
	 */
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK);
	pthread_mutex_init(&w->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	pthread_mutex_lock(&w->lock);
	err = w->ops->fork_child ? w->ops->fork_child(w) : -ENOTSUP;
	pthread_mutex_unlock(&w->lock);
	return err;
}

int wbdev_get_stats(const wbdev_t *w, struct wbdev_stats *st)
{
	wbdev_t *mw = (wbdev_t *)w;	/* the lock is not part of the value */
	int err;

	if (!st)
		return handle_ok(w) ? -EINVAL : -EBADF;
	err = lock_handle(mw);
	if (err)
		return err;
	*st = w->stats;
	pthread_mutex_unlock(&mw->lock);
	return 0;
}

const char *wbdev_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
	case -EINVAL:
		return "invalid argument (NULL, unaligned, or not tracked memory)";
	case -EBADF:
		return "bad handle (NULL or closed)";
	case -ENODEV:
		return "no usable write-barrier backend on this system";
	case -ENOTSUP:
		return "not supported by this backend";
	case -ENOMEM:
		return "out of memory or address space";
	case -EPERM:
		return "operation not permitted";
	case -EACCES:
		return "permission denied";
	case -EFAULT:
		return "bad address";
	case -EDEADLK:
		return "call made while this thread holds the handle (fork window)";
	case -EMFILE:
	case -ENFILE:
		return "too many open files";
	case -EIO:
		return "kernel reported an inconsistent result";
	default:
		return "unexpected error";
	}
}
