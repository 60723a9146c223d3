/* SPDX-License-Identifier: MIT */
/*
 * wbdev_backend.h - internal: the ops table each backend implements.
 * Not installed.  wbdev.c (the core) validates arguments common to all
 * backends (alignment, ranges known to the handle, NULL) before calling
 * an op, keeps the handle's list of mappings, and turns results into
 * the public API's conventions (0 / positive / -errno).
 */
#ifndef WBDEV_BACKEND_H
#define WBDEV_BACKEND_H

#include <pthread.h>

#include "wbdev.h"

/* One tracked mapping, as the core records it (sorted by start). */
struct wbdev_mapping {
	uintptr_t start;
	size_t len;
};

/* The handle.  The core owns everything but priv. */
struct wbdev {
	const struct wbdev_backend_ops *ops;
	void *priv;			/* backend state */
	wbdev_log_fn log;
	void *log_arg;
	size_t page_size;
	struct wbdev_mapping *maps;	/* sorted, non-overlapping */
	size_t nmaps, maps_cap;
	struct wbdev_stats stats;	/* backends bump the call counters */
	/* Testing aid (WBDEV_TEST_FAIL_COLLECT=N): the N-th wbdev_collect
	 * fails with -EIO, as a backend that lost tracking would; 0: off. */
	unsigned long fail_collect_at;
	unsigned long collects;
	/*
	 * Serialises every API call on the handle (the core takes it; ops
	 * run with it held).  Held from wbdev_fork_prepare() until
	 * wbdev_fork_parent()/wbdev_fork_child().
	 */
	pthread_mutex_t lock;
	/* WBDEV_MAGIC while open, poisoned by wbdev_close() so that a
	 * second close is caught while the freed memory is not reused. */
	uint32_t magic;
};

#define WBDEV_MAGIC 0x77626476u		/* "wbdv" */
#define WBDEV_MAGIC_CLOSED 0x636c7364u	/* "clsd" */

/*
 * Ops run with w->lock held, after the core has validated what is common:
 * map gets len > 0, page aligned; unmap, discard and protect get page
 * aligned ranges lying entirely in tracked memory (so does unprotect);
 * protect_pages gets
 * n > 0 addresses, each inside tracked memory; collect gets a normalised
 * copy of the caller's struct: start/len always name the range (never
 * NULL/0), cursor lies in [start, start + len], count is 0, max > 0.  It
 * scans tracked memory from cursor to start + len, stores at most max
 * pages, leaves cursor at the resume point and returns 0 when the range
 * is done, 1 when the buffer filled first.  fork_prepare/fork_parent may
 * be NULL (nothing to do), fork_child NULL means -ENOTSUP.
 */
struct wbdev_backend_ops {
	const char *name;
	enum wbdev_backend_id id;
	/* Probe and open backend state into w->priv; -ENODEV when the
	 * backend cannot work on this system (reason through wbdev_log). */
	int (*open)(wbdev_t *w);
	void (*close)(wbdev_t *w);
	unsigned int (*caps)(const wbdev_t *w);
	int (*map)(wbdev_t *w, void *hint, size_t len, void **addr);
	int (*unmap)(wbdev_t *w, void *addr, size_t len);
	int (*discard)(wbdev_t *w, void *addr, size_t len);
	int (*protect)(wbdev_t *w, void *addr, size_t len);
	int (*protect_pages)(wbdev_t *w, void *const *addrs, size_t n);
	/* NULL: the backend cannot unprotect (-ENOTSUP). */
	int (*unprotect)(wbdev_t *w, void *addr, size_t len);
	int (*collect)(wbdev_t *w, struct wbdev_collect *c);
	int (*fork_prepare)(wbdev_t *w);
	int (*fork_parent)(wbdev_t *w);
	int (*fork_child)(wbdev_t *w);
};

extern const struct wbdev_backend_ops wbdev_kmod_ops;
extern const struct wbdev_backend_ops wbdev_uffd_ops;

/*
 * Core helper for backends: the next run of tracked memory (adjacent
 * mappings coalesced) that intersects [from, end), clipped to it.
 * Returns 0 and sets *run_start and *run_end, or -ENOENT when none is left.
 */
int wbdev_next_tracked_run(const wbdev_t *w, uintptr_t from, uintptr_t end,
			   uintptr_t *run_start, uintptr_t *run_end);

/* Core helper: is [start, start + len) entirely tracked memory? */
int wbdev_range_tracked(const wbdev_t *w, uintptr_t start, size_t len);

/* Log through the caller's hook, if any (printf-style). */
void wbdev_log(const wbdev_t *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif /* WBDEV_BACKEND_H */
