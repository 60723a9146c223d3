/*
 * wbdev_backend.h - internal: the ops table each backend implements.
 * Not installed.  wbdev.c (the core) validates arguments common to all
 * backends (alignment, ranges known to the handle, NULL) before calling
 * an op, keeps the handle's list of mappings, and turns results into
 * the public API's conventions (0 / positive / -errno).
 */
#ifndef WBDEV_BACKEND_H
#define WBDEV_BACKEND_H

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
};

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
	int (*collect)(wbdev_t *w, struct wbdev_collect *c);
	int (*fork_prepare)(wbdev_t *w);
	int (*fork_parent)(wbdev_t *w);
	int (*fork_child)(wbdev_t *w);
};

extern const struct wbdev_backend_ops wbdev_kmod_ops;
extern const struct wbdev_backend_ops wbdev_uffd_ops;

/* Log through the caller's hook, if any (printf-style). */
void wbdev_log(const wbdev_t *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif /* WBDEV_BACKEND_H */
